// Detection statistics (algorithm.md 6). Under the null "the image is not from this fingerprint",
// each decoded bit matches by chance: X ~ Bin(n, 1/2). The p-value of k matching bits is the
// upper tail P[X >= k] = 2^-n sum_{i>=k} C(n, i), computed in log space (lgamma + log-sum-exp, in
// double: about 1e-13 relative error, also at 2^-n). A registry of N fingerprints is N tests: Bonferroni.
#pragma once

#include <sgf/core/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

namespace sgf::stats {

inline double log_binom(int n, int k) { return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0); }

/// ln P[X >= k], X ~ Bin(n, 1/2).
inline double log_p_value(int k, int n) {
    SGF_CHECK(n >= 1 && n <= 1000000, ArgumentError, "p-value: n must be in 1..1e6, got {}", n);
    if (k <= 0) return 0.0;
    if (k > n) return -std::numeric_limits<double>::infinity();
    double mx = -std::numeric_limits<double>::infinity();
    std::vector<double> terms;
    terms.reserve(std::size_t(n - k + 1));
    for (int i = k; i <= n; ++i) {
        terms.push_back(log_binom(n, i));
        mx = std::max(mx, terms.back());
    }
    double s = 0;
    for (double t : terms) s += std::exp(t - mx);
    return std::min(0.0, mx + std::log(s) - n * std::log(2.0));
}
inline double p_value(int k, int n) { return std::exp(log_p_value(k, n)); }
inline double log10_p_value(int k, int n) { return log_p_value(k, n) / std::log(10.0); }

/// The smallest k with P[X >= k] <= alpha (n + 1 when even all n bits are not enough). The tail
/// falls as k grows, so a binary search finds it with O(log n) p-values (O(n log n) work; a linear
/// scan was O(n^2): about a second per call at 4096 bits, and it runs for every attributed image).
/// threshold_for_log_level is the same search for a level given as its logarithm `la` (<= 0).
inline int threshold_for_log_level(int n, double la) {
    SGF_CHECK(n >= 1 && n <= 1000000, ArgumentError, "bit threshold: n must be in 1..1e6, got {}", n);
    SGF_CHECK(la <= 0 && !std::isnan(la), ArgumentError, "bit threshold: log level must be <= 0, got {}", la);
    int lo = 0, hi = n + 1;  // invariant: p(lo - 1) > alpha (none for lo = 0), and hi = n + 1 or p(hi) <= alpha
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (log_p_value(mid, n) <= la) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}
namespace detail {
/// ln alpha of a false-positive rate, which must lie in (0, 1); `what` names it in the error.
inline double log_alpha(double alpha, std::string_view what = "bit threshold: alpha") {
    SGF_CHECK(alpha > 0 && alpha < 1, ArgumentError, "{} must be in (0, 1), got {}", what, alpha);
    return std::log(alpha);
}
/// The number of tests a registry of N fingerprints makes: N, and 1 for an empty registry.
inline double tests_of(std::int64_t registry_size) {
    SGF_CHECK(registry_size >= 0, ArgumentError, "bonferroni: registry size must be >= 0, got {}", registry_size);
    return double(std::max<std::int64_t>(registry_size, 1));
}
}  // namespace detail

inline int bit_threshold(int n, double alpha) { return threshold_for_log_level(n, detail::log_alpha(alpha)); }

/// Per-comparison level for a family-wise level alpha over N fingerprints: alpha / max(N, 1). An
/// empty registry is tested like a one-entry one (as log_family_p_value and Matcher do).
inline double bonferroni_alpha(double alpha, std::int64_t registry_size) { return alpha / detail::tests_of(registry_size); }
/// k*(n, alpha / N) for a family-wise level alpha over N fingerprints (N = 0 counts as 1), with the
/// level as ln alpha - ln N: alpha / N can be below the smallest double (1e-322 over 100 entries),
/// where bit_threshold(n, bonferroni_alpha(...)) would be handed 0; here it is n + 1, as it should.
/// `what_alpha` names alpha in its error (a caller's own name for it, e.g. AttributionRule::alpha).
inline int family_bit_threshold(int n, double alpha, std::int64_t registry_size,
                                std::string_view what_alpha = "bit threshold: alpha") {
    const double la = detail::log_alpha(alpha, what_alpha);  // alpha is checked before the registry size
    return threshold_for_log_level(n, la - std::log(detail::tests_of(registry_size)));
}
/// Family-wise p-value min(1, N p) of a per-comparison p-value given as ln p, in log space.
inline double log_family_p(double log_p, std::int64_t registry_size) {
    return std::min(0.0, log_p + std::log(double(std::max<std::int64_t>(registry_size, 1))));
}
/// The same for k matching bits of n.
inline double log_family_p_value(int k, int n, std::int64_t registry_size) { return log_family_p(log_p_value(k, n), registry_size); }

/// The null distribution of a weighted match score (docs/verification.md, "The weighted score").
/// Bit i carries an integer weight q_i >= 0 fixed by the image alone (the decoder's confidence);
/// the score against a registered code c is M = sum of q_i over the bits where c matches. Under the
/// null, c is uniform and independent of the image, so each bit matches with probability 1/2
/// independently, whatever the weights: M is a sum of independent q_i * Bernoulli(1/2). Its exact
/// distribution is built by dynamic programming over the bits (O(n * sum q) additions); with all
/// q_i = 1 it is Bin(n, 1/2) and the threshold is k* of bit_threshold. Every nonzero probability is a
/// multiple of 2^-n, so n is limited to kMaxBits, where 2^-n is still a normal double.
class WeightedNull {
public:
    static constexpr int kMaxBits = 1000;

    explicit WeightedNull(std::span<const std::uint8_t> weights) : n_(int(weights.size())) {
        SGF_CHECK(n_ >= 1 && n_ <= kMaxBits, ArgumentError,
                  "weighted score: {} bits; the exact null distribution is computed for 1..{} bits (use the bit count for more)", n_,
                  kMaxBits);
        std::int64_t total = 0;
        for (const std::uint8_t q : weights) total += q;
        total_ = total;
        // dist[m] = P[M = m], adding one bit at a time: M' = M + q with probability 1/2, M otherwise
        std::vector<double> dist(std::size_t(total + 1), 0.0);
        dist[0] = 1.0;
        std::int64_t reach = 0;  // the largest m with P[M = m] > 0 so far
        for (const std::uint8_t q : weights) {
            if (q == 0) continue;
            for (std::int64_t m = reach; m >= 0; --m) {  // downwards: dist[m] is read before it is halved
                dist[std::size_t(m + q)] += 0.5 * dist[std::size_t(m)];
                dist[std::size_t(m)] *= 0.5;
            }
            reach += q;
        }
        // upper tails, summed from the top so that small tails keep their relative precision
        tail_.assign(std::size_t(total + 2), 0.0);
        for (std::int64_t m = total; m >= 0; --m) tail_[std::size_t(m)] = tail_[std::size_t(m + 1)] + dist[std::size_t(m)];
    }

    int bits() const { return n_; }
    /// sum of the weights: the score of a code matching every bit
    std::int64_t total() const { return total_; }
    /// ln P[M >= m] (0 for m <= 0, -inf above total()).
    double log_p_value(std::int64_t m) const {
        if (m <= 0) return 0.0;
        if (m > total_) return -std::numeric_limits<double>::infinity();
        return std::min(0.0, std::log(tail_[std::size_t(m)]));
    }
    double log10_p_value(std::int64_t m) const { return log_p_value(m) / std::log(10.0); }
    /// The smallest m with ln P[M >= m] <= la (total() + 1 when no score is enough); la <= 0.
    std::int64_t threshold_for_log_level(double la) const {
        SGF_CHECK(la <= 0 && !std::isnan(la), ArgumentError, "weighted threshold: log level must be <= 0, got {}", la);
        std::int64_t lo = 0, hi = total_ + 1;  // the tail falls as m grows: binary search as threshold_for_log_level(n, la)
        while (lo < hi) {
            const std::int64_t mid = lo + (hi - lo) / 2;
            if (log_p_value(mid) <= la) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }
    /// The threshold for a family-wise level alpha over a registry of N fingerprints (Bonferroni).
    std::int64_t family_threshold(double alpha, std::int64_t registry_size, std::string_view what_alpha = "weighted threshold: alpha") const {
        const double la = detail::log_alpha(alpha, what_alpha);
        return threshold_for_log_level(la - std::log(detail::tests_of(registry_size)));
    }

private:
    int n_ = 0;
    std::int64_t total_ = 0;
    std::vector<double> tail_;
};

}  // namespace sgf::stats
