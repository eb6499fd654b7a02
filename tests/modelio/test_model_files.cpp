// Model files (meta model, baked generator, checkpoint) and exact resume of training.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/train/checkpoint.hpp>
#include <sgf/backends/eigen.hpp>
#include <sgf/verify/decode.hpp>
#include <sgf/verify/evaluate.hpp>

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"
#include "file_bytes.hpp"

#include "test_util.hpp"

#include "same_weights.hpp"

#include <fstream>
#include <limits>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;

fs::path tmpdir() { return test::own_tmpdir(SGF_TEST_TMPDIR, "models"); }

/// A copy of `file` named `name` in tmpdir() without its last `cut` bytes (a truncated download).
fs::path truncated_copy(const fs::path& file, const std::string& name, std::size_t cut) {
    const std::string bytes = test::slurp(file);
    const fs::path out = tmpdir() / name;
    std::ofstream(out, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() - cut));
    return out;
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

TEST(ModelFiles, MetaModelRoundTripIsBitExact) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    // const networks: the writers and instantiate only read them
    const MetaGenerator<B> G(b, cfg, 1);
    const auto F = make_decoder(b, cfg, 2);
    const auto D = make_discriminator(b, cfg, 3);
    const fs::path p = tmpdir() / "meta.safetensors";
    io::save_meta_model(b, p, G, F, D);
    auto m = io::load_meta_model<B>(b, p);
    auto gb = draw_generator_batch(b, cfg, 2, 1, 0);
    const auto a = to_host_vector(b, G.forward(b, gb.z, gb.c1, 3).image());
    const auto c = to_host_vector(b, m.G.forward(b, gb.z, gb.c1, 3).image());
    EXPECT_EQ(a, c);
    auto gi = G.forward(b, gb.z, gb.c1, 3);
    EXPECT_EQ(to_host_vector(b, F.forward(b, gi.image()).output()), to_host_vector(b, m.F.forward(b, gi.image()).output()));
    EXPECT_EQ(to_host_vector(b, D.forward(b, gi.image()).output()), to_host_vector(b, m.D.forward(b, gi.image()).output()));
    // a baked generator file is not a meta model, and vice versa
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    const auto Gu = instantiate(b, G, c1);
    const fs::path pu = tmpdir() / "user.safetensors";
    io::save_baked_generator(b, pu, Gu);
    EXPECT_THROW(io::load_meta_model<B>(b, pu), FormatError);
    EXPECT_THROW(io::load_baked_generator<B>(b, p), FormatError);
    auto Gu2 = io::load_baked_generator<B>(b, pu);
    EXPECT_EQ(to_host_vector(b, Gu.forward_baked(b, gb.z, 5).image()), to_host_vector(b, Gu2.forward_baked(b, gb.z, 5).image()));
    const auto baked_file = io::SafetensorsFile::load(pu);
    for (const auto& [name, t] : baked_file.tensors()) {
        EXPECT_EQ(name.rfind("G.", 0), 0u) << "baked files hold only the generator: " << name;
        EXPECT_EQ(name.find("embed"), std::string::npos) << name;
        EXPECT_EQ(name.find("affine"), std::string::npos) << name;
    }
}

TEST(ModelFiles, DecoderFileHoldsFAloneAndDecodesAsTheMetaModel) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    const fs::path meta = tmpdir() / "dec-meta.safetensors", dec = tmpdir() / "dec.safetensors";
    io::save_meta_model(b, meta, G, F, D);
    io::save_decoder(b, dec, F, {{"sgf.note", "kept"}});
    const auto file = io::SafetensorsFile::load(dec);
    EXPECT_EQ(file.metadata.at("sgf.kind"), "decoder");
    EXPECT_EQ(file.metadata.at("sgf.note"), "kept");
    EXPECT_EQ(file.size(), F.parameters().size());
    for (const auto& [name, t] : file.tensors()) EXPECT_EQ(name.rfind("F.", 0), 0u) << "a decoder file holds F only: " << name;
    // the same logits from the decoder file, from the meta model read as a decoder, and from F
    auto gb = draw_generator_batch(b, cfg, 2, 1, 0);
    auto img = G.forward(b, gb.z, gb.c1, 3).image().clone(b);
    const auto want = to_host_vector(b, F.forward(b, img).output());
    auto from_dec = io::load_decoder<B>(b, dec);
    auto from_meta = io::load_decoder<B>(b, meta);
    EXPECT_EQ(nlohmann::json(from_dec.config), nlohmann::json(cfg));
    EXPECT_EQ(to_host_vector(b, from_dec.F.forward(b, img).output()), want);
    EXPECT_EQ(to_host_vector(b, from_meta.F.forward(b, img).output()), want);
    // a decoder file is neither a meta model nor a baked generator; a baked generator is no decoder
    EXPECT_THROW(io::load_meta_model<B>(b, dec), FormatError);
    EXPECT_THROW(io::load_baked_generator<B>(b, dec), FormatError);
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c1);
    const fs::path pu = tmpdir() / "dec-user.safetensors";
    io::save_baked_generator(b, pu, Gu);
    const std::string m = sgf::test::message_of<FormatError>([&] { io::load_decoder<B>(b, pu); });
    EXPECT_NE(m.find("holds a 'baked-generator', expected meta-model or decoder"), std::string::npos) << m;
    // the discriminator (1 output) is not saved as a decoder; a truncated decoder file is refused
    EXPECT_THROW(io::save_decoder(b, tmpdir() / "d-as-f.safetensors", D), ArgumentError);
    EXPECT_THROW(io::load_decoder<B>(b, truncated_copy(dec, "dec-cut.safetensors", 100)), FormatError);
}

TEST(ModelFiles, MetaGeneratorFileHoldsGAloneAndBakesAsTheMetaModel) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    const fs::path meta = tmpdir() / "gen-meta.safetensors", gen = tmpdir() / "gen.safetensors";
    io::save_meta_model(b, meta, G, F, D);
    io::save_meta_generator(b, gen, G, {{"sgf.note", "kept"}});
    const auto file = io::SafetensorsFile::load(gen);
    EXPECT_EQ(file.metadata.at("sgf.kind"), "meta-generator");
    EXPECT_EQ(file.metadata.at("sgf.note"), "kept");
    EXPECT_EQ(file.size(), G.parameters().size());
    bool has_embedding = false;
    for (const auto& [name, t] : file.tensors()) {
        EXPECT_EQ(name.rfind("G.", 0), 0u) << "a meta-generator file holds G only: " << name;
        has_embedding = has_embedding || name.find("embed") != std::string::npos;
    }
    EXPECT_TRUE(has_embedding) << "E travels with G: baking needs it";
    // the same images and the same baked copy from the file, from the meta model read as one, and from G
    auto gb = draw_generator_batch(b, cfg, 2, 1, 0);
    const auto want = to_host_vector(b, G.forward(b, gb.z, gb.c1, 3).image());
    auto from_gen = io::load_meta_generator<B>(b, gen);
    auto from_meta = io::load_meta_generator<B>(b, meta);
    EXPECT_EQ(nlohmann::json(from_gen.config), nlohmann::json(cfg));
    EXPECT_EQ(to_host_vector(b, from_gen.G.forward(b, gb.z, gb.c1, 3).image()), want);
    EXPECT_EQ(to_host_vector(b, from_meta.G.forward(b, gb.z, gb.c1, 3).image()), want);
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c1), Gu2 = instantiate(b, from_gen.G, c1);
    EXPECT_EQ(to_host_vector(b, Gu.forward_baked(b, gb.z, 5).image()), to_host_vector(b, Gu2.forward_baked(b, gb.z, 5).image()));
    // it is neither a meta model, a decoder nor a baked generator; baked generators are not saved as one
    EXPECT_THROW(io::load_meta_model<B>(b, gen), FormatError);
    EXPECT_THROW(io::load_baked_generator<B>(b, gen), FormatError);
    const std::string m = sgf::test::message_of<FormatError>([&] { io::load_decoder<B>(b, gen); });
    EXPECT_NE(m.find("holds a 'meta-generator', expected meta-model or decoder"), std::string::npos) << m;
    EXPECT_THROW(io::save_meta_generator(b, tmpdir() / "baked-as-meta.safetensors", Gu), ArgumentError);
    // a decoder file is no meta generator; a truncated meta-generator file is refused
    io::save_decoder(b, tmpdir() / "gen-dec.safetensors", F);
    EXPECT_THROW(io::load_meta_generator<B>(b, tmpdir() / "gen-dec.safetensors"), FormatError);
    EXPECT_THROW(io::load_meta_generator<B>(b, truncated_copy(gen, "gen-cut.safetensors", 100)), FormatError);
}

TEST(ModelFiles, ConfigJsonIntegersOutsideIntAndOversizedConfigsAreRefused) {
    nlohmann::json j = ModelConfig::tiny();
    EXPECT_NO_THROW(j.get<ModelConfig>());
    const auto refused = [&](const char* key, const nlohmann::json& v) {
        nlohmann::json k = j;
        k[key] = v;
        EXPECT_THROW(k.get<ModelConfig>(), Error) << key << " = " << v.dump();
    };
    refused("z_dim", 4294967304ull);  // 2^32 + 8: get_to(int) read it as 8
    refused("z_dim", 1e20);           // a float: the cast was undefined
    refused("z_dim", -4294967288ll);
    refused("fingerprint_bits", 4.5);
    refused("resolution", 1 << 30);   // a power of two; resolutions() overflowed int
    refused("channel_max", 1 << 20);
    refused("embed_layers", 1000);
    refused("embed_lr_mult", 1e-40);  // E's output would not depend on the fingerprint
    refused("embed_lr_mult", 1e300);
}

TEST(ModelFiles, DecodingWithANetworkThatIsNotTheDecoderIsRefused) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    auto D = make_discriminator(b, cfg, 3);  // one output per image: decode read past its output
    Tensor<B> x(b, Shape{2, cfg.image_channels, cfg.resolution, cfg.resolution}, 0.1f);
    EXPECT_THROW(decode_batch(b, D, x), ArgumentError);
    auto F = make_decoder(b, cfg, 2);
    EXPECT_EQ(decode_batch(b, F, x).size(), 2u);
}

TEST(ModelFiles, DecodeFilesChecksItsBatchAndGivesTheSameResultForAnyBatch) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    auto F = make_decoder(b, cfg, 2);
    std::vector<std::string> paths;
    for (int i = 0; i < 3; ++i) {
        io::Image im{cfg.resolution, cfg.resolution, 1, {}};
        for (int k = 0; k < cfg.resolution * cfg.resolution; ++k) im.pixels.push_back(std::uint8_t((k * (7 + i)) % 256));
        paths.push_back((tmpdir() / fmt::format("decode{}.png", i)).string());
        io::save_png(paths.back(), im);
    }
    for (std::int64_t bad : {0, -1, -64}) EXPECT_THROW(decode_files(b, F, paths, bad), ArgumentError) << bad;  // 0 never flushed
    // progress: after each full batch, then once at the end with everything handled
    std::vector<std::pair<std::int64_t, std::int64_t>> calls;
    (void)decode_files(b, F, paths, 2, {}, [&](std::int64_t done, std::int64_t total) { calls.emplace_back(done, total); });
    EXPECT_EQ(calls, (std::vector<std::pair<std::int64_t, std::int64_t>>{{2, 3}, {3, 3}}));
    calls.clear();
    (void)decode_files(b, F, paths, 3, {}, [&](std::int64_t done, std::int64_t total) { calls.emplace_back(done, total); });
    EXPECT_EQ(calls, (std::vector<std::pair<std::int64_t, std::int64_t>>{{3, 3}}));
    const auto one = decode_files(b, F, paths, 1), all = decode_files(b, F, paths);
    // any range of paths gives what the strings give
    const std::vector<fs::path> fs_paths(paths.begin(), paths.end());
    const auto as_paths = decode_files(b, F, fs_paths);
    ASSERT_EQ(as_paths.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(as_paths[i].path, paths[i]);
        ASSERT_TRUE(as_paths[i].decoded) << as_paths[i].error;
        EXPECT_EQ(as_paths[i].decoded->logits, all[i].decoded->logits);
    }
    ASSERT_EQ(one.size(), 3u);
    ASSERT_EQ(all.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(one[i].decoded && all[i].decoded) << one[i].error << all[i].error;
        EXPECT_EQ(one[i].decoded->fingerprint, all[i].decoded->fingerprint);
        for (std::size_t k = 0; k < one[i].decoded->logits.size(); ++k)
            EXPECT_NEAR(one[i].decoded->logits[k], all[i].decoded->logits[k], 1e-4) << i << " " << k;
    }
}

TEST(ModelFiles, DecodeImagesInMemoryGivesWhatDecodeFilesGives) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    auto F = make_decoder(b, cfg, 2);
    // an RGB image of another size and a gray one of the model's: both prepared as decode_files does
    std::vector<io::Image> images = {io::Image{cfg.resolution + 9, cfg.resolution + 3, 3, {}},
                                     io::Image{cfg.resolution, cfg.resolution, 1, {}}};
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < images.size(); ++i) {
        auto& im = images[i];
        for (int k = 0; k < im.width * im.height * im.channels; ++k) im.pixels.push_back(std::uint8_t((k * (5 + 3 * i)) % 251));
        paths.push_back((tmpdir() / fmt::format("in-memory{}.png", i)).string());
        io::save_png(paths.back(), im);
    }
    const auto from_files = decode_files(b, F, paths);
    for (std::int64_t batch : {1, 64}) {
        const auto in_memory = decode_images(b, F, images, batch);
        ASSERT_EQ(in_memory.size(), images.size());
        for (std::size_t i = 0; i < images.size(); ++i) {
            ASSERT_TRUE(from_files[i].decoded) << from_files[i].error;
            EXPECT_EQ(in_memory[i].fingerprint, from_files[i].decoded->fingerprint);
            ASSERT_EQ(in_memory[i].logits.size(), from_files[i].decoded->logits.size());
            for (std::size_t k = 0; k < in_memory[i].logits.size(); ++k)  // other batch sizes: GEMM rounding
                EXPECT_NEAR(in_memory[i].logits[k], from_files[i].decoded->logits[k], 1e-4) << i << " " << k;
        }
    }
    EXPECT_TRUE(decode_images(b, F, {}).empty());
    EXPECT_THROW(decode_images(b, F, images, 0), ArgumentError);
    try {  // too small to decode: named by its index; the caller's image, so an ArgumentError (as for sizes below)
        decode_images(b, F, {images[1], io::Image{2, 2, 1, std::vector<std::uint8_t>(4)}});
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("image 1: image is 2x2, too small"), std::string::npos) << e.what();
    }
    // sizes that do not agree: an ArgumentError, not a read past the pixels
    // (named by its index: "convert_channels: 16x16x4 image ..." did not say which)
    try {
        decode_images(b, F, {images[1], io::Image{cfg.resolution, cfg.resolution, 1, std::vector<std::uint8_t>(3)}});
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("image 1: a 16x16 image with 1 channel(s) needs 256 bytes"), std::string::npos) << e.what();
    }
}

// decode_files over a range takes ranges of paths, but not one path: a std::filesystem::path is a range
// of its components, and decoding "/", "tmp", "x.png" one by one (relative to the working folder) was
// what it did with one
template <class P>
concept DecodesAsRange = requires(B& b, const ResidualCritic<B>& F, const P& p) { decode_files(b, F, p); };
static_assert(!DecodesAsRange<fs::path>);
static_assert(DecodesAsRange<std::vector<fs::path>>);
static_assert(DecodesAsRange<std::vector<std::string_view>>);

TEST(ModelFiles, DecodeFileDecodesOneFileOrThrowsWhatWentWrong) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    auto F = make_decoder(b, cfg, 2);
    io::Image im{cfg.resolution, cfg.resolution, 1, {}};
    for (int k = 0; k < cfg.resolution * cfg.resolution; ++k) im.pixels.push_back(std::uint8_t((k * 7) % 251));
    const fs::path good = tmpdir() / "decode-one.png", text = tmpdir() / "decode-one.txt", tiny = tmpdir() / "decode-tiny.png";
    io::save_png(good, im);
    io::write_file_atomic(text, std::string_view("not an image"));
    io::save_png(tiny, io::Image{1, 1, 1, {0}});
    const Decoded one = decode_file(b, F, good);
    const auto batch = decode_files(b, F, std::vector<fs::path>{good});
    ASSERT_TRUE(batch[0].decoded) << batch[0].error;
    EXPECT_EQ(one.fingerprint, batch[0].decoded->fingerprint);
    EXPECT_NO_THROW(batch[0].throw_if_failed());
    auto expect_error = [&](const fs::path& p, auto kind) {
        using E = decltype(kind);
        try {
            decode_file(b, F, p);
            ADD_FAILURE() << p << " decoded";
        } catch (const E& e) {
            EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
        }
        const auto r = decode_files(b, F, std::vector<fs::path>{p});
        EXPECT_THROW(r[0].throw_if_failed(), E) << p;
    };
    expect_error(tmpdir() / "no-such-image.png", IoError(""));
    expect_error(text, FormatError(""));
    expect_error(tiny, FormatError(""));  // a file too small to decode: its content, not the caller's call
}

TEST(ModelFiles, TruncatedOrCorruptedModelIsRejected) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    const fs::path p = tmpdir() / "meta2.safetensors";
    io::save_meta_model(b, p, G, F, D);
    auto bytes = io::read_file(p);
    const fs::path t = tmpdir() / "truncated.safetensors";
    io::write_file_atomic(t, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size() / 2));
    try {
        io::load_meta_model<B>(b, t);
        FAIL();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("truncated.safetensors"), std::string::npos) << e.what();
    }
    bytes[bytes.size() - 10] ^= 1;
    const fs::path c = tmpdir() / "corrupt.safetensors";
    io::write_file_atomic(c, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    EXPECT_THROW(io::load_meta_model<B>(b, c), FormatError);
    // a file for another architecture: shapes do not match
    ModelConfig other = cfg;
    other.channel_max = 8;
    MetaGenerator<B> G2(b, other, 1);
    auto F2 = make_decoder(b, other, 2);
    auto D2 = make_discriminator(b, other, 3);
    io::SafetensorsFile f = io::SafetensorsFile::load(p);
    f.metadata["sgf.config"] = nlohmann::json(other).dump();
    const fs::path m = tmpdir() / "mismatch.safetensors";
    f.save(m);
    // the config checksum catches the edit first ...
    EXPECT_NE(sgf::test::message_of<FormatError>([&] { io::load_meta_model<B>(b, m); }).find("does not match its checksum"),
              std::string::npos);
    // ... and without it (a file of an older sgf or another writer) the tensor shapes do
    f.metadata.erase("sgf.config_checksum");
    f.save(m);
    EXPECT_NE(sgf::test::message_of<FormatError>([&] { io::load_meta_model<B>(b, m); }).find("shape"), std::string::npos);
}

TEST(ModelFiles, AnEditedConfigIsCaughtByTheConfigChecksum) {
    // sgf.checksum covers only the tensor data: an edited embed_lr_mult (same shapes) loaded without
    // complaint and decoded nothing (the API review). sgf.config_checksum covers the config.
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    const fs::path p = tmpdir() / "cfgsum.safetensors";
    io::save_meta_model(b, p, G, F, D);
    io::SafetensorsFile f = io::SafetensorsFile::load(p);
    ASSERT_TRUE(f.metadata.count("sgf.config_checksum"));
    auto edited = nlohmann::json::parse(f.meta("sgf.config"));
    edited["embed_lr_mult"] = 0.07;
    f.metadata["sgf.config"] = edited.dump();
    const fs::path e = tmpdir() / "cfgsum-edited.safetensors";
    f.save(e);
    const std::string m = sgf::test::message_of<FormatError>([&] { io::load_meta_model<B>(b, e); });
    EXPECT_NE(m.find(e.string() + ": the model config does not match its checksum"), std::string::npos) << m;
    EXPECT_THROW(io::load_decoder<B>(b, e), FormatError);
    // a file without the key (sgf before session 25, the Python recipe of docs/model-format.md) loads
    f.metadata.erase("sgf.config_checksum");
    f.save(e);
    EXPECT_NO_THROW(io::load_meta_model<B>(b, e));
}

TEST(ModelFiles, TheShippedModelsCarryTheirConfigChecksum) {
    // written before sgf.config_checksum existed; the key was added later, tensors unchanged, so that
    // the models every user loads get the same protection against an edited config
    for (const char* name : {"fashion-small.safetensors", "fashion-small-immunised.safetensors"}) {
        const fs::path p = fs::path(SGF_SOURCE_DIR) / "models" / name;
        const auto f = io::SafetensorsFile::load(p);
        ASSERT_TRUE(f.metadata.count("sgf.config_checksum")) << p;
        EXPECT_NO_THROW(io::check_config_checksum(f)) << p;
    }
}

TEST(ModelFiles, ResolutionAboveMaxResolutionIsRejectedNamingFileAndLimit) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();  // 16 px
    ASSERT_EQ(cfg.resolution, 16);
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    const fs::path p = tmpdir() / "res-limit-meta.safetensors";
    io::save_meta_model(b, p, G, F, D);
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c1);
    const fs::path pu = tmpdir() / "res-limit-baked.safetensors";
    io::save_baked_generator(b, pu, Gu);

    io::ModelFileLimits at_limit;
    at_limit.max_resolution = 16;  // equal to the model's resolution: accepted
    EXPECT_EQ(io::load_meta_model<B>(b, p, at_limit).config.resolution, 16);
    EXPECT_NO_THROW(io::load_baked_generator<B>(b, pu, at_limit));

    io::ModelFileLimits small;
    small.max_resolution = 8;
    auto expect_rejected = [&](const fs::path& file, auto&& load) {
        try {
            load();
            ADD_FAILURE() << file << ": expected a FormatError for resolution 16 above the limit of 8";
        } catch (const FormatError& e) {
            const std::string m = e.what();
            EXPECT_NE(m.find(file.string()), std::string::npos) << m;
            EXPECT_NE(m.find("resolution 16"), std::string::npos) << m;
            EXPECT_NE(m.find("limit of 8"), std::string::npos) << m;
            EXPECT_NE(m.find("max_resolution"), std::string::npos) << m;
        }
    };
    expect_rejected(p, [&] { io::load_meta_model<B>(b, p, small); });
    expect_rejected(pu, [&] { io::load_baked_generator<B>(b, pu, small); });
    const io::SafetensorsFile f = io::SafetensorsFile::load(p);
    expect_rejected(p, [&] { io::check_header(f, {"meta-model"}, small); });
    EXPECT_EQ(io::check_header(f, {"meta-model"}, at_limit).resolution, 16);
}

/// k steps, checkpoint, reload, k steps: the same losses and weights as 2k straight steps.
void expect_exact_resume(TrainConfig tc, int images = 37) {
    B b(2);
    const ModelConfig cfg = ModelConfig::tiny();
    tc.batch = 4;
    tc.d_reg_interval = 3;  // exercise R1 inside the window
    const auto ds = random_dataset(cfg, images);
    const int k = 4;
    auto run = [&](Trainer<B>& tr, io::Sampler& s, int steps) {
        std::vector<double> losses;
        for (int i = 0; i < steps; ++i) {
            const auto idx = s.next(tc.batch);
            auto real = from_host(b, tc.x_flip ? ds.x_flip_batch(idx) : ds.batch(idx));
            auto st = tr.step(real);
            losses.insert(losses.end(), {st.g.total, st.d.total, st.d.r1, st.g.bit_accuracy});
        }
        return losses;
    };
    const std::int64_t drawn = tc.x_flip ? 2 * ds.size() : ds.size();  // as run_training builds it
    Trainer<B> straight(b, cfg, tc);
    io::Sampler s1(drawn, tc.seed);
    const auto all = run(straight, s1, 2 * k);

    const fs::path p = tmpdir() / "ckpt.safetensors";
    std::vector<double> resumed;
    {
        Trainer<B> first(b, cfg, tc);
        io::Sampler s(drawn, tc.seed);
        resumed = run(first, s, k);
        save_checkpoint(b, p, first, s);
    }
    auto [mc, tc2] = read_checkpoint_configs(p);
    EXPECT_EQ(tc2.x_flip, tc.x_flip);
    Trainer<B> second(b, mc, tc2);
    io::Sampler s2(tc2.x_flip ? 2 * ds.size() : ds.size(), tc2.seed);
    load_checkpoint(b, p, second, s2);
    EXPECT_EQ(second.step_count(), k);
    const auto rest = run(second, s2, k);
    resumed.insert(resumed.end(), rest.begin(), rest.end());
    ASSERT_EQ(all.size(), resumed.size());
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], resumed[i]) << "value " << i;
    test::expect_same_weights(b, straight, second);
}

/// Sets one value (the middle one) of parameter `name` of `net` to `x`.
template <class Net>
void set_one_value(B& b, Net& net, const std::string& name, float x) {
    for (auto* p : net.parameters())
        if (p->name == name) {
            auto v = to_host_vector<float>(b, p->value);
            v[v.size() / 2] = x;
            upload_into(b, std::span<const float>(v), p->value);
            return;
        }
    FAIL() << "no parameter " << name;
}

/// Rewrites file `p` with one value (the middle one) of tensor `tensor` set to `x`: the savers refuse
/// to write NaN or Inf, so a poisoned file is made through the container (valid checksum).
void poison(const fs::path& p, const std::string& tensor, float x) {
    auto f = io::SafetensorsFile::load(p);
    auto v = f.get<float>(tensor);
    v[v.size() / 2] = x;
    f.put<float>(tensor, f.tensors().at(tensor).shape, v);
    f.save(p);
}

/// `load` must throw FormatError naming file `p` and saying that `tensor` holds NaN or Inf.
template <class F>
void expect_non_finite_refused(F&& load, const fs::path& p, const std::string& tensor) {
    try {
        load();
        ADD_FAILURE() << p << ": a file whose tensor " << tensor << " holds NaN or Inf was accepted";
    } catch (const FormatError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(p.string()), std::string::npos) << m;
        EXPECT_NE(m.find(fmt::format("tensor '{}' holds NaN or Inf", tensor)), std::string::npos) << m;
    }
}

// A model file whose weights held NaN or Inf (with a valid checksum) was accepted: `decode` then read
// an all-zero fingerprint from NaN logits and `verify` said not_fingerprinted; `generate` wrote black
// images. Every loader now refuses a non-finite value, naming file and tensor (exit 4 in the CLI).
TEST(ModelFiles, WeightsHoldingNaNOrInfAreRefusedNamingFileAndTensor) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const struct {
        const char* tensor;
        float value;
    } cases[] = {{"F.b4.out.bias", nan}, {"G.b4.conv0.weight", inf}, {"D.b4.fc.weight", -inf}, {"G.embed.fc0.bias", nan}};
    for (const auto& c : cases) {
        MetaGenerator<B> G(b, cfg, 1);
        auto F = make_decoder(b, cfg, 2);
        auto D = make_discriminator(b, cfg, 3);
        const fs::path p = tmpdir() / fmt::format("non-finite-{}.safetensors", c.tensor);
        io::save_meta_model(b, p, G, F, D);
        poison(p, c.tensor, c.value);
        const auto file = io::SafetensorsFile::load(p);  // the container and its checksum are fine
        expect_non_finite_refused([&] { io::load_meta_model<B>(b, p); }, p, c.tensor);
        // a release file to start training from (--init-from)
        Trainer<B> tr(b, cfg, TrainConfig{});
        expect_non_finite_refused([&] { load_release_weights(b, file, tr); }, p, c.tensor);
    }
    // a baked generator
    {
        MetaGenerator<B> G(b, cfg, 1);
        Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
        auto Gu = instantiate(b, G, c1);
        const fs::path p = tmpdir() / "non-finite-baked.safetensors";
        io::save_baked_generator(b, p, Gu);
        poison(p, "G.b4.torgb.bias", inf);
        expect_non_finite_refused([&] { io::load_baked_generator<B>(b, p); }, p, "G.b4.torgb.bias");
    }
    // checkpoints: the EMA generator and the optimiser moments too
    {
        TrainConfig tc;
        tc.batch = 4;
        const auto ds = random_dataset(cfg, 8);
        Trainer<B> tr(b, cfg, tc);
        io::Sampler s(ds.size(), tc.seed);
        tr.step(from_host(b, ds.batch(s.next(tc.batch))));
        const fs::path p = tmpdir() / "non-finite-checkpoint.safetensors";
        save_checkpoint(b, p, tr, s);
        Trainer<B> ok(b, cfg, tc);
        io::Sampler s2(ds.size(), tc.seed);
        ASSERT_NO_THROW(load_checkpoint(b, p, ok, s2));
        set_one_value(b, tr.generator_ema(), "G.b4.conv0.bias", nan);
        save_checkpoint(b, p, tr, s);
        expect_non_finite_refused([&] { load_checkpoint(b, p, ok, s2); }, p, "ema.G.b4.conv0.bias");
        set_one_value(b, tr.generator_ema(), "G.b4.conv0.bias", 0.0f);
        auto& opt = tr.opt_decoder();
        const std::string name = opt.parameters().front()->name;
        auto v = to_host_vector<float>(b, opt.second_moments().front());
        v.back() = inf;
        upload_into(b, std::span<const float>(v), opt.second_moments().front());
        save_checkpoint(b, p, tr, s);
        expect_non_finite_refused([&] { load_checkpoint(b, p, ok, s2); }, p, "opt.F.v." + name);
    }
}

// The savers wrote files their own loaders refuse, and reported success: a meta model with a baked
// generator, or F/D of another config; weights holding NaN/Inf; extra metadata that replaced
// `sgf.kind` or `sgf.config`. Each is now refused before anything is written (an existing file stays).
TEST(ModelFiles, SaversRefuseFilesTheirLoadersWouldRefuse) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    ModelConfig other = cfg;
    other.fingerprint_bits = 8;
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, cfg, 2);
    auto D = make_discriminator(b, cfg, 3);
    auto F8 = make_decoder(b, other, 2);
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c1);
    const fs::path p = tmpdir() / "saver-checks.safetensors";
    io::save_meta_model(b, p, G, F, D);
    const std::string before = test::slurp(p);
    auto unchanged = [&] { return test::slurp(p) == before; };
    auto message = [](auto&& f) { return sgf::test::message_of<Error>(f); };  // ArgumentError or NumericError
    std::string m = message([&] { io::save_meta_model(b, p, Gu, F, D); });
    EXPECT_NE(m.find("would hold a baked generator"), std::string::npos) << m;
    m = message([&] { io::save_meta_model(b, p, G, F8, D); });
    EXPECT_NE(m.find("must have the generator's config"), std::string::npos) << m;
    for (const char* key : {"sgf.kind", "sgf.config", "sgf.format_version", "sgf.checksum", "sgf.config_checksum"}) {
        m = message([&] { io::save_meta_model(b, p, G, F, D, {{key, "x"}}); });
        EXPECT_NE(m.find(fmt::format("metadata key '{}' is written by sgf itself", key)), std::string::npos) << m;
        EXPECT_THROW(io::save_baked_generator(b, p, Gu, {{key, "x"}}), ArgumentError);
    }
    set_one_value(b, D, "D.b4.fc.weight", std::numeric_limits<float>::quiet_NaN());
    m = message([&] { io::save_meta_model(b, p, G, F, D); });
    EXPECT_NE(m.find(p.string() + ": not written: tensor 'D.b4.fc.weight' holds NaN or Inf"), std::string::npos) << m;
    EXPECT_THROW(io::save_meta_model(b, p, G, F, D), NumericError);
    set_one_value(b, Gu, "G.b4.torgb.bias", std::numeric_limits<float>::infinity());
    EXPECT_THROW(io::save_baked_generator(b, p, Gu), NumericError);
    EXPECT_TRUE(unchanged()) << "a refused save replaced the file";
    EXPECT_NO_THROW(io::load_meta_model<B>(b, p));
    // other extra keys are kept
    set_one_value(b, D, "D.b4.fc.weight", 0.5f);
    io::save_meta_model(b, p, G, F, D, {{"sgf.note", "kept"}});
    EXPECT_EQ(io::SafetensorsFile::load(p).metadata.at("sgf.note"), "kept");
}

// A decoder that does not match the generator: a heap overflow (F of 64 bits against G of 128) or a
// wrong accuracy (F of 8 against G of 4) in measure_bit_accuracy.
TEST(ModelFiles, BitAccuracyNeedsADecoderThatReadsWhatTheGeneratorMakes) {
    B b(1);
    const ModelConfig cfg = ModelConfig::tiny();
    ModelConfig other = cfg;
    other.fingerprint_bits = cfg.fingerprint_bits * 2;
    MetaGenerator<B> G(b, cfg, 1);
    auto F = make_decoder(b, other, 2);
    try {
        measure_bit_accuracy(b, G, F, 4, 1);
        FAIL();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("the decoder reads"), std::string::npos) << e.what();
    }
    auto F_ok = make_decoder(b, cfg, 2);
    EXPECT_EQ(measure_bit_accuracy(b, G, F_ok, 4, 1).images, 4);
}

TEST(Checkpoint, ResumeGivesBitIdenticalLosses) { expect_exact_resume(TrainConfig{}); }

TEST(Checkpoint, XFlipResumeGivesBitIdenticalLosses) {
    TrainConfig tc;
    tc.x_flip = true;
    // 7 images, 14 indices: the 8 steps of 4 draw every plain and mirrored index and cross two epoch
    // boundaries, one of them (at draw 14) before the checkpoint after step 4 and one (at 28) after it
    expect_exact_resume(tc, 7);
}

TEST(Checkpoint, DecoderOnlyResumeGivesBitIdenticalLosses) {
    TrainConfig tc;
    tc.decoder_only = true;
    tc.immunise.enabled = true;  // its perturbations are drawn per step too
    expect_exact_resume(tc);
}

TEST(Checkpoint, InitFromReleaseFileStartsANewRunFromItsWeights) {
    B b(2);
    const ModelConfig cfg = ModelConfig::tiny();
    TrainConfig tc;
    tc.batch = 4;
    const auto ds = random_dataset(cfg, 16);
    Trainer<B> trained(b, cfg, tc);
    io::Sampler s(ds.size(), tc.seed);
    for (int i = 0; i < 3; ++i) trained.step(from_host(b, ds.batch(s.next(tc.batch))));
    const fs::path p = tmpdir() / "release-for-init.safetensors";
    io::save_meta_model(b, p, trained.generator_ema(), trained.decoder(), trained.discriminator());

    const auto file = io::SafetensorsFile::load(p);
    EXPECT_EQ(nlohmann::json(read_release_config(file)), nlohmann::json(cfg));
    TrainConfig tc2 = tc;
    tc2.seed = 9;  // a different seed: the weights must still be the file's, not a fresh draw
    Trainer<B> fresh(b, cfg, tc2);
    load_release_weights(b, file, fresh);
    EXPECT_EQ(fresh.step_count(), 0);
    auto same = [&](auto& got, auto& want, const char* what) {
        const auto g = got.parameters();
        const auto w = want.parameters();
        ASSERT_EQ(g.size(), w.size());
        for (std::size_t i = 0; i < g.size(); ++i)
            EXPECT_EQ(to_host_vector(b, g[i]->value), to_host_vector(b, w[i]->value)) << what << " " << g[i]->name;
    };
    same(fresh.generator(), trained.generator_ema(), "G <- file's EMA G");
    same(fresh.generator_ema(), trained.generator_ema(), "EMA G");
    same(fresh.decoder(), trained.decoder(), "F");
    same(fresh.discriminator(), trained.discriminator(), "D");
    const auto st = fresh.step(from_host(b, ds.batch(s.next(tc.batch))));  // trains from there
    EXPECT_TRUE(std::isfinite(st.g.total));

    // another model's file is refused with the file named
    ModelConfig other = cfg;
    other.fingerprint_bits = cfg.fingerprint_bits + 4;
    Trainer<B> mismatched(b, other, tc);
    try {
        load_release_weights(b, file, mismatched);
        ADD_FAILURE() << "a release file of another model config was accepted";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sgf
