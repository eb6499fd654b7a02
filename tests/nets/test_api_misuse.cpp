// Misuse of the library API that a C++ user can write and that crashed (SIGSEGV, bad_alloc) or
// silently wrote a bad file, found by a review that used only docs/library.md: a moved-from tensor,
// default-constructed or moved-from networks, one network passed twice to save_meta_model, an empty
// batch, NaN pixels, an out-of-range matcher index, a decoded code of another length. Each is now an
// sgf::Error that says what is wrong.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/verify/decode.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

namespace sgf {
namespace {

using B = EigenCpu;
namespace fs = std::filesystem;

template <class E, class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one saying '" << needle << "'";
    } catch (const E& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(ApiMisuse, AMovedFromTensorIsEmptyAndOpsRefuseIt) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    const auto F = make_decoder(b, cfg, 1);
    Tensor<B> t(b, Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution}, 0.0f);
    Tensor<B> moved = std::move(t);
    EXPECT_TRUE(t.empty());  // it kept its shape with no storage: a null data() behind a non-empty shape
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(moved.shape(), (Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution}));
    EXPECT_THROW(decode_batch(b, F, t), ShapeError);
    EXPECT_EQ(decode_batch(b, F, moved).size(), 1u);
    Tensor<B> assigned;
    assigned = std::move(moved);
    EXPECT_TRUE(moved.empty());
    EXPECT_FALSE(assigned.empty());
}

// z and fingerprints are matrices to the caller: a wrong one is printed as one ("got [2, 63, 1, 1]" read
// as if the caller had built a 4-D tensor)
TEST(ApiMisuse, WrongZAndFingerprintShapesArePrintedAsTheCallerWroteThem) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    const auto baked = instantiate(b, G, Fingerprint::from_seed(cfg.fingerprint_bits, 1));
    Tensor<B> z_bad(b, Shape{2, cfg.z_dim - 1}, 0.0f), z(b, Shape{2, cfg.z_dim}, 0.0f);
    Tensor<B> c_bad(b, Shape{2, cfg.fingerprint_bits + 1}, 1.0f);
    expect_error<ShapeError>([&] { (void)baked.forward_baked(b, z_bad, std::nullopt); },
                             fmt::format("expected z of shape [N, {}], got [2, {}]", cfg.z_dim, cfg.z_dim - 1));
    expect_error<ShapeError>([&] { (void)G.forward(b, z, c_bad, std::nullopt); },
                             fmt::format("got [2, {}]", cfg.fingerprint_bits + 1));
    Tensor<B> img(b, Shape{2, 1, 3, 3}, 0.0f);  // not a matrix: all four dimensions
    expect_error<ShapeError>([&] { (void)baked.forward_baked(b, img, std::nullopt); }, "got [2, 1, 3, 3]");
}

TEST(ApiMisuse, NetworksWithoutLayersAreRefusedByEveryUse) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    const fs::path dir = test::own_tmpdir(SGF_TEST_TMPDIR, "misuse");
    Tensor<B> z(b, Shape{1, cfg.z_dim}, 0.0f), c(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    Tensor<B> img(b, Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution}, 0.0f);
    MetaGenerator<B> none;
    expect_error<ArgumentError>([&] { none.forward(b, z, c, std::nullopt); }, "holds no layers");
    expect_error<ArgumentError>([&] { none.forward_baked(b, z, std::nullopt); }, "holds no layers");
    expect_error<ArgumentError>([&] { instantiate(b, none, c.view()); }, "holds no layers");
    MetaGenerator<B> G(b, cfg, 1);
    MetaGenerator<B> G2 = std::move(G);
    expect_error<ArgumentError>([&] { instantiate(b, G, Fingerprint(cfg.fingerprint_bits)); }, "default-constructed or moved from");
    auto Gu = instantiate(b, G2, Fingerprint(cfg.fingerprint_bits));
    MetaGenerator<B> Gu2 = std::move(Gu);
    expect_error<ArgumentError>([&] { io::save_baked_generator(b, dir / "u.safetensors", Gu); }, "holds no layers");
    EXPECT_FALSE(fs::exists(dir / "u.safetensors"));
    ResidualCritic<B> no_decoder;
    expect_error<ArgumentError>([&] { no_decoder.forward(b, img); }, "holds no layers");
    expect_error<ArgumentError>([&] { io::save_decoder(b, dir / "f.safetensors", no_decoder); }, "holds no layers");
    auto F = make_decoder(b, cfg, 2);
    auto F2 = std::move(F);
    expect_error<ArgumentError>([&] { decode_batch(b, F, img); }, "moved from");
    EXPECT_EQ(decode_batch(b, F2, img).size(), 1u);
}

TEST(ApiMisuse, SaveMetaModelNeedsADecoderAndADiscriminator) {
    // save_meta_model(G, F, F) wrote F's tensors twice under the same names (the second replaced the
    // first), no D, over an existing file, and the loader then refused it as "corrupt or hostile"
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    const fs::path p = test::own_tmpdir(SGF_TEST_TMPDIR, "misuse") / "meta.safetensors";
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    io::save_meta_model(b, p, G, F, D);
    const std::string before = [&] {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    expect_error<ArgumentError>([&] { io::save_meta_model(b, p, G, F, F); }, "expected the decoder F and the discriminator D");
    expect_error<ArgumentError>([&] { io::save_meta_model(b, p, G, D, D); }, "got networks named 'D' and 'D'");
    std::ifstream in(p, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), before) << "the earlier file was changed";
    EXPECT_NO_THROW(io::load_meta_model<B>(b, p));
}

TEST(ApiMisuse, EmptyBatchesNaNPixelsAndForeignCodes) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    const auto F = make_decoder(b, cfg, 2);
    // an empty batch: decode_batch returns nothing (as decode_images({}) does); the generator says so
    Tensor<B> none(b, Shape{0, cfg.image_channels, cfg.resolution, cfg.resolution});
    EXPECT_TRUE(decode_batch(b, F, none).empty());
    Tensor<B> z0(b, Shape{0, cfg.z_dim}), c0(b, Shape{0, cfg.fingerprint_bits});
    expect_error<ShapeError>([&] { G.forward(b, z0, c0, std::nullopt); }, "empty batch");
    expect_error<ShapeError>([&] { F.forward(b, none); }, "empty batch");
    // NaN pixels gave logits NaN, read as bit 0 each: the all-zero code, silently
    HostTensor<float> h(Shape{2, cfg.image_channels, cfg.resolution, cfg.resolution}, 0.25f);
    h.data[h.data.size() - 5] = std::numeric_limits<float>::quiet_NaN();
    expect_error<NumericError>([&] { decode_batch(b, F, from_host(b, h)); }, "image 1 gives a non-finite logit");
    // decode_files: a batch whose logits are not finite failed the whole call; each file gets its error
    const fs::path dir = test::own_tmpdir(SGF_TEST_TMPDIR, "misuse");
    std::vector<std::string> files;
    for (int k = 0; k < 2; ++k) {
        files.push_back((dir / fmt::format("img{}.png", k)).string());
        io::save_png(files.back(), io::to_image(h, 0));
    }
    files.push_back((dir / "missing.png").string());
    auto huge = make_decoder(b, cfg, 2);
    for (auto* p : huge.parameters()) b.fill(p->value.data(), p->value.size(), 1e30f);
    const auto res = decode_files(b, huge, files);
    ASSERT_EQ(res.size(), 3u);
    for (int k = 0; k < 2; ++k) {
        EXPECT_FALSE(res[std::size_t(k)].decoded);
        EXPECT_NE(res[std::size_t(k)].error.find(files[std::size_t(k)] + ": decode: image 0 gives a non-finite logit"), std::string::npos)
            << res[std::size_t(k)].error;
    }
    EXPECT_TRUE(res[2].io_error) << res[2].error;
    // the matcher: an index past the end was bad_alloc; a code of another length against an empty
    // registry was "not fingerprinted"
    Matcher m(64);
    m.add(Fingerprint(64), "a");
    EXPECT_EQ(m.label(0), "a");
    expect_error<ArgumentError>([&] { (void)m.label(99); }, "entry index 99 out of range [0, 1)");
    expect_error<ArgumentError>([&] { (void)m.label(-1); }, "out of range");
    Matcher empty(64);
    expect_error<ArgumentError>([&] { (void)empty.attribute(Fingerprint(128)); }, "the decoded fingerprint has 128 bits, the registry holds 64-bit fingerprints");
}

}  // namespace
}  // namespace sgf
