// The evaluation pipeline (include/sgf/eval/evaluation.hpp, report.hpp, plot.hpp) on tiny models with
// random weights: nothing here depends on the decoder being any good, only on the bookkeeping.
#include <sgf/eval/report.hpp>
#include <sgf/verify/evaluate.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

namespace sgf::eval {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;

ModelConfig tiny128() {
    ModelConfig c = ModelConfig::tiny();
    c.fingerprint_bits = 128;
    return c;
}

io::MetaModel<B> random_model(B& b, std::uint64_t seed) {
    const ModelConfig c = tiny128();
    return io::MetaModel<B>{c, MetaGenerator<B>(b, c, seed), make_decoder(b, c, seed + 1), make_discriminator(b, c, seed + 2)};
}

Fingerprint flip(Fingerprint f, int count, int from = 0) {
    for (int i = from; i < from + count; ++i) f.set_bit(i, !f.bit(i));
    return f;
}

// measure_bit_accuracy's clamped figures against a direct count: the same batches, clamped on the
// host, decoded by F. A G with its ToRGB weights scaled up so that part of every image saturates.
TEST(BitAccuracy, ClampedAccuracyAndSaturatedPixelsMatchADirectCount) {
    B b(1);
    auto m = random_model(b, 5);
    for (auto* p : m.G.parameters())
        if (p->name.find("torgb") != std::string::npos && p->name.find("weight") != std::string::npos)
            b.axpby(p->value.size(), 0.f, p->value.data(), 3.f, p->value.data());
    const std::int64_t images = 40, batch = 16;
    const auto r = measure_bit_accuracy(b, m.G, m.F, images, 3, batch);
    double ok = 0, out = 0, values = 0;
    for (std::int64_t done = 0, k = 0; done < images; done += batch, ++k) {
        const std::int64_t n = std::min(batch, images - done);
        auto gb = draw_generator_batch(b, m.config, n, 3, std::uint64_t(k));
        auto host = to_host<float>(b, m.G.forward(b, gb.z, gb.c1, gb.noise1).image());
        for (float& v : host.data) {
            out += std::abs(v) > 1.f;
            values += 1;
            v = std::min(1.f, std::max(-1.f, v));
        }
        const auto dec = decode_batch(b, m.F, from_host<B, float>(b, host.shape, std::span<const float>(host.data)));
        const auto truth = to_host_vector<float>(b, gb.c1);
        for (std::int64_t i = 0; i < n; ++i)
            for (int j = 0; j < m.config.fingerprint_bits; ++j)
                ok += dec[std::size_t(i)].fingerprint.bit(j) == (truth[std::size_t(i * m.config.fingerprint_bits + j)] > 0.5f);
    }
    ASSERT_GT(out, 0.05 * values);  // the premise: the clamp changes the images
    ASSERT_LT(out, 0.95 * values);
    EXPECT_DOUBLE_EQ(r.saturated_pixels, out / values);
    EXPECT_NEAR(r.clamped_accuracy, ok / double(images * m.config.fingerprint_bits), 1e-12);
    EXPECT_NE(r.clamped_accuracy, r.float_accuracy);
}

/// A decoded set with the logit of every bit at +-confidence(i, j) (image i, bit j), the sign its bit's.
template <class Confidence>
DecodedSet with_logits(const std::vector<Fingerprint>& fps, Confidence confidence) {
    DecodedSet d;
    for (std::size_t i = 0; i < fps.size(); ++i) {
        std::vector<float> l(std::size_t(fps[i].bits()));
        for (int j = 0; j < fps[i].bits(); ++j) l[std::size_t(j)] = (fps[i].bit(j) ? 1.f : -1.f) * float(confidence(i, j));
        d.push_back(fps[i], l);
    }
    return d;
}
DecodedSet equally_confident(const std::vector<Fingerprint>& fps) {
    return with_logits(fps, [](std::size_t, int) { return 1.0; });
}

TEST(EvalHelpers, IssuedFingerprintsKeepTheMinimumDistanceAndAreDeterministic) {
    const auto a = detail::issue_fingerprints(128, 300, 32, 7);
    const auto b = detail::issue_fingerprints(128, 300, 32, 7);
    EXPECT_EQ(a, b);
    for (std::size_t i = 0; i < a.size(); ++i)
        for (std::size_t j = i + 1; j < a.size(); ++j) ASSERT_GE(a[i].hamming(a[j]), 32) << i << ", " << j;
    EXPECT_NE(a, detail::issue_fingerprints(128, 300, 32, 8));
}

TEST(EvalHelpers, Quantize8IsWhatAPngStores) {
    HostTensor<float> x(Shape{1, 1, 4, 4});
    for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = -1.3f + 0.17f * float(i);
    HostTensor<float> q = x;
    detail::quantize8(q);
    const auto back = io::to_tensor(io::decode_image(
        reinterpret_cast<const std::uint8_t*>(io::encode_png(io::to_image(x)).data()), io::encode_png(io::to_image(x)).size(), "t"));
    EXPECT_EQ(q.data, back.data);
}

TEST(EvalHelpers, CountAttributionOnSyntheticCodes) {
    const auto users = detail::issue_fingerprints(128, 10, 32, 3);
    Matcher reg(128);
    for (std::size_t u = 0; u < users.size(); ++u) reg.add(users[u], std::to_string(u));
    // generated: exact code of user 0; user 1 with 20 flipped bits (still >= k*); user 2 with 50 flipped
    // (missed); user 3's code claimed for user 4 (wrong user)
    const std::vector<Fingerprint> gen{users[0], flip(users[1], 20), flip(users[2], 50), users[3]};
    const std::vector<std::int64_t> who{0, 1, 2, 4};
    const std::vector<Fingerprint> real{Fingerprint::from_seed(128, 99), users[5]};  // the second is a false attribution
    const std::vector<Fingerprint> open{Fingerprint::from_seed(128, 100), users[6], Fingerprint::from_seed(128, 101)};
    // with every bit equally confident, the weighted score decides exactly as the bit count
    for (const Score score : {Score::bits, Score::weighted}) {
        AttributionRule rule{};
        rule.score = score;
        const auto s = count_attribution(reg, equally_confident(gen), who, equally_confident(real), equally_confident(open), rule);
        EXPECT_EQ(s.score, score);
        EXPECT_EQ(s.users, 10);
        EXPECT_EQ(s.threshold, stats::bit_threshold(128, 1e-7));
        EXPECT_EQ(s.correct, 2);
        EXPECT_EQ(s.missed, 1);
        EXPECT_EQ(s.wrong_user, 1);
        EXPECT_EQ(s.inconclusive, 0);
        EXPECT_EQ(s.real_attributed, 1);
        EXPECT_EQ(s.open_attributed, 1);
        EXPECT_EQ(s.open_detected, 1);
        EXPECT_DOUBLE_EQ(s.closed_accuracy, (2.0 + 1.0) / 6.0);
        EXPECT_DOUBLE_EQ(s.open_accuracy, (2.0 + 1.0 + 2.0) / 9.0);
    }
    // the decoder unsure of exactly the 50 bits it got wrong in user 2's image: the bit count still
    // misses it, the weighted score attributes it (the other 78 bits carry the full weight)
    const auto unsure = with_logits(gen, [](std::size_t i, int j) { return i == 2 && j < 50 ? 0.05 : 4.0; });
    AttributionRule weighted{};
    weighted.score = Score::weighted;
    const auto w = count_attribution(reg, unsure, who, equally_confident(real), equally_confident(open), weighted);
    EXPECT_EQ(w.correct, 3);
    EXPECT_EQ(w.missed, 0);
    AttributionRule bits{};
    bits.score = Score::bits;
    EXPECT_EQ(count_attribution(reg, unsure, who, equally_confident(real), equally_confident(open), bits).missed, 1);
    EXPECT_THROW((void)count_attribution(reg, unsure, {0, 1}, equally_confident(real), equally_confident(open), bits), ArgumentError);
}

// false_positive_stats against a direct count with test_claim and the registry, both scores
TEST(EvalHelpers, FalsePositiveStatsCountBothScores) {
    const auto users = detail::issue_fingerprints(128, 20, 32, 4);
    std::vector<Fingerprint> real;
    for (int i = 0; i < 30; ++i) real.push_back(Fingerprint::from_seed(128, 500 + std::uint64_t(i)));
    real.push_back(flip(users[0], 30));  // close to users[0] (a false positive at any alpha used here)
    real.push_back(flip(users[3], 34));
    std::mt19937 rng{7};
    std::uniform_real_distribution<double> conf(0.0, 5.0);
    std::vector<std::vector<double>> c(real.size(), std::vector<double>(128));
    for (auto& row : c)
        for (auto& v : row) v = conf(rng);
    const auto dec = with_logits(real, [&](std::size_t i, int j) { return c[i][std::size_t(j)]; });
    AttributionRule rule{};
    rule.alpha = 1e-3;
    const auto f = false_positive_stats(dec, users, rule);
    Matcher reg(128);
    for (std::size_t u = 0; u < users.size(); ++u) reg.add(users[u], std::to_string(u));
    std::int64_t single[2] = {0, 0}, pairs[2] = {0, 0}, detected[2] = {0, 0}, attributed[2] = {0, 0};
    double min_p[2] = {0, 0};
    for (std::size_t i = 0; i < dec.size(); ++i)
        for (const Score score : {Score::bits, Score::weighted}) {
            const int k = score == Score::bits ? 0 : 1;
            single[k] += test_claim(users[0], real[i], dec.logits_of(i), rule.alpha, score).match;
            for (const auto& u : users) {
                const auto t = test_claim(u, real[i], dec.logits_of(i), rule.alpha, score);
                pairs[k] += t.match;
                min_p[k] = std::min(min_p[k], t.log10_p);
            }
            AttributionRule r = rule;
            r.score = score;
            const auto a = reg.attribute(real[i], dec.logits_of(i), r);
            detected[k] += a.detected;
            attributed[k] += a.outcome == Outcome::attributed;
        }
    EXPECT_EQ(f.real_images, 32);
    EXPECT_EQ(f.comparisons, 32 * 20);
    EXPECT_EQ(f.single_pass, single[0]);
    EXPECT_EQ(f.single_pass_weighted, single[1]);
    EXPECT_EQ(f.comparison_pass, pairs[0]);
    EXPECT_EQ(f.comparison_pass_weighted, pairs[1]);
    EXPECT_EQ(f.registry_detected, detected[0]);
    EXPECT_EQ(f.registry_detected_weighted, detected[1]);
    EXPECT_EQ(f.registry_attributed, attributed[0]);
    EXPECT_EQ(f.registry_attributed_weighted, attributed[1]);
    EXPECT_NEAR(f.min_log10_p, min_p[0], 1e-9);
    EXPECT_NEAR(f.min_log10_p_weighted, min_p[1], 1e-9);
    EXPECT_EQ(f.max_matching, 128 - 30);
    // the premise: the planted near-copies pass under both scores
    EXPECT_GE(f.single_pass_weighted, 1);
    EXPECT_GE(f.registry_attributed, 2);
    EXPECT_GE(f.registry_attributed_weighted, 2);
}

TEST(EvalHelpers, DetectionStats) {
    const auto nlp = detail::neg_log10_p_table(128);
    const auto t = Fingerprint::from_seed(128, 1);
    const std::vector<Fingerprint> truth{t, t};
    const std::vector<Fingerprint> dec{t, flip(t, 64)};
    const auto s = detail::detection_stats(equally_confident(dec), truth, 92, nlp, 1e-6);
    EXPECT_DOUBLE_EQ(s.bit_accuracy, 0.75);
    EXPECT_DOUBLE_EQ(s.worst_image, 0.5);
    EXPECT_DOUBLE_EQ(s.tpr, 0.5);
    EXPECT_NEAR(s.mean_neg_log10_p, 0.5 * (-stats::log10_p_value(128, 128) - stats::log10_p_value(64, 128)), 1e-12);
    EXPECT_DOUBLE_EQ(s.per_bit[0], 0.5);
    EXPECT_DOUBLE_EQ(s.per_bit[100], 1.0);
    // equal confidences: the weighted score's test is the bit count's
    EXPECT_DOUBLE_EQ(s.tpr_weighted, 0.5);
    EXPECT_NEAR(s.mean_neg_log10_p_weighted, s.mean_neg_log10_p, 1e-9);
    // no confidence in the 64 flipped bits (weight round(4 * 0.1) = 0), full weight elsewhere: the second
    // image's 64 weighted bits all match, p = 2^-64, and it is detected
    const auto w = detail::detection_stats(with_logits(dec, [](std::size_t i, int j) { return i == 1 && j < 64 ? 0.1 : 4.0; }), truth, 92,
                                           nlp, 1e-6);
    EXPECT_DOUBLE_EQ(w.tpr, 0.5);
    EXPECT_DOUBLE_EQ(w.tpr_weighted, 1.0);
    EXPECT_NEAR(w.mean_neg_log10_p_weighted, 0.5 * (128 + 64) * std::log10(2.0), 1e-9);
}

TEST(Plot, NiceTicksAndLabels) {
    auto near = [](const std::vector<double>& a, const std::vector<double>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i)
            if (std::abs(a[i] - b[i]) > 1e-12) return false;
        return true;
    };
    EXPECT_TRUE(near(plot::nice_ticks(0.4, 1.0), {0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}));
    EXPECT_TRUE(near(plot::nice_ticks(10, 100), {20, 40, 60, 80, 100}));
    EXPECT_TRUE(near(plot::nice_ticks(0, 0.5), {0, 0.1, 0.2, 0.3, 0.4, 0.5}));
    EXPECT_TRUE(near(plot::nice_ticks(-20, 20), {-20, -10, 0, 10, 20}));
    EXPECT_EQ(plot::tick_label(0.5, 0.1), "0.5");
    EXPECT_EQ(plot::tick_label(1.0, 0.1), "1.0");
    EXPECT_EQ(plot::tick_label(40, 20), "40");
    EXPECT_EQ(plot::tick_label(0.05, 0.05), "0.05");
}

TEST(Plot, LinePlotDrawsSeriesLegendAndText) {
    plot::PlotSpec spec;
    spec.title = "bit accuracy under jpeg";
    spec.x_label = "JPEG quality";
    spec.y_label = "bit accuracy";
    spec.y_min = 0.4;
    spec.y_max = 1.0;
    spec.series.push_back({"original", plot::kBlue, {10, 50, 100}, {0.55, 0.8, 0.99}});
    spec.series.push_back({"immunised", plot::kOrange, {10, 50, 100}, {0.6, 0.9, 0.99}});
    spec.hlines.push_back({"chance", 0.5, plot::kGray});
    const io::Image img = plot::line_plot(spec);
    EXPECT_EQ(img.width, spec.width);
    EXPECT_EQ(img.height, spec.height);
    EXPECT_EQ(img.channels, 3);
    auto count = [&](plot::Rgb c) {
        std::int64_t k = 0;
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) k += img.at(y, x, 0) == c.r && img.at(y, x, 1) == c.g && img.at(y, x, 2) == c.b;
        return k;
    };
    EXPECT_GT(count(plot::kBlue), 500);
    EXPECT_GT(count(plot::kOrange), 500);
    EXPECT_GT(count(plot::kGray), 100);
    EXPECT_GT(count(plot::kBlack), 1000) << "axes and text";
    // the PNG encoder accepts it
    EXPECT_GT(io::encode_png(img).size(), 100u);
}

TEST(Plot, TextAndStrip) {
    io::Image c = plot::canvas(40, 10);
    plot::text(c, 1, 1, "A1", plot::kBlack);
    // 'A' row 0 is ".###.": pixels 2..4 of row 1 are ink, pixel 1 is not
    EXPECT_EQ(c.at(1, 1, 0), 255);
    EXPECT_EQ(c.at(1, 2, 0), 0);
    EXPECT_EQ(plot::text_width("A1"), 11);
    io::Image g{4, 4, 1, std::vector<std::uint8_t>(16, 128)};
    const io::Image s = plot::image_strip({{g, g, g}, {g, g, g}}, {"a@1", "a@2", "a@3"}, {"r1", "r2"}, 3);
    EXPECT_EQ(s.channels, 3);
    EXPECT_GT(s.width, 3 * 12);
    EXPECT_GT(s.height, 2 * 12);
}

/// The whole evaluation on two random tiny models, small sizes, no fidelity (tests/eval/test_fd.cpp
/// and the CLI test cover it).
class Evaluation : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        b_ = new B(2);
        m1_ = new io::MetaModel<B>(random_model(*b_, 11));
        m2_ = new io::MetaModel<B>(random_model(*b_, 21));
        opt_.images = 70;  // two clean batches of 64 (the second partial)
        opt_.users_max = 12;
        opt_.seed = 5;
        opt_.fidelity = false;
        opt_.attacks = {"noise", "jpeg", "crop", "combined"};
        r_ = new EvalResult(evaluate<B>(*b_, {{"original", "m1", m1_}, {"immunised", "m2", m2_}}, opt_));
    }
    static void TearDownTestSuite() {
        delete r_;
        delete m2_;
        delete m1_;
        delete b_;
    }
    static B* b_;
    static io::MetaModel<B>*m1_, *m2_;
    static EvalOptions opt_;
    static EvalResult* r_;
};
B* Evaluation::b_ = nullptr;
io::MetaModel<B>* Evaluation::m1_ = nullptr;
io::MetaModel<B>* Evaluation::m2_ = nullptr;
EvalOptions Evaluation::opt_{};
EvalResult* Evaluation::r_ = nullptr;

TEST_F(Evaluation, CleanNumbersEqualMeasureBitAccuracy) {
    const auto ref = measure_bit_accuracy(*b_, m1_->G, m1_->F, opt_.images, opt_.seed, 64);
    const auto& m = r_->models[0];
    EXPECT_DOUBLE_EQ(m.clean_float.bit_accuracy, ref.float_accuracy);
    EXPECT_DOUBLE_EQ(m.clean_png.bit_accuracy, ref.png_accuracy);
    EXPECT_DOUBLE_EQ(m.clean_png.worst_image, ref.png_min);
    EXPECT_EQ(m.clean_png.per_bit, ref.per_bit_png);
    EXPECT_GT(ref.saturated_pixels, 0.0);  // the fixture's G overshoots, so the count is tested
    EXPECT_NEAR(m.saturated_pixels, ref.saturated_pixels, 1e-12);
}

TEST_F(Evaluation, SweepsCoverEveryStrengthAndTheIdentityIsTheCleanPng) {
    for (const auto& m : r_->models) {
        std::size_t expected = 0;
        for (const auto& a : opt_.attacks) expected += attack::image_attack_info(a).sweep.size();
        EXPECT_EQ(m.sweeps.size(), expected);
        int identities = 0;
        for (const auto& w : m.sweeps) {
            EXPECT_EQ(w.stats.images, opt_.images);
            EXPECT_GE(w.stats.bit_accuracy, 0.0);
            EXPECT_LE(w.stats.bit_accuracy, 1.0);
            if (w.identity) {
                ++identities;
                EXPECT_DOUBLE_EQ(w.stats.bit_accuracy, m.clean_png.bit_accuracy) << w.attack;
            }
        }
        EXPECT_EQ(identities, 3) << "noise@0, crop@1, combined@0 (jpeg has no identity)";
    }
}

TEST_F(Evaluation, AttributionAndFalsePositiveBookkeeping) {
    for (const auto& m : r_->models) {
        ASSERT_EQ(m.attribution.size(), 6u) << "1, 10 and users_max = 12, by each score";
        const std::int64_t sizes[] = {1, 10, 12};
        for (std::size_t i = 0; i < 6; ++i) {
            EXPECT_EQ(m.attribution[i].score, i < 3 ? Score::weighted : Score::bits);
            EXPECT_EQ(m.attribution[i].users, sizes[i % 3]);
        }
        for (const auto& a : m.attribution) {
            EXPECT_EQ(a.generated, opt_.images);
            EXPECT_EQ(a.correct + a.wrong_user + a.inconclusive + a.missed, a.generated);
            EXPECT_EQ(a.real, opt_.images);
            EXPECT_EQ(a.open, opt_.images);
            EXPECT_LE(a.open_attributed, a.open_detected);
            EXPECT_GE(a.closed_accuracy, 0.0);
            EXPECT_LE(a.open_accuracy, 1.0);
            EXPECT_EQ(a.threshold, stats::bit_threshold(128, opt_.rule.alpha / double(a.users)));
        }
        EXPECT_EQ(m.fpr.real_images, opt_.images);
        EXPECT_EQ(m.fpr.registry_size, opt_.users_max);
        EXPECT_EQ(m.fpr.comparisons, opt_.images * opt_.users_max);
        EXPECT_LE(m.fpr.registry_attributed, m.fpr.registry_detected);
        EXPECT_LE(m.fpr.registry_attributed_weighted, m.fpr.registry_detected_weighted);
        EXPECT_LE(m.fpr.comparison_pass_weighted, m.fpr.comparisons);
        EXPECT_GT(m.fpr.max_matching, 0);
        EXPECT_LT(m.fpr.min_log10_p_weighted, 0.0);
        for (const DetectionStats* d : {&m.clean_float, &m.clean_png}) {
            EXPECT_GE(d->tpr_weighted, 0.0);
            EXPECT_LE(d->tpr_weighted, 1.0);
            EXPECT_GT(d->mean_neg_log10_p_weighted, 0.0);
        }
    }
    EXPECT_EQ(r_->threshold_single, 92);
}

// Model attacks: the baked copies of the first users make the images of each strength. The no-op
// strength must give what the meta generator makes for those users' fingerprints with the same z
// (a baked copy reproduces G(z, c) to float rounding), user u the images u, u + U, ...
TEST(EvaluationModelAttacks, BakedCopiesOfTheFirstUsersMakeEachStrengthsImages) {
    B b(2);
    auto m = random_model(b, 31);
    EvalOptions o;
    o.images = 30;
    o.users_max = 4;
    o.seed = 12;
    o.fidelity = false;
    o.attacks = {"prune", "finetune", "noise"};
    o.finetune_batch = 2;
    const auto r = evaluate<B>(b, {{"original", "m", &m}}, o);
    const auto& sw = r.models[0].sweeps;
    const std::size_t np = attack::model_attack_info("prune").sweep.size(), nf = attack::finetune_attack_info().sweep.size();
    ASSERT_EQ(sw.size(), np + nf + attack::image_attack_info("noise").sweep.size());
    for (std::size_t i = 0; i < sw.size(); ++i) {
        EXPECT_EQ(sw[i].kind, i < np + nf ? "model" : "image") << i;
        EXPECT_EQ(sw[i].attack, i < np ? "prune" : i < np + nf ? "finetune" : "noise") << i;
        EXPECT_EQ(sw[i].stats.images, 30);
    }
    ASSERT_TRUE(sw[0].identity);
    ASSERT_TRUE(sw[np].identity);
    // the same images from the meta generator: user u's fingerprint for images u, u + U, ... (grouped
    // by user), U = 4 (users_max) for pruning and 2 (kFinetuneUsers) for fine-tuning
    const auto users = detail::issue_fingerprints(128, 4, Registry::default_min_distance(128), detail::mix(o.seed, 2));
    auto direct = [&](std::int64_t U) {
        HostTensor<float> y;
        std::vector<Fingerprint> truth;
        for (std::int64_t u = 0; u < U; ++u) {
            const std::vector<Fingerprint> fps(std::size_t((30 - u + U - 1) / U), users[std::size_t(u)]);
            detail::append(y, detail::generate(b, m.G, fps, o.seed, 0x0C000000ull + (std::uint64_t(u) << 16)));
            truth.insert(truth.end(), fps.begin(), fps.end());
        }
        return detail::detection_stats(detail::decode_host(b, m.F, y, 64), truth, r.threshold_single, detail::neg_log10_p_table(128),
                                       o.rule.alpha);
    };
    EXPECT_NEAR(sw[0].stats.bit_accuracy, direct(4).bit_accuracy, 0.01);
    EXPECT_NEAR(sw[np].stats.bit_accuracy, direct(kFinetuneUsers).bit_accuracy, 0.01);
    // pruning 90% of every conv weight, and 200 fine-tuning steps, change the images: the decoded bits move
    EXPECT_NE(sw[np - 1].stats.bit_accuracy, sw[0].stats.bit_accuracy);
    EXPECT_NE(sw[np + nf - 1].stats.bit_accuracy, sw[np].stats.bit_accuracy);
    // the strips and the report name the model attack
    const auto md = markdown_report(r);
    EXPECT_NE(md.find("### prune (model attack)"), std::string::npos);
    EXPECT_THROW((void)find_attack("nosuch"), ArgumentError);
    EXPECT_EQ(find_attack("weight_noise").kind, "model");
    EXPECT_EQ(find_attack("blur").kind, "image");
    EXPECT_EQ(find_attack("finetune").kind, "model");
}

// On the shipped default model, relative weight noise of 0.3 std per tensor erases most of the
// fingerprint that the unperturbed copies carry.
TEST(EvaluationModelAttacks, WeightNoiseWeakensTheShippedModelsFingerprint) {
    B b(2);
    auto m = io::load_meta_model<B>(b, fs::path(SGF_SOURCE_DIR) / "models/fashion-small.safetensors");
    EvalOptions o;
    o.images = 64;
    o.users_max = 10;
    o.fidelity = false;
    o.attacks = {"weight_noise"};
    const auto r = evaluate<B>(b, {{"original", "default", &m}}, o);
    const auto& sw = r.models[0].sweeps;
    ASSERT_EQ(sw.size(), attack::model_attack_info("weight_noise").sweep.size());
    ASSERT_TRUE(sw.front().identity);
    EXPECT_GT(sw.front().stats.bit_accuracy, 0.8) << "the baked copies read as the meta model does (0.87)";
    EXPECT_EQ(sw.front().stats.tpr_weighted, 1.0);
    EXPECT_EQ(sw.back().strength, 0.3);
    EXPECT_LT(sw.back().stats.bit_accuracy, sw.front().stats.bit_accuracy - 0.1);
    // the no-op row is the meta generator's images of the first 10 users, stored user after user and
    // read against each image's own user: the same z and fingerprints give the same numbers, while the
    // same images read against the next user's fingerprint read at chance
    const auto users = detail::issue_fingerprints(128, 10, Registry::default_min_distance(128), detail::mix(o.seed, 2));
    HostTensor<float> y;
    std::vector<Fingerprint> truth, shifted;
    for (std::int64_t u = 0; u < 10; ++u) {
        const std::vector<Fingerprint> fps(std::size_t((64 - u + 9) / 10), users[std::size_t(u)]);
        detail::append(y, detail::generate(b, m.G, fps, o.seed, 0x0C000000ull + (std::uint64_t(u) << 16)));
        truth.insert(truth.end(), fps.begin(), fps.end());
        shifted.insert(shifted.end(), fps.size(), users[std::size_t((u + 1) % 10)]);
    }
    const auto dec = detail::decode_host(b, m.F, y, 64);
    const auto nlp = detail::neg_log10_p_table(128);
    const auto direct = detail::detection_stats(dec, truth, r.threshold_single, nlp, o.rule.alpha);
    EXPECT_NEAR(sw.front().stats.bit_accuracy, direct.bit_accuracy, 2.0 / 128) << "baked copies reproduce G(z, c) to float rounding";
    EXPECT_NEAR(sw.front().stats.mean_neg_log10_p_weighted, direct.mean_neg_log10_p_weighted, 0.5);
    EXPECT_LT(detail::detection_stats(dec, shifted, r.threshold_single, nlp, o.rule.alpha).bit_accuracy, 0.6);
}

TEST_F(Evaluation, DeterministicFromTheSeed) {
    const auto again = evaluate<B>(*b_, {{"original", "m1", m1_}}, opt_);
    const auto& a = again.models[0];
    const auto& m = r_->models[0];
    ASSERT_EQ(a.sweeps.size(), m.sweeps.size());
    for (std::size_t i = 0; i < a.sweeps.size(); ++i) EXPECT_EQ(a.sweeps[i].stats.bit_accuracy, m.sweeps[i].stats.bit_accuracy);
    EXPECT_EQ(a.fpr.max_matching, m.fpr.max_matching);
    EXPECT_EQ(a.attribution[2].missed, m.attribution[2].missed);
}

TEST_F(Evaluation, ReportFiles) {
    const fs::path dir = fs::path(SGF_TEST_TMPDIR) / "report";
    fs::remove_all(dir);
    const auto files = write_report(*r_, dir);
    for (const char* f : {"robustness.csv", "attribution.csv", "summary.json", "report.md", "plots/jpeg.png", "examples/jpeg.png"})
        EXPECT_TRUE(fs::exists(dir / f)) << f;
    const io::Image strip = io::load_image(dir / "examples" / "combined.png");
    EXPECT_GT(strip.width, 5 * 48) << "five strengths of 16 px images at zoom 3";
    std::ifstream in(dir / "robustness.csv");
    std::string header;
    std::getline(in, header);
    EXPECT_EQ(header, kRobustnessCsvHeader);
    std::ifstream md(dir / "report.md");
    std::stringstream ss;
    ss << md.rdbuf();
    EXPECT_NE(ss.str().find("## Attribution"), std::string::npos);
    EXPECT_NE(ss.str().find("![jpeg plot](plots/jpeg.png)"), std::string::npos);
    EXPECT_EQ(ss.str().find("FID "), std::string::npos) << "FD-classifier must never be called FID";
    EXPECT_NE(ss.str().find(fmt::format("| pixel values outside [-1, 1] (clamped by the 8-bit PNG) | {:.4f} |",
                                        r_->models[0].saturated_pixels)),
              std::string::npos);
    std::ifstream sj(dir / "summary.json");
    const auto summary = nlohmann::json::parse(sj);
    EXPECT_DOUBLE_EQ(summary["models"][0]["saturated_pixels"].get<double>(), r_->models[0].saturated_pixels);
}

// ---- real images from a folder (EvalOptions::real_dir, io::load_image_folder) ----------------------

/// Writes `count` images of class `cls` (bright or dark blobs, odd sizes, gray PNG or RGB JPEG) into dir.
void write_class_images(const fs::path& dir, int cls, int count, bool jpeg = false) {
    fs::create_directories(dir);
    for (int i = 0; i < count; ++i) {
        io::Image im;
        im.width = 20 + i % 3;
        im.height = 24;
        im.channels = jpeg ? 3 : 1;
        im.pixels.resize(std::size_t(im.width) * im.height * im.channels);
        for (int y = 0; y < im.height; ++y)
            for (int x = 0; x < im.width; ++x)
                for (int c = 0; c < im.channels; ++c)
                    im.at(y, x, c) = std::uint8_t(cls == 0 ? 40 + (x * 7 + y * 3 + i) % 60 : 200 - (x * 5 + y * 11 + i) % 50);
        const fs::path p = dir / fmt::format("img{:02d}.{}", i, jpeg ? "JPG" : "png");
        std::ofstream(p, std::ios::binary) << (jpeg ? io::encode_jpeg(im, 90) : io::encode_png(im));
    }
}

TEST(ImageFolder, SubFoldersAreClassesInSortedOrder) {
    const fs::path dir = fs::path(SGF_TEST_TMPDIR) / "folder-classes";
    fs::remove_all(dir);
    write_class_images(dir / "shoes", 1, 3);
    write_class_images(dir / "bags", 0, 2, true);
    write_class_images(dir / "shoes" / "more", 1, 1);  // deeper levels belong to their first-level class
    write_class_images(dir / ".ipynb_checkpoints", 0, 2);  // hidden: skipped, no third class
    std::ofstream(dir / "shoes" / "._img00.png") << "AppleDouble";  // hidden: skipped, not a broken image
    const auto ds = io::load_image_folder(dir.string() + "/", 1, 16);  // a trailing separator changes nothing
    EXPECT_EQ(ds.size(), 6);
    EXPECT_EQ(ds.channels, 1);
    EXPECT_EQ(ds.height, 16);
    EXPECT_EQ(ds.class_names, (std::vector<std::string>{"bags", "shoes"}));
    // sorted paths: bags/img00.JPG, bags/img01.JPG, shoes/img00.png, ..., shoes/more/img00.png
    EXPECT_EQ(ds.labels, (std::vector<int>{0, 0, 1, 1, 1, 1}));
    const auto sub = io::load_folder_images(io::scan_image_folder(dir.string() + "/"), {5, 0}, 1, 16, "two");
    EXPECT_EQ(sub.name, "two");
    EXPECT_EQ(sub.labels, (std::vector<int>{1, 0}));
    EXPECT_TRUE(std::equal(sub.pixels.begin(), sub.pixels.begin() + sub.sample_size(), ds.pixels.begin() + 5 * ds.sample_size()));

    std::ofstream(dir / "loose.png", std::ios::binary) << io::encode_png(io::load_image(dir / "shoes" / "img00.png"));
    const auto flat = io::load_image_folder(dir, 3, 8);
    EXPECT_EQ(flat.size(), 7);
    EXPECT_TRUE(flat.labels.empty()) << "a loose file at the top: no image-folder labels";
    EXPECT_EQ(flat.channels, 3);

    EXPECT_THROW(io::load_image_folder(dir / "missing", 1, 16), IoError);
    fs::create_directories(dir / "empty" / "sub");
    try {
        io::load_image_folder(dir / "empty", 1, 16);
        ADD_FAILURE() << "an empty folder loaded";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("no .png/.jpg/.jpeg images"), std::string::npos) << e.what();
    }
    std::ofstream(dir / "shoes" / "broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n truncated";
    try {
        io::load_image_folder(dir, 1, 16);
        ADD_FAILURE() << "a broken PNG loaded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
    }
}

TEST(ImageFolder, ImagesSmallerThanAQuarterOfTheResolutionAreRefusedAsDecodeRefusesThem) {
    // train --data and eval --real-dir enlarged a 1x1 thumbnail to the model's size and used it
    const fs::path dir = fs::path(SGF_TEST_TMPDIR) / "folder-small-images";
    fs::remove_all(dir);
    write_class_images(dir, 0, 2);
    auto square = [](int side) {
        io::Image im;
        im.width = im.height = side;
        im.channels = 1;
        im.pixels.assign(std::size_t(side) * side, 128);
        return im;
    };
    EXPECT_EQ(io::min_image_side(16), 4);
    EXPECT_EQ(io::min_image_side(4), 2);
    EXPECT_EQ(min_decode_side(128), io::min_image_side(128));
    std::ofstream(dir / "wide.png", std::ios::binary) << io::encode_png([&] {
        io::Image im = square(4);
        im.width = 40;  // 40x4: each side counts, before cropping
        im.pixels.assign(160, 128);
        return im;
    }());
    EXPECT_EQ(io::load_image_folder(dir, 1, 16).size(), 3);  // 4 px is enough at 16 px
    std::ofstream(dir / "thumb.png", std::ios::binary) << io::encode_png(square(3));
    try {
        io::load_image_folder(dir, 1, 16);
        ADD_FAILURE() << "a 3x3 image was read for a 16-px model";
    } catch (const FormatError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("thumb.png: image is 3x3, too small for a 16-px model: images need at least 4 px per side"),
                  std::string::npos) << what;
    }
    EXPECT_EQ(io::load_image_folder(dir, 1, 8).size(), 4);  // at 8 px, 2 px is enough
}

TEST(EvaluationRealFolder, FalsePositivesAttributionAndFidelityUseTheFolder) {
    B b(2);
    auto m = random_model(b, 3);
    const fs::path root = fs::path(SGF_TEST_TMPDIR) / "eval-real-folder";
    fs::remove_all(root);
    write_class_images(root / "real" / "dark", 0, 11);
    write_class_images(root / "real" / "light", 1, 9, true);
    EvalOptions o;
    o.images = 16;
    o.users_max = 3;
    o.seed = 9;
    o.attacks = {"noise"};
    o.real_dir = root / "real";
    o.fd_classifier = root / "fd.safetensors";
    o.fd_train.steps = 4;
    o.fd_train.batch = 8;
    const auto r = evaluate<B>(b, {{"original", "m", &m}}, o);
    EXPECT_EQ(r.real_available, 20);
    EXPECT_NE(r.real_source.find("real"), std::string::npos) << r.real_source;
    const auto& me = r.models[0];
    EXPECT_EQ(me.fpr.real_images, 16) << "min(images, folder size)";
    for (const auto& a : me.attribution) EXPECT_EQ(a.real, 16);
    ASSERT_TRUE(r.fidelity.computed) << r.fidelity.skipped;
    EXPECT_TRUE(r.fidelity.classifier_trained_now);
    EXPECT_EQ(r.fidelity.classes, 2);
    EXPECT_EQ(r.fidelity.classifier.dataset, fs::weakly_canonical(root / "real").string());
    // the split: by a hash of each file's path, so the same for every seed, and a file keeps its half
    // when others are added (the classifier never sees a held-out image of an earlier run)
    const auto [ref, held] = detail::folder_halves(io::scan_image_folder(o.real_dir));
    EXPECT_EQ(ref.size() + held.size(), 20u);
    EXPECT_GE(ref.size(), 2u);
    EXPECT_GE(held.size(), 2u);
    const std::int64_t M = std::min<std::int64_t>({16, std::int64_t(ref.size()), std::int64_t(held.size())});
    EXPECT_EQ(r.fidelity.images, M) << "every set as large as the smaller half";
    EXPECT_EQ(r.fidelity.note.empty(), M == 16) << r.fidelity.note;
    EXPECT_EQ(r.fidelity.classifier.test_images, std::int64_t(held.size())) << "the held-out half";
    EXPECT_NE(r.fidelity.reference.find(fmt::format("{} of the {} images of the reference half", M, ref.size())), std::string::npos)
        << r.fidelity.reference;
    {
        auto names = [](const io::ImageFolder& f, const std::vector<std::int64_t>& idx) {
            std::set<std::string> out;
            for (auto i : idx) out.insert(f.relative[std::size_t(i)]);
            return out;
        };
        const auto f0 = io::scan_image_folder(o.real_dir);
        write_class_images(root / "grown" / "dark", 0, 11);
        write_class_images(root / "grown" / "light", 1, 9, true);
        write_class_images(root / "grown" / "light" / "new", 1, 7);
        const auto f1 = io::scan_image_folder(root / "grown");
        const auto [ref1, held1] = detail::folder_halves(f1);
        const auto h0 = names(f0, held), h1 = names(f1, held1);
        for (const auto& n : names(f0, ref)) EXPECT_FALSE(h1.count(n)) << n << " moved to the held-out half";
        for (const auto& n : h0) EXPECT_TRUE(h1.count(n)) << n << " left the held-out half";
    }
    EXPECT_TRUE(std::isfinite(r.fidelity.real_vs_real.value));
    ASSERT_TRUE(me.fd.has_value());
    EXPECT_TRUE(std::isfinite(me.fd->value));

    // the saved classifier is reused for the same folder, refused for Fashion-MNIST
    const auto again = evaluate<B>(b, {{"original", "m", &m}}, o);
    EXPECT_FALSE(again.fidelity.classifier_trained_now);
    EXPECT_DOUBLE_EQ(again.fidelity.real_vs_real.value, r.fidelity.real_vs_real.value);
    try {
        load_or_train_fd_classifier(b, o.fd_classifier, o.fd_train);
        ADD_FAILURE() << "a folder's classifier was accepted for Fashion-MNIST";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("was trained on"), std::string::npos) << e.what();
    }

    // a classifier trained on other data: refused before any measurement (no progress reported)
    {
        EvalOptions fo = o;
        fo.real_dir.clear();
        std::int64_t calls = 0;
        try {
            evaluate<B>(b, {{"original", "m", &m}}, fo, std::nullopt, [&](const std::string&, std::int64_t, std::int64_t) { ++calls; });
            ADD_FAILURE() << "Fashion-MNIST evaluation accepted a folder's classifier";
        } catch (const ArgumentError& e) {
            EXPECT_NE(std::string(e.what()).find("fashion-mnist/train"), std::string::npos) << e.what();
        }
        EXPECT_EQ(calls, 0);
    }

    // a folder whose path is not UTF-8: the classifier file could not record it, so refused up front
    {
        const fs::path odd = root / std::string("\xff\xfe-bytes");
        write_class_images(odd / "dark", 0, 3);
        write_class_images(odd / "light", 1, 3);
        EvalOptions fo = o;
        fo.real_dir = odd;
        fo.fd_classifier = root / "fd-odd.safetensors";
        std::int64_t calls = 0;
        EXPECT_THROW(evaluate<B>(b, {{"original", "m", &m}}, fo, std::nullopt, [&](const std::string&, std::int64_t, std::int64_t) { ++calls; }),
                     ArgumentError);
        EXPECT_EQ(calls, 0);
        fo.fidelity = false;  // everything else works
        EXPECT_EQ(evaluate<B>(b, {{"original", "m", &m}}, fo).models[0].fpr.real_images, 6);
    }

    // unlabelled (flat) folder: false positives still measured, fidelity skipped with the reason
    write_class_images(root / "flat", 0, 5);
    o.real_dir = root / "flat";
    o.fd_classifier = root / "fd-flat.safetensors";
    const auto flat = evaluate<B>(b, {{"original", "m", &m}}, o);
    EXPECT_EQ(flat.models[0].fpr.real_images, 5);
    EXPECT_FALSE(flat.fidelity.computed);
    EXPECT_NE(flat.fidelity.skipped.find("sub-folders"), std::string::npos) << flat.fidelity.skipped;
    EXPECT_FALSE(fs::exists(o.fd_classifier));
    const auto files = write_report(flat, root / "report");
    std::ifstream md(root / "report" / "report.md");
    std::stringstream ss;
    ss << md.rdbuf();
    EXPECT_NE(ss.str().find("Not computed: "), std::string::npos);
    EXPECT_NE(ss.str().find("from the folder " + (root / "flat").string() + ", 5 available"), std::string::npos);
}

TEST(EvaluationArgs, Rejected) {
    B b(1);
    auto m = random_model(b, 1);
    EvalOptions o;
    o.images = 8;
    o.fidelity = false;
    o.attacks = {"no-such-attack"};
    EXPECT_THROW(evaluate<B>(b, {{"original", "m", &m}}, o), ArgumentError);
    o.attacks = {};
    o.images = 1;
    EXPECT_THROW(evaluate<B>(b, {{"original", "m", &m}}, o), ArgumentError);
}

}  // namespace
}  // namespace sgf::eval
