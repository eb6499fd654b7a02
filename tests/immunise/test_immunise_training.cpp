// Immunisation inside the training objective and the trainer: D and the consistency loss keep the
// clean images, the gradient through the perturbations is checked end to end in float64, an
// immunised step on the tiny preset gives finite losses, and resume from a checkpoint is bit-identical.
#include "blob_images.hpp"
#include "gradcheck.hpp"
#include "reference_objective.hpp"
#include "same_weights.hpp"

#include <sgf/io/datasets.hpp>
#include <sgf/train/checkpoint.hpp>
#include <sgf/train/objective.hpp>
#include <sgf/train/trainer.hpp>

#include <filesystem>

namespace sgf::test {
namespace {

namespace fs = std::filesystem;
using BF = EigenCpu;

ImmuniseConfig all_on() {
    ImmuniseConfig c;
    c.enabled = true;
    c.p_crop = c.p_blur = c.p_color = c.p_noise = c.p_jpeg = 1.0;
    return c;
}

TEST(ImmunisedObjective, DecoderReadsPerturbedImagesOthersReadCleanOnes) {
    BF b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<BF> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    auto gb = draw_generator_batch(b, cfg, 4, 9, 0);
    const Shape s{4, cfg.image_channels, cfg.resolution, cfg.resolution};
    auto grads = [&] {
        std::vector<float> all;
        for (auto* p : G.parameters()) {
            const auto g = to_host_vector<float>(b, p->grad);
            all.insert(all.end(), g.begin(), g.end());
        }
        return all;
    };
    const auto clean = generator_step_grads(b, G, F, D, gb, LossWeights{}, GradMode::overwrite);
    const auto clean_grads = grads();
    // strength 0: bit-identical losses and gradients
    const ImmunisePlan zero = draw_immunise_plan(all_on(), s, 0.0, 1, 0);
    const auto z = generator_step_grads(b, G, F, D, gb, LossWeights{}, GradMode::overwrite, &zero);
    EXPECT_EQ(z.total, clean.total);
    EXPECT_EQ(z.bit_accuracy, clean.bit_accuracy);
    EXPECT_EQ(grads(), clean_grads);
    // full strength: only F's losses change
    const ImmunisePlan plan = draw_immunise_plan(all_on(), s, 1.0, 1, 0);
    const auto p = generator_step_grads(b, G, F, D, gb, LossWeights{}, GradMode::overwrite, &plan);
    EXPECT_EQ(p.adversarial, clean.adversarial);
    EXPECT_EQ(p.consistency, clean.consistency);
    EXPECT_NE(p.latent, clean.latent);
    EXPECT_NE(p.fingerprint, clean.fingerprint);
    EXPECT_TRUE(std::isfinite(p.total));
    EXPECT_NE(grads(), clean_grads);
}

TEST(ImmunisedObjective, GradientThroughThePerturbations) {
    B64 b;
    ModelConfig cfg = ModelConfig::tiny();
    cfg.resolution = 8;  // cheap finite differences
    cfg.image_channels = 3;
    MetaGenerator<B64> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    auto gb = draw_generator_batch(b, cfg, 4, 11, 0);
    ImmuniseConfig ic = all_on();
    ic.p_jpeg = 0;         // straight-through is not the true gradient
    ic.blur_sigma = 4.0;   // up to 1 px at 8 px
    ic.crop_min = 0.6;
    const ImmunisePlan plan = draw_immunise_plan(ic, Shape{4, 3, 8, 8}, 1.0, 3, 1);
    const LossWeights w{};
    auto loss = [&] {
        return reference_generator_loss<B64>(b, G, F, D, gb, w,
                                             [&](const Tensor<B64>& img) { return immunise_forward(b, img, plan).y; });
    };
    auto L = generator_step_grads(b, G, F, D, gb, w, GradMode::overwrite, &plan);
    EXPECT_NEAR(L.total, loss(), 1e-10);
    // G's last layers (the image path) and F's first layer (reads the perturbed image)
    std::vector<GradTarget> targets;
    for (auto* p : G.parameters())
        if (p->name.find("torgb") != std::string::npos || p->name.find("embed") != std::string::npos)
            targets.push_back(target_of(b, p->name, p->value, p->grad));
    for (auto* p : F.parameters())
        if (p->name.find("fromrgb") != std::string::npos) targets.push_back(target_of(b, p->name, p->value, p->grad));
    ASSERT_GE(targets.size(), 3u);
    expect_gradients(loss, std::move(targets), 1e-5, 5e-6, 4);
}

Tensor<BF> smooth_reals(BF& b, const ModelConfig& cfg, int n, std::uint64_t step) {
    return from_host(b, test::blob_images(cfg, n, step, 3));
}

TEST(ImmunisedTrainer, TinyPresetStepsGiveFiniteLosses) {
    for (int channels : {1, 3}) {
        BF b(1);
        ModelConfig cfg = ModelConfig::tiny();
        cfg.image_channels = channels;
        TrainConfig tc;
        tc.batch = 4;
        tc.d_reg_interval = 2;
        tc.immunise = all_on();
        tc.immunise.p_crop = tc.immunise.p_blur = tc.immunise.p_jpeg = 0.5;
        Trainer<BF> tr(b, cfg, tc);
        EXPECT_EQ(tr.immunise_strength(), 1.0);
        for (int i = 0; i < 4; ++i) {
            const auto st = tr.step(smooth_reals(b, cfg, tc.batch, std::uint64_t(i)));
            for (double v : {st.g.total, st.g.adversarial, st.g.consistency, st.g.latent, st.g.fingerprint, st.d.total, st.d.r1})
                EXPECT_TRUE(std::isfinite(v)) << "step " << i;
            EXPECT_GE(st.g.bit_accuracy, 0.0);
            EXPECT_LE(st.g.bit_accuracy, 1.0);
        }
        for (auto* p : tr.generator().parameters()) ASSERT_TRUE(b.all_finite(p->value.size(), p->value.data())) << p->name;
    }
}

io::ImageDataset random_dataset(const ModelConfig& cfg, int n) {
    io::ImageDataset ds;
    ds.name = "random";
    ds.count = n;
    ds.channels = cfg.image_channels;
    ds.height = ds.width = cfg.resolution;
    ds.pixels.resize(std::size_t(n) * ds.sample_size());
    for (std::size_t i = 0; i < ds.pixels.size(); ++i) ds.pixels[i] = std::uint8_t(philox::draw(RngKey{4, 5, 0}, i).v[0] & 255);
    return ds;
}

TEST(ImmunisedTrainer, ResumeFromCheckpointIsBitIdentical) {
    BF b(2);
    ModelConfig cfg = ModelConfig::tiny();
    cfg.image_channels = 3;
    TrainConfig tc;
    tc.batch = 4;
    tc.d_reg_interval = 3;
    tc.immunise.enabled = true;
    tc.immunise.rampup_kimg = 0.02;  // the strength still grows when the checkpoint is written
    const auto ds = random_dataset(cfg, 37);
    const int k = 4;
    auto run = [&](Trainer<BF>& tr, io::Sampler& s, int steps) {
        std::vector<double> losses;
        for (int i = 0; i < steps; ++i) {
            auto real = from_host(b, ds.batch(s.next(tc.batch)));
            auto st = tr.step(real);
            losses.insert(losses.end(), {st.g.total, st.g.latent, st.g.fingerprint, st.d.total, st.d.r1, st.g.bit_accuracy});
        }
        return losses;
    };
    Trainer<BF> straight(b, cfg, tc);
    io::Sampler s1(ds.size(), tc.seed);
    const auto all = run(straight, s1, 2 * k);

    const fs::path dir = fs::path(SGF_TEST_TMPDIR);
    fs::create_directories(dir);
    const fs::path p = dir / "immunised-ckpt.safetensors";
    std::vector<double> resumed;
    {
        Trainer<BF> first(b, cfg, tc);
        io::Sampler s(ds.size(), tc.seed);
        resumed = run(first, s, k);
        save_checkpoint(b, p, first, s);
    }
    auto [mc, tc2] = read_checkpoint_configs(p);
    EXPECT_EQ(nlohmann::json(tc2), nlohmann::json(tc));
    ASSERT_TRUE(tc2.immunise.enabled);
    Trainer<BF> second(b, mc, tc2);
    io::Sampler s2(ds.size(), tc2.seed);
    load_checkpoint(b, p, second, s2);
    ASSERT_EQ(second.step_count(), k);
    EXPECT_GT(second.immunise_strength(), 0.0);
    EXPECT_LT(second.immunise_strength(), 1.0);
    const auto rest = run(second, s2, k);
    resumed.insert(resumed.end(), rest.begin(), rest.end());
    ASSERT_EQ(all.size(), resumed.size());
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], resumed[i]) << "value " << i;
    expect_same_weights(b, straight, second);  // every parameter of G, its EMA, F and D
}

}  // namespace
}  // namespace sgf::test
