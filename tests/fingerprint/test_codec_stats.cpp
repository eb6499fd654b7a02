// Fingerprint codec, binomial statistics and the attribution rule.
#include <sgf/fingerprint.hpp>

#include <gtest/gtest.h>
#include "registered_users.hpp"

#include <cmath>
#include <limits>

namespace sgf {
namespace {

TEST(Codec, HexRoundTripAndBitOrder) {
    Fingerprint f(128);
    f.set_bit(0, true);
    f.set_bit(127, true);
    EXPECT_EQ(f.hex(), "80000000000000000000000000000001");
    EXPECT_EQ(Fingerprint::parse(f.hex()), f);
    EXPECT_EQ(Fingerprint::parse("0x" + f.hex()), f);
    const Fingerprint r = Fingerprint::from_seed(128, 42);
    EXPECT_EQ(Fingerprint::parse(r.hex()), r);
    std::string upper = r.hex();
    for (auto& c : upper) c = char(std::toupper(c));
    EXPECT_EQ(Fingerprint::parse(upper), r);
    EXPECT_NE(Fingerprint::from_seed(128, 42), Fingerprint::from_seed(128, 43));
    EXPECT_NE(Fingerprint::random(128), Fingerprint::random(128));
    const auto v = r.to_floats();
    for (int i = 0; i < 128; ++i) EXPECT_EQ(v[i], r.bit(i) ? 1.0f : 0.0f);
    std::vector<float> logits(10, -1.0f);
    logits[3] = 0.5f;
    const Fingerprint d = Fingerprint::from_logits(logits);
    EXPECT_EQ(d.bits(), 10);
    EXPECT_TRUE(d.bit(3));
    EXPECT_FALSE(d.bit(4));
    EXPECT_EQ(Fingerprint(10).hex().size(), 3u);
}

TEST(Codec, ParseErrorsSayWhatIsWrong) {
    try {
        Fingerprint::parse("abc");
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("expected 32 hex digits"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("got 3"), std::string::npos) << e.what();
    }
    try {
        Fingerprint::parse(std::string(31, '0') + "g");
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("'g' at position 31"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Fingerprint::parse("f", 2), ArgumentError);  // sets bits beyond n
    EXPECT_NO_THROW(Fingerprint::parse("3", 2));
    EXPECT_THROW(Fingerprint(0), ArgumentError);
}

TEST(Codec, HammingDistance) {
    const Fingerprint a = Fingerprint::from_seed(128, 1);
    Fingerprint b = a;
    for (int i : {0, 5, 64, 100, 127}) b.set_bit(i, !b.bit(i));
    EXPECT_EQ(a.hamming(b), 5);
    EXPECT_EQ(a.matching_bits(b), 123);
    EXPECT_THROW(a.hamming(Fingerprint(64)), ArgumentError);
}

// Exact tail by integer arithmetic: Pascal's triangle in unsigned __int128 (only additions, so no
// overflow for n <= 127), summed from k to n.
long double exact_tail(int k, int n) {
    std::vector<unsigned __int128> row{1};
    for (int m = 1; m <= n; ++m) {
        std::vector<unsigned __int128> next(std::size_t(m) + 1, 1);
        for (int i = 1; i < m; ++i) next[i] = row[i - 1] + row[i];
        row = std::move(next);
    }
    unsigned __int128 sum = 0;
    for (int i = std::max(k, 0); i <= n; ++i) sum += row[i];
    return static_cast<long double>(sum) / std::pow(2.0L, n);
}

TEST(Statistics, PValuesMatchExactIntegerSums) {
    // docs/verification.md: "accurate to about 1e-13 relative"; this prints the worst case
    double worst = 0;
    for (int n : {1, 16, 64, 100, 127}) {
        for (int k = 0; k <= n; ++k) {
            const long double ex = exact_tail(k, n);
            const double rel = std::fabs(double(stats::p_value(k, n) / ex) - 1.0);
            EXPECT_LT(rel, 5e-13) << "n=" << n << " k=" << k;
            worst = std::max(worst, rel);
        }
    }
    std::printf("p-values vs exact integer sums, n in {1, 16, 64, 100, 127}, every k: worst relative error %.1e\n", worst);
    EXPECT_NEAR(stats::log_p_value(128, 128), -128 * std::log(2.0), 1e-9);  // 2^-128 = 2.9e-39
    EXPECT_DOUBLE_EQ(stats::p_value(0, 128), 1.0);
    EXPECT_NEAR(stats::p_value(64, 128), 0.5 + 0.5 * std::exp(stats::log_binom(128, 64) - 128 * std::log(2.0)), 1e-12);
}

TEST(Statistics, ThresholdsForStatedFalsePositiveRates) {
    // algorithm.md 6: n = 128: 1e-2 -> 78, 1e-6 -> 92, 1e-9 -> 98, 1e-12 -> 103
    EXPECT_EQ(stats::bit_threshold(128, 1e-2), 78);
    EXPECT_EQ(stats::bit_threshold(128, 1e-6), 92);
    EXPECT_EQ(stats::bit_threshold(128, 1e-9), 98);
    EXPECT_EQ(stats::bit_threshold(128, 1e-12), 103);
    for (double a : {1e-2, 1e-6, 1e-9}) {
        const int k = stats::bit_threshold(128, a);
        EXPECT_LE(stats::p_value(k, 128), a);
        EXPECT_GT(stats::p_value(k - 1, 128), a);
    }
    EXPECT_DOUBLE_EQ(stats::bonferroni_alpha(1e-6, 1000), 1e-9);
    // an empty registry is tested at alpha, as one entry (it threw, while Matcher used max(N, 1))
    EXPECT_DOUBLE_EQ(stats::bonferroni_alpha(1e-6, 0), 1e-6);
    EXPECT_DOUBLE_EQ(stats::bonferroni_alpha(1e-6, 1), 1e-6);
    EXPECT_THROW(stats::bonferroni_alpha(1e-6, -1), ArgumentError);
    EXPECT_EQ(stats::bit_threshold(128, stats::bonferroni_alpha(1e-6, 1000)), 98);
    // family_bit_threshold is bit_threshold at alpha / N (N = 0 as 1) wherever alpha / N is a normal double ...
    for (int n : {16, 128, 1000})
        for (double alpha : {0.5, 1e-2, 1e-6, 1e-12, 1e-300})
            for (std::int64_t N : {0LL, 1LL, 7LL, 1000LL, 1000000LL})
                EXPECT_EQ(stats::family_bit_threshold(n, alpha, N), stats::bit_threshold(n, stats::bonferroni_alpha(alpha, N)))
                    << n << " " << alpha << " " << N;
    // ... and below the smallest double it is n + 1, where alpha / N is 0 and bit_threshold refuses it (the
    // verification audit: `verify --alpha 1e-322` over 100 entries was exit 2 "alpha must be in (0, 1), got 0")
    EXPECT_EQ(stats::bonferroni_alpha(1e-322, 100), 0.0);
    EXPECT_EQ(stats::family_bit_threshold(128, 1e-322, 100), 129);
    EXPECT_THROW(stats::family_bit_threshold(128, 0.0, 1), ArgumentError);
    EXPECT_THROW(stats::family_bit_threshold(128, 1e-6, -1), ArgumentError);
    EXPECT_NEAR(stats::log_family_p_value(100, 128, 1000), stats::log_p_value(100, 128) + std::log(1000.0), 1e-12);
    EXPECT_EQ(stats::log_family_p_value(60, 128, 1000), 0.0);  // capped at 1
    EXPECT_THROW(stats::bit_threshold(128, 0.0), ArgumentError);
    // the binary search gives what a linear scan gives, for small and large n
    for (int n : {1, 4, 12, 20, 64, 127, 128, 129, 512, 4096})
        for (double a : {0.5, 0.05, 1e-6, 1e-9, 1e-30}) {
            int linear = n + 1;
            for (int k = 0; k <= n; ++k)
                if (stats::log_p_value(k, n) <= std::log(a)) {
                    linear = k;
                    break;
                }
            EXPECT_EQ(stats::bit_threshold(n, a), linear) << "n " << n << " alpha " << a;
        }
}

// bit(i) read past the words for i >= n (Fingerprint(7).bit(100): heap overflow; a default
// Fingerprint's bit(0) read an empty vector); set_bit was checked, bit was not.
TEST(Fingerprint, BitOutOfRangeIsAnArgumentError) {
    const Fingerprint f = Fingerprint::from_seed(7, 1);
    EXPECT_NO_THROW(f.bit(6));
    EXPECT_THROW(f.bit(7), ArgumentError);
    EXPECT_THROW(f.bit(100), ArgumentError);
    EXPECT_THROW(f.bit(-1), ArgumentError);
    EXPECT_THROW(Fingerprint{}.bit(0), ArgumentError);
}

// parse echoed its input raw into the message: escape sequences reached the terminal and a
// megabyte of text the log. Bytes outside printable ASCII are shown as \xNN, at most 80 of them.
TEST(Fingerprint, ParseErrorsShowTheInputPrintablyAndShort) {
    try {
        Fingerprint::parse("\x1b[31m", 8);
        FAIL();
    } catch (const ArgumentError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("fingerprint '\\x1b[31m'"), std::string::npos) << m;
        EXPECT_EQ(m.find('\x1b'), std::string::npos) << m;
    }
    try {
        Fingerprint::parse("zz", 8);
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("'z' at position 0 is not a hex digit"), std::string::npos) << e.what();
    }
    // the 0x prefix was dropped from the quoted input ("fingerprint ''" for "0x")
    try {
        Fingerprint::parse("0x", 8);
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("fingerprint '0x': expected 2 hex digits for 8 bits after the 0x prefix, got 0"),
                  std::string::npos)
            << e.what();
    }
    try {
        Fingerprint::parse("0x0x", 8);
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("fingerprint '0x0x': 'x' at position 3 is not a hex digit"), std::string::npos) << e.what();
    }
    try {
        Fingerprint::parse(std::string(100000, 'a'), 128);
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_LT(std::string(e.what()).size(), 300u);
        EXPECT_NE(std::string(e.what()).find("got 100000"), std::string::npos) << e.what();
    }
}

TEST(Fingerprint, BitCountIsCheckedBeforeAnythingIsSized) {
    // -200 bits made a vector of a negative size (std::length_error), not an ArgumentError
    for (int bits : {0, -1, -200, 65537, std::numeric_limits<int>::max()}) {
        EXPECT_THROW(Fingerprint{bits}, ArgumentError) << bits;
        EXPECT_THROW(Matcher{bits}, ArgumentError) << bits;
    }
}

TEST(Attribution, CapacityProblemWhenEvenAllBitsCannotPassTheThreshold) {
    // 2^-20 = 9.5e-7 <= 1e-6: one 20-bit fingerprint can be attributed at alpha 1e-6, two cannot
    EXPECT_EQ(attribution_capacity_problem(20, 1e-6, 1), "");
    const std::string two = attribution_capacity_problem(20, 1e-6, 2);
    EXPECT_NE(two.find("no image can be attributed"), std::string::npos) << two;
    EXPECT_TRUE(two.ends_with("a 20-bit registry can hold at most 1 fingerprint")) << two;  // callers add the remedy
    // the boundary agrees with bit_threshold for every registry size around alpha 2^n
    for (int n : {4, 12, 20, 24})
        for (double alpha : {1e-2, 1e-6})
            for (std::int64_t N : {1LL, 2LL, 3LL, 1000LL, 40000LL, 1LL << 20}) {
                const bool reachable = stats::family_bit_threshold(n, alpha, N) <= n;
                EXPECT_EQ(attribution_capacity_problem(n, alpha, N).empty(), reachable) << n << " " << alpha << " " << N;
                EXPECT_EQ(reachable, double(N) <= std::ldexp(alpha, n) * (1 + 1e-9)) << n << " " << alpha << " " << N;
            }
    // 128 bits: about 3.4e32 fingerprints at alpha 1e-6, more than any registry
    EXPECT_EQ(attribution_capacity_problem(128, 1e-6, std::int64_t(1) << 62), "");
    // a Matcher whose registry is past the bar calls everything "not fingerprinted", even an exact copy
    Matcher m(4);
    const Fingerprint f = Fingerprint::from_seed(4, 1);
    m.add(f, "only");
    EXPECT_EQ(m.attribute(f).outcome, Outcome::not_fingerprinted);
    EXPECT_NE(attribution_capacity_problem(4, 1e-6, m.size()), "");
}

TEST(Attribution, Outcomes) {
    auto [m, fs] = test::registered_users(100, 1000);
    auto exact = m.attribute(fs[37]);
    EXPECT_EQ(exact.outcome, Outcome::attributed);
    EXPECT_EQ(exact.best_label, "user37");
    EXPECT_EQ(exact.best_matching, 128);
    EXPECT_EQ(exact.threshold, stats::bit_threshold(128, 1e-8));
    Fingerprint noisy = fs[5];
    for (int i = 0; i < 20; ++i) noisy.set_bit(i * 6, !noisy.bit(i * 6));
    auto n = m.attribute(noisy);
    EXPECT_EQ(n.outcome, Outcome::attributed);
    EXPECT_EQ(n.best_label, "user5");
    EXPECT_EQ(n.best_matching, 108);
    EXPECT_GT(n.margin, 8);
    auto r = m.attribute(Fingerprint::from_seed(128, 999999));
    EXPECT_EQ(r.outcome, Outcome::not_fingerprinted);
    EXPECT_FALSE(r.detected);
    // two registered codes 4 bits apart: a decode between them cannot be attributed to either
    Matcher close(128);
    Fingerprint a = Fingerprint::from_seed(128, 7), b = a;
    for (int i : {1, 2, 3, 4}) b.set_bit(i, !b.bit(i));
    close.add(a, "a");
    close.add(b, "b");
    Fingerprint q = a;
    q.set_bit(1, !q.bit(1));
    q.set_bit(2, !q.bit(2));
    auto c = close.attribute(q);
    EXPECT_EQ(c.outcome, Outcome::inconclusive);
    EXPECT_TRUE(c.detected);
    EXPECT_EQ(Matcher(128).attribute(q).outcome, Outcome::not_fingerprinted);
}

TEST(Attribution, MisuseIsNamedByTheCaller) {
    // one check each for the decoded length and the rule's alpha; the caller names itself in them
    Matcher m(128);
    m.add(Fingerprint::from_seed(128, 1), "a");
    const auto message = [](auto&& f) {
        try {
            f();
        } catch (const ArgumentError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string length = message([&] { (void)m.attribute(Fingerprint::from_seed(64, 2)); });
    EXPECT_NE(length.find("attribute: the decoded fingerprint has 64 bits, the registry holds 128-bit"), std::string::npos) << length;
    const std::string named = message([&] { (void)m.attribute(Fingerprint::from_seed(64, 2), {}, "reg.sqlite"); });
    EXPECT_NE(named.find("reg.sqlite: the decoded fingerprint has 64 bits"), std::string::npos) << named;
    for (double alpha : {0.0, 1.0, -1e-6, std::nan("")}) {
        const std::string rule = message([&] { (void)m.attribute(Fingerprint::from_seed(128, 1), AttributionRule{alpha, 8}); });
        EXPECT_NE(rule.find("attribute: AttributionRule::alpha (the family-wise false-positive rate) must be in (0, 1)"),
                  std::string::npos) << rule;
    }
    // the statistics function alone keeps its own name for it
    const std::string plain = message([] { (void)stats::family_bit_threshold(128, 2.0, 10); });
    EXPECT_NE(plain.find("bit threshold: alpha must be in (0, 1), got 2"), std::string::npos) << plain;
}

}  // namespace
}  // namespace sgf
