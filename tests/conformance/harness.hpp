// The conformance harness (ggml's test-backend-ops pattern): an Arena allocates every buffer of
// one op call on a backend with GUARD elements after it, runs the op, and on results():
//  * checks that the guard tail of every output is still the sentinel (out-of-bounds writes),
//  * checks that inputs (tail included) are bit-for-bit unchanged (writes through const inputs),
//  * returns the outputs as float64 host vectors.
// Input tails hold NaN, so an out-of-bounds READ shows up as a NaN in the output.
// The fixture runs the same generic lambda on the reference backend and on the backend under
// test and compares every output with the normalised MSE.
#pragma once

#include "backend_list.hpp"

#include <test_util.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace sgf::test {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class B>
class Arena {
public:
    using S = typename B::Scalar;
    static constexpr std::size_t kGuard = 17;
    static S sentinel() { return S(-31415.92653); }

    explicit Arena(B& b) : b_(b) {}
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;

    /// A read-only operand; its tail is NaN.
    S* input(const std::vector<double>& host, std::string name = "input") { return add(host, true, std::move(name)); }
    /// An output (or in/out operand) with the given initial contents; returned by results().
    S* output(const std::vector<double>& init, std::string name = "output") {
        return add(init, false, std::move(name));
    }
    /// An output pre-filled with NaN: ops that overwrite (or beta == 0) must not read it.
    S* output_nan(std::size_t n, std::string name = "output") {
        return add(std::vector<double>(n, kNaN), false, std::move(name));
    }
    /// A host value returned by an op (sum, dot, losses): one more 1-element result.
    void scalar(double v) { slots_.push_back(Slot{-1, v}); }

    /// Downloads every buffer, checks guards and untouched inputs, returns the results in the
    /// order outputs/scalars were declared.
    std::vector<std::vector<double>> results(const std::string& what) {
        b_.synchronize();
        std::vector<std::vector<double>> finals(entries_.size());
        for (std::size_t e = 0; e < entries_.size(); ++e) {
            Entry& en = *entries_[e];
            std::vector<S> host(en.n + kGuard);
            b_.download(en.buf.data(), host.size(), host.data());
            const std::string who = what + " [" + std::string(B::name()) + ", " + en.name + "]";
            if (en.is_input) {
                for (std::size_t i = 0; i < host.size(); ++i) {
                    if (!same_bits(host[i], en.initial[i])) {
                        ADD_FAILURE() << who << ": a read-only operand was modified at element " << i
                                      << (i >= en.n ? " (in the guard tail)" : "");
                        break;
                    }
                }
            } else {
                for (std::size_t i = en.n; i < host.size(); ++i) {
                    // compare bit patterns so that a NaN written over the sentinel is caught
                    if (!same_bits(host[i], en.initial[i])) {
                        ADD_FAILURE() << who << ": out-of-bounds write, guard element " << (i - en.n) << " after "
                                      << en.n << " elements holds " << double(host[i]);
                        break;
                    }
                }
            }
            finals[e].assign(host.begin(), host.begin() + static_cast<std::ptrdiff_t>(en.n));
        }
        std::vector<std::vector<double>> out;
        for (const Slot& s : slots_) out.push_back(s.entry >= 0 ? finals[static_cast<std::size_t>(s.entry)]
                                                                : std::vector<double>{s.value});
        return out;
    }

private:
    struct Entry {
        typename B::Buffer buf;
        std::vector<S> initial;
        std::size_t n = 0;
        bool is_input = false;
        std::string name;
    };
    struct Slot {
        long entry;
        double value;
    };

    S* add(const std::vector<double>& init, bool is_input, std::string name) {
        auto e = std::make_unique<Entry>();
        e->n = init.size();
        e->is_input = is_input;
        e->name = std::move(name);
        e->initial.resize(e->n + kGuard);
        for (std::size_t i = 0; i < e->n; ++i) e->initial[i] = S(init[i]);
        for (std::size_t i = e->n; i < e->initial.size(); ++i) e->initial[i] = is_input ? S(kNaN) : sentinel();
        e->buf = b_.allocate(e->initial.size());
        b_.upload(e->initial.data(), e->initial.size(), e->buf.data());
        S* p = e->buf.data();
        if (!is_input) slots_.push_back(Slot{static_cast<long>(entries_.size()), 0.0});
        entries_.push_back(std::move(e));
        return p;
    }

    B& b_;
    std::vector<std::unique_ptr<Entry>> entries_;
    std::vector<Slot> slots_;
};

template <class Traits>
class Conformance : public ::testing::Test {
public:  // free helpers (run_conv_sweep, check_beta) use the fixture too
    using B = typename Traits::Backend;
    using T = typename B::Scalar;

    void SetUp() override {
        std::string why;
        be_ = Traits::make(why);
        if (!be_) GTEST_SKIP() << "backend " << Traits::name() << " skipped: " << why;
    }

    B& be() { return *be_; }
    static double tol() { return Traits::tol; }
    static double tol_conv() { return Traits::tol_conv; }

    /// Random inputs, rounded to the tested backend's scalar so both backends see the same values.
    static std::vector<double> rnd(std::size_t n, std::uint64_t seed, double scale = 1.0) {
        return round_to<T>(random_normal(n, seed, scale));
    }
    static std::vector<double> rndu(std::size_t n, std::uint64_t seed, double lo, double hi) {
        return round_to<T>(random_uniform(n, seed, lo, hi));
    }
    static double r(double x) { return round_to<T>(x); }

    template <class BB, class Run>
    static std::vector<std::vector<double>> run_on(BB& b, Run& run, const std::string& what) {
        Arena<BB> a(b);
        run(b, a);
        return a.results(what);
    }

    /// Runs `run(backend, arena)` on the reference and on the backend under test; compares every
    /// output with nmse <= tol and checks the tested outputs for NaN/Inf.
    template <class Run>
    void compare(const std::string& what, double tol, Run&& run, bool check_finite = true) {
        reference::Backend ref;
        const auto expected = run_on(ref, run, what);
        const auto actual = run_on(*be_, run, what);
        ASSERT_EQ(actual.size(), expected.size()) << what;
        for (std::size_t i = 0; i < actual.size(); ++i) {
            const std::string name = what + " [" + Traits::name() + ", output " + std::to_string(i) + "]";
            const double err = nmse(actual[i], expected[i]);
            if (!(err / tol <= worst_ratio_)) worst_ratio_ = err / tol, worst_err_ = err, worst_what_ = name;
            EXPECT_CLOSE_NMSE(actual[i], expected[i], tol, name);
            if (check_finite) {
                EXPECT_TRUE(all_finite(expected[i])) << name << ": the reference produced NaN/Inf (bad test input)";
                EXPECT_TRUE(all_finite(actual[i]))
                    << name << ": NaN/Inf at element " << first_nonfinite(actual[i]);
            }
        }
    }

    /// With SGF_CONFORMANCE_VERBOSE set, prints the comparison closest to its threshold.
    void TearDown() override {
        if (std::getenv("SGF_CONFORMANCE_VERBOSE") && !worst_what_.empty())
            std::printf("  worst: nmse %.3g = %.3g x tolerance, %s\n", worst_err_, worst_ratio_, worst_what_.c_str());
    }

    std::unique_ptr<B> be_;
    double worst_ratio_ = 0, worst_err_ = 0;
    std::string worst_what_;
};

/// The scalar type of the backend object `b` inside a generic lambda.
#define SGF_SCALAR_OF(b) typename std::decay_t<decltype(b)>::Scalar

}  // namespace sgf::test
