// The weighted score (docs/verification.md "The weighted score"): its exact null distribution,
// the confidence weights, the weighted matcher scan and the decisions it leads to.
#include <sgf/fingerprint.hpp>

#include <gtest/gtest.h>
#include "registered_users.hpp"

#include <cmath>
#include <random>

namespace sgf {
namespace {

// P[M >= m] by enumerating all 2^n match patterns (each equally likely under the null).
std::vector<double> brute_force_tail(const std::vector<std::uint8_t>& q) {
    const int n = int(q.size());
    std::int64_t total = 0;
    for (auto w : q) total += w;
    std::vector<double> count(std::size_t(total + 2), 0.0);
    for (std::uint32_t pattern = 0; pattern < (1u << n); ++pattern) {
        std::int64_t m = 0;
        for (int i = 0; i < n; ++i) m += ((pattern >> i) & 1u) ? q[std::size_t(i)] : 0;
        count[std::size_t(m)] += 1;
    }
    std::vector<double> tail(count.size(), 0.0);
    for (std::int64_t m = total; m >= 0; --m) tail[std::size_t(m)] = tail[std::size_t(m + 1)] + count[std::size_t(m)] / double(1u << n);
    return tail;
}

TEST(WeightedScore, NullDistributionMatchesEnumeration) {
    std::mt19937 rng(5);
    for (int trial = 0; trial < 6; ++trial) {
        std::vector<std::uint8_t> q(14);
        for (auto& w : q) w = std::uint8_t(rng() % 16);
        q[3] = 0;  // a bit read with no confidence counts for nothing
        const stats::WeightedNull null(q);
        const auto tail = brute_force_tail(q);
        ASSERT_EQ(null.total() + 2, std::int64_t(tail.size()));
        for (std::int64_t m = 0; m <= null.total() + 1; ++m) {
            const double want = tail[std::size_t(m)];
            const double got = std::exp(null.log_p_value(m));
            if (want == 0) EXPECT_EQ(got, 0.0) << "m=" << m;
            else EXPECT_NEAR(got / want, 1.0, 1e-12) << "trial " << trial << " m=" << m;
        }
        // threshold: the smallest m whose tail is <= the level
        for (double level : {0.5, 0.1, 0.01, 1e-3}) {
            std::int64_t want = null.total() + 1;
            for (std::int64_t m = 0; m <= null.total(); ++m)
                if (tail[std::size_t(m)] <= level) {
                    want = m;
                    break;
                }
            EXPECT_EQ(null.threshold_for_log_level(std::log(level)), want) << "level " << level;
        }
    }
}

TEST(WeightedScore, EqualWeightsGiveTheBinomialTestOfTheBitCount) {
    for (int w : {1, 4, 15}) {
        const std::vector<std::uint8_t> q(128, std::uint8_t(w));
        const stats::WeightedNull null(q);
        EXPECT_EQ(null.total(), 128 * w);
        for (int k = 0; k <= 128; ++k) EXPECT_NEAR(null.log_p_value(std::int64_t(k) * w), stats::log_p_value(k, 128), 1e-9) << k;
        // scores are multiples of w: any score above w (k* - 1) has the tail of k* bits
        for (std::int64_t N : {1, 100, 1000000})
            EXPECT_EQ(null.family_threshold(1e-6, N), std::int64_t(w) * (stats::family_bit_threshold(128, 1e-6, N) - 1) + 1) << N;
    }
    // 2^-128 is still represented: a code matching every bit of an all-ones weighting
    const stats::WeightedNull ones(std::vector<std::uint8_t>(128, 1));
    EXPECT_NEAR(ones.log_p_value(128), -128 * std::log(2.0), 1e-9);
}

TEST(WeightedScore, LimitsAreErrors) {
    EXPECT_THROW(stats::WeightedNull(std::vector<std::uint8_t>{}), ArgumentError);
    EXPECT_THROW(stats::WeightedNull(std::vector<std::uint8_t>(stats::WeightedNull::kMaxBits + 1, 1)), ArgumentError);
    const stats::WeightedNull big(std::vector<std::uint8_t>(stats::WeightedNull::kMaxBits, 15));
    EXPECT_NEAR(big.log_p_value(big.total()), -stats::WeightedNull::kMaxBits * std::log(2.0), 1e-6);  // 2^-1000 is a normal double
    const stats::WeightedNull zero(std::vector<std::uint8_t>(8, 0));  // nothing read: nothing can pass
    EXPECT_EQ(zero.total(), 0);
    EXPECT_EQ(zero.threshold_for_log_level(std::log(0.5)), 1);
    EXPECT_THROW((void)zero.threshold_for_log_level(0.5), ArgumentError);
    EXPECT_THROW((void)zero.family_threshold(0.0, 1), ArgumentError);
}

TEST(WeightedScore, ConfidenceWeightsAreQuarterLogitsCappedAt15) {
    const std::vector<float> l = {0.f, 0.1f, -0.125f, 0.13f, 1.f, -1.f, 2.3f, 3.7f, 3.75f, 100.f, -1e30f};
    const auto q = confidence_weights(l);
    const std::vector<std::uint8_t> want = {0, 0, 1, 1, 4, 4, 9, 15, 15, 15, 15};
    EXPECT_EQ(q, want);
    const std::vector<float> bad = {1.f, std::nanf("")};
    EXPECT_THROW((void)confidence_weights(bad), ArgumentError);
    EXPECT_EQ(parse_score("bits"), Score::bits);
    EXPECT_EQ(parse_score("weighted"), Score::weighted);
    EXPECT_THROW((void)parse_score("soft"), ArgumentError);
}

// random logits whose signs give `truth` with the given bits flipped
std::vector<float> logits_for(const Fingerprint& truth, std::mt19937& rng, double sd = 2.0) {
    std::normal_distribution<double> g(0, sd);
    std::vector<float> l(std::size_t(truth.bits()));
    for (int i = 0; i < truth.bits(); ++i) {
        float v = float(std::fabs(g(rng))) + 0.01f;
        l[std::size_t(i)] = truth.bit(i) ? v : -v;
    }
    return l;
}

TEST(WeightedScore, MatcherScanFindsTheBestTwoByWeightedScore) {
    for (int bits : {128, 100, 200}) {
        Matcher m(bits);
        std::vector<Fingerprint> reg;
        for (int i = 0; i < 300; ++i) {
            reg.push_back(Fingerprint::from_seed(bits, 77 + i));
            m.add(reg.back(), "u" + std::to_string(i));
        }
        m.add(reg[10], "dup");  // a tie: the earlier entry wins
        std::mt19937 rng{std::uint32_t(bits)};
        for (int t = 0; t < 20; ++t) {
            Fingerprint truth = reg[std::size_t(rng() % 300)];
            if (t == 0) truth = reg[10];
            for (int f = 0; f < 40; ++f) {
                const int p = int(rng() % unsigned(bits));
                truth.set_bit(p, !truth.bit(p));
            }
            const auto l = logits_for(truth, rng);
            const Fingerprint dec = Fingerprint::from_logits(l);
            const auto q = confidence_weights(l);
            // brute force: the two highest weighted scores, ties to the lower index
            std::vector<std::pair<std::int64_t, std::int64_t>> scores;  // (-score, index)
            for (std::int64_t i = 0; i < m.size(); ++i) {
                const Fingerprint& c = i < 300 ? reg[std::size_t(i)] : reg[10];
                std::int64_t s = 0;
                for (int b = 0; b < bits; ++b) s += c.bit(b) == dec.bit(b) ? q[std::size_t(b)] : 0;
                scores.push_back({-s, i});
            }
            std::sort(scores.begin(), scores.end());
            const auto a = m.attribute(dec, l, AttributionRule{});
            EXPECT_EQ(a.score, Score::weighted);
            EXPECT_EQ(a.best_index, scores[0].second);
            EXPECT_EQ(a.best_score, -scores[0].first);
            EXPECT_EQ(a.runner_up_index, scores[1].second);
            EXPECT_EQ(a.runner_up_score, -scores[1].first);
            const Fingerprint& best_code = a.best_index < 300 ? reg[std::size_t(a.best_index)] : reg[10];
            EXPECT_EQ(a.best_matching, bits - dec.hamming(best_code));
            const stats::WeightedNull null(q);
            EXPECT_EQ(a.score_total, null.total());
            EXPECT_EQ(a.score_threshold, null.family_threshold(1e-6, m.size()));
            EXPECT_NEAR(a.log10_p, null.log10_p_value(a.best_score), 1e-12);
            if (t == 0) {
                EXPECT_EQ(a.best_index, 10);
                EXPECT_EQ(a.runner_up_index, 300);  // the duplicate: the same score, the later entry second
                EXPECT_EQ(a.best_score, a.runner_up_score);
            }
        }
    }
}

TEST(WeightedScore, ATieBetweenTwoPassingEntriesIsInconclusive) {
    Matcher m(128);
    const Fingerprint a = Fingerprint::from_seed(128, 3);
    m.add(Fingerprint::from_seed(128, 4), "other");
    m.add(a, "first");
    m.add(a, "again");
    std::mt19937 rng(4);
    const auto l = logits_for(a, rng);
    const auto r = m.attribute(Fingerprint::from_logits(l), l, AttributionRule{});
    EXPECT_TRUE(r.detected);
    EXPECT_EQ(r.best_label, "first");
    EXPECT_EQ(r.runner_up_label, "again");
    EXPECT_EQ(r.outcome, Outcome::inconclusive);
    // one entry: no runner-up, so the margin rule does not apply
    Matcher one(128);
    one.add(a, "only");
    const auto o = one.attribute(Fingerprint::from_logits(l), l, AttributionRule{});
    EXPECT_EQ(o.outcome, Outcome::attributed);
    EXPECT_EQ(o.runner_up_index, -1);
    // an empty registry: nothing to find, the threshold still reported
    const auto e = Matcher(128).attribute(Fingerprint::from_logits(l), l, AttributionRule{});
    EXPECT_EQ(e.outcome, Outcome::not_fingerprinted);
    EXPECT_EQ(e.best_index, -1);
    EXPECT_EQ(e.score_total, stats::WeightedNull(confidence_weights(l)).total());
    // logits all (close to) zero: no bit weighs anything, nothing passes
    std::vector<float> flat(128);
    for (int i = 0; i < 128; ++i) flat[std::size_t(i)] = a.bit(i) ? 0.1f : -0.1f;
    const auto z = m.attribute(a, flat, AttributionRule{});
    EXPECT_EQ(z.score_total, 0);
    EXPECT_EQ(z.outcome, Outcome::not_fingerprinted);
    EXPECT_EQ(z.best_index, 0);  // every entry scores 0: the first one is "best"
}

TEST(WeightedScore, FingerprintsOverTheLimitAreScoredByTheirBits) {
    const int n = stats::WeightedNull::kMaxBits + 24;
    EXPECT_EQ(effective_score(Score::weighted, n), Score::bits);
    EXPECT_EQ(effective_score(Score::weighted, stats::WeightedNull::kMaxBits), Score::weighted);
    EXPECT_EQ(effective_score(Score::bits, 128), Score::bits);
    Matcher m(n);
    const Fingerprint c = Fingerprint::from_seed(n, 1);
    m.add(c, "c");
    std::mt19937 rng(2);
    const auto l = logits_for(c, rng);
    const auto a = m.attribute(c, l, AttributionRule{});
    EXPECT_EQ(a.score, Score::bits);
    EXPECT_EQ(a.best_score, n);
    EXPECT_EQ(a.outcome, Outcome::attributed);
    const auto t = test_claim(c, c, l, 1e-6, Score::weighted);
    EXPECT_EQ(t.score, Score::bits);
    EXPECT_TRUE(t.match);
}

TEST(WeightedScore, OneClaimIsTestedAgainstItsOwnNull) {
    std::mt19937 rng(6);
    const Fingerprint claimed = Fingerprint::from_seed(128, 8);
    Fingerprint dec = claimed;
    std::vector<float> l = logits_for(claimed, rng);
    for (int i = 0; i < 40; ++i) {  // 40 bits read wrong, with little confidence
        dec.set_bit(i, !dec.bit(i));
        l[std::size_t(i)] = dec.bit(i) ? 0.2f : -0.2f;
    }
    const auto q = confidence_weights(l);
    const stats::WeightedNull null(q);
    const auto w = test_claim(claimed, dec, l, 1e-6, Score::weighted);
    EXPECT_EQ(w.score, Score::weighted);
    EXPECT_EQ(w.matching_bits, 88);
    std::int64_t want = 0;
    for (int i = 40; i < 128; ++i) want += q[std::size_t(i)];
    EXPECT_EQ(w.score_value, want);
    EXPECT_EQ(w.score_total, null.total());
    EXPECT_EQ(w.score_threshold, null.threshold_for_log_level(std::log(1e-6)));
    EXPECT_NEAR(w.log10_p, null.log10_p_value(want), 1e-12);
    EXPECT_TRUE(w.match);
    const auto b = test_claim(claimed, dec, l, 1e-6, Score::bits);
    EXPECT_EQ(b.score_value, 88);
    EXPECT_EQ(b.score_threshold, stats::bit_threshold(128, 1e-6));  // 92
    EXPECT_FALSE(b.match);
    EXPECT_EQ(test_claim(claimed, dec, {}, 1e-6, Score::bits).score_value, 88);  // the count needs no logits
    EXPECT_THROW((void)test_claim(claimed, dec, {}, 1e-6, Score::weighted), ArgumentError);
    l[50] = -l[50];  // a logit whose sign is not the decoded bit
    EXPECT_THROW((void)test_claim(claimed, dec, l, 1e-6, Score::weighted), ArgumentError);
    EXPECT_THROW((void)test_claim(claimed, Fingerprint::from_seed(64, 1), {}, 1e-6, Score::bits), ArgumentError);
    EXPECT_THROW((void)test_claim(claimed, dec, {}, 0.0, Score::bits), ArgumentError);
}

TEST(WeightedScore, EqualConfidencesDecideAsTheBitCount) {
    auto [m, fs] = test::registered_users(100, 500);
    Fingerprint other = fs[3];  // a registered code 4 bits from fs[3]: decodes between them are inconclusive
    for (int i : {0, 1, 2, 3}) other.set_bit(i, !other.bit(i));
    m.add(other, "near3");
    std::mt19937 rng(9);
    for (int flips : {0, 10, 20, 30, 33, 40, 64}) {
        for (int who : {3, 42}) {
            Fingerprint dec = fs[std::size_t(who)];
            for (int f = 0; f < flips; ++f) dec.set_bit(4 + f, !dec.bit(4 + f));
            if (who == 3) dec.set_bit(0, !dec.bit(0));
            std::vector<float> l(128);
            for (int i = 0; i < 128; ++i) l[std::size_t(i)] = dec.bit(i) ? 1.0f : -1.0f;  // weight 4 each
            for (double alpha : {1e-6, 1e-2}) {
                const AttributionRule rule{alpha, 8, Score::weighted};
                const auto w = m.attribute(dec, l, rule);
                const auto b = m.attribute(dec, rule);  // a fingerprint alone: the bit count
                EXPECT_EQ(b.score, Score::bits);
                EXPECT_EQ(w.outcome, b.outcome) << flips << " " << who << " " << alpha;
                EXPECT_EQ(w.best_index, b.best_index);
                EXPECT_EQ(w.detected, b.detected);
                EXPECT_EQ(w.score_threshold, 4 * (b.threshold - 1) + 1);
                EXPECT_EQ(w.best_score, 4 * b.best_matching);
                EXPECT_EQ(w.best_matching, b.best_matching);
                EXPECT_NEAR(w.log10_p, b.log10_p, 1e-9);
                EXPECT_NEAR(w.log10_family_p, b.log10_family_p, 1e-9);
                // rule.score = bits ignores the logits
                const auto bb = m.attribute(dec, l, AttributionRule{alpha, 8, Score::bits});
                EXPECT_EQ(bb.score, Score::bits);
                EXPECT_EQ(bb.outcome, b.outcome);
            }
        }
    }
}

TEST(WeightedScore, ConfidentBitsCarryAnImageTheBitCountMisses) {
    auto [m, fs] = test::registered_users(100, 900);
    // 89 of 128 bits right (k* = 96 at alpha 1e-6 over 100): the 39 wrong ones read with little confidence
    const Fingerprint& truth = fs[17];
    Fingerprint dec = truth;
    std::vector<float> l(128);
    for (int i = 0; i < 128; ++i) {
        const bool flip = i % 10 < 3;  // 13 x 3 = 39 positions
        dec.set_bit(i, flip ? !truth.bit(i) : truth.bit(i));
        l[std::size_t(i)] = (dec.bit(i) ? 1.f : -1.f) * (flip ? 0.25f : 3.f);
    }
    const auto b = m.attribute(dec, l, AttributionRule{1e-6, 8, Score::bits});
    EXPECT_EQ(b.best_matching, 128 - 39);
    EXPECT_EQ(b.outcome, Outcome::not_fingerprinted);
    const auto w = m.attribute(dec, l, AttributionRule{});
    EXPECT_EQ(w.outcome, Outcome::attributed);
    EXPECT_EQ(w.best_label, "user17");
    EXPECT_EQ(w.best_matching, 89);
    EXPECT_LT(w.log10_family_p, -6);
    // the same bits read with the confidences the other way round are not evidence
    for (int i = 0; i < 128; ++i) l[std::size_t(i)] = (dec.bit(i) ? 1.f : -1.f) * (i % 10 < 3 ? 3.f : 0.25f);
    EXPECT_EQ(m.attribute(dec, l, AttributionRule{}).outcome, Outcome::not_fingerprinted);
}

TEST(WeightedScore, FalsePositiveRateIsTheStatedOne) {
    // One image's reading against many independent uniform codes: the fraction whose score reaches
    // the threshold for level a is the exact tail at that threshold (<= a), up to sampling error.
    std::mt19937 rng(123);
    const Fingerprint truth = Fingerprint::from_seed(128, 1);
    const auto l = logits_for(truth, rng, 1.5);
    const Fingerprint dec = Fingerprint::from_logits(l);
    const auto q = confidence_weights(l);
    const stats::WeightedNull null(q);
    for (double a : {0.05, 0.01}) {
        const std::int64_t t = null.threshold_for_log_level(std::log(a));
        const double exact = std::exp(null.log_p_value(t));
        EXPECT_LE(exact, a);
        const int trials = 40000;
        int pass = 0;
        for (int k = 0; k < trials; ++k) {
            const Fingerprint c = Fingerprint::from_seed(128, 1000000 + std::uint64_t(k));
            std::int64_t s = 0;
            for (int b = 0; b < 128; ++b) s += c.bit(b) == dec.bit(b) ? q[std::size_t(b)] : 0;
            pass += s >= t;
        }
        const double rate = double(pass) / trials, se = std::sqrt(exact * (1 - exact) / trials);
        EXPECT_NEAR(rate, exact, 5 * se) << "level " << a;
    }
}

TEST(WeightedScore, LogitsMustBeTheDecodedOnes) {
    Matcher m(128);
    m.add(Fingerprint::from_seed(128, 1), "a");
    const Fingerprint dec = Fingerprint::from_seed(128, 2);
    std::vector<float> l(128);
    for (int i = 0; i < 128; ++i) l[std::size_t(i)] = dec.bit(i) ? 2.f : -2.f;
    EXPECT_NO_THROW((void)m.attribute(dec, l, AttributionRule{}));
    std::vector<float> short_l(l.begin(), l.end() - 1);
    EXPECT_THROW((void)m.attribute(dec, short_l, AttributionRule{}), ArgumentError);
    l[5] = -l[5];
    try {
        (void)m.attribute(dec, l, AttributionRule{}, "reg.db");
        ADD_FAILURE() << "no error";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("reg.db: bit 5 of the decoded fingerprint is not the sign of its logit"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace sgf
