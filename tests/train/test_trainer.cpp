// Training behaviour on the tiny preset (float32 CPU backend).
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include "blob_images.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

namespace sgf::test {
namespace {

using B = EigenCpu;

/// Synthetic "real" images: smooth random blobs in [-1, 1], deterministic in (seed, step).
Tensor<B> real_batch(B& b, const ModelConfig& cfg, int n, std::uint64_t step) {
    return from_host(b, blob_images(cfg, n, step));
}

TEST(TrainConfig, ValidateRefusesEveryUnusableValueAndAcceptsTheDefaults) {
    EXPECT_NO_THROW(validate(TrainConfig{}));
    const double nan = std::nan(""), inf = INFINITY;
    const std::vector<std::pair<const char*, std::function<void(TrainConfig&)>>> bad = {
        {"batch 0", [](TrainConfig& t) { t.batch = 0; }},
        {"lr 0", [](TrainConfig& t) { t.adam.lr = 0; }},
        {"lr nan", [&](TrainConfig& t) { t.adam.lr = nan; }},
        {"beta1 1", [](TrainConfig& t) { t.adam.beta1 = 1; }},
        {"beta2 -0.1", [](TrainConfig& t) { t.adam.beta2 = -0.1; }},
        {"eps 0", [](TrainConfig& t) { t.adam.eps = 0; }},
        {"g interval -1", [](TrainConfig& t) { t.g_reg_interval = -1; }},
        {"d interval -1", [](TrainConfig& t) { t.d_reg_interval = -1; }},
        {"r1 gamma inf", [&](TrainConfig& t) { t.r1_gamma = inf; }},
        {"ema -1", [](TrainConfig& t) { t.ema_kimg = -1; }},
        {"ema rampup nan", [&](TrainConfig& t) { t.ema_rampup = nan; }},
        {"w_adversarial -1", [](TrainConfig& t) { t.weights.adversarial = -1; }},
        {"w_consistency nan", [&](TrainConfig& t) { t.weights.consistency = nan; }},
        {"w_latent inf", [&](TrainConfig& t) { t.weights.latent = inf; }},
        {"w_fingerprint -2", [](TrainConfig& t) { t.weights.fingerprint = -2; }},
        {"consistency rampup -1", [](TrainConfig& t) { t.consistency_rampup_kimg = -1; }},
        {"immunise strength -1 (even when off)", [](TrainConfig& t) { t.immunise.strength = -1; }},
        {"decoder-only without fingerprint", [](TrainConfig& t) { t.decoder_only = true; t.fingerprint = false; }},
        {"x-flip in a decoder-only run (no reals)", [](TrainConfig& t) { t.decoder_only = true; t.x_flip = true; }},
    };
    for (const auto& [what, mutate] : bad) {
        TrainConfig t;
        mutate(t);
        EXPECT_THROW(validate(t), ArgumentError) << what;
    }
    // the edges that stay allowed
    TrainConfig t;
    t.r1_gamma = 0;
    t.d_reg_interval = 0;
    t.weights = {0, 0, 0, 0};
    t.adam.beta1 = 0;
    t.x_flip = true;
    EXPECT_NO_THROW(validate(t));
    // x_flip is written only when on, and files without the key read as off
    EXPECT_EQ(nlohmann::json(t).at("x_flip"), true);
    EXPECT_TRUE(nlohmann::json(t).get<TrainConfig>().x_flip);
    EXPECT_FALSE(nlohmann::json(TrainConfig{}).contains("x_flip"));
    EXPECT_FALSE(nlohmann::json(TrainConfig{}).get<TrainConfig>().x_flip);
}

// The training config in checkpoints and release files: integers had to be JSON integers in range,
// but nlohmann's get_to wrapped "batch": 2^32 + 16 to 16, cut 16.9 to 16, cast 1e20 to INT_MIN and
// read "seed": -1 as 2^64 - 1. Each is now a FormatError naming the key.
TEST(TrainConfig, JsonIntegersMustBeIntegersInRange) {
    const nlohmann::json good = TrainConfig{};
    EXPECT_EQ(good.get<TrainConfig>().batch, 16);
    const std::vector<std::pair<std::string, nlohmann::json>> bad = {
        {"batch", 4294967312ull}, {"batch", 16.9}, {"batch", 1e20}, {"d_reg_interval", 2147483648ll},
        {"g_reg_interval", "4"},  {"seed", -1},    {"seed", 1.5}};
    for (const auto& [key, value] : bad) {
        nlohmann::json j = good;
        j[key] = value;
        try {
            j.get<TrainConfig>();
            ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
        } catch (const FormatError& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        }
    }
    nlohmann::json big = good;
    big["seed"] = 18446744073709551615ull;
    EXPECT_EQ(big.get<TrainConfig>().seed, 18446744073709551615ull);
}

TEST(Trainer, OneStepLowersTheJointLossOnAFixedBatch) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    tc.adam.lr = 0.002;
    Trainer<B> tr(b, cfg, tc);
    auto gb = draw_generator_batch(b, cfg, 8, 5, 0);
    auto& G = tr.generator();
    auto& F = tr.decoder();
    auto& D = tr.discriminator();
    const auto before = generator_step_grads(b, G, F, D, gb, tc.weights, GradMode::overwrite);
    tr.opt_generator().step(b);
    tr.opt_decoder().step(b);
    const auto after = generator_step_grads(b, G, F, D, gb, tc.weights, GradMode::overwrite);
    EXPECT_LT(after.total, before.total) << "before " << before.total << " after " << after.total;
}

TEST(Trainer, TinyPresetLearnsToDecodeFingerprints) {
    B b(2);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    tc.seed = 3;
    tc.adam.lr = 0.005;  // a faster schedule than the paper's 0.002 so the test fits a CPU minute
    Trainer<B> tr(b, cfg, tc);
    // No wall-clock bound: the run is the same on a loaded machine (about 3,300 steps, 26 s on 2
    // idle cores in Release), so the result does not depend on how busy the machine is.
    double acc = 0;
    int steps = 0;
    for (; steps < 4000; ++steps) {
        auto real = real_batch(b, cfg, tc.batch, steps);
        auto st = tr.step(real);
        acc = 0.9 * acc + 0.1 * st.g.bit_accuracy;
        if (steps > 100 && acc > 0.9) break;
    }
    // evaluate the EMA generator with fresh fingerprints
    auto gb = draw_generator_batch(b, cfg, 64, 777, 0);
    auto g = tr.generator_ema().forward(b, gb.z, gb.c1, gb.noise1);
    auto f = tr.decoder().forward(b, g.image());
    const double eval_acc = bit_accuracy(b, f.output(), cfg.z_dim, gb.c1);
    std::printf("tiny preset: %d steps, running bit accuracy %.3f, EMA generator bit accuracy %.3f\n", steps, acc, eval_acc);
    EXPECT_GT(eval_acc, 0.75);
}

std::vector<std::vector<float>> snapshot(B& b, const std::vector<Parameter<B>*>& ps) {
    std::vector<std::vector<float>> out;
    for (const auto* p : ps) out.push_back(to_host_vector<float>(b, p->value));
    return out;
}

TEST(Trainer, ConsistencyWeightRampsUpLinearlyOverItsKimg) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    tc.weights.consistency = 2.0;
    tc.consistency_rampup_kimg = 0.032;  // 4 steps of 8 images
    Trainer<B> tr(b, cfg, tc);
    const double expected[] = {0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0};
    for (int s = 0; s < 7; ++s) {
        tr.set_step_count(s);
        const LossWeights w = tr.effective_weights();
        EXPECT_DOUBLE_EQ(w.consistency, expected[s]) << "step " << s;
        EXPECT_EQ(w.latent, tc.weights.latent);  // only the consistency weight ramps
        EXPECT_EQ(w.fingerprint, tc.weights.fingerprint);
        EXPECT_EQ(w.adversarial, tc.weights.adversarial);
    }
    // the ramp also drives the real steps: the logged consistency term is weight x MSE, so it is 0 at step 0
    tr.set_step_count(0);
    EXPECT_EQ(tr.step(real_batch(b, cfg, tc.batch, 0)).g.consistency, 0.0);
    EXPECT_GT(tr.step(real_batch(b, cfg, tc.batch, 1)).g.consistency, 0.0);
    // the unfingerprinted baseline has no consistency, latent or fingerprint term at any step
    tc.fingerprint = false;
    Trainer<B> base(b, cfg, tc);
    base.set_step_count(10);
    const LossWeights w = base.effective_weights();
    EXPECT_EQ(w.consistency, 0.0);
    EXPECT_EQ(w.latent, 0.0);
    EXPECT_EQ(w.fingerprint, 0.0);
    EXPECT_EQ(w.adversarial, tc.weights.adversarial);
}

TEST(Trainer, GeneratorEmaFollowsItsHalfLifeWithTheRampUp) {
    // after each step: ema = beta * ema + (1 - beta) * G, beta = 0.5^(batch / half_life) with the
    // half-life min(ema_kimg * 1000, images seen * ema_rampup) (StyleGAN2-ADA's ramp)
    for (const double rampup : {0.05, 0.0}) {
        B b(1);
        const ModelConfig cfg = ModelConfig::tiny();
        TrainConfig tc;
        tc.batch = 8;
        tc.ema_kimg = 0.1;  // 100 images
        tc.ema_rampup = rampup;
        Trainer<B> tr(b, cfg, tc);
        for (int s = 0; s < 3; ++s) {
            const auto ema0 = snapshot(b, tr.generator_ema().parameters());
            tr.step(real_batch(b, cfg, tc.batch, s));
            const auto g1 = snapshot(b, tr.generator().parameters());
            const auto ema1 = snapshot(b, tr.generator_ema().parameters());
            const double images = double(tr.step_count()) * tc.batch;
            const double half_life = rampup > 0 ? std::min(100.0, images * rampup) : 100.0;
            const double beta = std::pow(0.5, tc.batch / half_life);
            std::size_t checked = 0;
            double worst = 0;
            for (std::size_t t = 0; t < ema0.size(); ++t)
                for (std::size_t i = 0; i < ema0[t].size(); ++i, ++checked) {
                    const double want = beta * ema0[t][i] + (1 - beta) * g1[t][i];
                    worst = std::max(worst, std::abs(double(ema1[t][i]) - want) / (1e-6 + std::abs(want)));
                }
            EXPECT_GT(checked, 100u);
            EXPECT_LT(worst, 1e-4) << "rampup " << rampup << ", step " << s << ", beta " << beta;
        }
    }
}

TEST(Trainer, DecoderOnlyTrainsTheDecoderAndLeavesGeneratorAndDiscriminatorAsTheyAre) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    Trainer<B> joint(b, cfg, tc);  // a few joint steps first, so that G and its EMA differ
    for (int s = 0; s < 3; ++s) joint.step(real_batch(b, cfg, tc.batch, s));
    tc.decoder_only = true;
    Trainer<B> tr(b, cfg, tc);
    copy_values(b, joint.generator().parameters(), tr.generator().parameters());
    copy_values(b, joint.generator_ema().parameters(), tr.generator_ema().parameters());
    copy_values(b, joint.decoder().parameters(), tr.decoder().parameters());
    copy_values(b, joint.discriminator().parameters(), tr.discriminator().parameters());
    const auto G0 = snapshot(b, tr.generator().parameters()), E0 = snapshot(b, tr.generator_ema().parameters());
    const auto F0 = snapshot(b, tr.decoder().parameters()), D0 = snapshot(b, tr.discriminator().parameters());
    for (int s = 0; s < 3; ++s) {
        const StepStats st = tr.step(real_batch(b, cfg, tc.batch, 10 + s));
        EXPECT_EQ(st.g.adversarial, 0.0);
        EXPECT_EQ(st.g.consistency, 0.0);
        EXPECT_GT(st.g.fingerprint, 0.0);
        EXPECT_GT(st.g.latent, 0.0);
        EXPECT_DOUBLE_EQ(st.g.total, st.g.latent + st.g.fingerprint);
        EXPECT_EQ(st.d.total, 0.0);
        EXPECT_FALSE(st.r1);
    }
    EXPECT_EQ(tr.step_count(), 3);
    EXPECT_EQ(snapshot(b, tr.generator().parameters()), G0);
    EXPECT_EQ(snapshot(b, tr.generator_ema().parameters()), E0);
    EXPECT_EQ(snapshot(b, tr.discriminator().parameters()), D0);
    const auto F1 = snapshot(b, tr.decoder().parameters());
    int changed = 0;
    for (std::size_t i = 0; i < F0.size(); ++i) changed += F1[i] != F0[i];
    EXPECT_EQ(changed, int(F0.size())) << "every decoder tensor gets a gradient";
}

TEST(Trainer, DecoderOnlyStepLowersTheDecoderLossOnAFixedBatch) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    tc.decoder_only = true;
    Trainer<B> tr(b, cfg, tc);
    auto gb = draw_generator_batch(b, cfg, 8, 5, 0);
    const Tensor<B> img = tr.generator_ema().forward(b, gb.z, gb.c1, gb.noise1).image().clone(b);
    const auto before = decoder_grads(b, tr.decoder(), img, gb, tc.weights, GradMode::overwrite);
    tr.opt_decoder().step(b);
    const auto after = decoder_grads(b, tr.decoder(), img, gb, tc.weights, GradMode::overwrite);
    EXPECT_LT(after.total, before.total) << "before " << before.total << " after " << after.total;
}

TEST(Trainer, DecoderOnlyWithImmunisationReadsPerturbedImages) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 8;
    tc.decoder_only = true;
    Trainer<B> plain(b, cfg, tc);
    tc.immunise.enabled = true;
    Trainer<B> robust(b, cfg, tc);  // same seed: the same weights, z and fingerprints
    const auto real = real_batch(b, cfg, tc.batch, 0);
    const StepStats a = plain.step(real), c = robust.step(real);
    EXPECT_NE(a.g.latent, c.g.latent) << "the perturbations change what F reads";
    EXPECT_NE(a.g.fingerprint, c.g.fingerprint);
    EXPECT_EQ(snapshot(b, plain.generator_ema().parameters()), snapshot(b, robust.generator_ema().parameters()));
}

TEST(Trainer, DecoderOnlyIsKeptInTheTrainingConfigJson) {
    TrainConfig tc;
    tc.decoder_only = true;
    const nlohmann::json j = tc;
    EXPECT_TRUE(j.get<TrainConfig>().decoder_only);
    nlohmann::json plain = TrainConfig{};
    EXPECT_FALSE(plain.contains("decoder_only")) << "written only when set, so older readers keep working";
    EXPECT_FALSE(plain.get<TrainConfig>().decoder_only);
    tc.fingerprint = false;
    B b(1);
    EXPECT_THROW((Trainer<B>(b, ModelConfig::tiny(), tc)), ArgumentError) << "nothing to train without the fingerprint losses";
}

TEST(Trainer, RoundTo8BitsQuantisesTheChosenSamplesOnly) {
    B b(1);
    std::vector<float> v;
    for (int i = 0; i < 4 * 6; ++i) v.push_back(-1.3f + 0.11f * float(i));  // some values outside [-1, 1]
    Tensor<B> x = from_host(b, Shape{4, 1, 2, 3}, std::span<const float>(v));
    round_to_8_bits(b, x, 1, 2);
    const auto h = to_host_vector<float>(b, x);
    for (int n = 0; n < 4; ++n)
        for (int k = 0; k < 6; ++k) {
            const int i = n * 6 + k;
            if (n % 2 == 0) {
                EXPECT_EQ(h[i], v[i]) << "sample " << n << " is not in the rounded set";
                continue;
            }
            const double u8 = (double(h[i]) + 1.0) * 127.5;
            EXPECT_NEAR(u8, std::round(u8), 1e-3) << i;
            EXPECT_GE(u8, -1e-3);
            EXPECT_LE(u8, 255.0 + 1e-3);
            const double expect = std::clamp(std::round((std::clamp(double(v[i]), -1.0, 1.0) + 1.0) * 127.5), 0.0, 255.0);
            EXPECT_NEAR(u8, expect, 1e-3) << i;
        }
}

TEST(Trainer, RoundTo8BitsStrideOneAndNothingToRound) {
    B b(1);
    std::vector<float> v;
    for (int i = 0; i < 3 * 4; ++i) v.push_back(-1.1f + 0.197f * float(i));
    Tensor<B> x = from_host(b, Shape{3, 1, 2, 2}, std::span<const float>(v));
    round_to_8_bits(b, x, 1, 1);  // samples 1 and 2, as one contiguous range
    auto h = to_host_vector<float>(b, x);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(h[i], i < 4 ? v[i] : from_u8(to_u8(v[i]))) << i;
    Tensor<B> y = from_host(b, Shape{3, 1, 2, 2}, std::span<const float>(v));
    round_to_8_bits(b, y, 3, 1);  // first beyond the batch: nothing changes
    round_to_8_bits(b, y, 5, 2);
    h = to_host_vector<float>(b, y);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(h[i], v[i]) << i;
    EXPECT_THROW(round_to_8_bits(b, y, -1, 1), ArgumentError);
    EXPECT_THROW(round_to_8_bits(b, y, 0, 0), ArgumentError);
}

}  // namespace
}  // namespace sgf::test
