// Writes the fuzzers' seed corpus (tests/fuzz/corpus/<target>/): a few valid and a few broken
// inputs per target, all deterministic. Regenerate after a model-format change with
//   build/tests/fuzz/sgf_fuzz_seeds tests/fuzz/corpus
// Model seeds use a "micro" architecture (a few hundred weights) so that the corpus stays small
// and mutations reach the interesting bytes; one tiny-preset baked generator is included as is.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/io/image.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/train/checkpoint.hpp>
#include <sgf/backends/eigen.hpp>
#include "file_bytes.hpp"

#include <cstring>
#include <fstream>

namespace fs = std::filesystem;
using B = sgf::EigenCpu;

namespace {

fs::path root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
    const fs::path d = root / target;
    fs::create_directories(d);
    std::ofstream o(d / name, std::ios::binary | std::ios::trunc);
    o.write(bytes.data(), std::streamsize(bytes.size()));
    if (!o) throw std::runtime_error("cannot write " + (d / name).string());
}

using sgf::test::slurp;

sgf::ModelConfig micro() {
    sgf::ModelConfig c = sgf::ModelConfig::tiny();
    c.preset = "micro";
    c.resolution = 8;
    c.fingerprint_bits = 4;
    c.z_dim = 2;
    c.w_dim = 2;
    c.embed_layers = 1;
    c.embed_width = 2;
    c.channel_base = 8;
    c.channel_max = 2;
    c.mbstd_group = 2;
    c.fc_width = 2;
    return c;
}


void model_seeds(const fs::path& tmp) {
    B b(1);
    const auto cfg = micro();
    sgf::MetaGenerator<B> G(b, cfg, 1);
    auto F = sgf::make_decoder(b, cfg, 2);
    auto D = sgf::make_discriminator(b, cfg, 3);
    sgf::io::save_meta_model(b, tmp / "meta.safetensors", G, F, D);
    const std::string meta = slurp(tmp / "meta.safetensors");
    put("model_file", "valid-micro-meta.safetensors", meta);

    sgf::Tensor<B> c1(b, sgf::Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = sgf::instantiate(b, G, c1);
    sgf::io::save_baked_generator(b, tmp / "baked.safetensors", Gu, {{"sgf.label", "user0"}});
    put("model_file", "valid-micro-baked.safetensors", slurp(tmp / "baked.safetensors"));
    sgf::io::save_decoder(b, tmp / "decoder.safetensors", F);
    put("model_file", "valid-micro-decoder.safetensors", slurp(tmp / "decoder.safetensors"));
    sgf::io::save_meta_generator(b, tmp / "generator.safetensors", G);
    put("model_file", "valid-micro-generator.safetensors", slurp(tmp / "generator.safetensors"));

    const auto tiny = sgf::ModelConfig::tiny();
    sgf::MetaGenerator<B> Gt(b, tiny, 4);
    sgf::Tensor<B> ct(b, sgf::Shape{1, tiny.fingerprint_bits}, 1.0f);
    auto Gtu = sgf::instantiate(b, Gt, ct);
    sgf::io::save_baked_generator(b, tmp / "tiny.safetensors", Gtu);
    put("model_file", "valid-tiny-baked.safetensors", slurp(tmp / "tiny.safetensors"));

    sgf::TrainConfig tc;
    tc.batch = 2;
    sgf::Trainer<B> tr(b, cfg, tc);
    sgf::io::Sampler sampler(10, tc.seed);
    sgf::save_checkpoint(b, tmp / "ckpt.safetensors", tr, sampler);
    put("model_file", "valid-micro-checkpoint.safetensors", slurp(tmp / "ckpt.safetensors"));

    // a plain safetensors file (no sgf metadata at all)
    sgf::io::SafetensorsFile plain;
    plain.put<float>("w", {2, 2}, std::vector<float>{1, 2, 3, 4});
    plain.put<std::uint8_t>("u", {3}, std::vector<std::uint8_t>{1, 2, 3});
    plain.put<double>("d", {1}, std::vector<double>{0.5});
    plain.metadata["note"] = "foreign";
    put("model_file", "valid-plain.safetensors", plain.serialize());

    // broken ones
    put("model_file", "broken-truncated.safetensors", meta.substr(0, meta.size() / 2));
    std::string flipped = meta;
    flipped[flipped.size() - 3] ^= 0x10;
    put("model_file", "broken-checksum.safetensors", flipped);
    auto j = nlohmann::json::parse(sgf::test::safetensors_header(meta));
    auto big = j;
    auto bigcfg = nlohmann::json::parse(big["__metadata__"]["sgf.config"].get<std::string>());
    bigcfg["channel_max"] = 1 << 20;
    bigcfg["channel_base"] = 1 << 30;
    big["__metadata__"]["sgf.config"] = bigcfg.dump();
    big["__metadata__"].erase("sgf.config_checksum");  // reaches the weight bound, not the config checksum
    put("model_file", "broken-huge-config.safetensors", sgf::test::with_safetensors_header(meta, big.dump()));
    auto overlap = j;
    for (auto it = overlap.begin(); it != overlap.end(); ++it)
        if (it.key() != "__metadata__") {
            it.value()["data_offsets"][0] = 0;
            break;
        }
    put("model_file", "broken-overlap.safetensors", sgf::test::with_safetensors_header(meta, overlap.dump()));
    auto nock = j;
    nock["__metadata__"].erase("sgf.checksum");
    put("model_file", "broken-no-checksum.safetensors", sgf::test::with_safetensors_header(meta, nock.dump()));
    std::string huge_len = meta;
    const std::uint64_t n = std::uint64_t(1) << 62;
    std::memcpy(huge_len.data(), &n, 8);
    put("model_file", "broken-header-length.safetensors", huge_len);
    put("model_file", "broken-not-object.safetensors", sgf::test::with_safetensors_header(meta, "[1,2,3]"));
}

sgf::io::Image pattern(int w, int h, int c) {
    sgf::io::Image img{w, h, c, std::vector<std::uint8_t>(std::size_t(w) * h * c)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) img.at(y, x, k) = std::uint8_t((x * 37 + y * 11 + k * 80) & 255);
    return img;
}

void image_seeds() {
    const std::string png_gray = sgf::io::encode_png(pattern(16, 16, 1));
    put("image", "valid-gray16.png", png_gray);
    put("image", "valid-rgb20x12.png", sgf::io::encode_png(pattern(20, 12, 3)));
    put("image", "valid-rgb16.jpg", sgf::io::encode_jpeg(pattern(16, 16, 3), 80));
    std::string bmp;
    const auto img = pattern(9, 7, 3);
    stbi_write_bmp_to_func(sgf::io::detail::append_bytes, &bmp, img.width, img.height, img.channels, img.pixels.data());
    put("image", "other-format-rgb9x7.bmp", bmp);  // off by default (ImageLimits::allow_other_formats)
    std::string tga;
    stbi_write_tga_to_func(sgf::io::detail::append_bytes, &tga, img.width, img.height, img.channels, img.pixels.data());
    put("image", "other-format-rgb9x7.tga", tga);
    put("image", "broken-truncated.png", png_gray.substr(0, png_gray.size() / 2));
    std::string huge = png_gray;
    const unsigned char dim[4] = {0x00, 0x00, 0x4E, 0x20};  // IHDR width/height = 20000
    std::memcpy(huge.data() + 16, dim, 4);
    std::memcpy(huge.data() + 20, dim, 4);
    put("image", "broken-huge-dims.png", huge);
    put("image", "broken-text.png", "definitely not an image\n");
    put("image", "broken-gif-header.gif", std::string("GIF89a\x10\x00\x10\x00\x80\x00\x00", 13));
}

std::string byte(int v) { return std::string(1, char(v)); }

void hex_seeds() {
    const auto f = sgf::Fingerprint::from_seed(128, 7);
    put("hex_fingerprint", "valid-128", byte(0) + f.hex());
    std::string up = f.hex();
    for (auto& ch : up) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    put("hex_fingerprint", "valid-128-0x-upper", byte(0) + "0X" + up);
    put("hex_fingerprint", "valid-4", byte(3) + "a");
    put("hex_fingerprint", "valid-5", byte(4) + "1f");
    put("hex_fingerprint", "valid-65", byte(8) + sgf::Fingerprint::from_seed(65, 3).hex());
    put("hex_fingerprint", "broken-short", byte(0) + f.hex().substr(1));
    put("hex_fingerprint", "broken-not-hex", byte(0) + "g" + f.hex().substr(1));
    put("hex_fingerprint", "broken-5-high-bit", byte(4) + "3f");
    put("hex_fingerprint", "broken-0x-only", byte(3) + "0x");
}

void registry_seeds() {
    const auto a = sgf::Fingerprint::from_seed(128, 1).hex(), b = sgf::Fingerprint::from_seed(128, 2).hex(),
               c = sgf::Fingerprint::from_seed(128, 3).hex();
    const std::string csv = "label,fingerprint,issued_at,metadata\n"
                            "alice," + a + ",2024-01-02T03:04:05Z,\"{\"\"email\"\":\"\"a@x\"\"}\"\n"
                            "bob," + b + ",,\n"
                            "\"carol, jr\"," + c + "\n";
    put("registry_import", "valid-csv", byte(0) + csv);
    put("registry_import", "valid-csv-twice", byte(4) + csv);
    const nlohmann::json j = nlohmann::json::array(
        {{{"label", "alice"}, {"fingerprint", a}, {"issued_at", "2024-01-02T03:04:05Z"}, {"metadata", "{\"k\":1}"}},
         {{"label", "bob"}, {"fingerprint", "0x" + b}}});
    put("registry_import", "valid-json", byte(1) + j.dump());
    put("registry_import", "valid-json-twice", byte(5) + j.dump(1));
    put("registry_import", "valid-json-8bit", byte(3) + R"([{"label":"u1","fingerprint":"0f"},{"label":"u2","fingerprint":"f0"}])");
    put("registry_import", "valid-csv-8bit", byte(2) + "label,fingerprint\nu1,0f\nu2,f0\nu3,3c\n");
    put("registry_import", "broken-csv-too-close", byte(0) + "label,fingerprint\nx," + a + "\ny," + a.substr(0, 31) +
                                                           (a.back() == '0' ? "1" : "0") + "\n");
    put("registry_import", "broken-csv-duplicate-label", byte(0) + "label,fingerprint\nx," + a + "\nx," + b + "\n");
    put("registry_import", "broken-csv-unterminated", byte(0) + "label,fingerprint\n\"x," + a + "\n");
    put("registry_import", "broken-csv-header", byte(0) + "name,code\nx," + a + "\n");
    put("registry_import", "broken-json-not-array", byte(1) + R"({"label":"x"})");
    put("registry_import", "broken-json-types", byte(1) + R"([{"label":"x","fingerprint":")" + a + R"(","issued_at":5}])");
    put("registry_import", "broken-json-bad-hex", byte(1) + R"([{"label":"x","fingerprint":"zz"}])");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus dir>   (writes <dir>/{model_file,image,hex_fingerprint,registry_import}/)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    const fs::path tmp = fs::temp_directory_path() / fmt::format("sgf-seeds-{}", ::getpid());
    fs::create_directories(tmp);
    model_seeds(tmp);
    image_seeds();
    hex_seeds();
    registry_seeds();
    fs::remove_all(tmp);
    std::printf("seed corpus written to %s\n", root.c_str());
    return 0;
}
