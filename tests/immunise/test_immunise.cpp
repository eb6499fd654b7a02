// The perturbations of immunised training (train/augment.hpp) one by one: float64 central-difference
// gradient checks of f(x) = <perturb(x), g> for a fixed random projection g, an exact adjoint (dot)
// test, JPEG's straight-through backward, agreement with the host attack suite, strength 0 = identity,
// and the plan's ranges, frequencies and step keying.
#include "gradcheck.hpp"

#include <sgf/robustness/image_attacks.hpp>
#include <sgf/train/augment.hpp>
#include <sgf/train/trainer.hpp>

namespace sgf::test {
namespace {

using BF = EigenCpu;

ImmunisePlan identity_plan(Shape s) {
    ImmunisePlan p{s, std::vector<ImmuniseSample>(std::size_t(s.n)), RngKey{7, 8, 0}};
    for (auto& q : p.samples) {
        q.crop_h = int(s.h);
        q.crop_w = int(s.w);
    }
    return p;
}

/// Gradient check of x -> <immunise_forward(x), g> against immunise_backward(g), plus the dot test
/// <P x, g> = <x, P^T g> over every coordinate (for the linear part: noise is added on both sides of
/// the difference, so it checks P(x) - P(0) against x).
void check_plan_gradient(const ImmunisePlan& plan, std::uint64_t seed) {
    B64 b;
    const Shape s = plan.shape;
    Tensor<B64> x = random_tensor(b, s, seed, 0.5);
    const Tensor<B64> g = random_tensor(b, s, seed + 1);
    auto f = [&] {
        auto ctx = immunise_forward(b, x, plan);
        return b.dot(g.size(), ctx.output().data(), g.data());
    };
    auto ctx = immunise_forward(b, x, plan);
    Tensor<B64> dx = immunise_backward(b, ctx, g.clone(b));
    expect_gradients(f, {target_of(b, "x", x, dx)}, 1e-5, 1e-6, 48);
    // dot test on all coordinates: <P(x) - P(0), g> == <x, P^T g>
    Tensor<B64> zero(b, s, 0.0);
    auto c0 = immunise_forward(b, zero, plan);
    const double lhs = b.dot(g.size(), ctx.output().data(), g.data()) - b.dot(g.size(), c0.output().data(), g.data());
    const double rhs = b.dot(x.size(), x.data(), dx.data());
    EXPECT_NEAR(lhs, rhs, 1e-10 * std::max(1.0, std::abs(lhs)));
}

TEST(ImmuniseOps, CropAndResizeGradient) {
    ImmunisePlan p = identity_plan(Shape{3, 3, 12, 10});
    p.samples[0] = {9, 8, 2, 1};    // off-centre crop, enlarged back by 12/9 and 10/8
    p.samples[1] = {10, 7, 0, 3};   // different factors per axis, touching the top edge
    // sample 2 stays the identity (copy path)
    check_plan_gradient(p, 11);
}

TEST(ImmuniseOps, BlurGradient) {
    ImmunisePlan p = identity_plan(Shape{3, 2, 12, 10});
    p.samples[0].blur_sigma = 0.7;
    p.samples[1].blur_sigma = 3.5;  // radius 11 > side: reflect-101 repeats
    p.samples[2].blur_sigma = 0.3;
    p.samples[2].crop_h = 9;        // crop then blur, composed into one matrix pair
    p.samples[2].crop_w = 9;
    p.samples[2].crop_y = 1;
    check_plan_gradient(p, 21);
}

TEST(ImmuniseOps, BrightnessContrastGradient) {
    ImmunisePlan p = identity_plan(Shape{3, 3, 8, 8});
    p.samples[0].contrast = 0.6;
    p.samples[0].brightness = 0.1;
    p.samples[1].contrast = 1.4;
    p.samples[1].brightness = -0.2;
    check_plan_gradient(p, 31);
}

TEST(ImmuniseOps, NoiseGradient) {
    ImmunisePlan p = identity_plan(Shape{2, 1, 8, 8});
    p.samples[0].noise_std = 0.1;
    check_plan_gradient(p, 41);
    // the noise is really there, std as drawn, and only on sample 0
    B64 b;
    Tensor<B64> x(b, p.shape, 0.0);
    const auto y = to_host_vector<double>(b, immunise_forward(b, x, p).output());
    double ss = 0;
    for (int i = 0; i < 64; ++i) ss += y[std::size_t(i)] * y[std::size_t(i)];
    EXPECT_NEAR(std::sqrt(ss / 64), 0.1, 0.03);
    for (int i = 64; i < 128; ++i) EXPECT_EQ(y[std::size_t(i)], 0.0);
}

TEST(ImmuniseOps, CompositeGradientOfADrawnPlan) {
    ImmuniseConfig cfg;
    cfg.enabled = true;
    cfg.p_crop = cfg.p_blur = cfg.p_color = cfg.p_noise = 0.7;
    cfg.p_jpeg = 0;  // straight-through is not a true gradient; checked separately
    cfg.blur_sigma = 2.0;
    const ImmunisePlan p = draw_immunise_plan(cfg, Shape{6, 3, 16, 16}, 1.0, 5, 3);
    int crops = 0, blurs = 0, colours = 0, noises = 0;
    for (const auto& q : p.samples) {
        crops += q.crop_h != 16 || q.crop_w != 16;
        blurs += q.blur_sigma > 0;
        colours += immunise::color_active(q);
        noises += q.noise_std > 0;
    }
    EXPECT_GT(crops * blurs * colours * noises, 0) << "the drawn plan should exercise every perturbation";
    check_plan_gradient(p, 51);
}

TEST(ImmuniseOps, JpegIsStraightThroughAndMatchesTheHostAttack) {
    for (int channels : {1, 3}) {
        B64 b;
        ImmunisePlan p = identity_plan(Shape{3, channels, 16, 16});
        p.samples[0].jpeg_quality = 50;
        p.samples[1].jpeg_quality = 93;
        Tensor<B64> x = random_tensor(b, p.shape, 61 + channels, 0.4);
        auto ctx = immunise_forward(b, x, p);
        const auto xh = to_host<float>(b, x);
        const auto y = to_host_vector<double>(b, ctx.output());
        const auto xd = to_host_vector<double>(b, x);
        const std::int64_t S = p.shape.sample_size();
        for (int n = 0; n < 3; ++n) {
            attack::Images one(Shape{1, channels, 16, 16});
            std::copy(xh.data.begin() + n * S, xh.data.begin() + (n + 1) * S, one.data.begin());
            const auto want = p.samples[std::size_t(n)].jpeg_quality > 0 ? attack::jpeg(one, p.samples[std::size_t(n)].jpeg_quality)
                                                                        : one;
            for (std::int64_t i = 0; i < S; ++i) {
                if (p.samples[std::size_t(n)].jpeg_quality > 0)
                    ASSERT_EQ(y[std::size_t(n * S + i)], double(want.data[std::size_t(i)])) << n << " " << i;
                else
                    ASSERT_EQ(y[std::size_t(n * S + i)], xd[std::size_t(n * S + i)]) << "sample without JPEG changed";
            }
        }
        double moved = 0;
        for (std::int64_t i = 0; i < S; ++i) moved = std::max(moved, std::abs(y[std::size_t(i)] - xd[std::size_t(i)]));
        EXPECT_GT(moved, 1e-3) << "JPEG at quality 50 should change the image";
        // backward: exactly the identity
        const Tensor<B64> dy = random_tensor(b, p.shape, 71);
        const auto dx = to_host_vector<double>(b, immunise_backward(b, ctx, dy.clone(b)));
        EXPECT_EQ(dx, to_host_vector<double>(b, dy));
    }
}

TEST(ImmuniseOps, ForwardMatchesTheHostAttacks) {
    BF b(1);
    const Shape s{2, 3, 16, 16};
    std::vector<float> v(std::size_t(s.size()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(2 * philox::uniform(RngKey{3, 4, 0}, i) - 1);
    const Tensor<BF> x = from_host<BF, float>(b, s, std::span<const float>(v));
    const attack::Images xh = to_host<float>(b, x);
    auto expect_close = [&](const ImmunisePlan& p, const attack::Images& want, const char* what) {
        const auto y = to_host_vector<float>(b, immunise_forward(b, x, p).output());
        ASSERT_EQ(y.size(), want.data.size());
        for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want.data[i], 2e-6) << what << " " << i;
    };
    ImmunisePlan p = identity_plan(s);
    for (auto& q : p.samples) q.blur_sigma = 1.3;
    expect_close(p, attack::gaussian_blur(xh, 1.3), "blur");
    p = identity_plan(s);
    for (auto& q : p.samples) q = {12, 12, 2, 2};  // the centre crop keeping 0.75 of each side
    expect_close(p, attack::center_crop(xh, 0.75), "crop");
    p = identity_plan(s);
    for (auto& q : p.samples) q.contrast = 0.4;
    expect_close(p, attack::contrast(xh, 0.4), "contrast");
    p = identity_plan(s);
    for (auto& q : p.samples) q.brightness = 0.3;
    expect_close(p, attack::brightness(xh, 0.3), "brightness");
}

TEST(ImmuniseOps, StrengthZeroIsTheIdentity) {
    BF b(1);
    ImmuniseConfig cfg;
    cfg.enabled = true;
    cfg.p_crop = cfg.p_blur = cfg.p_color = cfg.p_noise = cfg.p_jpeg = 1.0;
    const Shape s{4, 3, 16, 16};
    const ImmunisePlan p = draw_immunise_plan(cfg, s, 0.0, 1, 9);
    for (const auto& q : p.samples) {
        EXPECT_FALSE(immunise::separable_active(q, s));
        EXPECT_FALSE(immunise::color_active(q));
        EXPECT_EQ(q.noise_std, 0.0);
        EXPECT_EQ(q.jpeg_quality, 0);
    }
    std::vector<float> v(std::size_t(s.size()));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(philox::normal(RngKey{5, 6, 0}, i));
    const Tensor<BF> x = from_host<BF, float>(b, s, std::span<const float>(v));
    auto ctx = immunise_forward(b, x, p);
    EXPECT_EQ(to_host_vector<float>(b, ctx.output()), v);
    Tensor<BF> dy = x.clone(b);
    EXPECT_EQ(to_host_vector<float>(b, immunise_backward(b, ctx, std::move(dy))), v);
    // and with the config's own strength knob at 0
    cfg.strength = 0;
    EXPECT_EQ(cfg.strength_at(5.0), 0.0);
}

TEST(ImmunisePlan, RangesFrequenciesAndStepKeying) {
    ImmuniseConfig cfg;  // the defaults
    const Shape s{16, 3, 32, 32};
    int n = 0, crop = 0, blur = 0, colour = 0, noise = 0, jpeg = 0;
    std::vector<int> qualities(101, 0);
    for (std::uint64_t step = 0; step < 200; ++step) {
        const ImmunisePlan p = draw_immunise_plan(cfg, s, 1.0, 42, step);
        for (const auto& q : p.samples) {
            ++n;
            ASSERT_GE(q.crop_h, 26);  // round(0.8 * 32) = 26
            ASSERT_EQ(q.crop_h, q.crop_w);
            ASSERT_LE(q.crop_y + q.crop_h, 32);
            ASSERT_LE(q.crop_x + q.crop_w, 32);
            ASSERT_GE(q.crop_y, 0);
            ASSERT_LE(q.blur_sigma, 1.0);
            ASSERT_GE(q.contrast, 0.5);
            ASSERT_LE(q.contrast, 1.5);
            ASSERT_LE(std::abs(q.brightness), 0.2);
            ASSERT_LE(q.noise_std, 0.1);
            ASSERT_TRUE(q.jpeg_quality == 0 || (q.jpeg_quality >= 50 && q.jpeg_quality <= 100)) << q.jpeg_quality;
            crop += q.crop_h != 32;
            blur += q.blur_sigma > 0;
            colour += immunise::color_active(q);
            noise += q.noise_std > 0;
            jpeg += q.jpeg_quality > 0;
            ++qualities[std::size_t(q.jpeg_quality)];
        }
    }
    // each perturbation on about half the samples (crop: minus the draws that round to the full side)
    for (int count : {blur, colour, noise, jpeg}) EXPECT_NEAR(double(count) / n, 0.5, 0.04);
    EXPECT_NEAR(double(crop) / n, 0.5 * 30.0 / 32.0, 0.05);
    EXPECT_GT(qualities[50], 0);
    EXPECT_GT(qualities[100], 0);
    // keyed by (seed, step): same key, same plan; another step or seed, another plan
    auto same = [](const ImmunisePlan& a, const ImmunisePlan& c) {
        for (std::size_t i = 0; i < a.samples.size(); ++i) {
            const auto &x = a.samples[i], &y = c.samples[i];
            if (x.crop_h != y.crop_h || x.crop_y != y.crop_y || x.crop_x != y.crop_x || x.blur_sigma != y.blur_sigma ||
                x.contrast != y.contrast || x.brightness != y.brightness || x.noise_std != y.noise_std ||
                x.jpeg_quality != y.jpeg_quality)
                return false;
        }
        return a.noise_key.seed == c.noise_key.seed && a.noise_key.stream == c.noise_key.stream;
    };
    EXPECT_TRUE(same(draw_immunise_plan(cfg, s, 1.0, 42, 7), draw_immunise_plan(cfg, s, 1.0, 42, 7)));
    EXPECT_FALSE(same(draw_immunise_plan(cfg, s, 1.0, 42, 7), draw_immunise_plan(cfg, s, 1.0, 42, 8)));
    EXPECT_FALSE(same(draw_immunise_plan(cfg, s, 1.0, 42, 7), draw_immunise_plan(cfg, s, 1.0, 43, 7)));
    // the blur range scales with the side: sigma <= 1 px at 32 px is <= 4 px at 128 px
    double widest = 0;
    for (std::uint64_t step = 0; step < 20; ++step)
        for (const auto& q : draw_immunise_plan(cfg, Shape{16, 3, 128, 128}, 1.0, 42, step).samples)
            widest = std::max(widest, q.blur_sigma);
    EXPECT_LE(widest, 4.0);
    EXPECT_GT(widest, 3.0);
    // ramp-up
    cfg.rampup_kimg = 10;
    EXPECT_EQ(cfg.strength_at(0), 0.0);
    EXPECT_DOUBLE_EQ(cfg.strength_at(5), 0.5);
    EXPECT_EQ(cfg.strength_at(20), 1.0);
}

TEST(ImmuniseConfigJson, RoundTripAndOlderFiles) {
    TrainConfig tc;
    // off: the JSON is exactly what it was before immunisation existed
    nlohmann::json j = tc;
    EXPECT_FALSE(j.contains("immunise"));
    EXPECT_FALSE(j.get<TrainConfig>().immunise.enabled);
    tc.immunise.enabled = true;
    tc.immunise.strength = 0.75;
    tc.immunise.p_jpeg = 0.25;
    tc.immunise.jpeg_quality_min = 70;
    tc.immunise.crop_min = 0.9;
    tc.immunise.rampup_kimg = 3;
    j = tc;
    ASSERT_TRUE(j.contains("immunise"));
    const TrainConfig back = j.get<TrainConfig>();
    EXPECT_EQ(nlohmann::json(back), j);
    EXPECT_TRUE(back.immunise.enabled);
    EXPECT_EQ(back.immunise.jpeg_quality_min, 70);
    // a partial object keeps the defaults for missing keys
    j["immunise"] = nlohmann::json{{"enabled", true}, {"noise_std", 0.2}};
    const TrainConfig partial = j.get<TrainConfig>();
    EXPECT_TRUE(partial.immunise.enabled);
    EXPECT_EQ(partial.immunise.noise_std, 0.2);
    EXPECT_EQ(partial.immunise.p_blur, ImmuniseConfig{}.p_blur);
    j["immunise"] = "yes";
    EXPECT_THROW(j.get<TrainConfig>(), FormatError);
    // invalid knobs are refused when a trainer is built
    BF b(1);
    TrainConfig bad;
    bad.batch = 4;
    bad.immunise.enabled = true;
    bad.immunise.p_noise = 1.5;
    EXPECT_THROW(Trainer<BF>(b, ModelConfig::tiny(), bad), ArgumentError);
    bad.immunise.p_noise = 0.5;
    bad.immunise.jpeg_quality_min = 0;
    EXPECT_THROW(Trainer<BF>(b, ModelConfig::tiny(), bad), ArgumentError);
}

}  // namespace
}  // namespace sgf::test
