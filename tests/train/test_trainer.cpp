// Training behaviour on the tiny preset (float32 CPU backend).
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include "blob_images.hpp"

#include <chrono>

namespace sgf::test {
namespace {

using B = EigenCpu;

/// Synthetic "real" images: smooth random blobs in [-1, 1], deterministic in (seed, step).
Tensor<B> real_batch(B& b, const ModelConfig& cfg, int n, std::uint64_t step) {
    return from_host(b, blob_images(cfg, n, step));
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
    const auto t0 = std::chrono::steady_clock::now();
    double acc = 0;
    int steps = 0;
    for (; steps < 4000; ++steps) {
        auto real = real_batch(b, cfg, tc.batch, steps);
        auto st = tr.step(real);
        acc = 0.9 * acc + 0.1 * st.g.bit_accuracy;
        if (steps > 100 && acc > 0.9) break;
        if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(90)) break;
    }
    // evaluate the EMA generator with fresh fingerprints
    auto gb = draw_generator_batch(b, cfg, 64, 777, 0);
    auto g = tr.generator_ema().forward(b, gb.z, gb.c1, gb.noise1);
    auto f = tr.decoder().forward(b, g.image());
    const double eval_acc = bit_accuracy(b, f.output(), cfg.z_dim, gb.c1);
    std::printf("tiny preset: %d steps, running bit accuracy %.3f, EMA generator bit accuracy %.3f\n", steps, acc, eval_acc);
    EXPECT_GT(eval_acc, 0.75);
}

}  // namespace
}  // namespace sgf::test
