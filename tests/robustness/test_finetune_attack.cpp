// The fine-tuning model attack (sgf/robustness/finetune_attack.hpp) on tiny models: it changes the
// baked copy and its own copy of the critic only, continues in chunks exactly as in one run, is
// deterministic from the seed, and its generator step descends the adversarial loss.
#include <sgf/backends/eigen.hpp>
#include <sgf/robustness.hpp>

#include <gtest/gtest.h>

#include "parameter_values.hpp"

#include <map>
#include <random>

namespace sgf::attack {
namespace {

using B = EigenCpu;

struct Fixture {
    B b{1};
    ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G{b, cfg, 3};
    ResidualCritic<B> D = make_discriminator(b, cfg, 4);
    HostTensor<float> real{Shape{24, cfg.image_channels, cfg.resolution, cfg.resolution}};
    Fixture() {
        std::mt19937 rng{5};
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        for (auto& v : real.data) v = u(rng);
    }
    MetaGenerator<B> baked() { return instantiate(b, G, Fingerprint::from_seed(cfg.fingerprint_bits, 9)); }
};

/// Small batches and learning rates large enough to move a tiny model in a few steps.
FinetuneOptions options(std::uint64_t seed) {
    FinetuneOptions o;
    o.batch = 8;
    o.adam_critic.lr = 2e-3;
    o.adam_generator.lr = 2e-3;
    o.seed = seed;
    return o;
}

TEST(FinetuneAttack, ChangesTheCopyAndItsOwnCriticOnly) {
    Fixture f;
    auto Gu = f.baked();
    const auto g0 = test::parameter_values(f.b, Gu);
    const auto d0 = test::parameter_values(f.b, f.D);
    const auto meta0 = test::parameter_values(f.b, f.G);
    AdversarialFinetune<B> ft(f.b, Gu, f.D, f.real, options(1));
    EXPECT_EQ(test::parameter_values(f.b, ft.critic()), d0) << "the critic starts as a copy of D";
    const auto none = ft.run(f.b, 0);
    EXPECT_EQ(none.generator, 0.0);
    EXPECT_EQ(test::parameter_values(f.b, Gu), g0) << "zero steps: the no-op strength";
    const auto L = ft.run(f.b, 3);
    EXPECT_EQ(ft.steps_done(), 3);
    EXPECT_GT(L.generator, 0.0);
    EXPECT_GT(L.discriminator, 0.0);
    const auto g3 = test::parameter_values(f.b, Gu);
    for (const auto& [name, v] : g0) EXPECT_NE(g3.at(name), v) << name << " did not move";
    EXPECT_NE(test::parameter_values(f.b, ft.critic()), d0);
    EXPECT_EQ(test::parameter_values(f.b, f.D), d0) << "the owner's D is not touched";
    EXPECT_EQ(test::parameter_values(f.b, f.G), meta0) << "nor the meta generator";
}

TEST(FinetuneAttack, ChunksContinueExactlyAndTheSeedDecides) {
    Fixture f;
    auto once = f.baked(), chunked = f.baked(), other = f.baked();
    const FinetuneOptions o = options(7);
    AdversarialFinetune<B> a(f.b, once, f.D, f.real, o), c(f.b, chunked, f.D, f.real, o);
    a.run(f.b, 5);
    c.run(f.b, 2);
    c.run(f.b, 3);
    EXPECT_EQ(test::parameter_values(f.b, once), test::parameter_values(f.b, chunked));
    FinetuneOptions o2 = o;
    o2.seed = 8;
    AdversarialFinetune<B> d(f.b, other, f.D, f.real, o2);
    d.run(f.b, 5);
    EXPECT_NE(test::parameter_values(f.b, once), test::parameter_values(f.b, other));
}

// With the critic frozen, the generator steps are plain gradient descent on softplus(-D(G(z))):
// the loss on a fixed z, measured outside the attack, falls.
TEST(FinetuneAttack, GeneratorStepsDescendTheAdversarialLoss) {
    Fixture f;
    auto Gu = f.baked();
    FinetuneOptions o = options(2);
    o.batch = 16;
    o.adam_generator.lr = 1e-3;
    o.train_critic = false;
    AdversarialFinetune<B> ft(f.b, Gu, f.D, f.real, o);
    Tensor<B> z(f.b, Shape{64, f.cfg.z_dim});
    f.b.normal(RngKey{99, 1, 0}, z.size(), z.data());
    auto loss = [&] {
        auto g = Gu.forward_baked(f.b, z.view(), 5);
        auto d = f.D.forward(f.b, g.image().view());
        return softplus_mean(f.b, d.output(), -1.0, 1.0, false).value;
    };
    const double before = loss();
    ft.run(f.b, 20);
    EXPECT_EQ(test::parameter_values(f.b, ft.critic()), test::parameter_values(f.b, f.D)) << "train_critic = false";
    const double after = loss();
    EXPECT_LT(after, before - 0.05) << before << " -> " << after;
}

TEST(FinetuneAttack, RefusesWhatItCannotFinetune) {
    Fixture f;
    auto Gu = f.baked();
    EXPECT_THROW((AdversarialFinetune<B>(f.b, f.G, f.D, f.real, {})), ArgumentError) << "a meta generator";
    HostTensor<float> wrong(Shape{4, f.cfg.image_channels, f.cfg.resolution * 2, f.cfg.resolution * 2});
    EXPECT_THROW((AdversarialFinetune<B>(f.b, Gu, f.D, wrong, {})), ShapeError);
    const auto F = make_decoder(f.b, f.cfg, 6);  // the decoder, not D: same layers, wider output
    EXPECT_THROW((AdversarialFinetune<B>(f.b, Gu, F, f.real, {})), ArgumentError);
    FinetuneOptions o;
    o.batch = 0;
    EXPECT_THROW((AdversarialFinetune<B>(f.b, Gu, f.D, f.real, o)), ArgumentError);
    o = {};
    o.adam_generator.lr = 0;
    EXPECT_THROW((AdversarialFinetune<B>(f.b, Gu, f.D, f.real, o)), ArgumentError);
    AdversarialFinetune<B> ft(f.b, Gu, f.D, f.real, {});
    EXPECT_THROW((void)ft.run(f.b, -1), ArgumentError);
    EXPECT_EQ(finetune_attack_info().name, "finetune");
    EXPECT_EQ(finetune_attack_info().identity, 0.0);
}

}  // namespace
}  // namespace sgf::attack
