// End-to-end checks of the CUDA backend through the real networks and training objective: the
// tiny preset's G+F gradients on the GPU (checking mode) against the float64 reference backend,
// and a few Trainer steps in fast mode. Complements the op-by-op conformance suite: a wrong
// pointer, beta or aliasing assumption in the way layers call the ops shows up here. Skipped
// without a GPU.
#include <sgf/backends/cuda.cuh>
#include <sgf/backends/reference.hpp>
#include <sgf/nets.hpp>
#include <sgf/sgf.hpp>
#include <sgf/train/trainer.hpp>

#include <gtest/gtest.h>

#include "blob_images.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

namespace sgf::test {
namespace {

#define SGF_REQUIRE_GPU() \
    if (!cuda::gpu_available()) GTEST_SKIP() << "no CUDA GPU: " << cuda::no_gpu_reason()

using Gpu = cuda::Backend<float>;
using Ref = reference::Backend;


/// Every gradient of a network, concatenated, as doubles.
template <class B>
std::vector<double> all_grads(B& b, const std::vector<Parameter<B>*>& ps) {
    std::vector<double> out;
    for (auto* p : ps) {
        const auto g = to_host_vector<double>(b, p->grad);
        out.insert(out.end(), g.begin(), g.end());
    }
    return out;
}

double nmse(const std::vector<double>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return den > 0 ? num / den : num;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

TEST(CudaTraining, TinyPresetGradientsMatchTheFloat64Reference) {
    SGF_REQUIRE_GPU();
    Gpu gpu(cuda::Options{.mode = cuda::Mode::checking, .synchronous = true});
    Ref ref;
    ModelConfig cfg = ModelConfig::tiny();
    cfg.resolution = 8;  // keeps the float64 reference fast
    const int N = 4;
    // identical initialisation: both backends draw the same Philox numbers (rounded to float on the GPU)
    MetaGenerator<Gpu> Gg(gpu, cfg, 1);
    MetaGenerator<Ref> Gr(ref, cfg, 1);
    auto Fg = make_decoder(gpu, cfg, 2);
    auto Fr = make_decoder(ref, cfg, 2);
    auto Dg = make_discriminator(gpu, cfg, 3);
    auto Dr = make_discriminator(ref, cfg, 3);
    for (auto* p : Gg.parameters())
        if (p->name.find("noise_strength") != std::string::npos) gpu.fill(p->value.data(), 1, 0.3f);
    for (auto* p : Gr.parameters())
        if (p->name.find("noise_strength") != std::string::npos) ref.fill(p->value.data(), 1, 0.3);
    auto gbg = draw_generator_batch(gpu, cfg, N, 11, 0);
    auto gbr = draw_generator_batch(ref, cfg, N, 11, 0);
    const LossWeights w{};

    const auto lg = generator_step_grads(gpu, Gg, Fg, Dg, gbg, w, GradMode::overwrite);
    const auto lr = generator_step_grads(ref, Gr, Fr, Dr, gbr, w, GradMode::overwrite);
    EXPECT_LT(rel(lg.total, lr.total), 1e-4) << lg.total << " vs " << lr.total;
    EXPECT_LT(rel(lg.adversarial, lr.adversarial), 1e-4);
    EXPECT_LT(rel(lg.consistency, lr.consistency), 1e-4);
    EXPECT_LT(nmse(all_grads(gpu, Gg.parameters()), all_grads(ref, Gr.parameters())), 1e-6) << "generator gradients";
    EXPECT_LT(nmse(all_grads(gpu, Fg.parameters()), all_grads(ref, Fr.parameters())), 1e-6) << "decoder gradients";

    const auto realh = blob_images(cfg, N, 0);
    auto real_g = from_host(gpu, realh);
    auto real_r = from_host(ref, realh);
    auto fake_g = Gg.forward(gpu, gbg.z, gbg.c1, gbg.noise1);
    auto fake_r = Gr.forward(ref, gbr.z, gbr.c1, gbr.noise1);
    EXPECT_LT(nmse(to_host_vector<double>(gpu, fake_g.image()), to_host_vector<double>(ref, fake_r.image())), 1e-9)
        << "generated images";
    const auto dg = discriminator_grads(gpu, Dg, fake_g.image(), real_g, GradMode::overwrite);
    const auto dr = discriminator_grads(ref, Dr, fake_r.image(), real_r, GradMode::overwrite);
    EXPECT_LT(rel(dg.total, dr.total), 1e-4) << dg.total << " vs " << dr.total;
    EXPECT_LT(nmse(all_grads(gpu, Dg.parameters()), all_grads(ref, Dr.parameters())), 1e-6) << "discriminator gradients";
}

TEST(CudaTraining, FastModeTrainerStepsStayFiniteAndReportSpeed) {
    SGF_REQUIRE_GPU();
    for (const char* preset : {"tiny", "small"}) {
        Gpu gpu;  // fast mode
        const ModelConfig cfg = std::string(preset) == "tiny" ? ModelConfig::tiny() : ModelConfig::small();
        TrainConfig tc;
        tc.batch = 16;
        tc.seed = 5;
        Trainer<Gpu> tr(gpu, cfg, tc);
        auto real = from_host(gpu, blob_images(cfg, tc.batch, 0));
        const int steps = 12;
        StepStats st;
        auto t0 = std::chrono::steady_clock::now();
        for (int s = 0; s < steps; ++s) {
            if (s == 2) gpu.synchronize(), t0 = std::chrono::steady_clock::now();  // after plan building / warm-up
            ASSERT_NO_THROW(st = tr.step(real)) << preset << " step " << s;
        }
        gpu.synchronize();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / (steps - 2);
        EXPECT_TRUE(std::isfinite(st.g.total) && std::isfinite(st.d.total)) << preset;
        for (auto* p : tr.generator().parameters())
            EXPECT_TRUE(gpu.all_finite(std::int64_t(p->value.size()), p->value.data())) << preset << " " << p->name;
        std::printf("  %s preset, batch %lld, fast mode on %s: %.2f ms/step, %zu conv plans, peak %.1f MiB\n", preset,
                    static_cast<long long>(tc.batch), gpu.device_name().c_str(), 1e3 * sec, gpu.conv_plan_count(),
                    double(gpu.allocator_stats().peak_in_use_bytes) / double(1 << 20));
    }
}

}  // namespace
}  // namespace sgf::test
