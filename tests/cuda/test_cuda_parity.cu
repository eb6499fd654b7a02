// CPU-GPU parity: the same model decodes the same images to the same bits on the Eigen CPU backend
// and the CUDA backend (both modes), a fingerprint baked on either gives the same images, and 10
// Trainer steps from the same initial weights and seeds give the same losses within the documented
// tolerance (docs/cuda.md, "CPU-GPU parity"). The CPU half is parity_cpu.cpp. Skipped without a GPU.
#include <sgf/backends/cuda.cuh>

#include "parity.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

namespace sgf::parity {
namespace {

#define SGF_REQUIRE_GPU() \
    if (!cuda::gpu_available()) GTEST_SKIP() << "no CUDA GPU: " << cuda::no_gpu_reason()

using Gpu = cuda::Backend<float>;

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = double(a[i]) - double(b[i]);
        num += d * d, den += double(b[i]) * double(b[i]);
    }
    return den > 0 ? num / den : num;
}

struct ModeCase {
    const char* name;
    cuda::Mode mode;
    double logit_nmse;  // normalised MSE of the logits, GPU vs CPU
};

class Parity : public ::testing::TestWithParam<ModeCase> {};

TEST_P(Parity, TheSameModelDecodesTheSameImagesToTheSameBits) {
    SGF_REQUIRE_GPU();
    const int n = 64;
    const auto images = cpu_generate_8bit(n, 77);
    Gpu gpu(cuda::Options{.mode = GetParam().mode});
    const auto cpu_logits = cpu_decode_logits(images);
    const auto gpu_logits = decode_logits(gpu, default_model(), images);
    ASSERT_EQ(cpu_logits.size(), gpu_logits.size());
    const double e = nmse(gpu_logits, cpu_logits);
    // A bit may differ only where the logit is within rounding of 0 (|l| < 1e-3 of the logits' RMS).
    double rms = 0;
    for (float v : cpu_logits) rms += double(v) * v;
    rms = std::sqrt(rms / double(cpu_logits.size()));
    std::size_t differ = 0, differ_far_from_zero = 0;
    for (std::size_t i = 0; i < cpu_logits.size(); ++i)
        if ((cpu_logits[i] > 0) != (gpu_logits[i] > 0)) {
            ++differ;
            if (std::abs(cpu_logits[i]) > 1e-3 * rms) ++differ_far_from_zero;
        }
    std::printf("  %s mode: logits nmse %.3g, %zu of %zu bits differ (%zu away from 0)\n", GetParam().name, e, differ,
                cpu_logits.size(), differ_far_from_zero);
    EXPECT_LT(e, GetParam().logit_nmse);
    EXPECT_EQ(differ_far_from_zero, 0u);
}

TEST_P(Parity, AFingerprintBakedOnEitherBackendGivesTheSameImages) {
    SGF_REQUIRE_GPU();
    std::vector<float> bits(128);
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = float((philox::draw(RngKey{5, 6, 0}, i).v[0] >> 7) & 1);
    Gpu gpu(cuda::Options{.mode = GetParam().mode});
    const auto cpu_img = cpu_baked_images(bits, 8, 31);
    const auto gpu_img = baked_images(gpu, default_model(), bits, 8, 31);
    ASSERT_EQ(cpu_img.size(), gpu_img.size());
    const double e = nmse(gpu_img, cpu_img);
    std::printf("  %s mode: baked-generator images nmse %.3g\n", GetParam().name, e);
    EXPECT_LT(e, GetParam().logit_nmse);
}

INSTANTIATE_TEST_SUITE_P(CudaParity, Parity,
                         ::testing::Values(ModeCase{"checking", cuda::Mode::checking, 1e-9},
                                           ModeCase{"fast", cuda::Mode::fast, 1e-5}),
                         [](const auto& info) { return std::string(info.param.name); });

// Ten steps of the whole trainer (G+F step, D step, R1 on a float64 copy of D every 3 steps, EMA),
// checking mode, on each trainer path (TrainPath): the float32 trajectories differ only by rounding,
// which the 10 steps amplify a little. A decoder-only step has no D terms (0 on both sides).
class TrainingParity : public ::testing::TestWithParam<TrainPath> {};

TEST_P(TrainingParity, TenTrainingStepsGiveTheSameLosses) {
    SGF_REQUIRE_GPU();
    const int steps = 10;
    Gpu gpu(cuda::Options{.mode = cuda::Mode::checking});
    const auto [cfg, tc] = training_setup(GetParam());
    const auto g = training_losses(gpu, cfg, tc, steps);
    const auto c = cpu_training_losses(steps, GetParam());
    ASSERT_EQ(g.size(), c.size());
    const char* names[] = {"G+F total", "latent", "fingerprint", "D total", "R1"};
    double worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const double rel = std::abs(g[i] - c[i]) / std::max(std::abs(c[i]), 1e-6);
        worst = std::max(worst, rel);
        EXPECT_LT(rel, 1e-3) << "step " << i / 5 << " " << names[i % 5] << ": GPU " << g[i] << " CPU " << c[i];
    }
    std::printf("  10 steps (%s), checking mode: worst relative loss difference %.3g\n", path_name(GetParam()), worst);
}

// Runs without a GPU: the CPU half of each path above is finite and differs from the plain path's,
// so each TrainPath really reaches the trainer and the GPU comparison tests a different step.
TEST(CudaParity, EachTrainerPathChangesTheCpuLosses) {
    const int steps = 3;
    const auto plain = cpu_training_losses(steps, TrainPath::plain);
    for (TrainPath p : {TrainPath::clamp_decoder_input, TrainPath::decoder_only, TrainPath::immunised}) {
        const auto l = cpu_training_losses(steps, p);
        ASSERT_EQ(l.size(), plain.size()) << path_name(p);
        for (double v : l) EXPECT_TRUE(std::isfinite(v)) << path_name(p);
        EXPECT_NE(l, plain) << path_name(p) << " gives the plain path's losses";
    }
}

INSTANTIATE_TEST_SUITE_P(CudaParity, TrainingParity,
                         ::testing::Values(TrainPath::plain, TrainPath::clamp_decoder_input, TrainPath::decoder_only,
                                           TrainPath::immunised),
                         [](const auto& info) { return std::string(path_name(info.param)); });

}  // namespace
}  // namespace sgf::parity
