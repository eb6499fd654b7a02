// The tables quoted in docs/verification.md and docs/model-format.md, computed from the code, with
// checks of the facts those pages state. Print them with
//
//   ./build/tests/cli/test_doc_tables --gtest_filter='DocTables.*'
//
// (each test prints a markdown table between "----- BEGIN" and "----- END" lines).
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <iostream>
#include <regex>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;

// ------------------------------------------------------------------------------------------ docs/verification.md
TEST(DocTables, VerificationThresholds) {
    const int n = 128;
    // algorithm.md 6: n = 128, alpha 1e-2 -> 78 bits, 1e-6 -> 92, 1e-9 -> 98, 1e-12 -> 103.
    EXPECT_EQ(stats::bit_threshold(n, 1e-2), 78);
    EXPECT_EQ(stats::bit_threshold(n, 1e-6), 92);
    EXPECT_EQ(stats::bit_threshold(n, 1e-9), 98);
    EXPECT_EQ(stats::bit_threshold(n, 1e-12), 103);
    EXPECT_EQ(Registry::default_min_distance(n), 32);
    EXPECT_EQ(AttributionRule{}.alpha, 1e-6);
    EXPECT_EQ(AttributionRule{}.min_margin, 8);

    const std::vector<double> alphas{1e-2, 1e-3, 1e-6, 1e-9, 1e-12};
    const std::vector<std::int64_t> sizes{1, 10, 100, 1000, 10000, 100000, 1000000};
    std::string t = "| registry size N |";
    for (double a : alphas) t += fmt::format(" alpha = {:g} |", a);
    t += "\n|---:|";
    for (std::size_t i = 0; i < alphas.size(); ++i) t += "---:|";
    t += "\n";
    for (std::int64_t N : sizes) {
        t += fmt::format("| {} |", N);
        for (double a : alphas) {
            const int k = stats::bit_threshold(n, stats::bonferroni_alpha(a, N));
            // k* is the smallest k whose tail is <= alpha/N
            EXPECT_LE(stats::log_p_value(k, n), std::log(a / double(N)) + 1e-12);
            EXPECT_GT(stats::log_p_value(k - 1, n), std::log(a / double(N)));
            t += fmt::format(" {} |", k);
        }
        t += "\n";
    }
    // Per-comparison p-values of k matching bits (the "log10_p_value" field of sgf verify).
    std::string p = "| matching bits k | 64 | 70 | 78 | 85 | 92 | 98 | 103 | 112 | 120 | 128 |\n|---|";
    for (int i = 0; i < 10; ++i) p += "---:|";
    p += "\n| log10 P[X >= k] |";
    for (int k : {64, 70, 78, 85, 92, 98, 103, 112, 120, 128}) p += fmt::format(" {:.2f} |", stats::log10_p_value(k, n));
    p += "\n";
    std::cout << "----- BEGIN thresholds k* (n = 128)\n" << t << "----- END\n";
    std::cout << "----- BEGIN p-values (n = 128)\n" << p << "----- END\n";
    EXPECT_NEAR(stats::log10_p_value(128, 128), -128 * std::log10(2.0), 1e-9);
    EXPECT_NEAR(stats::log10_p_value(64, 128), std::log10(0.5 + 0.5 * std::exp(stats::log_binom(128, 64) - 128 * std::log(2.0))),
                1e-9);
}

// ------------------------------------------------------------------------------------------ docs/model-format.md
struct Scale {
    std::string formula;
    double value;
};

/// The run-time factor applied to a stored tensor of a META model or checkpoint (docs/model-format.md):
/// the layer uses stored * factor.
Scale runtime_scale(const ModelConfig& cfg, const std::string& name, const std::vector<std::int64_t>& shape) {
    auto ends = [&](const char* s) { return name.size() >= std::strlen(s) && name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0; };
    const bool embed = name.rfind("G.embed.", 0) == 0;
    const double lr = embed ? cfg.embed_lr_mult : 1.0;
    if (ends(".noise_strength")) return {"1", 1.0};
    if (ends(".bias")) return embed ? Scale{fmt::format("{:g}", lr), lr} : Scale{"1", 1.0};
    if (!ends(".weight")) return {"?", 0.0};
    if (shape.size() == 2) {  // dense [out, in] (E, G.input, affines, F/D b4.fc / b4.out)
        const double v = lr / std::sqrt(double(shape[1]));
        return {embed ? fmt::format("{:g}/sqrt({})", lr, shape[1]) : fmt::format("1/sqrt({})", shape[1]), v};
    }
    const std::int64_t k2 = shape[2] * shape[3];
    const bool up = name.rfind("G.b", 0) == 0 && ends(".conv0.weight") && name.rfind("G.b4.", 0) != 0;
    const std::int64_t c_in = up ? shape[0] : shape[1];  // up layers are stored [C_in, C_out, 3, 3]
    return {fmt::format("1/sqrt({}*{})", c_in, k2), 1.0 / std::sqrt(double(c_in * k2))};
}

std::string layout_of(const std::string& name, const std::vector<std::int64_t>& shape) {
    const bool affine = name.find(".affine.") != std::string::npos;
    const bool dense = affine || shape.size() == 2 || name.rfind("G.embed.", 0) == 0 || name.rfind("G.input.", 0) == 0 ||
                       name.find(".b4.fc.") != std::string::npos || name.find(".b4.out.") != std::string::npos;
    if (shape.size() == 1) {
        if (name.find("noise_strength") != std::string::npos) return "scalar";
        return affine ? "[C_in] (one style per input channel)" : dense ? "[out]" : "[C_out]";
    }
    if (shape.size() == 2) return affine ? "[C_in, w_dim]" : "[out, in]";
    const bool up = name.rfind("G.b", 0) == 0 && name.find(".conv0.weight") != std::string::npos && name.rfind("G.b4.", 0) != 0;
    return up ? "[C_in, C_out, kh, kw]" : "[C_out, C_in, kh, kw]";
}

TEST(DocTables, ModelFormatSmallPreset) {
    B b(1);
    const ModelConfig cfg = ModelConfig::small();
    MetaGenerator<B> G(b, cfg, kNoInit);
    auto F = make_decoder(b, cfg, kNoInit);
    auto D = make_discriminator(b, cfg, kNoInit);
    const fs::path dir = fs::path(SGF_TEST_TMPDIR);
    fs::create_directories(dir);
    const fs::path meta = dir / "small-meta.safetensors", baked = dir / "small-baked.safetensors";
    io::save_meta_model(b, meta, G, F, D);
    Tensor<B> c(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c);
    io::save_baked_generator(b, baked, Gu);

    // The run-time scales claimed by the doc agree with the layers' own.
    EXPECT_FLOAT_EQ(runtime_scale(cfg, "G.input.weight", G.input_layer().weight().dims).value, G.input_layer().weight_scale());
    auto check_modconv = [&](ModConv<B>& m) {
        EXPECT_FLOAT_EQ(runtime_scale(cfg, m.weight().name, m.weight().dims).value, m.weight_scale()) << m.name();
        EXPECT_FLOAT_EQ(runtime_scale(cfg, m.affine().weight().name, m.affine().weight().dims).value, m.affine().weight_scale())
            << m.name();
    };
    for (auto& m : G.up_convs()) check_modconv(m);
    for (auto& m : G.convs()) check_modconv(m);
    for (auto& m : G.torgbs()) check_modconv(m);
    for (auto& m : Gu.convs()) EXPECT_EQ(m.weight_scale(), 1.0f) << "baked weights carry their scale";

    // Every tensor name follows one of the patterns docs/model-format.md lists.
    const std::vector<std::regex> patterns{
        std::regex(R"(G\.embed\.fc\d+\.(weight|bias))"),
        std::regex(R"(G\.input\.(weight|bias))"),
        std::regex(R"(G\.b\d+\.(conv0|conv1|torgb)\.(weight|bias|noise_strength|affine\.weight|affine\.bias))"),
        std::regex(R"([FD]\.fromrgb\.(weight|bias))"),
        std::regex(R"([FD]\.b\d+\.(conv0|conv1)\.(weight|bias))"),
        std::regex(R"([FD]\.b\d+\.skip\.weight)"),
        std::regex(R"([FD]\.b4\.(conv|fc|out)\.(weight|bias))"),
    };
    const auto f = io::SafetensorsFile::load(meta);
    for (const auto& [name, t] : f.tensors()) {
        bool ok = false;
        for (const auto& re : patterns) ok = ok || std::regex_match(name, re);
        EXPECT_TRUE(ok) << name << " is not covered by docs/model-format.md";
        EXPECT_EQ(t.dtype, "F32");
    }
    EXPECT_EQ(f.metadata.size(), 4u);  // format_version, kind, config, checksum
    for (const char* k : {"sgf.format_version", "sgf.kind", "sgf.config", "sgf.checksum"}) EXPECT_TRUE(f.metadata.count(k)) << k;

    // The listing: in G's forward order, then F and D (files store them sorted by name).
    std::string t = "| tensor | shape | layout | run-time factor |\n|---|---|---|---|\n";
    std::int64_t total = 0;
    auto row = [&](const std::string& name, const std::vector<std::int64_t>& dims) {
        const Scale s = runtime_scale(cfg, name, dims);
        t += fmt::format("| `{}` | [{}] | {} | {} |\n", name, fmt::join(dims, ", "), layout_of(name, dims), s.formula);
        std::int64_t n = 1;
        for (auto d : dims) n *= d;
        total += n;
        EXPECT_TRUE(f.has(name)) << name;
        EXPECT_EQ(f.tensors().at(name).shape, dims) << name;
    };
    for (auto* p : G.parameters()) row(p->name, p->dims);
    for (auto* p : F.parameters()) row(p->name, p->dims);
    for (auto* p : D.parameters()) row(p->name, p->dims);
    EXPECT_EQ(std::size_t(G.parameters().size() + F.parameters().size() + D.parameters().size()), f.size());
    const auto fb = io::SafetensorsFile::load(baked);
    std::string bt;
    for (auto* p : Gu.parameters()) {
        bt += fmt::format("`{}` [{}], ", p->name, fmt::join(p->dims, ", "));
        EXPECT_EQ(fb.tensors().at(p->name).shape, p->dims);
    }
    EXPECT_EQ(Gu.parameters().size(), fb.size());
    std::cout << "----- BEGIN small preset config\n" << nlohmann::json(cfg).dump() << "\n----- END\n";
    std::cout << "----- BEGIN small preset meta-model tensors (" << f.size() << " tensors, " << total << " values, "
              << fs::file_size(meta) << " bytes)\n"
              << t << "----- END\n";
    std::cout << "----- BEGIN small preset baked-generator tensors (" << fb.size() << " tensors, " << fs::file_size(baked)
              << " bytes)\n"
              << bt << "\n----- END\n";
    // The first 8 bytes: the JSON header's length, little-endian.
    const auto bytes = io::read_file(meta);
    std::uint64_t hl = 0;
    for (int i = 7; i >= 0; --i) hl = (hl << 8) | bytes[std::size_t(i)];
    EXPECT_EQ(hl % 8, 0u);
    EXPECT_EQ(bytes[8], '{');
}

}  // namespace
}  // namespace sgf
