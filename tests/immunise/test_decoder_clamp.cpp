// The decoder-input clamp (TrainConfig::clamp_decoder_input, clamp_unit_forward in objective.hpp):
// F reads clamp(G's image, -1, 1), as a saved image holds it, and G's decoder gradient is zero where a
// pixel saturates. Forward against std::clamp, float64 gradient checks of the op and of the whole
// objective with saturated pixels, the trainer (joint and decoder-only) and the config's JSON.
#include "blob_images.hpp"
#include "gradcheck.hpp"
#include "reference_objective.hpp"

#include <sgf/train/objective.hpp>
#include <sgf/train/trainer.hpp>

namespace sgf::test {
namespace {

using BF = EigenCpu;

TEST(ClampUnit, ForwardIsStdClampAndMaskIsItsDerivative) {
    BF b(1);
    const Shape s{2, 1, 3, 3};
    std::vector<float> x = {-3.f, -1.f, -0.999f, 0.f, 0.5f, 0.999f, 1.f, 1.001f, 7.f,
                            -1.001f, 2.f, -2.f, 0.25f, -0.25f, 1e-7f, -1e-7f, 0.9f, -0.9f};
    const auto t = from_host<BF, float>(b, s, std::span<const float>(x));
    const auto ctx = clamp_unit_forward(b, t);
    const auto y = to_host_vector<float>(b, ctx.output());
    const auto m = to_host_vector<float>(b, ctx.mask);
    ASSERT_EQ(y.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(y[i], std::clamp(x[i], -1.f, 1.f)) << i;
        EXPECT_EQ(m[i], (x[i] >= -1.f && x[i] <= 1.f) ? 1.f : 0.f) << i;
    }
    // backward multiplies by the mask
    std::vector<float> g(x.size(), 3.f);
    auto dx = to_host_vector<float>(b, clamp_unit_backward(b, ctx, from_host<BF, float>(b, s, std::span<const float>(g))));
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(dx[i], 3.f * m[i]) << i;
    EXPECT_THROW(clamp_unit_backward(b, ctx, Tensor<BF>(b, Shape{1, 1, 3, 3})), ShapeError);
}

TEST(ClampUnit, GradientCheck) {
    B64 b;
    const Shape s{2, 3, 4, 4};
    auto xv = random_vector(std::size_t(s.size()), 5, 2.0);  // about a third of the values saturate
    for (auto& v : xv)
        if (std::abs(std::abs(v) - 1.0) < 1e-3) v *= 1.01;  // no value within a finite-difference step of a kink
    Tensor<B64> x = from_host<B64, double>(b, s, std::span<const double>(xv));
    const auto proj = random_vector(std::size_t(s.size()), 6);
    auto f = [&] {
        const auto y = to_host_vector<double>(b, clamp_unit_forward(b, x).output());
        double acc = 0;
        for (std::size_t i = 0; i < y.size(); ++i) acc += proj[i] * y[i];
        return acc;
    };
    const auto ctx = clamp_unit_forward(b, x);
    Tensor<B64> dx = clamp_unit_backward(b, ctx, from_host<B64, double>(b, s, std::span<const double>(proj)));
    const auto mask = to_host_vector<double>(b, ctx.mask);
    double saturated = 0;
    for (double v : mask) saturated += v == 0;
    EXPECT_GT(saturated, 0.1 * double(mask.size()));
    EXPECT_LT(saturated, 0.9 * double(mask.size()));
    std::vector<GradTarget> t{target_of(b, "x", x, dx)};
    expect_gradients(f, std::move(t), 1e-5, 1e-7, 96);
}

/// Scales G's ToRGB weights so that part of every image saturates.
template <Backend B>
void overdrive(B& b, MetaGenerator<B>& G, double factor) {
    using T = typename B::Scalar;
    for (auto* p : G.parameters())
        if (p->name.find("torgb") != std::string::npos && p->name.find("weight") != std::string::npos)
            b.axpby(p->value.size(), T(0), p->value.data(), T(factor), p->value.data());
}

// With and without an immunisation plan (brightness/contrast and noise, which act on the clamped
// image: clamp first, as an image is saved before it is attacked).
class ClampedObjective : public ::testing::TestWithParam<bool> {};

TEST_P(ClampedObjective, GradientThroughTheClamp) {
    const bool immunised = GetParam();
    B64 b;
    ModelConfig cfg = ModelConfig::tiny();
    cfg.resolution = 8;  // cheap finite differences
    cfg.image_channels = 3;
    MetaGenerator<B64> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    auto gb = draw_generator_batch(b, cfg, 4, 11, 0);
    const LossWeights w{};
    ImmuniseConfig ic;
    ic.enabled = true;
    ic.p_crop = ic.p_blur = ic.p_jpeg = 0;
    ic.p_color = ic.p_noise = 1;
    const ImmunisePlan plan = draw_immunise_plan(ic, Shape{4, 3, 8, 8}, 1.0, 3, 1);
    const ImmunisePlan* pp = immunised ? &plan : nullptr;
    {  // the premise: some pixels saturate, most do not
        const auto img = to_host_vector<double>(b, G.forward(b, gb.z, gb.c1, gb.noise1).image());
        double out = 0;
        for (double v : img) out += std::abs(v) > 1;
        ASSERT_GT(out, 0.05 * double(img.size())) << out / double(img.size());
        ASSERT_LT(out, 0.7 * double(img.size())) << out / double(img.size());
    }
    auto loss = [&] {
        return reference_generator_loss<B64>(b, G, F, D, gb, w, [&](const Tensor<B64>& img) {
            Tensor<B64> fin = clamp_unit_forward(b, img).y;
            return immunised ? immunise_forward(b, fin, plan).y : std::move(fin);
        });
    };
    const auto plain = generator_step_grads(b, G, F, D, gb, w, GradMode::overwrite, pp);
    auto L = generator_step_grads(b, G, F, D, gb, w, GradMode::overwrite, pp, true);
    EXPECT_NEAR(L.total, loss(), 1e-10);
    // D and the consistency loss see the unclamped images; F's losses change
    EXPECT_EQ(L.adversarial, plain.adversarial);
    EXPECT_EQ(L.consistency, plain.consistency);
    EXPECT_NE(L.latent, plain.latent);
    EXPECT_NE(L.fingerprint, plain.fingerprint);
    std::vector<GradTarget> targets;
    for (auto* p : G.parameters())
        if (p->name.find("torgb") != std::string::npos || p->name.find("embed") != std::string::npos)
            targets.push_back(target_of(b, p->name, p->value, p->grad));
    for (auto* p : F.parameters())
        if (p->name.find("fromrgb") != std::string::npos) targets.push_back(target_of(b, p->name, p->value, p->grad));
    ASSERT_GE(targets.size(), 3u);
    // a smaller step than the unclamped check: a ToRGB bias moves a whole channel, and a step that
    // carries one pixel across +-1 adds a jump divided by the step
    expect_gradients(loss, std::move(targets), 1e-7, 5e-6, 4);
}

INSTANTIATE_TEST_SUITE_P(Plain, ClampedObjective, ::testing::Values(false));
INSTANTIATE_TEST_SUITE_P(Immunised, ClampedObjective, ::testing::Values(true));

TEST(ClampedTrainer, JointAndDecoderOnlyStepsAndJson) {
    TrainConfig tc;
    nlohmann::json j = tc;
    EXPECT_FALSE(j.contains("clamp_decoder_input"));  // off: the JSON of earlier files
    EXPECT_FALSE(j.get<TrainConfig>().clamp_decoder_input);
    tc.batch = 4;
    tc.d_reg_interval = 2;
    tc.clamp_decoder_input = true;
    j = tc;
    EXPECT_EQ(j.at("clamp_decoder_input"), true);
    EXPECT_TRUE(j.get<TrainConfig>().clamp_decoder_input);
    j["clamp_decoder_input"] = "yes";
    EXPECT_THROW(j.get<TrainConfig>(), FormatError);
    const ModelConfig cfg = ModelConfig::tiny();
    // the trainer's joint step is generator_step_grads with the clamp: the same losses, exactly
    {
        BF b(1);
        Trainer<BF> tr(b, cfg, tc);
        overdrive(b, tr.generator(), 8.0);
        auto gb = draw_generator_batch(b, cfg, tc.batch, tc.seed, 0);  // step 0's G+F stream
        const auto direct = generator_step_grads(b, tr.generator(), tr.decoder(), tr.discriminator(), gb,
                                                 tr.effective_weights(), GradMode::overwrite, nullptr, true);
        const auto unclamped = generator_step_grads(b, tr.generator(), tr.decoder(), tr.discriminator(), gb,
                                                    tr.effective_weights(), GradMode::overwrite);
        ASSERT_NE(direct.latent, unclamped.latent);  // the premise: the clamp changes F's input
        const auto st = tr.step(from_host(b, test::blob_images(cfg, tc.batch, 0, 3)));
        EXPECT_EQ(st.g.latent, direct.latent);
        EXPECT_EQ(st.g.fingerprint, direct.fingerprint);
        EXPECT_EQ(st.g.total, direct.total);
    }
    // decoder-only: the clamp changes what F reads (every image, not only the rounded half)
    std::vector<double> latent[2];
    for (bool clamp : {false, true}) {
        BF b(1);
        tc.decoder_only = true;
        tc.clamp_decoder_input = clamp;
        Trainer<BF> tr(b, cfg, tc);
        overdrive(b, tr.generator_ema(), 8.0);
        for (int i = 0; i < 3; ++i) {
            const auto st = tr.step(from_host(b, test::blob_images(cfg, tc.batch, std::uint64_t(i), 3)));
            EXPECT_TRUE(std::isfinite(st.g.total)) << clamp << " step " << i;
            latent[clamp].push_back(st.g.latent);
        }
    }
    EXPECT_NE(latent[0], latent[1]);
}

}  // namespace
}  // namespace sgf::test
