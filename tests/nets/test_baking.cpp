// Baking a fingerprint into the weights (algorithm.md 3.3): the per-user generator reproduces the
// meta generator for the same z and noise, holds no embedding/affine, and can be trained further.
#include "gradcheck.hpp"

#include <sgf/train/objective.hpp>

namespace sgf::test {
namespace {

template <class Bk>
void check_baked_matches_meta(const ModelConfig& cfg, double tol) {
    Bk b(1);
    MetaGenerator<Bk> G(b, cfg, 3);
    // move styles away from their initial values so the check is not trivial
    for (auto* p : G.parameters()) {
        if (p->name.find("noise_strength") != std::string::npos || p->name.find(".bias") != std::string::npos) {
            b.normal(RngKey{8, name_hash(p->name), 0}, p->value.size(), p->value.data());
            b.axpby(p->value.size(), 0, p->value.data(), 0.2, p->value.data());
        }
    }
    auto gb = draw_generator_batch(b, cfg, 3, 21, 0);
    Tensor<Bk> c1(b, Shape{1, cfg.fingerprint_bits});
    b.copy(gb.c1.data(), c1.data(), c1.size());
    // the same fingerprint for every sample of the batch
    Tensor<Bk> c(b, gb.c1.shape());
    for (int n = 0; n < 3; ++n) b.copy(c1.data(), c.data() + n * cfg.fingerprint_bits, cfg.fingerprint_bits);
    auto meta = G.forward(b, gb.z, c, 1234);
    MetaGenerator<Bk> Gu = instantiate(b, G, c1);
    auto baked = Gu.forward_baked(b, gb.z, 1234);
    const auto a = to_host_vector<double>(b, meta.image()), u = to_host_vector<double>(b, baked.image());
    ASSERT_EQ(a.size(), u.size());
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        worst = std::max(worst, std::abs(a[i] - u[i]));
        scale = std::max(scale, std::abs(a[i]));
    }
    EXPECT_LT(worst, tol * std::max(1.0, scale)) << "max |meta - baked| = " << worst;
    for (auto* p : Gu.parameters()) {
        EXPECT_EQ(p->name.find("affine"), std::string::npos) << p->name;
        EXPECT_EQ(p->name.find("embed"), std::string::npos) << p->name;
    }
    // a different fingerprint gives a different image
    Tensor<Bk> c2(b, Shape{1, cfg.fingerprint_bits});
    b.copy(gb.c2.data(), c2.data(), c2.size());
    auto other = instantiate(b, G, c2).forward_baked(b, gb.z, 1234);
    const auto o = to_host_vector<double>(b, other.image());
    double diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff += std::abs(o[i] - u[i]);
    EXPECT_GT(diff / double(a.size()), 1e-3);
}

TEST(Baking, BakedGeneratorReproducesMetaGeneratorFloat64) { check_baked_matches_meta<EigenCpu64>(ModelConfig::tiny(), 1e-12); }
TEST(Baking, BakedGeneratorReproducesMetaGeneratorFloat32) { check_baked_matches_meta<EigenCpu>(ModelConfig::tiny(), 2e-5); }

TEST(Baking, BakedGeneratorGradients) {
    // the baked copy is an ordinary generator: its backward is checked like every other layer
    B64 b;
    ModelConfig cfg = ModelConfig::tiny();
    cfg.resolution = 8;
    MetaGenerator<B64> G(b, cfg, 3);
    Tensor<B64> c(b, Shape{1, cfg.fingerprint_bits});
    b.bits(RngKey{1, 2, 3}, c.size(), c.data());
    MetaGenerator<B64> Gu = instantiate(b, G, c);
    for (auto* p : Gu.parameters())
        if (p->name.find("noise_strength") != std::string::npos) b.fill(p->value.data(), 1, 0.3);
    Tensor<B64> z = random_tensor(b, Shape{2, cfg.z_dim}, 4);
    Tensor<B64> g = random_tensor(b, Shape{2, 1, 8, 8}, 5);
    auto f = [&] { auto ctx = Gu.forward_baked(b, z, 9); return b.dot(g.size(), ctx.image().data(), g.data()); };
    auto ctx = Gu.forward_baked(b, z, 9);
    Gu.backward(b, ctx, g.clone(b), GradMode::overwrite);
    std::vector<GradTarget> targets;
    for (auto* p : Gu.parameters()) targets.push_back(target_of(b, p->name, p->value, p->grad));
    expect_gradients(f, std::move(targets), 1e-5, 5e-6, 6);
}

TEST(Baking, AFingerprintBakesAsItsBits) {
    // instantiate(G, Fingerprint) is instantiate(G, [1, bits] tensor of its 0/1 bits), weight for weight
    EigenCpu b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<EigenCpu> G(b, cfg, 3);
    const Fingerprint fp = Fingerprint::from_seed(cfg.fingerprint_bits, 77);
    const std::vector<float> bits = fp.to_floats();
    const auto c = from_host<EigenCpu, float>(b, Shape{1, cfg.fingerprint_bits}, std::span<const float>(bits));
    MetaGenerator<EigenCpu> from_bits = instantiate(b, G, c), from_fp = instantiate(b, G, fp);
    const auto p = from_bits.parameters(), q = from_fp.parameters();
    ASSERT_EQ(p.size(), q.size());
    for (std::size_t i = 0; i < p.size(); ++i)
        EXPECT_EQ(to_host_vector<float>(b, p[i]->value), to_host_vector<float>(b, q[i]->value)) << p[i]->name;
    // and another fingerprint bakes other weights
    MetaGenerator<EigenCpu> other = instantiate(b, G, Fingerprint::from_seed(cfg.fingerprint_bits, 78));
    bool differs = false;
    const auto o = other.parameters();
    for (std::size_t i = 0; i < p.size(); ++i) differs |= to_host_vector<float>(b, p[i]->value) != to_host_vector<float>(b, o[i]->value);
    EXPECT_TRUE(differs);
    EXPECT_THROW(instantiate(b, G, Fingerprint(cfg.fingerprint_bits + 1)), ArgumentError);
}

TEST(Baking, RejectsWrongInputs) {
    B64 b;
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B64> G(b, cfg, 3);
    Tensor<B64> two(b, Shape{2, cfg.fingerprint_bits}, 0.0), wrong(b, Shape{1, cfg.fingerprint_bits + 1}, 0.0);
    EXPECT_THROW(instantiate(b, G, two), ShapeError);
    EXPECT_THROW(instantiate(b, G, wrong), ShapeError);
    Tensor<B64> one(b, Shape{1, cfg.fingerprint_bits}, 1.0), z(b, Shape{1, cfg.z_dim}, 0.0);
    auto Gu = instantiate(b, G, one);
    EXPECT_THROW(Gu.forward(b, z, one, std::nullopt), ArgumentError);
    EXPECT_THROW(G.forward_baked(b, z, std::nullopt), ArgumentError);
}

}  // namespace
}  // namespace sgf::test
