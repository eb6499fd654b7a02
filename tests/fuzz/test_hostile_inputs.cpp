// Hostile inputs in the normal test suite: every committed fuzz seed (and any crash reproducer
// saved next to them) replayed through the fuzz targets, plus regression tests for the problems
// the fuzzers and the limits review found (docs/security.md).
#include "targets.hpp"
#include "file_bytes.hpp"

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include <cstring>
#include <zlib.h>
#include <fstream>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = fuzz::FuzzBackend;

using test::slurp;

template <class Fn>
void replay(const std::string& target, Fn&& fn) {
    const fs::path dir = fs::path(SGF_FUZZ_CORPUS) / target;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string bytes = slurp(e.path());
        SCOPED_TRACE(e.path().string());
        EXPECT_NO_THROW(fn(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
        ++n;
    }
    EXPECT_GE(n, 4) << "the seed corpus of " << target << " is missing";
}

TEST(FuzzCorpus, ModelFile) { replay("model_file", fuzz::model_file); }
TEST(FuzzCorpus, Image) { replay("image", fuzz::image); }
TEST(FuzzCorpus, HexFingerprint) { replay("hex_fingerprint", fuzz::hex_fingerprint); }
TEST(FuzzCorpus, RegistryImport) { replay("registry_import", fuzz::registry_import); }

// The valid seeds are accepted (the limits do not reject legitimate files) and the regression
// inputs saved from fuzzer findings are rejected with a FormatError.
TEST(FuzzCorpus, ValidSeedsLoadAndRegressionInputsAreRejected) {
    auto& b = fuzz::backend();
    const fs::path models = fs::path(SGF_FUZZ_CORPUS) / "model_file";
    EXPECT_NO_THROW(io::load_meta_model<B>(b, models / "valid-micro-meta.safetensors"));
    EXPECT_NO_THROW(io::load_baked_generator<B>(b, models / "valid-micro-baked.safetensors"));
    EXPECT_NO_THROW(io::load_baked_generator<B>(b, models / "valid-tiny-baked.safetensors"));
    EXPECT_NO_THROW(io::check_header(io::SafetensorsFile::load(models / "valid-micro-checkpoint.safetensors"), {"checkpoint"}));
    int valid = 0, regress = 0;
    for (const auto& e : fs::directory_iterator(fs::path(SGF_FUZZ_CORPUS) / "image")) {
        const std::string name = e.path().filename().string();
        if (name.rfind("valid-", 0) == 0) {
            EXPECT_NO_THROW(io::load_image(e.path())) << name;
            ++valid;
        } else if (name.rfind("regress-", 0) == 0) {
            EXPECT_THROW(io::load_image(e.path()), FormatError) << name;
            ++regress;
        } else if (name.rfind("other-format-", 0) == 0) {
            EXPECT_THROW(io::load_image(e.path()), FormatError) << name << " (PNG and JPEG only by default)";
            io::ImageLimits all;
            all.allow_other_formats = true;
            EXPECT_NO_THROW(io::load_image(e.path(), all)) << name;
        }
    }
    EXPECT_GE(valid, 3);
    EXPECT_GE(regress, 3);
}

// ---- model files --------------------------------------------------------------------------------

fs::path tmpdir() { return test::own_tmpdir(SGF_TEST_TMPDIR, "hostile"); }


std::string tiny_baked_file() {
    auto& b = fuzz::backend();
    const ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G(b, cfg, 1);
    Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c1);
    const fs::path p = tmpdir() / "baked.safetensors";
    io::save_baked_generator(b, p, Gu);
    return slurp(p);
}

/// `file` (an sgf model file) with the JSON of its sgf.config metadata changed by `edit`.
template <class Edit>
std::string with_config_edit(const std::string& file, Edit&& edit) {
    auto j = nlohmann::json::parse(test::safetensors_header(file));
    auto cfg = nlohmann::json::parse(j["__metadata__"]["sgf.config"].get<std::string>());
    edit(cfg);
    j["__metadata__"]["sgf.config"] = cfg.dump();
    j["__metadata__"].erase("sgf.config_checksum");  // a hostile file leaves it out: the checks below must hold alone
    return test::with_safetensors_header(file, j.dump());
}

template <class Fn>
std::string format_error_of(Fn&& fn) {
    try {
        fn();
    } catch (const FormatError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a FormatError";
    return "";
}

TEST(HostileModelFiles, ChecksumIsWrittenAndAMismatchIsAClearError) {
    const std::string good = tiny_baked_file();
    const auto j = nlohmann::json::parse(test::safetensors_header(good));
    ASSERT_TRUE(j["__metadata__"].contains("sgf.checksum"));
    EXPECT_EQ(j["__metadata__"]["sgf.checksum"].get<std::string>().rfind("crc32:", 0), 0u);
    std::string bad = good;
    bad[bad.size() - 5] ^= 0x01;  // one bit of the last tensor
    const fs::path p = tmpdir() / "flipped.safetensors";
    io::write_file_atomic(p, bad);
    auto& b = fuzz::backend();
    const std::string m = format_error_of([&] { io::load_baked_generator<B>(b, p); });
    EXPECT_NE(m.find("flipped.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("checksum mismatch"), std::string::npos) << m;
    EXPECT_NE(m.find("corrupt"), std::string::npos) << m;
}

TEST(HostileModelFiles, ModelFilesWithoutAChecksumAreRejected) {
    auto& b = fuzz::backend();
    const std::string good = tiny_baked_file();
    auto j = nlohmann::json::parse(test::safetensors_header(good));
    j["__metadata__"].erase("sgf.checksum");
    const fs::path p = tmpdir() / "no-checksum.safetensors";
    io::write_file_atomic(p, test::with_safetensors_header(good, j.dump()));
    // the container itself accepts foreign safetensors files without sgf's checksum ...
    EXPECT_NO_THROW(io::SafetensorsFile::load(p));
    // ... but an sgf model file must carry it
    const std::string m = format_error_of([&] { io::load_baked_generator<B>(b, p); });
    EXPECT_NE(m.find("sgf.checksum"), std::string::npos) << m;
}

TEST(HostileModelFiles, ConfigsNeedingMoreWeightsThanTheFileHoldsAreRejectedBeforeAllocating) {
    auto& b = fuzz::backend();
    const std::string good = tiny_baked_file();
    const fs::path p = tmpdir() / "huge-config.safetensors";
    io::write_file_atomic(p, with_config_edit(good, [](nlohmann::json& cfg) {
                              // within ModelConfig::validate's bounds (2^26, 2^16), but 65,536 channels at
                              // every resolution: ~10^11 weights, hundreds of GB if the networks were built first
                              cfg["channel_base"] = 1 << 26;
                              cfg["channel_max"] = 1 << 16;
                          }));
    const std::string m = format_error_of([&] { io::load_baked_generator<B>(b, p); });
    EXPECT_NE(m.find("huge-config.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("weights"), std::string::npos) << m;
}

TEST(HostileModelFiles, ResolutionAboveTheLimitIsRejected) {
    auto& b = fuzz::backend();
    const std::string good = tiny_baked_file();
    const fs::path p = tmpdir() / "huge-resolution.safetensors";
    io::write_file_atomic(p, with_config_edit(good, [](nlohmann::json& cfg) {
                              cfg["resolution"] = 1 << 20;  // few weights, but every image would hold 2^40 pixels
                              cfg["channel_base"] = 1;
                          }));
    const std::string m = format_error_of([&] { io::load_baked_generator<B>(b, p); });
    EXPECT_NE(m.find("resolution"), std::string::npos) << m;
}

TEST(HostileModelFiles, WeightBoundIsALowerBoundOfTheRealParameterCount) {
    auto& b = fuzz::backend();
    auto count = [](const std::vector<Parameter<B>*>& ps) {
        double n = 0;
        for (auto* p : ps) n += double(p->value.size());
        return n;
    };
    ModelConfig odd = ModelConfig::tiny();
    odd.resolution = 32;
    odd.image_channels = 3;
    odd.embed_layers = 3;
    odd.fc_width = 7;
    for (const ModelConfig& cfg : {ModelConfig::tiny(), ModelConfig::small(), odd}) {
        MetaGenerator<B> G(b, cfg, kNoInit), Gu(b, cfg, kNoInit, true);
        auto F = make_decoder(b, cfg, kNoInit);
        auto D = make_discriminator(b, cfg, kNoInit);
        const double g = count(G.parameters()), gu = count(Gu.parameters()), f = count(F.parameters()), d = count(D.parameters());
        const double lb_meta = io::min_weight_count(cfg, "meta-model"), lb_baked = io::min_weight_count(cfg, "baked-generator"),
                     lb_ckpt = io::min_weight_count(cfg, "checkpoint");
        EXPECT_LE(lb_meta, g + f + d) << cfg.preset;
        EXPECT_GE(lb_meta, 0.5 * (g + f + d)) << cfg.preset;
        EXPECT_LE(lb_baked, gu) << cfg.preset;
        EXPECT_GE(lb_baked, 0.5 * gu) << cfg.preset;
        EXPECT_LE(lb_ckpt, 4 * g + 3 * f + 3 * d) << cfg.preset;
    }
}

// ---- registry import ----------------------------------------------------------------------------

fs::path fresh_registry(const std::string& name) {
    const fs::path p = tmpdir() / name;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
    return p;
}

TEST(HostileRegistryImport, WrongJsonTypesAreFormatErrors) {
    Registry r(fresh_registry("types.db"));
    const std::string fp = Fingerprint::from_seed(128, 1).hex();
    for (const std::string field : {"issued_at", "metadata"}) {
        const std::string text = R"([{"label":"x","fingerprint":")" + fp + R"(",")" + field + R"(":5}])";
        const std::string m = format_error_of([&] { r.import_json(text, "types.json"); });
        EXPECT_NE(m.find("types.json"), std::string::npos) << m;
        EXPECT_NE(m.find(field), std::string::npos) << m;
    }
    EXPECT_EQ(r.size(), 0);
}

TEST(HostileRegistryImport, LabelsAndFieldsAreStoredExactlyOrRejected) {
    Registry r(fresh_registry("nul.db"));
    const std::string fp1 = Fingerprint::from_seed(128, 1).hex(), fp2 = Fingerprint::from_seed(128, 2).hex();
    // an embedded NUL would be cut off by SQLite's C-string binding: "a\0b" and "a\0c" both became "a"
    const std::string text = "[{\"label\":\"a\\u0000b\",\"fingerprint\":\"" + fp1 + "\"}]";
    const std::string m = format_error_of([&] { r.import_json(text, "nul.json"); });
    EXPECT_NE(m.find("nul.json"), std::string::npos) << m;
    const std::string meta = "[{\"label\":\"ok\",\"fingerprint\":\"" + fp2 + "\",\"metadata\":\"x\\u0000y\"}]";
    EXPECT_THROW(r.import_json(meta, "nul.json"), FormatError);
    EXPECT_EQ(r.size(), 0);
    const std::string long_label(Registry::kMaxLabelBytes + 1, 'x');
    EXPECT_THROW(r.import_csv("label,fingerprint\n" + long_label + "," + fp1 + "\n", "long.csv"), FormatError);
    EXPECT_EQ(r.size(), 0);
}

// ---- images -------------------------------------------------------------------------------------

// An empty IDAT chunk before any image data made stb_image 2.27 memcpy into a null buffer (UBSan;
// found by the image fuzzer, corpus file regress-stb-png-empty-first-idat.png). It is rejected;
// an empty IDAT after the data (legal, harmless) still decodes.
TEST(HostileImages, EmptyFirstIdatChunkIsRejectedButALaterOneIsAccepted) {
    const std::string png = slurp(fs::path(SGF_FUZZ_CORPUS) / "image" / "valid-rgb20x12.png");
    const std::size_t idat = png.find("IDAT");
    ASSERT_NE(idat, std::string::npos);
    const std::size_t chunk = idat - 4;  // the length field precedes the type
    const std::uint32_t len = (std::uint32_t(std::uint8_t(png[chunk])) << 24) | (std::uint32_t(std::uint8_t(png[chunk + 1])) << 16) |
                              (std::uint32_t(std::uint8_t(png[chunk + 2])) << 8) | std::uint8_t(png[chunk + 3]);
    const std::uint32_t crc = std::uint32_t(crc32(0, reinterpret_cast<const Bytef*>("IDAT"), 4));
    std::string empty("\0\0\0\0IDAT", 8);
    for (int k = 3; k >= 0; --k) empty.push_back(char((crc >> (8 * k)) & 0xff));
    auto decode = [](const std::string& bytes) {
        return io::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "test.png");
    };
    const std::string before = png.substr(0, chunk) + empty + png.substr(chunk);
    EXPECT_NE(format_error_of([&] { decode(before); }).find("empty IDAT chunk before the image data"), std::string::npos);
    const std::size_t after_first = chunk + 12 + len;
    const std::string after = png.substr(0, after_first) + empty + png.substr(after_first);
    const io::Image ok = decode(after), ref = decode(png);
    EXPECT_EQ(ok.width, ref.width);
    EXPECT_EQ(ok.pixels, ref.pixels);
}

}  // namespace
}  // namespace sgf
