// Small helpers shared by the test areas: deterministic random host data, the normalised mean
// squared error used by the conformance suite (ggml's test-backend-ops metric), NaN/Inf checks and
// a comparison that fails with a readable message.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace sgf::test {

/// Runs `f`, which must throw E; returns the message.
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw another error: " << e.what();
        return "";
    }
    ADD_FAILURE() << "did not throw";
    return "";
}

/// n draws of N(0, scale^2), deterministic in seed.
inline std::vector<double> random_normal(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    std::vector<double> v(n);
    for (auto& x : v) x = scale * nd(rng);
    return v;
}

/// n draws of U(lo, hi), deterministic in seed.
inline std::vector<double> random_uniform(std::size_t n, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> ud(lo, hi);
    std::vector<double> v(n);
    for (auto& x : v) x = ud(rng);
    return v;
}

/// Rounds every value to T and back, so that a float backend and the float64 oracle see
/// exactly the same inputs.
template <class T>
std::vector<double> round_to(std::vector<double> v) {
    for (auto& x : v) x = static_cast<double>(static_cast<T>(x));
    return v;
}
template <class T>
double round_to(double x) {
    return static_cast<double>(static_cast<T>(x));
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
    return std::vector<double>(v.begin(), v.end());
}

/// Bit-for-bit equality of two floating-point values (NaN payloads and -0.0 included).
/// (Used instead of memcmp: GCC 12.2 at -O3 miscompiles memcmp against a local double array
/// initialised from float conversions.)
template <class T>
bool same_bits(T a, T b) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    return std::bit_cast<U>(a) == std::bit_cast<U>(b);
}

/// Index of the first NaN/Inf, or -1.
template <class T>
std::ptrdiff_t first_nonfinite(const std::vector<T>& v) {
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(static_cast<double>(v[i]))) return static_cast<std::ptrdiff_t>(i);
    return -1;
}
template <class T>
bool all_finite(const std::vector<T>& v) {
    return first_nonfinite(v) < 0;
}

/// Normalised MSE: sum (a-b)^2 / sum b^2. Guard for b ~ 0: when sum b^2 < 1e-30 the plain MSE
/// sum (a-b)^2 / n is returned instead. Any NaN/Inf in a or b, or a size mismatch, gives +inf,
/// so that a threshold test fails.
inline double nmse(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
    if (a.empty()) return 0.0;
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    if (den < 1e-30) return num / double(a.size());
    return num / den;
}

/// Relative error of one scalar, |a - b| / max(|b|, 1e-300); +inf for NaN/Inf.
inline double rel_error(double a, double b) {
    if (!std::isfinite(a) || !std::isfinite(b)) return std::numeric_limits<double>::infinity();
    return std::abs(a - b) / std::max(std::abs(b), 1e-300);
}

/// nmse(actual, expected) <= tol, with a message naming what was compared, the error, the
/// worst element and the first non-finite value.
inline ::testing::AssertionResult close_nmse(const std::vector<double>& actual, const std::vector<double>& expected,
                                             double tol, const std::string& what) {
    if (actual.size() != expected.size())
        return ::testing::AssertionFailure() << what << ": size mismatch, actual " << actual.size() << " expected "
                                             << expected.size();
    const double err = nmse(actual, expected);
    if (err <= tol) return ::testing::AssertionSuccess();
    std::ostringstream msg;
    msg.precision(9);
    msg << what << ": normalised MSE " << err << " > tolerance " << tol << " (n = " << actual.size() << ")";
    const auto nf_a = first_nonfinite(actual), nf_e = first_nonfinite(expected);
    if (nf_a >= 0) msg << "; actual[" << nf_a << "] = " << actual[static_cast<std::size_t>(nf_a)] << " is not finite";
    if (nf_e >= 0)
        msg << "; expected[" << nf_e << "] = " << expected[static_cast<std::size_t>(nf_e)] << " is not finite";
    std::size_t worst = 0;
    double worst_d = -1;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double d = std::abs(actual[i] - expected[i]);
        if (!(d <= worst_d)) worst_d = d, worst = i;  // NaN-aware
        if (!(d <= 1e-6 * (std::abs(expected[i]) + 1e-6))) ++bad;
    }
    msg << "; worst element " << worst << ": actual " << actual[worst] << " expected " << expected[worst] << "; "
        << bad << " elements differ by more than 1e-6 relative";
    return ::testing::AssertionFailure() << msg.str();
}

/// Non-fatal check (ADD_FAILURE) that actual matches expected within the nmse tolerance.
inline bool expect_close_nmse(const std::vector<double>& actual, const std::vector<double>& expected, double tol,
                              const std::string& what) {
    auto r = close_nmse(actual, expected, tol, what);
    if (!r) ADD_FAILURE() << r.message();
    return static_cast<bool>(r);
}

}  // namespace sgf::test

/// EXPECT_CLOSE_NMSE(actual, expected, tol, what): reports at the caller's file:line.
#define EXPECT_CLOSE_NMSE(actual, expected, tol, what) \
    EXPECT_TRUE(::sgf::test::close_nmse((actual), (expected), (tol), (what)))
#define ASSERT_CLOSE_NMSE(actual, expected, tol, what) \
    ASSERT_TRUE(::sgf::test::close_nmse((actual), (expected), (tol), (what)))
