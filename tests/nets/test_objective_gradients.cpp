// Whole-objective gradient checks on the tiny preset in float64: the G+F objective with respect to
// G (incl. E and the affines) and F, D's logistic loss, and the R1 penalty's parameter gradient
// (Hessian-vector product by central differences) against a float64 finite difference of the penalty.
#include "gradcheck.hpp"
#include "reference_objective.hpp"

#include <sgf/train/objective.hpp>

namespace sgf::test {
namespace {

ModelConfig tiny8() {
    ModelConfig c = ModelConfig::tiny();
    c.resolution = 8;  // keep the finite differences cheap
    return c;
}

std::vector<GradTarget> targets_of(B64& b, std::vector<Parameter<B64>*> ps) {
    std::vector<GradTarget> out;
    for (auto* p : ps) out.push_back(target_of(b, p->name, p->value, p->grad));
    return out;
}

TEST(Objective, NetworkShapes) {
    B64 b;
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B64> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    auto gb = draw_generator_batch(b, cfg, 4, 9, 0);
    auto ctx = G.forward(b, gb.z, gb.c1, 5);
    EXPECT_EQ(ctx.image().shape(), (Shape{4, cfg.image_channels, cfg.resolution, cfg.resolution}));
    EXPECT_EQ(F.forward(b, ctx.image()).output().shape(), (Shape{4, cfg.z_dim + cfg.fingerprint_bits}));
    EXPECT_EQ(D.forward(b, ctx.image()).output().shape(), (Shape{4, 1}));
    Tensor<B64> wrong(b, Shape{4, cfg.image_channels, cfg.resolution / 2, cfg.resolution / 2}, 0.0);
    EXPECT_THROW(F.forward(b, wrong), ShapeError);
}

TEST(Objective, GeneratorAndDecoderGradients) {
    B64 b;
    const ModelConfig cfg = tiny8();
    MetaGenerator<B64> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    // non-zero noise strengths so their gradients and the noise path are exercised
    for (auto* p : G.parameters())
        if (p->name.find("noise_strength") != std::string::npos) b.fill(p->value.data(), 1, 0.3);
    auto gb = draw_generator_batch(b, cfg, 4, 11, 0);
    const LossWeights w{};
    auto loss = [&] { return reference_generator_loss<B64>(b, G, F, D, gb, w); };  // forward only, same weighted total
    for (auto* p : D.parameters()) b.fill(p->grad.data(), p->grad.size(), 0.125);
    auto L = generator_step_grads(b, G, F, D, gb, w, GradMode::overwrite);
    EXPECT_NEAR(L.total, loss(), 1e-10);
    auto targets = targets_of(b, G.parameters());
    auto ft = targets_of(b, F.parameters());
    targets.insert(targets.end(), ft.begin(), ft.end());
    expect_gradients(loss, std::move(targets), 1e-5, 5e-6, 6);
    for (auto* p : D.parameters())
        for (double v : to_host_vector<double>(b, p->grad)) ASSERT_EQ(v, 0.125) << "G step touched D's gradient " << p->name;
}

TEST(Objective, DiscriminatorGradients) {
    B64 b;
    const ModelConfig cfg = tiny8();
    auto D = make_discriminator(b, cfg, 3);
    Tensor<B64> fake = random_tensor(b, Shape{4, 1, 8, 8}, 5), real = random_tensor(b, Shape{4, 1, 8, 8}, 6);
    auto loss = [&] {
        return softplus_mean(b, D.forward(b, fake).output(), 1.0, 1.0, false).value +
               softplus_mean(b, D.forward(b, real).output(), -1.0, 1.0, false).value;
    };
    auto L = discriminator_grads(b, D, fake, real, GradMode::overwrite);
    EXPECT_NEAR(L.total, loss(), 1e-12);
    expect_gradients(loss, targets_of(b, D.parameters()), 1e-5, 5e-6, 6);
}

TEST(Objective, R1GradientMatchesFiniteDifferenceOfPenalty) {
    B64 b;
    const ModelConfig cfg = tiny8();
    auto D = make_discriminator(b, cfg, 3);
    Tensor<B64> real = random_tensor(b, Shape{4, 1, 8, 8}, 7);
    const double gamma = 0.5, scale = 16.0;
    auto penalty = [&] { return scale * r1_grads(b, D, real, gamma, scale, GradMode::skip); };
    r1_grads(b, D, real, gamma, scale, GradMode::overwrite);
    // D is piecewise linear: perturb parameters little enough not to cross lrelu kinks. Biases after
    // the last kink legitimately get no R1 gradient, so only the weights must be non-zero.
    auto targets = targets_of(b, D.parameters());
    for (const auto& t : targets) {
        if (t.name.find("weight") == std::string::npos) continue;
        double mag = 0;
        for (double a : t.analytic) mag = std::max(mag, std::abs(a));
        EXPECT_GT(mag, 1e-9) << t.name << ": R1 gradient is all zero";
    }
    expect_gradients(penalty, std::move(targets), 1e-7, 1e-4, 8, false);
}

// The trainer's R1 for float32 backends: R1InFloat64 must reproduce R1 computed in float64 on the same
// weights (so the copies in and out are right), and be far closer to it than float32 central
// differences, which cross lrelu kinks (the reason it exists).
TEST(Objective, R1InFloat64MatchesFloat64AndFloat32DifferencesDoNot) {
    EigenCpu bf(1);
    B64 bd;
    const ModelConfig cfg = ModelConfig::tiny();  // 16 px
    auto Df = make_discriminator(bf, cfg, 3);
    auto Dd = make_discriminator(bd, cfg, kNoInit);
    const auto pf = Df.parameters();
    const auto pd = Dd.parameters();
    ASSERT_EQ(pf.size(), pd.size());
    for (std::size_t i = 0; i < pf.size(); ++i) copy_across(bf, pf[i]->value, bd, pd[i]->value);  // exact in float64
    const Shape rs{4, 1, 16, 16};
    const auto rv = random_vector(static_cast<std::size_t>(rs.size()), 21, 1.0);
    std::vector<float> rvf(rv.begin(), rv.end());
    const std::vector<double> rvd(rvf.begin(), rvf.end());  // the float values, in double
    auto real_f = from_host<EigenCpu, float>(bf, rs, std::span<const float>(rvf));
    auto real_d = from_host<B64, double>(bd, rs, std::span<const double>(rvd));
    const double gamma = 0.5, scale = 16.0;

    const double pen_d = r1_grads(bd, Dd, real_d, gamma, scale, GradMode::overwrite);
    R1InFloat64<EigenCpu> r1(bf, cfg);
    const double pen_f = r1(bf, Df, real_f, gamma, scale);
    EXPECT_NEAR(pen_f, pen_d, 1e-12 * std::max(1.0, std::abs(pen_d)));
    std::vector<std::vector<double>> via_twin;
    for (auto* p : pf) via_twin.push_back(to_host_vector<double>(bf, p->grad));
    r1_grads(bf, Df, real_f, gamma, scale, GradMode::overwrite);  // float32 central differences
    double worst_twin = 0, worst_f32 = 0;
    for (std::size_t i = 0; i < pf.size(); ++i) {
        const auto ref = to_host_vector<double>(bd, pd[i]->grad);
        const auto f32 = to_host_vector<double>(bf, pf[i]->grad);
        double nr = 0, et = 0, ef = 0;
        for (std::size_t k = 0; k < ref.size(); ++k) {
            nr += ref[k] * ref[k];
            et += (via_twin[i][k] - ref[k]) * (via_twin[i][k] - ref[k]);
            ef += (f32[k] - ref[k]) * (f32[k] - ref[k]);
        }
        if (nr == 0) continue;  // biases after the last kink get no R1 gradient
        worst_twin = std::max(worst_twin, std::sqrt(et / nr));
        worst_f32 = std::max(worst_f32, std::sqrt(ef / nr));
    }
    std::printf("R1 parameter gradients vs float64, worst relative error per tensor: R1InFloat64 %.2e, float32 "
                "central differences %.2e\n",
                worst_twin, worst_f32);
    EXPECT_LT(worst_twin, 1e-6);  // float64 rounded to float32
    EXPECT_GT(worst_f32, 100 * worst_twin);
}

}  // namespace
}  // namespace sgf::test
