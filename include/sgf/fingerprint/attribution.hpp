// Attribution of a decoded fingerprint to the issued ones (algorithm.md 6, docs/verification.md).
// A flat matcher keeps all registered codes contiguously and scans them with popcount, keeping the
// best and runner-up matches. Two scores (AttributionRule::score):
//   bits      the paper's: m = number of matching bits, null Bin(n, 1/2)
//   weighted  each bit weighs q_i = min(round(4 |logit_i|), 15) (confidence_weights): m = sum of q_i
//             over the matching bits, null: the exact distribution of stats::WeightedNull
// Decision with family-wise level alpha over N entries:
//   m* = the smallest score whose null tail is <= alpha / N
//   best < m*                                                   -> not_fingerprinted
//   runner-up >= m*  or  best - runner-up < min_margin bits'
//                        worth of score (min_margin * sum q / n) -> inconclusive
//   otherwise                                                   -> attributed
// With every weight equal the two scores make the same decision.
#pragma once

#include <sgf/fingerprint/fingerprint.hpp>
#include <sgf/fingerprint/statistics.hpp>

#include <bit>
#include <cmath>
#include <span>
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

/// What a match is scored by: the number of matching bits (the paper's test), or matching bits
/// weighted by how confidently the decoder read each one (same null hypothesis, exact p-values; more
/// images pass at the same false-positive rate, docs/verification.md "The weighted score").
enum class Score { bits, weighted };
inline const char* score_name(Score s) { return s == Score::bits ? "bits" : "weighted"; }
inline Score parse_score(std::string_view s) {
    if (s == "bits") return Score::bits;
    if (s == "weighted") return Score::weighted;
    SGF_THROW(ArgumentError, "score '{}': expected 'bits' (count matching bits) or 'weighted' (weigh each bit by the decoder's confidence)", s);
}

struct AttributionRule {
    double alpha = 1e-6;  ///< family-wise false-positive rate
    int min_margin = 8;   ///< bits between best and runner-up needed to name one entry (weighted: bits' worth of score)
    /// How matches are scored when the decoder's logits are given (Matcher::attribute with logits);
    /// a fingerprint alone carries no confidences and is always scored by its bits.
    Score score = Score::weighted;
};

/// The weight of each bit in the weighted score: q_i = min(round(4 |logit_i|), 15), a quarter-logit
/// scale capped at 3.75. A logit of 0 (no idea) weighs nothing; a bit read at logit 3.75 or more
/// (probability about 0.98 of being right, were the logits calibrated) weighs 15. The cap and the
/// scale were chosen on the default models (docs/verification.md); the test is exact for any weights.
inline constexpr int kMaxConfidenceWeight = 15;
inline std::vector<std::uint8_t> confidence_weights(std::span<const float> logits) {
    std::vector<std::uint8_t> q(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) {
        SGF_CHECK(std::isfinite(logits[i]), ArgumentError, "confidence weights: logit {} is not finite ({})", i, logits[i]);
        q[i] = std::uint8_t(std::min<double>(std::round(4.0 * std::fabs(double(logits[i]))), kMaxConfidenceWeight));
    }
    return q;
}

/// The score actually used for `bits`-bit fingerprints when `requested` is asked for: the weighted
/// score's exact null distribution is computed for at most stats::WeightedNull::kMaxBits bits, so
/// longer fingerprints are scored by their bits (Attribution::score and ClaimTest::score say which).
inline Score effective_score(Score requested, int bits) {
    return requested == Score::weighted && bits <= stats::WeightedNull::kMaxBits ? Score::weighted : Score::bits;
}

namespace detail {
/// The decoder's output must be one logit per bit, with bit i = (logit i > 0).
inline void check_logits(const Fingerprint& decoded, std::span<const float> logits, std::string_view who) {
    SGF_CHECK(std::int64_t(logits.size()) == decoded.bits(), ArgumentError, "{}: {} logits for a {}-bit decoded fingerprint", who,
              logits.size(), decoded.bits());
    for (std::size_t i = 0; i < logits.size(); ++i)
        SGF_CHECK(decoded.bit(int(i)) == (logits[i] > 0), ArgumentError, "{}: bit {} of the decoded fingerprint is not the sign of its logit ({})",
                  who, i, logits[i]);
}
/// The weights' binary digits as bit planes over `words` 64-bit words: plane p holds the bits whose
/// weight has binary digit p set, so the weight of the bits where two codes differ is
/// sum_p 2^p popcount((a ^ b) & plane_p), 64 bits at a time.
struct WeightPlanes {
    int planes = 0;
    std::size_t words = 0;
    std::vector<std::uint64_t> bits;  ///< planes x words, plane-major
    WeightPlanes(const std::vector<std::uint8_t>& weight, std::size_t words_) : words(words_) {
        for (const std::uint8_t w : weight) planes = std::max(planes, int(std::bit_width(unsigned(w))));
        bits.assign(std::size_t(planes) * words, 0);
        for (std::size_t i = 0; i < weight.size(); ++i)
            for (int p = 0; p < planes; ++p)
                if ((weight[i] >> p) & 1u) bits[std::size_t(p) * words + i / 64] |= std::uint64_t(1) << (i % 64);
    }
    /// the weight of the bits where `a` and `b` (words() words each) differ
    std::int64_t mismatch(const std::uint64_t* a, const std::uint64_t* b) const {
        std::int64_t d = 0;
        for (std::size_t w = 0; w < words; ++w) {
            const std::uint64_t x = a[w] ^ b[w];
            for (int p = 0; p < planes; ++p) d += std::int64_t(std::popcount(x & bits[std::size_t(p) * words + w])) << p;
        }
        return d;
    }
};
/// sum of the weights q_i over the bits where `code` and `decoded` agree
inline std::int64_t weighted_score(const Fingerprint& code, const Fingerprint& decoded, const std::vector<std::uint8_t>& q) {
    std::int64_t s = 0;
    for (int i = 0; i < code.bits(); ++i) s += code.bit(i) == decoded.bit(i) ? q[std::size_t(i)] : 0;
    return s;
}
}  // namespace detail

struct Attribution {
    Outcome outcome = Outcome::not_fingerprinted;
    std::int64_t best_index = -1, runner_up_index = -1;
    std::string best_label, runner_up_label;
    int best_matching = 0, runner_up_matching = 0, margin = 0;
    int threshold = 0;           ///< k*: the bit count's threshold (also reported with the weighted score)
    int bits = 0;
    Score score = Score::bits;   ///< the score that decided
    /// The deciding score of the best and runner-up entries, its maximum (n for bits, sum of the
    /// weights for weighted) and its threshold m* (k* for bits). p-values below are of best_score.
    std::int64_t best_score = 0, runner_up_score = 0, score_total = 0, score_threshold = 0;
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

/// One claim, "the copy carrying `claimed` made this image", tested alone at level alpha (one
/// comparison: no Bonferroni). With Score::bits the score is the matching bit count, otherwise the
/// confidence-weighted score of the bits that match `claimed` (effective_score decides; the logits
/// may be empty only when the bit count is used).
struct ClaimTest {
    Score score = Score::bits;
    int matching_bits = 0, bits = 0;
    std::int64_t score_value = 0, score_total = 0, score_threshold = 0;
    double log10_p = 0;
    bool match = false;  ///< score_value >= score_threshold
};
inline ClaimTest test_claim(const Fingerprint& claimed, const Fingerprint& decoded, std::span<const float> logits, double alpha, Score score,
                            std::string_view who = "claim") {
    SGF_CHECK(decoded.bits() == claimed.bits(), ArgumentError, "{}: the decoded fingerprint has {} bits, the claimed one {}", who,
              decoded.bits(), claimed.bits());
    ClaimTest t;
    t.score = score = effective_score(score, claimed.bits());
    t.bits = claimed.bits();
    t.matching_bits = claimed.matching_bits(decoded);
    const double la = stats::detail::log_alpha(alpha, fmt::format("{}: alpha", who));
    if (score == Score::bits) {
        t.score_value = t.matching_bits;
        t.score_total = t.bits;
        t.score_threshold = stats::threshold_for_log_level(t.bits, la);
        t.log10_p = stats::log10_p_value(t.matching_bits, t.bits);
    } else {
        detail::check_logits(decoded, logits, who);
        const auto q = confidence_weights(logits);
        const stats::WeightedNull null(q);
        t.score_value = detail::weighted_score(claimed, decoded, q);
        t.score_total = null.total();
        t.score_threshold = null.threshold_for_log_level(la);
        t.log10_p = null.log10_p_value(t.score_value);
    }
    t.match = t.score_value >= t.score_threshold;
    return t;
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
        const std::uint64_t* qw = q.words().data();
        const std::size_t W = std::size_t(words_per_);
        std::int64_t d1 = 0, d2 = 0;
        best_two_blocked(
            [&](const std::uint64_t* c, std::size_t n, std::int32_t* dist) {
                if (W == 2) {  // 128-bit codes: a fixed-size loop the compiler vectorises
                    const std::uint64_t q0 = qw[0], q1 = qw[1];
                    for (std::size_t i = 0; i < n; ++i) dist[i] = std::popcount(c[2 * i] ^ q0) + std::popcount(c[2 * i + 1] ^ q1);
                    return;
                }
                for (std::size_t i = 0; i < n; ++i) dist[i] = hamming(c + i * W, qw);
            },
            bits_, i1, d1, i2, d2);
        m1 = i1 >= 0 ? bits_ - int(d1) : 0;
        m2 = i2 >= 0 ? bits_ - int(d2) : 0;
    }

    /// The two entries of least distance (ties: lower index first). `distances(codes, n, dist)` fills
    /// dist[0..n) for the n entries whose codes start at `codes`; it is called on blocks of entries,
    /// so that it is a branch-free loop the compiler can vectorise, and the best two are then picked
    /// from the block. `worst` is above every distance (i1, i2 = -1 when there is no such entry).
    template <class Distances>
    void best_two_blocked(Distances&& distances, std::int64_t worst, std::int64_t& i1, std::int64_t& d1, std::int64_t& i2,
                          std::int64_t& d2) const {
        constexpr std::size_t kBlock = 256;
        std::int32_t dist[kBlock];
        i1 = i2 = -1;
        d1 = d2 = worst + 1;
        const std::size_t W = std::size_t(words_per_), N = labels_.size();
        for (std::size_t start = 0; start < N; start += kBlock) {
            const std::size_t n = std::min(kBlock, N - start);
            distances(codes_.data() + start * W, n, dist);
            for (std::size_t i = 0; i < n; ++i) {
                const std::int64_t d = dist[i];
                if (d >= d2) continue;  // most entries are far
                if (d < d1) {
                    d2 = d1;
                    i2 = i1;
                    d1 = d;
                    i1 = std::int64_t(start + i);
                } else {
                    d2 = d;
                    i2 = std::int64_t(start + i);
                }
            }
        }
    }

public:
    /// `who` starts the error messages: "attribute" here, the registry's file name from Registry.
    Attribution attribute(const Fingerprint& decoded, const AttributionRule& rule = {}, std::string_view who = "attribute") const {
        Attribution a = start(decoded, rule, who);
        a.score_total = bits_;
        a.score_threshold = a.threshold;
        if (size() == 0) return a;
        scan(decoded, a.best_index, a.best_matching, a.runner_up_index, a.runner_up_matching);
        a.best_score = a.best_matching;
        a.runner_up_score = a.runner_up_matching;
        a.log10_p = stats::log10_p_value(a.best_matching, bits_);
        decide(a, rule);
        return a;
    }

    /// Attribution from the decoder's output: the hard bits `decoded` and the logits they came from
    /// (one per bit). The weighted score (rule.score, see effective_score) scores each entry by the
    /// confidence weights of the bits it matches; the bit count ignores the logits. Best and runner-up
    /// are chosen by the deciding score, so the bit `margin` of a weighted attribution can be negative.
    Attribution attribute(const Fingerprint& decoded, std::span<const float> logits, const AttributionRule& rule,
                          std::string_view who = "attribute") const {
        detail::check_logits(decoded, logits, who);
        if (effective_score(rule.score, decoded.bits()) == Score::bits) return attribute(decoded, rule, who);
        Attribution a = start(decoded, rule, who);
        a.score = Score::weighted;
        const auto q = confidence_weights(logits);
        const stats::WeightedNull null(q);
        a.score_total = null.total();
        a.score_threshold = null.family_threshold(rule.alpha, size(), "attribute: AttributionRule::alpha (the family-wise false-positive rate)");
        if (size() == 0) return a;
        scan_weighted(decoded, q, a.score_total, a.best_index, a.best_score, a.runner_up_index, a.runner_up_score);
        a.best_matching = matching_bits(decoded, a.best_index);
        if (a.runner_up_index >= 0) a.runner_up_matching = matching_bits(decoded, a.runner_up_index);
        a.log10_p = null.log10_p_value(a.best_score);
        decide(a, rule);
        return a;
    }

private:
    /// The fields every attribution has before the scan: checks, bits, registry size, k*.
    Attribution start(const Fingerprint& decoded, const AttributionRule& rule, std::string_view who) const {
        Attribution a;
        a.bits = bits_;
        a.registry_size = size();
        SGF_CHECK(decoded.bits() == bits_, ArgumentError,
                  "{}: the decoded fingerprint has {} bits, the registry holds {}-bit fingerprints (a decoder of another model?)", who,
                  decoded.bits(), bits_);  // also for an empty registry: a mistake, not "not fingerprinted"
        a.threshold = stats::family_bit_threshold(bits_, rule.alpha, size(),
                                                  "attribute: AttributionRule::alpha (the family-wise false-positive rate)");
        return a;
    }
    /// Labels, margin, family p-value and outcome from the scores of a non-empty registry's scan.
    void decide(Attribution& a, const AttributionRule& rule) const {
        a.best_label = label(a.best_index);
        if (a.runner_up_index >= 0) a.runner_up_label = label(a.runner_up_index);
        a.margin = a.best_matching - a.runner_up_matching;
        a.log10_family_p = stats::log_family_p(a.log10_p * std::log(10.0), size()) / std::log(10.0);
        a.detected = a.best_score >= a.score_threshold;
        // the margin in bits' worth of score: min_margin * score_total / n (for the bit count, min_margin
        // bits), compared without division
        const bool close = a.runner_up_index >= 0 &&
                           (a.best_score - a.runner_up_score) * std::int64_t(bits_) < std::int64_t(rule.min_margin) * a.score_total;
        if (!a.detected) a.outcome = Outcome::not_fingerprinted;
        else if ((a.runner_up_index >= 0 && a.runner_up_score >= a.score_threshold) || close) a.outcome = Outcome::inconclusive;
        else a.outcome = Outcome::attributed;
    }

    /// Differing bits between one stored code and a query, both words_per_ words long.
    int hamming(const std::uint64_t* code, const std::uint64_t* q) const {
        int d = 0;
        for (int w = 0; w < words_per_; ++w) d += std::popcount(code[w] ^ q[w]);
        return d;
    }
    int matching_bits(const Fingerprint& q, std::int64_t i) const {
        return bits_ - hamming(codes_.data() + std::size_t(i) * std::size_t(words_per_), q.words().data());
    }
    /// Best and runner-up by weighted score: each weight's binary digits as bit planes, so the
    /// weight of the mismatching bits is sum_b 2^b popcount(mismatch & plane_b), 64 bits at a time.
    /// `total` is the sum of the weights (WeightedNull::total()).
    void scan_weighted(const Fingerprint& q, const std::vector<std::uint8_t>& weight, std::int64_t total, std::int64_t& i1, std::int64_t& s1,
                       std::int64_t& i2, std::int64_t& s2) const {
        const std::size_t W = std::size_t(words_per_);
        const detail::WeightPlanes wp(weight, W);
        const int planes = wp.planes;
        const std::vector<std::uint64_t>& plane = wp.bits;
        const std::uint64_t* qw = q.words().data();
        std::uint64_t P[4][2] = {};  // 128-bit codes with weights up to 15 (the usual case): a fixed-size loop
        const bool fixed = W == 2 && planes <= 4;
        if (fixed)
            for (int p = 0; p < planes; ++p)
                for (std::size_t w = 0; w < 2; ++w) P[p][w] = plane[std::size_t(p) * W + w];
        std::int64_t d1 = 0, d2 = 0;
        best_two_blocked(
            [&](const std::uint64_t* c, std::size_t n, std::int32_t* dist) {
                if (fixed) {
                    const std::uint64_t q0 = qw[0], q1 = qw[1];
                    for (std::size_t i = 0; i < n; ++i) {
                        const std::uint64_t x0 = c[2 * i] ^ q0, x1 = c[2 * i + 1] ^ q1;
                        std::int32_t d = 0;
                        for (int p = 0; p < 4; ++p)  // planes above `planes` are zero
                            d += std::int32_t(std::popcount(x0 & P[p][0]) + std::popcount(x1 & P[p][1])) << p;
                        dist[i] = d;
                    }
                    return;
                }
                for (std::size_t i = 0; i < n; ++i)
                    dist[i] = std::int32_t(wp.mismatch(c + i * W, qw));  // at most 255 * 1000 (WeightedNull's limits)
            },
            total, i1, d1, i2, d2);
        s1 = i1 >= 0 ? total - d1 : 0;
        s2 = i2 >= 0 ? total - d2 : 0;
    }

    int bits_, words_per_;
    std::vector<std::uint64_t> codes_;
    std::vector<std::string> labels_;
};

}  // namespace sgf
