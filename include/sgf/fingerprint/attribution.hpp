// Attribution of a decoded fingerprint to the issued ones (algorithm.md 6, docs/verification.md).
// A flat matcher keeps all registered codes contiguously and scans them with popcount, keeping the
// best and runner-up matches. Decision with family-wise level alpha over N entries:
//   k* = bit_threshold(n, alpha / N)
//   best < k*                                           -> not_fingerprinted
//   runner-up >= k*  or  best - runner-up < min_margin  -> inconclusive
//   otherwise                                           -> attributed
#pragma once

#include <sgf/fingerprint/fingerprint.hpp>
#include <sgf/fingerprint/statistics.hpp>

#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace sgf {

enum class Outcome { attributed, not_fingerprinted, inconclusive };
inline const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::attributed: return "attributed";
        case Outcome::not_fingerprinted: return "not_fingerprinted";
        case Outcome::inconclusive: return "inconclusive";
    }
    return "?";
}

struct AttributionRule {
    double alpha = 1e-6;  ///< family-wise false-positive rate
    int min_margin = 8;   ///< bits between best and runner-up needed to name one entry
};

struct Attribution {
    Outcome outcome = Outcome::not_fingerprinted;
    std::int64_t best_index = -1, runner_up_index = -1;
    std::string best_label, runner_up_label;
    int best_matching = 0, runner_up_matching = 0, margin = 0;
    int threshold = 0;           ///< k*
    int bits = 0;
    std::int64_t registry_size = 0;
    double log10_p = 0;          ///< per-comparison p-value of the best match
    double log10_family_p = 0;   ///< Bonferroni over the registry
    bool detected = false;       ///< the best match passes k* (fingerprinted by one of ours)
};

/// An empty string when an image can be attributed at family-wise level `alpha` among
/// `registry_size` fingerprints of `bits` bits; otherwise why it cannot. Even a decode matching all n
/// bits has chance p-value 2^-n, so k* <= n needs alpha / N >= 2^-n, i.e. N <= alpha 2^n (20 bits at
/// alpha 1e-6: one fingerprint; 128 bits: about 3e32). Beyond that k* = n + 1 and every image is
/// "not fingerprinted": correct at that level, but it says nothing, so callers warn (adding the remedy
/// that fits them: a larger alpha, fewer fingerprints, more bits).
inline std::string attribution_capacity_problem(int bits, double alpha, std::int64_t registry_size) {
    const std::int64_t N = std::max<std::int64_t>(registry_size, 1);
    if (stats::family_bit_threshold(bits, alpha, N) <= bits) return {};
    // the largest registry still below the bar: floor(alpha 2^n), at least 0
    const double capacity = std::floor(std::ldexp(alpha, bits));
    return fmt::format(
        "no image can be attributed: with {}-bit fingerprints, alpha {:g} and {} registered fingerprint{}, even a decode "
        "matching all {} bits has a family-wise p-value above alpha (2^-{} > alpha / N = {:.3g}); at this alpha a "
        "{}-bit registry can hold at most {:.0f} fingerprint{}",
        bits, alpha, N, N == 1 ? "" : "s", bits, bits, alpha / double(N), bits, capacity, capacity == 1 ? "" : "s");
}

class Matcher {
public:
    explicit Matcher(int bits = 128) : bits_(Fingerprint::checked_bits(bits)), words_per_((bits + 63) / 64) {}
    int bits() const { return bits_; }
    std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
    void reserve(std::size_t n) {
        codes_.reserve(n * std::size_t(words_per_));
        labels_.reserve(n);
    }
    void add(const Fingerprint& f, std::string label) {
        SGF_CHECK(f.bits() == bits_, ArgumentError, "matcher: fingerprint has {} bits, registry uses {}", f.bits(), bits_);
        codes_.insert(codes_.end(), f.words().begin(), f.words().end());
        labels_.push_back(std::move(label));
    }
    const std::string& label(std::int64_t i) const {
        SGF_CHECK(i >= 0 && i < size(), ArgumentError, "matcher: entry index {} out of range [0, {})", i, size());
        return labels_[std::size_t(i)];
    }

    /// Best and runner-up by matching bits (ties: lower index first).
    void best_two(const Fingerprint& q, std::int64_t& i1, int& m1, std::int64_t& i2, int& m2) const {
        SGF_CHECK(q.bits() == bits_, ArgumentError, "matcher: decoded fingerprint has {} bits, registry uses {}", q.bits(), bits_);
        scan(q, i1, m1, i2, m2);
    }

private:
    /// best_two without the length check (attribute checks it once, with its caller's name).
    void scan(const Fingerprint& q, std::int64_t& i1, int& m1, std::int64_t& i2, int& m2) const {
        i1 = i2 = -1;
        int d1 = bits_ + 1, d2 = bits_ + 1;
        const std::uint64_t* qw = q.words().data();
        const std::size_t W = std::size_t(words_per_), N = labels_.size();
        const std::uint64_t* c = codes_.data();
        for (std::size_t i = 0; i < N; ++i, c += W) {
            int d = 0;
            for (std::size_t w = 0; w < W; ++w) d += std::popcount(c[w] ^ qw[w]);
            if (d < d1) {
                d2 = d1;
                i2 = i1;
                d1 = d;
                i1 = std::int64_t(i);
            } else if (d < d2) {
                d2 = d;
                i2 = std::int64_t(i);
            }
        }
        m1 = i1 >= 0 ? bits_ - d1 : 0;
        m2 = i2 >= 0 ? bits_ - d2 : 0;
    }

public:
    /// `who` starts the error messages: "attribute" here, the registry's file name from Registry.
    Attribution attribute(const Fingerprint& decoded, const AttributionRule& rule = {}, std::string_view who = "attribute") const {
        Attribution a;
        a.bits = bits_;
        a.registry_size = size();
        SGF_CHECK(decoded.bits() == bits_, ArgumentError,
                  "{}: the decoded fingerprint has {} bits, the registry holds {}-bit fingerprints (a decoder of another model?)", who,
                  decoded.bits(), bits_);  // also for an empty registry: a mistake, not "not fingerprinted"
        a.threshold = stats::family_bit_threshold(bits_, rule.alpha, size(),
                                                  "attribute: AttributionRule::alpha (the family-wise false-positive rate)");
        if (size() == 0) return a;
        scan(decoded, a.best_index, a.best_matching, a.runner_up_index, a.runner_up_matching);
        a.best_label = label(a.best_index);
        if (a.runner_up_index >= 0) a.runner_up_label = label(a.runner_up_index);
        a.margin = a.best_matching - a.runner_up_matching;
        a.log10_p = stats::log10_p_value(a.best_matching, bits_);
        a.log10_family_p = stats::log_family_p_value(a.best_matching, bits_, size()) / std::log(10.0);
        a.detected = a.best_matching >= a.threshold;
        if (!a.detected) a.outcome = Outcome::not_fingerprinted;
        else if ((a.runner_up_index >= 0 && a.runner_up_matching >= a.threshold) ||
                 (a.runner_up_index >= 0 && a.margin < rule.min_margin))
            a.outcome = Outcome::inconclusive;
        else a.outcome = Outcome::attributed;
        return a;
    }

private:
    int bits_, words_per_;
    std::vector<std::uint64_t> codes_;
    std::vector<std::string> labels_;
};

}  // namespace sgf
