// End-to-end tests of the `sgf` command-line tool (examples/cli/main.cpp, docs/cli.md).
//
// Every test runs the built binary (SGF_CLI_PATH) as a child process against small models made
// here with random weights (nothing is trained: the decoder reads "some" fingerprint, which is
// all the attribution plumbing needs). Each test works in its own folder, so ctest -j is safe.
// Checked for every hostile input: the exit code of its class (docs/cli.md), a message that names
// the file and the problem, and that the registry file is byte-identical before and after.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/backends/eigen.hpp>
#include <sgf/train/augment.hpp>

#include <gtest/gtest.h>
#include "run_command.hpp"
#include "../../examples/common/exit_codes.hpp"
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <zlib.h>
#include <sys/stat.h>


#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using B = EigenCpu;

// Exit codes (docs/cli.md; DocTables.ExitCodesAsDocumented checks the page against the enum).
using sgf_examples::kOk, sgf_examples::kUsage, sgf_examples::kIoError, sgf_examples::kFormatError, sgf_examples::kNumeric,
    sgf_examples::kNotFingerprinted, sgf_examples::kInconclusive;

struct Result : test::CommandResult {
    json parsed() const {
        try {
            return json::parse(out);
        } catch (const json::exception& e) {
            ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n" << out << "\nstderr:\n" << err;
            return json();
        }
    }
};

using test::slurp;
void spit(const fs::path& p, std::string_view bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}
/// Byte-identity of a file, with a short message instead of a dump of binary content.
::testing::AssertionResult unchanged(const fs::path& p, const std::string& before) {
    const std::string now = slurp(p);
    if (now == before) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << p.string() << " changed: " << before.size() << " bytes before, " << now.size()
                                         << " after";
}

/// A model config that is "tiny" in size but carries the paper's 128 bits, so registries made with
/// the CLI's defaults and the statistics of docs/verification.md apply.
ModelConfig tiny128() {
    ModelConfig c = ModelConfig::tiny();
    c.fingerprint_bits = 128;
    return c;
}

void make_model(const fs::path& path, const ModelConfig& cfg, std::uint64_t seed) {
    B b(1);
    MetaGenerator<B> G(b, cfg, seed);
    auto F = make_decoder(b, cfg, seed + 1);
    auto D = make_discriminator(b, cfg, seed + 2);
    io::save_meta_model(b, path, G, F, D);
}

io::Image gradient(int w, int h, int c) {
    io::Image img{w, h, c, std::vector<std::uint8_t>(std::size_t(w) * h * c)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) img.at(y, x, k) = std::uint8_t((x * 37 + y * 11 + k * 50) & 255);
    return img;
}

/// A PNG made of the signature and an IHDR chunk claiming w x h (no image data).
std::string png_header_only(std::uint32_t w, std::uint32_t h) {
    std::string s("\x89PNG\r\n\x1a\n", 8);
    auto be32 = [](std::uint32_t v) {
        return std::string{char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
    };
    std::string chunk = "IHDR" + be32(w) + be32(h) + std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit gray
    const auto crc = std::uint32_t(::crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), uInt(chunk.size())));
    s += be32(13) + chunk + be32(crc);
    return s;
}

class Cli : public ::testing::Test {
protected:
    fs::path dir, model, registry, good_png;

    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir = fs::path(SGF_TEST_TMPDIR) / info->name();
        fs::remove_all(dir);
        fs::create_directories(dir);
        model = dir / "meta.safetensors";
        make_model(model, tiny128(), 11);
        registry = dir / "registry.db";
        {
            Registry reg(registry);
            reg.issue("alice", R"({"who":"a"})", 1);
            reg.issue("bob", "", 2);
        }
        good_png = dir / "good.png";
        io::save_png(good_png, gradient(16, 16, 1));
    }

    Result sgf(const std::vector<std::string>& args) const {
        std::vector<std::string> argv{"--threads", "1"};
        argv.insert(argv.end(), args.begin(), args.end());
        return Result{test::run_command(SGF_CLI_PATH, argv, dir)};
    }
    /// A short `sgf train` run of the tiny preset at 32 px (Fashion-MNIST) with 12 bits, in `out`.
    Result train_tiny(const fs::path& out) const {
        return sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "12", "--batch", "4", "--kimg", "0.008",
                    "--out", out.string()});
    }

    /// Runs `args` and checks the exit code and that stderr (or, for per-image errors, stdout)
    /// names `file` and contains `problem`; the registry must be byte-identical afterwards.
    Result expect_failure(const std::vector<std::string>& args, int rc, const std::string& file, const std::string& problem) {
        const std::string before = slurp(registry);
        const Result r = sgf(args);
        EXPECT_EQ(r.rc, rc) << "sgf " << fmt::format("{}", fmt::join(args, " ")) << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
        const std::string text = r.err + r.out;
        EXPECT_NE(text.find(file), std::string::npos) << "the message should name " << file << ":\n" << text;
        EXPECT_NE(text.find(problem), std::string::npos) << "the message should say '" << problem << "':\n" << text;
        EXPECT_TRUE(unchanged(registry, before)) << "the registry file changed";
        return r;
    }

    /// Exit code of `sgf generate` run by a shell with a file-size limit of `blocks` 512-byte blocks
    /// (SIGXFSZ ignored, so a write past it fails with EFBIG); -1 when it did not exit normally.
    int generate_under_file_size_limit(int blocks, const std::vector<std::string>& args) const {
        std::string cmd = fmt::format("trap '' XFSZ; ulimit -f {}; {} --threads 1 generate", blocks, test::shell_quote(SGF_CLI_PATH));
        for (const auto& a : args) cmd += " " + test::shell_quote(a);
        const int status = std::system((cmd + " 2>/dev/null").c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

    std::string decode_hex(const fs::path& image) {
        const Result r = sgf({"--json", "decode", "--model", model.string(), image.string()});
        EXPECT_EQ(r.rc, kOk) << r.err;
        return r.parsed()["results"][0]["fingerprint"].get<std::string>();
    }
};

// ------------------------------------------------------------------------------------------ usage
TEST_F(Cli, UsageErrorsAndHelp) {
    {  // no subcommand: the help (every subcommand listed) and a hint, on stderr
        const auto r = sgf({});
        EXPECT_EQ(r.rc, kUsage);
        const auto hint = r.err.find("Name a subcommand");
        ASSERT_NE(hint, std::string::npos) << r.err;
        const std::string help = r.err.substr(0, hint);  // the list itself, not the hint's example
        for (const char* sub : {"train", "issue", "instantiate", "generate", "decode", "verify", "info", "demo", "eval"})
            EXPECT_NE(help.find(fmt::format("\n  {} ", sub)), std::string::npos) << sub << " missing from:\n" << r.err;
        // an unknown word is named
        const auto u = sgf({"frobnicate"});
        EXPECT_EQ(u.rc, kUsage);
        EXPECT_NE(u.err.find("unknown subcommand 'frobnicate'"), std::string::npos) << u.err;
    }
    {  // --version: the version CMake gave the package files (read from version.hpp), also after a
       // subcommand whose required options are missing
        for (const auto& args : {std::vector<std::string>{"--version"}, std::vector<std::string>{"verify", "--version"}}) {
            const auto v = sgf(args);
            EXPECT_EQ(v.rc, kOk) << v.err;
            EXPECT_EQ(v.out, fmt::format("sgf {}\n", SGF_PROJECT_VERSION));
        }
        EXPECT_STREQ(kVersion, SGF_PROJECT_VERSION);
        for (const auto& args : {std::vector<std::string>{"--json", "--version"}, std::vector<std::string>{"--version", "--json"},
                                 std::vector<std::string>{"verify", "--version", "--json"}}) {
            const auto v = sgf(args);
            EXPECT_EQ(v.rc, kOk) << v.err;
            EXPECT_EQ(v.parsed(), (json{{"name", "sgf"}, {"version", SGF_PROJECT_VERSION}})) << v.out;
        }
    }
    EXPECT_EQ(sgf({"verify", "--model", model.string()}).rc, kUsage);  // --registry and images are required
    {  // a parse error says "error:" and names the subcommand whose help to read (CLI11 alone said neither)
        const auto v = sgf({"verify", "--model", model.string()});
        EXPECT_EQ(v.err.rfind("error: sgf verify: --registry is required\n", 0), 0u) << v.err;
        EXPECT_NE(v.err.find("Run `sgf verify --help` for its options."), std::string::npos) << v.err;
        const auto g = sgf({"--no-such-option"});  // an option, not a subcommand
        EXPECT_EQ(g.err.rfind("error: sgf: unknown option '--no-such-option'", 0), 0u) << g.err;
        const auto t = sgf({"--threads", "0", "info", model.string()});  // a global option: its help is sgf's own
        EXPECT_NE(t.err.find("Run `sgf --help` for its options."), std::string::npos) << t.err;
        const auto i = sgf({"info", model.string(), "--no-such-option"});
        EXPECT_EQ(i.rc, kUsage);
        EXPECT_EQ(i.err.rfind("error: sgf info: ", 0), 0u) << i.err;
        EXPECT_EQ(i.err.rfind("error: sgf info: unknown option '--no-such-option'\n", 0), 0u) << i.err;
        // a word too many: named, with what the subcommand takes (CLI11: "The following argument was not expected")
        const auto x = sgf({"info", model.string(), "extra", "more"});
        EXPECT_EQ(x.rc, kUsage);
        EXPECT_EQ(x.err.rfind("error: sgf info: unexpected argument 'extra' (and 1 more): it takes 1 argument besides its "
                              "options: file\n", 0), 0u) << x.err;
        // the first extra word on the line, also when it repeats an earlier argument; "--" is not one
        const auto x2 = sgf({"info", model.string(), "x", model.string()});
        EXPECT_EQ(x2.err.rfind("error: sgf info: unexpected argument 'x' (and 1 more)", 0), 0u) << x2.err;
        const auto x3 = sgf({"info", "--", model.string(), "extra"});
        EXPECT_EQ(x3.rc, kUsage);
        EXPECT_EQ(x3.err.rfind("error: sgf info: unexpected argument 'extra': ", 0), 0u) << x3.err;
        const auto n = sgf({"demo", "-5"});  // a negative number is an argument, not an option
        EXPECT_EQ(n.err.rfind("error: sgf demo: unexpected argument '-5'", 0), 0u) << n.err;
        const auto d = sgf({"demo", "extra"});
        EXPECT_EQ(d.rc, kUsage);
        EXPECT_EQ(d.err.rfind("error: sgf demo: unexpected argument 'extra': it takes no arguments besides its options\n", 0), 0u)
            << d.err;
        const auto l = sgf({"registry", "lookup", registry.string(), "alice", "bob"});
        EXPECT_EQ(l.rc, kUsage);
        EXPECT_EQ(l.err.rfind("error: sgf registry lookup: unexpected argument 'bob': it takes 2 arguments besides its options: "
                              "registry, label (one fewer with --registry)\n", 0), 0u) << l.err;
        EXPECT_NE(l.err.find("Run `sgf registry lookup --help` for its options."), std::string::npos) << l.err;
        // a subcommand of subcommands without one, or with an unknown one: its own list (CLI11 said
        // "A subcommand is required" for both)
        for (const char* word : {"", "frobnicate"}) {
            std::vector<std::string> args{"registry"};
            if (*word) args.push_back(word);
            const auto r = sgf(args);
            EXPECT_EQ(r.rc, kUsage);
            EXPECT_EQ(r.err.rfind(*word ? "error: sgf registry: unknown subcommand 'frobnicate'" : "error: sgf registry: name one of its subcommands", 0), 0u) << r.err;
            for (const char* sub : {"list", "lookup", "export", "import"})
                EXPECT_NE(r.err.find(fmt::format("\n  {} ", sub)), std::string::npos) << sub << " missing from:\n" << r.err;
        }
    }
    EXPECT_EQ(sgf({"info", "--no-such-option", model.string()}).rc, kUsage);
    const Result h = sgf({"--help"});
    EXPECT_EQ(h.rc, kOk);
    EXPECT_NE(h.out.find("verify"), std::string::npos);
    EXPECT_EQ(sgf({"--backend", "tpu", "info", model.string()}).rc, kUsage);  // checked on every subcommand
    EXPECT_EQ(sgf({"--backend", "tpu", "issue", "--registry", registry.string(), "--label", "x"}).rc, kUsage);
    // numbers out of range are usage errors, not silently replaced
    EXPECT_EQ(sgf({"--threads", "0", "info", model.string()}).rc, kUsage);
    EXPECT_EQ(sgf({"verify", "--registry", registry.string(), "--min-margin", "-5", good_png.string()}).rc, kUsage);
    EXPECT_EQ(sgf({"generate", "--model", model.string(), "--count", "0", "--out", (dir / "g0").string()}).rc, kUsage);
    EXPECT_EQ(sgf({"demo", "--users", "0"}).rc, kUsage);
    // seeds are 64-bit decimal integers: out of range was saturated, -1 wrapped
    const std::string hex(32, '0');
    for (const char* seed : {"18446744073709551616", "-1", "1e3"}) {
        const Result r = sgf({"generate", "--model", model.string(), "--fingerprint", hex, "--seed", seed, "--out", (dir / "g0").string()});
        EXPECT_EQ(r.rc, kUsage) << seed << ": " << r.out << r.err;
        EXPECT_NE(r.err.find("is not a seed"), std::string::npos) << r.err;
        const Result e = sgf({"eval", "--model", model.string(), "--images", "1", "--seed", seed});
        EXPECT_EQ(e.rc, kUsage) << seed << ": " << e.out << e.err;
        EXPECT_NE(e.err.find("is not a seed"), std::string::npos) << e.err;
    }
    EXPECT_FALSE(fs::exists(dir / "g0"));
    // decimal, also with leading zeros (CLI11 alone read "010" as octal 8 and refused "08")
    for (const char* seed : {"010", "10", "8", "08"}) {
        const Result r = sgf({"generate", "--model", model.string(), "--fingerprint", hex, "--count", "1", "--seed", seed, "--out",
                              (dir / (std::string("seed") + seed)).string()});
        ASSERT_EQ(r.rc, kOk) << seed << ": " << r.err;
    }
    EXPECT_EQ(slurp(dir / "seed010" / "00000.png"), slurp(dir / "seed10" / "00000.png"));
    EXPECT_EQ(slurp(dir / "seed08" / "00000.png"), slurp(dir / "seed8" / "00000.png"));
    EXPECT_NE(slurp(dir / "seed10" / "00000.png"), slurp(dir / "seed8" / "00000.png"));
    EXPECT_EQ(sgf({"--backend", "tpu", "decode", "--model", model.string(), good_png.string()}).rc, kUsage);
    // The global options also work after the subcommand.
    const Result j = sgf({"info", model.string(), "--json"});
    EXPECT_EQ(j.rc, kOk) << j.err;
    EXPECT_EQ(j.parsed()["kind"], "meta-model");
}

// ------------------------------------------------------------------------------------------ JSON of every subcommand
TEST_F(Cli, InfoJsonAndText) {
    const Result r = sgf({"--json", "info", model.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    const json j = r.parsed();
    EXPECT_EQ(j["kind"], "meta-model");
    EXPECT_EQ(j["file"], model.string());
    EXPECT_GT(j["tensors"].get<int>(), 10);
    EXPECT_GT(j["parameters"].get<long>(), 1000);
    EXPECT_EQ(j["metadata"]["sgf.format_version"], "1");
    EXPECT_EQ(json::parse(j["metadata"]["sgf.config"].get<std::string>())["fingerprint_bits"], 128);
    const auto file = io::SafetensorsFile::load(model);
    EXPECT_EQ(j["tensor_list"].size(), file.size());
    EXPECT_EQ(j["tensor_list"]["F.b4.out.weight"]["shape"], json(file.tensors().at("F.b4.out.weight").shape));
    EXPECT_EQ(j["tensor_list"]["F.b4.out.weight"]["shape"][0], 8 + 128);  // z_hat, then the 128 logits
    EXPECT_EQ(j["tensor_list"]["F.b4.out.weight"]["dtype"], "F32");
    const Result t = sgf({"info", model.string()});
    EXPECT_EQ(t.rc, kOk);
    EXPECT_NE(t.out.find("kind: meta-model"), std::string::npos) << t.out;
}

TEST_F(Cli, RoundTripIssueInstantiateGenerateVerify) {
    // issue
    Result r = sgf({"--json", "issue", "--registry", registry.string(), "--label", "carol", "--metadata", R"({"k":1})"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    json j = r.parsed();
    ASSERT_EQ(j["issued"].size(), 1u);
    EXPECT_EQ(j["issued"][0]["label"], "carol");
    const std::string carol_hex = j["issued"][0]["fingerprint"];
    EXPECT_EQ(carol_hex.size(), 32u);
    EXPECT_EQ(j["registry_size"], 3);
    r = sgf({"--json", "issue", "--registry", registry.string(), "--count", "2", "--prefix", "u"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    EXPECT_EQ(j["issued"][0]["label"], "u000003");
    EXPECT_EQ(j["registry_size"], 5);
    // a label can be issued once
    expect_failure({"issue", "--registry", registry.string(), "--label", "carol"}, kUsage, registry.string(), "already issued");

    // instantiate by label, and by hex: the same generator
    const fs::path by_label = dir / "carol.safetensors", by_hex = dir / "carol_hex.safetensors";
    r = sgf({"--json", "instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "carol", "--out",
             by_label.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    EXPECT_EQ(j["out"], by_label.string());
    EXPECT_EQ(j["label"], "carol");
    EXPECT_GE(j["bake_seconds"].get<double>(), 0.0);
    r = sgf({"--json", "instantiate", "--model", model.string(), "--fingerprint", carol_hex, "--out", by_hex.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(sgf({"--json", "info", by_label.string()}).parsed()["kind"], "baked-generator");
    {  // the label's registry entry and its hex give the same weights, tensor for tensor
        const auto a = io::SafetensorsFile::load(by_label), b = io::SafetensorsFile::load(by_hex);
        ASSERT_EQ(a.size(), b.size());
        for (const auto& [name, t] : a.tensors()) {
            ASSERT_TRUE(b.has(name)) << name;
            EXPECT_EQ(t.shape, b.tensors().at(name).shape) << name;
            EXPECT_TRUE(t.bytes == b.tensors().at(name).bytes) << name << " differs between the label and the hex";
        }
    }

    // generate from the baked file and from the meta model + fingerprint
    const fs::path imgs = dir / "imgs", imgs_meta = dir / "imgs_meta";
    r = sgf({"--json", "generate", "--model", by_label.string(), "--count", "3", "--seed", "5", "--out", imgs.string(), "--grid"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    ASSERT_EQ(j["files"].size(), 4u);  // the images, then the grid
    EXPECT_EQ(j["files"][3], (imgs / "grid.png").string());
    EXPECT_TRUE(fs::exists(imgs / "grid.png"));
    std::vector<std::string> files;
    for (int i = 0; i < 3; ++i) {
        files.push_back(j["files"][i].get<std::string>());
        const auto im = io::load_image(files.back());
        EXPECT_EQ(im.width, 16);
        EXPECT_EQ(im.channels, 1);
    }
    // a second run into the same folder would replace those images: refused, nothing written
    {
        const std::string first = slurp(imgs / "00001.png");
        const Result again = sgf({"generate", "--model", by_label.string(), "--count", "5", "--seed", "6", "--out", imgs.string()});
        EXPECT_EQ(again.rc, kUsage) << again.err;
        EXPECT_NE(again.err.find("00000.png exists"), std::string::npos) << again.err;
        EXPECT_EQ(slurp(imgs / "00001.png"), first);
        EXPECT_FALSE(fs::exists(imgs / "00004.png"));
    }
    r = sgf({"--json", "generate", "--model", model.string(), "--fingerprint", carol_hex, "--count", "3", "--seed", "5", "--out",
             imgs_meta.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    ASSERT_EQ(r.parsed()["files"].size(), 3u);
    // the baked file and the meta model + fingerprint make the same images (to float rounding: one
    // grey level where a value falls next to a rounding boundary)
    for (std::size_t i = 0; i < 3; ++i) {
        const auto baked = io::load_image(files[i]), meta = io::load_image(r.parsed()["files"][i].get<std::string>());
        ASSERT_EQ(baked.pixels.size(), meta.pixels.size());
        int worst = 0;
        for (std::size_t k = 0; k < baked.pixels.size(); ++k) worst = std::max(worst, std::abs(int(baked.pixels[k]) - int(meta.pixels[k])));
        EXPECT_LE(worst, 1) << "image " << i << ": the baked generator and the meta model differ by " << worst << " grey levels";
    }

    // decode
    std::vector<std::string> args{"--json", "decode", "--model", model.string()};
    args.insert(args.end(), files.begin(), files.end());
    r = sgf(args);
    ASSERT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    ASSERT_EQ(j["results"].size(), 3u);
    for (const auto& d : j["results"]) {
        EXPECT_EQ(d["fingerprint"].get<std::string>().size(), 32u);
        EXPECT_EQ(d["logits"].size(), 128u);
    }

    // verify: an untrained decoder, so the outcome is whatever it is, but it is there, well-formed,
    // and the exit code agrees with it.
    const std::string before = slurp(registry);
    args = {"--json", "verify", "--model", model.string(), "--registry", registry.string()};
    args.insert(args.end(), files.begin(), files.end());
    r = sgf(args);
    EXPECT_TRUE(r.rc == kOk || r.rc == kNotFingerprinted || r.rc == kInconclusive) << r.rc << r.err;
    j = r.parsed();
    EXPECT_EQ(j["exit_code"], r.rc);
    ASSERT_EQ(j["results"].size(), 3u);
    for (const auto& a : j["results"]) {
        ASSERT_TRUE(a.contains("outcome"));
        const std::string o = a["outcome"];
        EXPECT_TRUE(o == "attributed" || o == "not_fingerprinted" || o == "inconclusive") << o;
        EXPECT_EQ(a["bits"], 128);
        EXPECT_EQ(a["registry_size"], 5);
        EXPECT_EQ(a["threshold_bits"], stats::bit_threshold(128, 1e-6 / 5));
        for (const char* k : {"image", "fingerprint", "detected", "best_label", "best_matching_bits", "runner_up_label",
                              "runner_up_matching_bits", "margin", "log10_p_value", "log10_family_p_value"})
            EXPECT_TRUE(a.contains(k)) << k;
    }
    EXPECT_EQ(j["attributed"].get<int>() + j["not_fingerprinted"].get<int>() + j["inconclusive"].get<int>(), 3);
    EXPECT_EQ(j["errors"], 0);
    // what the decisions rest on: the rule, the registry as read, the decoder file by its SHA-256
    EXPECT_EQ(j["decision"], (json{{"alpha", 1e-6}, {"min_margin", 8}, {"score", "weighted"}, {"threshold_bits", stats::bit_threshold(128, 1e-6 / 5)},
                                   {"registry", registry.string()}, {"registry_size", 5}, {"bits", 128}, {"decoder", model.string()},
                                   {"decoder_sha256", sha256_of_file(model)}, {"sgf_version", kVersion}}))
        << j["decision"].dump();
    EXPECT_TRUE(unchanged(registry, before)) << "verify must not write to the registry";
    // the text form
    args.erase(args.begin());
    r = sgf(args);
    EXPECT_NE(r.out.find("3 images:"), std::string::npos) << r.out;
}

// A decoder with random weights still reads a definite fingerprint from an image; registering
// exactly that code (or codes near it) makes every outcome of the decision rule reachable. Scored
// by the paper's bit count (--score bits); the weighted score's test is WeightedScoreReadsConfidentBits.
TEST_F(Cli, AttributionOutcomesAndExitCodes) {
    io::save_png(dir / "a.png", gradient(16, 16, 1));
    const std::string img = (dir / "a.png").string();
    const Fingerprint fp = Fingerprint::parse(decode_hex(img));

    const fs::path r_match = dir / "match.db", r_far = dir / "far.db", r_close = dir / "close.db";
    {
        Registry reg(r_match);
        reg.issue("other1", "", 7);
        reg.add("target", fp);
        reg.issue("other2", "", 8);
    }
    Result r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_match.string(), img});
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    json a = r.parsed()["results"][0];
    EXPECT_EQ(a["outcome"], "attributed");
    EXPECT_EQ(a["best_label"], "target");
    EXPECT_EQ(a["best_matching_bits"], 128);
    EXPECT_EQ(a["detected"], true);
    EXPECT_NEAR(a["log10_p_value"].get<double>(), -128 * std::log10(2.0), 1e-6);

    // Not one of ours: only codes far from what the image decodes to.
    {
        Registry reg(r_far);
        Fingerprint inv(128);
        for (int i = 0; i < 128; ++i) inv.set_bit(i, !fp.bit(i));
        reg.add("complement", inv);
    }
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_far.string(), img});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.out << r.err;
    a = r.parsed()["results"][0];
    EXPECT_EQ(a["outcome"], "not_fingerprinted");
    EXPECT_EQ(a["detected"], false);
    EXPECT_EQ(a["best_matching_bits"], 0);

    // Can't tell: two registered codes 16 bits from the decoded one (32 from each other, the
    // minimum issuance distance), both above the threshold.
    {
        Registry reg(r_close);
        Fingerprint c1 = fp, c2 = fp;
        for (int i = 0; i < 16; ++i) c1.set_bit(i, !fp.bit(i));
        for (int i = 16; i < 32; ++i) c2.set_bit(i, !fp.bit(i));
        reg.add("twin1", c1);
        reg.add("twin2", c2);
    }
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_close.string(), img});
    EXPECT_EQ(r.rc, kInconclusive) << r.out << r.err;
    a = r.parsed()["results"][0];
    EXPECT_EQ(a["outcome"], "inconclusive");
    EXPECT_EQ(a["best_matching_bits"], 112);
    EXPECT_EQ(a["runner_up_matching_bits"], 112);
    EXPECT_EQ(a["margin"], 0);

    // Mixed batch: the worst class decides the exit code (inconclusive over not-fingerprinted,
    // unreadable files over any outcome).
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_match.string(), img, (dir / "nope.png").string()});
    EXPECT_EQ(r.rc, kIoError);
    json j = r.parsed();
    EXPECT_EQ(j["attributed"], 1);
    EXPECT_EQ(j["errors"], 1);
    EXPECT_EQ(j["exit_code"], kIoError);
    EXPECT_EQ(j["results"][1]["outcome"], "error");
    // --min-margin 0 and a huge alpha change the decision as documented
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_close.string(), "--min-margin", "0", img});
    EXPECT_EQ(r.rc, kInconclusive);  // the runner-up still passes k*
    for (const char* alpha : {"0", "1", "1.5", "-0.1", "nan"}) {
        r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", r_match.string(), "--alpha", alpha, img});
        EXPECT_EQ(r.rc, kUsage) << alpha << r.out << r.err;
        EXPECT_NE(r.err.find("--alpha"), std::string::npos) << r.err;
    }
}

TEST_F(Cli, VerifyOutcomeOnlyTellsNoBitsAndFilesFromReadsAList) {
    io::save_png(dir / "a.png", gradient(16, 16, 1));
    const std::string img = (dir / "a.png").string();
    const Fingerprint fp = Fingerprint::parse(decode_hex(img));
    const fs::path reg_path = dir / "match.db";
    {
        Registry reg(reg_path);
        reg.issue("other", "", 7);
        reg.add("target", fp);
    }
    const std::string missing = (dir / "nope.png").string();
    Result r = sgf({"--json", "verify", "--outcome-only", "--model", model.string(), "--registry", reg_path.string(), img, missing});
    EXPECT_EQ(r.rc, kIoError) << r.out << r.err;
    json j = r.parsed();
    ASSERT_EQ(j["results"].size(), 2u);
    EXPECT_EQ(j["results"][0], (json{{"image", img}, {"outcome", "attributed"}, {"label", "target"}})) << "nothing but outcome and label";
    EXPECT_FALSE(j.contains("decision")) << "no registry size or threshold for a public answer";
    EXPECT_EQ(j["results"][1]["outcome"], "error");
    EXPECT_EQ(j["attributed"], 1);
    r = sgf({"verify", "--outcome-only", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.out, img + "\tattributed\ttarget\n1 image: 1 attributed, 0 not fingerprinted, 0 inconclusive, 0 unreadable\n");
    EXPECT_EQ(r.out.find(fp.hex()), std::string::npos);
    // not ours: no label, and nothing that says how close the nearest code was
    const fs::path far = dir / "far.db";
    {
        Registry reg(far);
        Fingerprint inv(128);
        for (int i = 0; i < 128; ++i) inv.set_bit(i, !fp.bit(i));
        reg.add("complement", inv);
    }
    r = sgf({"--json", "verify", "--outcome-only", "--model", model.string(), "--registry", far.string(), img});
    EXPECT_EQ(r.rc, kNotFingerprinted);
    EXPECT_EQ(r.parsed()["results"][0], (json{{"image", img}, {"outcome", "not_fingerprinted"}}));

    // --files-from: a list (CRLF, blank lines) after the positional paths; "-" reads stdin
    const fs::path list = dir / "list.txt";
    spit(list, img + "\r\n\n" + img + "\n" + good_png.string());
    r = sgf({"--json", "decode", "--model", model.string(), good_png.string(), "--files-from", list.string()});
    EXPECT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    ASSERT_EQ(j["results"].size(), 4u);
    EXPECT_EQ(j["results"][0]["image"], good_png.string());
    EXPECT_EQ(j["results"][1]["image"], img);
    EXPECT_EQ(j["results"][3]["image"], good_png.string());
    const std::string cmd = test::shell_quote(SGF_CLI_PATH) + " --threads 1 --json verify --model " + test::shell_quote(model.string()) +
                            " --registry " + test::shell_quote(reg_path.string()) + " --files-from - < " + test::shell_quote(list.string()) +
                            " > " + test::shell_quote((dir / "stdin.json").string());
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == kOk) << status;
    j = json::parse(slurp(dir / "stdin.json"));
    EXPECT_EQ(j["results"].size(), 3u);
    EXPECT_EQ(j["attributed"], 3) << "good.png is the same gradient as a.png";
    // nothing to decode, or a list that cannot be read: named, exit 2 / 3
    spit(dir / "empty.txt", "\n\n");
    expect_failure({"decode", "--model", model.string(), "--files-from", (dir / "empty.txt").string()}, kUsage, "empty.txt", "names none");
    expect_failure({"verify", "--model", model.string(), "--registry", registry.string()}, kUsage, "--files-from", "give image files");
    expect_failure({"decode", "--model", model.string(), "--files-from", (dir / "no-list.txt").string()}, kIoError, "no-list.txt", "");
    // decode's text error line has the three fields of verify's
    r = sgf({"decode", "--model", model.string(), missing});
    EXPECT_EQ(r.rc, kIoError);
    EXPECT_EQ(r.out.rfind(missing + "\terror\t", 0), 0u) << r.out;
}

TEST_F(Cli, AFolderArgumentStandsForEveryImageUnderIt) {
    const fs::path folder = dir / "suspects";
    fs::create_directories(folder / "sub");
    io::save_png(folder / "a.png", gradient(16, 16, 1));
    spit(folder / "sub" / "b.JPG", io::encode_jpeg(gradient(20, 16, 3), 95));
    spit(folder / "notes.txt", "not an image");
    Result r = sgf({"--json", "decode", "--model", model.string(), folder.string(), good_png.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    json j = r.parsed();
    ASSERT_EQ(j["results"].size(), 3u) << "a.png and sub/b.JPG in path order, then good.png; notes.txt skipped";
    EXPECT_EQ(j["results"][0]["image"], (folder / "a.png").string());
    EXPECT_EQ(j["results"][1]["image"], (folder / "sub" / "b.JPG").string());
    EXPECT_EQ(j["results"][2]["image"], good_png.string());
    const fs::path list = dir / "folders.txt";
    spit(list, folder.string() + "\n");
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), "--files-from", list.string()});
    j = r.parsed();
    ASSERT_EQ(j["results"].size(), 2u) << r.out;
    EXPECT_EQ(j["results"][1]["image"], (folder / "sub" / "b.JPG").string());
    for (const auto& res : j["results"]) EXPECT_NE(res["outcome"], "error") << res;
    EXPECT_EQ(j["errors"], 0);
    fs::create_directories(dir / "nothing" / "inside");
    r = expect_failure({"verify", "--model", model.string(), "--registry", registry.string(), (dir / "nothing").string()}, kIoError,
                       "nothing", "no .png/.jpg/.jpeg images");
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, VerifyLabelTestsOneClaimWithoutBonferroni) {
    io::save_png(dir / "a.png", gradient(16, 16, 1));
    const std::string img = (dir / "a.png").string();
    const Fingerprint fp = Fingerprint::parse(decode_hex(img));
    const fs::path reg_path = dir / "claims.db";
    Fingerprint near = fp, far(128);
    for (int i = 0; i < 34; ++i) near.set_bit(i, !fp.bit(i));  // 94 of 128 bits agree
    for (int i = 0; i < 128; ++i) far.set_bit(i, !fp.bit(i));
    {
        Registry reg(reg_path, RegistryOptions{128, 0});
        reg.add("near", near);
        reg.add("far", far);
        for (int i = 0; i < 40; ++i) reg.issue(fmt::format("u{}", i), "", std::uint64_t(100 + i));
    }
    const int k1 = stats::bit_threshold(128, 1e-6);  // one comparison
    ASSERT_LE(k1, 94);  // 92
    ASSERT_GT(stats::bit_threshold(128, 1e-6 / 42), 94) << "the registry-wide test must not attribute the same image";  // 95
    Result r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), "--label", "near", img});
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    json j = r.parsed()["results"][0];
    EXPECT_EQ(j["outcome"], "matches");
    EXPECT_EQ(j["label"], "near");
    EXPECT_EQ(j["matching_bits"], 94);
    EXPECT_EQ(j["threshold_bits"], k1);
    EXPECT_NEAR(j["log10_p_value"].get<double>(), stats::log10_p_value(94, 128), 1e-9);
    // the record of what the claim was tested with: the claim, the level, the decoder by its digest
    EXPECT_EQ(r.parsed()["decision"],
              (json{{"alpha", 1e-6}, {"threshold_bits", k1}, {"score", "bits"}, {"claim", "near"}, {"registry", reg_path.string()}, {"bits", 128},
                    {"decoder", model.string()}, {"decoder_sha256", sha256_of_file(model)}, {"sgf_version", kVersion}}))
        << r.out;
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kNotFingerprinted) << "Bonferroni over 42 entries: 94 bits are not enough";
    // the claim against a code the image does not carry: no_match, the not-fingerprinted exit code
    r = sgf({"verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), "--label", "far", img});
    EXPECT_EQ(r.rc, kNotFingerprinted);
    EXPECT_EQ(r.out.rfind(img + "\tno_match\tfar\t0/128 bits (threshold " + std::to_string(k1) + ")", 0), 0u) << r.out;
    r = sgf({"--json", "verify", "--score", "bits", "--outcome-only", "--model", model.string(), "--registry", reg_path.string(), "--label", "near", img});
    EXPECT_EQ(r.parsed()["results"][0], (json{{"image", img}, {"label", "near"}, {"outcome", "matches"}}));
    EXPECT_FALSE(r.parsed().contains("decision"));
    // an unknown label, or --min-margin (which has no meaning for one comparison): exit 2
    r = sgf({"verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), "--label", "carol", img});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("'carol'"), std::string::npos) << r.err;
    r = sgf({"verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), "--label", "near", "--min-margin", "3", img});
    EXPECT_EQ(r.rc, kUsage) << r.err;
}

// The weighted score (verify's default) and the bit count on one image: a registered code that
// differs from the decoded one in its 40 least confident bits is attributed by the weighted score
// and missed by the count (88 of 128 bits, k* = 93 over 3 entries); the JSON and text carry the
// score as the library computes it from the logits decode prints.
TEST_F(Cli, WeightedScoreReadsConfidentBitsTheCountMisses) {
    io::save_png(dir / "a.png", gradient(16, 16, 1));
    const std::string img = (dir / "a.png").string();
    Result r = sgf({"--json", "decode", "--model", model.string(), img});
    ASSERT_EQ(r.rc, kOk) << r.err;
    const json d = r.parsed()["results"][0];
    const Fingerprint fp = Fingerprint::parse(d["fingerprint"].get<std::string>());
    const auto logits = d["logits"].get<std::vector<float>>();
    ASSERT_EQ(logits.size(), 128u);
    std::vector<int> order(128);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return std::fabs(logits[std::size_t(x)]) < std::fabs(logits[std::size_t(y)]); });
    Fingerprint code = fp;
    for (int i = 0; i < 40; ++i) code.set_bit(order[std::size_t(i)], !fp.bit(order[std::size_t(i)]));
    const fs::path reg_path = dir / "weighted.db";
    {
        Registry reg(reg_path);
        reg.issue("other1", "", 11);
        reg.add("target", code);
        reg.issue("other2", "", 12);
    }
    const auto q = confidence_weights(logits);
    const stats::WeightedNull null(q);
    std::int64_t score = 0;
    for (int i = 0; i < 128; ++i) score += code.bit(i) == fp.bit(i) ? q[std::size_t(i)] : 0;
    const std::int64_t threshold = null.family_threshold(1e-6, 3);
    ASSERT_GE(score, threshold) << "the test decoder's 40 least confident bits must weigh little";
    ASSERT_LT(88, stats::family_bit_threshold(128, 1e-6, 3));

    r = sgf({"--json", "verify", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    json a = r.parsed()["results"][0];
    EXPECT_EQ(a["outcome"], "attributed");
    EXPECT_EQ(a["best_label"], "target");
    EXPECT_EQ(a["score"], "weighted");
    EXPECT_EQ(a["best_score"], score);
    EXPECT_EQ(a["score_total"], null.total());
    EXPECT_EQ(a["score_threshold"], threshold);
    EXPECT_EQ(a["best_matching_bits"], 88);
    EXPECT_NEAR(a["log10_p_value"].get<double>(), null.log10_p_value(score), 1e-9);
    EXPECT_EQ(r.parsed()["decision"]["score"], "weighted");
    r = sgf({"verify", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.out.rfind(fmt::format("{}\tattributed\ttarget\tscore {}/{} (threshold {}), 88/128 bits", img, score, null.total(), threshold), 0), 0u)
        << r.out;
    // the paper's count misses it
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.out << r.err;
    EXPECT_EQ(r.parsed()["results"][0]["score"], "bits");
    EXPECT_EQ(r.parsed()["results"][0]["best_score"], 88);
    // one claim: the weighted score matches, the count (k = 92 without Bonferroni) does not
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", reg_path.string(), "--label", "target", img});
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_EQ(r.parsed()["results"][0]["outcome"], "matches");
    EXPECT_EQ(r.parsed()["results"][0]["score_value"], score);
    EXPECT_EQ(r.parsed()["results"][0]["score_threshold"], null.threshold_for_log_level(std::log(1e-6)));
    r = sgf({"--json", "verify", "--score", "bits", "--model", model.string(), "--registry", reg_path.string(), "--label", "target", img});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.out << r.err;
    r = sgf({"verify", "--score", "soft", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("--score"), std::string::npos) << r.err;
    r = sgf({"--json", "verify", "--outcome-only", "--model", model.string(), "--registry", reg_path.string(), img});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["results"][0], (json{{"image", img}, {"outcome", "attributed"}, {"label", "target"}}));

    // the other two outcomes under the default score: only the complement registered (every bit
    // wrong: score 0), and two codes each 2 bits from the decoded one (both pass: inconclusive)
    const fs::path far_path = dir / "weighted-far.db", twins_path = dir / "weighted-twins.db";
    {
        Fingerprint inv(128), t1 = fp, t2 = fp;
        for (int i = 0; i < 128; ++i) inv.set_bit(i, !fp.bit(i));
        Registry(far_path).add("complement", inv);
        for (int i : {0, 1}) t1.set_bit(order[std::size_t(i)], !fp.bit(order[std::size_t(i)]));
        for (int i : {2, 3}) t2.set_bit(order[std::size_t(i)], !fp.bit(order[std::size_t(i)]));
        Registry twins(twins_path, RegistryOptions{128, 0});
        twins.add("twin1", t1);
        twins.add("twin2", t2);
    }
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", far_path.string(), img});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.out << r.err;
    EXPECT_EQ(r.parsed()["results"][0]["outcome"], "not_fingerprinted");
    EXPECT_EQ(r.parsed()["results"][0]["best_score"], 0);
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", twins_path.string(), img});
    EXPECT_EQ(r.rc, kInconclusive) << r.out << r.err;
    a = r.parsed()["results"][0];
    EXPECT_EQ(a["outcome"], "inconclusive");
    EXPECT_GE(a["runner_up_score"].get<std::int64_t>(), a["score_threshold"].get<std::int64_t>());
}

TEST_F(Cli, ExportDecoderGivesAVerifierTheDecoderAlone) {
    const fs::path dec = dir / "decoder.safetensors";
    Result r = sgf({"--json", "export-decoder", "--model", model.string(), "--out", dec.string()});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["bits"], 128);
    const auto file = io::SafetensorsFile::load(dec);
    EXPECT_EQ(file.metadata.at("sgf.kind"), "decoder");
    EXPECT_EQ(file.metadata.at("sgf.meta_model_checksum"), io::SafetensorsFile::load(model).metadata.at("sgf.checksum"));
    for (const auto& [name, t] : file.tensors()) EXPECT_EQ(name.rfind("F.", 0), 0u) << name;
    // decode and verify read it exactly as they read the meta model
    const Result with_meta = sgf({"--json", "decode", "--model", model.string(), good_png.string()});
    const Result with_dec = sgf({"--json", "decode", "--model", dec.string(), good_png.string()});
    EXPECT_EQ(with_dec.rc, kOk) << with_dec.err;
    EXPECT_EQ(with_dec.out, with_meta.out);
    const Result v_meta = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), good_png.string()});
    const Result v_dec = sgf({"--json", "verify", "--model", dec.string(), "--registry", registry.string(), good_png.string()});
    EXPECT_EQ(v_dec.rc, v_meta.rc);
    json jd = v_dec.parsed(), jm = v_meta.parsed();  // the same results; the record names each file by its digest
    EXPECT_EQ(jd["decision"]["decoder_sha256"], sha256_of_file(dec));
    EXPECT_NE(jd["decision"]["decoder_sha256"], jm["decision"]["decoder_sha256"]);
    jd.erase("decision");
    jm.erase("decision");
    EXPECT_EQ(jd, jm);
    // it cannot make images or bake a generator, and is not exported again
    r = sgf({"generate", "--model", dec.string(), "--fingerprint", std::string(32, '0'), "--out", (dir / "imgs").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    // (both kinds generate takes are named, not the meta model alone)
    EXPECT_NE(r.err.find("holds a 'decoder', expected a meta-model or meta-generator (with --fingerprint) or a baked-generator"),
              std::string::npos) << r.err;
    r = sgf({"instantiate", "--model", dec.string(), "--fingerprint", std::string(32, '0'), "--out", (dir / "u.safetensors").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    r = sgf({"export-decoder", "--model", dec.string(), "--out", (dir / "again.safetensors").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("holds a 'decoder' already"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "again.safetensors"));
    // --out: a decoder file is replaced; the input, a meta model or any other file is not
    EXPECT_EQ(sgf({"export-decoder", "--model", model.string(), "--out", dec.string()}).rc, kOk);
    const std::string meta_before = slurp(model);
    r = sgf({"export-decoder", "--model", model.string(), "--out", model.string()});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("also an input"), std::string::npos) << r.err;
    fs::copy_file(model, dir / "other-meta.safetensors");
    r = sgf({"export-decoder", "--model", model.string(), "--out", (dir / "other-meta.safetensors").string()});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("is not a decoder file"), std::string::npos) << r.err;
    EXPECT_TRUE(unchanged(model, meta_before));
    EXPECT_TRUE(unchanged(dir / "other-meta.safetensors", meta_before));
}

TEST_F(Cli, ExportGeneratorGivesABakingServiceNoDecoder) {
    const fs::path gen = dir / "generator.safetensors";
    Result r = sgf({"--json", "export-generator", "--model", model.string(), "--out", gen.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["bits"], 128);
    const auto file = io::SafetensorsFile::load(gen), meta = io::SafetensorsFile::load(model);
    EXPECT_EQ(file.metadata.at("sgf.kind"), "meta-generator");
    EXPECT_EQ(file.metadata.at("sgf.meta_model_checksum"), meta.metadata.at("sgf.checksum"));
    std::size_t g_tensors = 0;
    for (const auto& [name, t] : meta.tensors()) g_tensors += name.rfind("G.", 0) == 0;
    EXPECT_EQ(file.size(), g_tensors) << "E and G (named G.*), nothing of F or D";
    for (const auto& [name, t] : file.tensors()) {
        EXPECT_EQ(name.rfind("G.", 0), 0u) << name;
        EXPECT_TRUE(t.bytes == meta.tensors().at(name).bytes) << name;
    }
    // instantiate and generate read it exactly as they read the meta model
    const std::string hex = "0123456789abcdef0123456789abcdef";
    const fs::path from_meta = dir / "u-meta.safetensors", from_gen = dir / "u-gen.safetensors";
    ASSERT_EQ(sgf({"instantiate", "--model", model.string(), "--fingerprint", hex, "--out", from_meta.string()}).rc, kOk);
    r = sgf({"instantiate", "--model", gen.string(), "--fingerprint", hex, "--out", from_gen.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    {
        const auto a = io::SafetensorsFile::load(from_meta), b = io::SafetensorsFile::load(from_gen);
        ASSERT_EQ(a.size(), b.size());
        for (const auto& [name, t] : a.tensors()) EXPECT_TRUE(t.bytes == b.tensors().at(name).bytes) << name;
    }
    for (const auto& m : {model, gen}) {
        r = sgf({"--json", "generate", "--model", m.string(), "--fingerprint", hex, "--count", "2", "--seed", "3", "--out",
                 (dir / ("imgs-" + m.stem().string())).string()});
        ASSERT_EQ(r.rc, kOk) << r.err;
    }
    EXPECT_EQ(slurp(dir / "imgs-generator" / "00001.png"), slurp(dir / ("imgs-" + model.stem().string()) / "00001.png"));
    // it cannot decode, verify or be exported again
    r = sgf({"decode", "--model", gen.string(), good_png.string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("holds a 'meta-generator', expected meta-model or decoder"), std::string::npos) << r.err;
    EXPECT_EQ(sgf({"verify", "--model", gen.string(), "--registry", registry.string(), good_png.string()}).rc, kFormatError);
    r = sgf({"export-generator", "--model", gen.string(), "--out", (dir / "again.safetensors").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("holds a 'meta-generator' already"), std::string::npos) << r.err;
    r = sgf({"export-decoder", "--model", gen.string(), "--out", (dir / "dec.safetensors").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("export-decoder: " + gen.string() + " holds a 'meta-generator', expected a meta-model"), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(dir / "again.safetensors"));
    // --out: a meta-generator file is replaced; any other file is not
    EXPECT_EQ(sgf({"export-generator", "--model", model.string(), "--out", gen.string()}).rc, kOk);
    r = sgf({"export-generator", "--model", model.string(), "--out", from_gen.string()});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("is not a meta-generator file"), std::string::npos) << r.err;
    EXPECT_EQ(sgf({"--json", "info", gen.string()}).parsed()["kind"], "meta-generator");
}

TEST_F(Cli, RegistryListLookupExportImport) {
    Result r = sgf({"registry", "list", registry.string()});
    EXPECT_EQ(r.rc, kOk) << r.err;
    const std::string r0_list = r.out;
    Registry reg(registry);
    const auto all = reg.all();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(r.out, "alice\t" + all[0].fingerprint.hex() + "\t" + all[0].issued_at + "\nbob\t" + all[1].fingerprint.hex() + "\t" +
                         all[1].issued_at + "\n");
    r = sgf({"--json", "registry", "list", registry.string()});
    json j = r.parsed();
    EXPECT_EQ(j["size"], 2);
    EXPECT_EQ(j["bits"], 128);
    EXPECT_EQ(j["min_distance"], 32);
    EXPECT_EQ(j["entries"][0]["metadata"], R"({"who":"a"})");

    r = sgf({"registry", "lookup", registry.string(), "alice"});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.out, "alice\t" + all[0].fingerprint.hex() + "\t" + all[0].issued_at + "\t{\"who\":\"a\"}\n");
    // FILE also as --registry FILE, as for issue and verify
    EXPECT_EQ(sgf({"registry", "list", "--registry", registry.string()}).out, r0_list);
    const std::string alice_line = "alice\t" + all[0].fingerprint.hex() + "\t" + all[0].issued_at + "\t{\"who\":\"a\"}\n";
    for (const auto& args : {std::vector<std::string>{"registry", "lookup", "--registry", registry.string(), "alice"},
                             std::vector<std::string>{"registry", "lookup", "alice", "--registry", registry.string()}}) {
        r = sgf(args);
        EXPECT_EQ(r.rc, kOk) << r.err;
        EXPECT_EQ(r.out, alice_line);
    }
    expect_failure({"registry", "lookup", registry.string(), "alice", "--registry", registry.string()}, kUsage, "registry lookup",
                   "given twice");
    expect_failure({"registry", "lookup", "--registry", registry.string()}, kUsage, "registry lookup", "no LABEL given");
    expect_failure({"registry", "list"}, kUsage, "registry list", "no registry file given");
    r = sgf({"registry", "lookup", registry.string(), "carol"});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("'carol'"), std::string::npos) << r.err;
    expect_failure({"registry", "list", (dir / "none.db").string()}, kIoError, "none.db", "not found");
    EXPECT_FALSE(fs::exists(dir / "none.db")) << "list never creates a registry";

    // export to stdout (JSON by default) and to files (format from the extension), then import both
    // into new registries: the same entries, time stamps and metadata
    r = sgf({"registry", "export", registry.string()});
    EXPECT_EQ(r.rc, kOk);
    EXPECT_EQ(json::parse(r.out), json::parse(reg.export_json()));
    const fs::path csv = dir / "backup.csv", js = dir / "backup.json";
    r = sgf({"--json", "registry", "export", registry.string(), "--out", csv.string()});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["format"], "csv");
    EXPECT_EQ(slurp(csv), reg.export_csv());
    EXPECT_EQ(sgf({"registry", "export", registry.string(), "--out", js.string()}).rc, kOk);
    EXPECT_EQ(slurp(js), reg.export_json() + "\n");
    for (const auto& [input, name] : {std::pair{csv, "from-csv.db"}, {js, "from-json.db"}}) {
        r = sgf({"--json", "registry", "import", (dir / name).string(), input.string()});
        EXPECT_EQ(r.rc, kOk) << r.err;
        EXPECT_EQ(r.parsed()["imported"], 2);
        Registry copy(dir / name);
        EXPECT_EQ(copy.export_json(), reg.export_json()) << name;
    }
    // a JSON export without a telling extension is recognised by its first character
    fs::copy_file(js, dir / "backup.txt");
    EXPECT_EQ(sgf({"registry", "import", (dir / "sniffed.db").string(), (dir / "backup.txt").string()}).rc, kOk);
    EXPECT_EQ(Registry(dir / "sniffed.db").size(), 2);

    // all or nothing: importing the same rows again fails on the first (already issued) and adds none
    r = sgf({"registry", "import", (dir / "from-csv.db").string(), csv.string()});
    EXPECT_EQ(r.rc, kFormatError);
    EXPECT_NE(r.err.find("backup.csv: line 2: 'alice' is already in the registry with this fingerprint"), std::string::npos) << r.err;
    EXPECT_EQ(Registry(dir / "from-csv.db").size(), 2);
    // a malformed input into a new registry: nothing is left behind
    spit(dir / "bad.csv", "label,fingerprint\ncarol,xyz\n");
    r = sgf({"registry", "import", (dir / "new.db").string(), (dir / "bad.csv").string()});
    EXPECT_EQ(r.rc, kFormatError);
    EXPECT_NE(r.err.find("bad.csv: line 2"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "new.db"));
    // --bits must match an existing registry; a missing input is named
    expect_failure({"registry", "import", registry.string(), csv.string(), "--bits", "64"}, kUsage, "registry.db", "--bits 64");
    expect_failure({"registry", "import", (dir / "x.db").string(), (dir / "absent.csv").string()}, kIoError, "absent.csv", "");
    EXPECT_FALSE(fs::exists(dir / "x.db"));
    // --out replaces an earlier export, never the registry itself or another file
    expect_failure({"registry", "export", registry.string(), "--out", registry.string()}, kUsage, "registry.db", "the registry");
    const std::string png_before = slurp(good_png);
    expect_failure({"registry", "export", registry.string(), "--out", good_png.string()}, kUsage, "good.png", "not an earlier export");
    EXPECT_TRUE(unchanged(good_png, png_before));
    EXPECT_EQ(sgf({"registry", "export", registry.string(), "--out", csv.string(), "--format", "json"}).rc, kOk) << "an export is replaced";
    EXPECT_EQ(slurp(csv), reg.export_json() + "\n");
    // a byte-order mark before a JSON export without a telling extension; an empty input creates nothing
    spit(dir / "bom.txt", "\xEF\xBB\xBF" + reg.export_json());
    EXPECT_EQ(sgf({"registry", "import", (dir / "bom.db").string(), (dir / "bom.txt").string()}).rc, kOk);
    EXPECT_EQ(Registry(dir / "bom.db").size(), 2);
    spit(dir / "empty.json", "[]");
    r = sgf({"registry", "import", (dir / "empty.db").string(), (dir / "empty.json").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("holds no entries"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "empty.db"));
    // a registry action is required
    r = sgf({"registry"});
    EXPECT_EQ(r.rc, kUsage);
}

// ------------------------------------------------------------------------------------------ hostile images
TEST_F(Cli, DecodeOfManyImagesKeepsStderrCleanWhenItIsNotATerminal) {
    // the progress line (more than 64 images) is for terminals only: captured stderr stays empty
    std::vector<std::string> args{"decode", "--model", model.string()};
    for (int i = 0; i < 65; ++i) {
        const fs::path p = dir / fmt::format("copy{:02d}.png", i);
        fs::copy_file(good_png, p, fs::copy_options::overwrite_existing);
        args.push_back(p.string());
    }
    const Result r = sgf(args);
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 65);
}

TEST_F(Cli, MissingImageFile) {
    const std::string p = (dir / "missing.png").string();
    expect_failure({"verify", "--model", model.string(), "--registry", registry.string(), p}, kIoError, p, "cannot open");
    const Result r = expect_failure({"--json", "verify", "--model", model.string(), "--registry", registry.string(), p}, kIoError, p,
                                 "No such file");
    const json j = r.parsed();
    EXPECT_EQ(j["results"][0]["outcome"], "error");
    EXPECT_EQ(j["errors"], 1);
    expect_failure({"decode", "--model", model.string(), p}, kIoError, p, "cannot open");
    // a folder stands for the images under it (AFolderArgumentStandsForEveryImageUnderIt); one named like
    // an image file but holding none is an I/O error that names it
    fs::create_directories(dir / "looks-like.png");
    expect_failure({"decode", "--model", model.string(), (dir / "looks-like.png").string()}, kIoError, (dir / "looks-like.png").string(),
                   "no .png/.jpg/.jpeg images found");
}

TEST_F(Cli, NonImageFile) {
    const fs::path p = dir / "notes.png";
    spit(p, "these are my notes, not a picture\n");
    expect_failure({"verify", "--model", model.string(), "--registry", registry.string(), p.string()}, kFormatError, p.string(),
                   "not a readable image");
    const fs::path empty = dir / "empty.png";
    spit(empty, "");
    expect_failure({"decode", "--model", model.string(), empty.string()}, kFormatError, empty.string(), "not a readable image");
}

TEST_F(Cli, TruncatedPng) {
    const std::string png = io::encode_png(gradient(16, 16, 3));
    const fs::path p = dir / "truncated.png";
    spit(p, png.substr(0, png.size() / 2));
    expect_failure({"verify", "--model", model.string(), "--registry", registry.string(), p.string()}, kFormatError, p.string(),
                   "cannot decode");
    // a truncated JPEG: its reason must not be another format's ("bad png sig" was)
    const std::string jpg = io::encode_jpeg(gradient(16, 16, 3), 90);
    const fs::path pj = dir / "truncated.jpg";
    spit(pj, jpg.substr(0, jpg.size() / 2));
    const Result rj = expect_failure({"decode", "--model", model.string(), pj.string()}, kFormatError, pj.string(), "JPEG");
    EXPECT_EQ((rj.err + rj.out).find("png"), std::string::npos) << rj.err << rj.out;
    // an empty file says so
    spit(p, "");
    expect_failure({"decode", "--model", model.string(), p.string()}, kFormatError, p.string(), "empty file (0 bytes)");
    // only the 8-byte signature left
    spit(p, png.substr(0, 8));
    expect_failure({"decode", "--model", model.string(), p.string()}, kFormatError, p.string(), "not a readable image");
}

// An image with a side below a quarter of the model's resolution cannot carry evidence either way: it
// is refused as unusable input (exit 4), never reported as "not fingerprinted" (docs/cli.md).
TEST_F(Cli, ImagesTooSmallToDecodeAreRefusedNotCalledUnmarked) {
    // the fixture's model is 16 px: it decodes images of at least 16/4 = 4 px per side
    const fs::path one = dir / "one.png", three = dir / "three.png", four = dir / "four.png";
    io::save_png(one, io::Image{1, 1, 3, {200, 10, 10}});
    io::save_png(three, gradient(3, 7, 1));
    io::save_png(four, gradient(4, 4, 1));
    expect_failure({"decode", "--model", model.string(), one.string()}, kFormatError, one.string(),
                   "image is 1x1, too small to decode: a 16-px model needs at least 4 px per side");
    const Result r = expect_failure({"--json", "verify", "--model", model.string(), "--registry", registry.string(), one.string(),
                                     three.string(), four.string()},
                                    kFormatError, three.string(), "image is 3x7, too small");
    const json j = r.parsed();
    EXPECT_EQ(j["results"][0]["outcome"], "error");
    EXPECT_EQ(j["results"][1]["outcome"], "error");
    EXPECT_NE(j["results"][2]["outcome"], "error");  // 4x4 is decoded
    EXPECT_EQ(j["errors"], 2);
}

TEST_F(Cli, HugeDimensionsInPngHeader) {
    const fs::path p = dir / "huge.png";
    spit(p, png_header_only(20000, 20000));
    expect_failure({"verify", "--model", model.string(), "--registry", registry.string(), p.string()}, kFormatError, p.string(),
                   "20000x20000");
    const Result r = expect_failure({"--json", "decode", "--model", model.string(), p.string()}, kFormatError, p.string(), "above the limit");
    EXPECT_EQ(r.parsed()["results"][0]["image"], p.string());
    // sides above stb's 2^24 were "not a readable image (unknown image type)"; a 0 side likewise
    for (const auto& [w, h] : std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 2147483647u}, {0, 0}, {4294967295u, 8}}) {
        spit(p, png_header_only(w, h));
        expect_failure({"decode", "--model", model.string(), p.string()}, kFormatError, p.string(), fmt::format("image is {}x{}", w, h));
    }
}

// ------------------------------------------------------------------------------------------ fingerprint text
TEST_F(Cli, WrongLengthHexFingerprint) {
    const std::string out = (dir / "u.safetensors").string();
    expect_failure({"instantiate", "--model", model.string(), "--fingerprint", "abc123", "--out", out}, kFormatError, "abc123",
                   "expected 32 hex digits for 128 bits, got 6");
    expect_failure({"instantiate", "--model", model.string(), "--fingerprint", std::string(33, 'a'), "--out", out}, kFormatError,
                   std::string(33, 'a'), "got 33");
    expect_failure({"generate", "--model", model.string(), "--fingerprint", "0x1234", "--out", (dir / "g").string()}, kFormatError,
                   "1234", "expected 32 hex digits");
    EXPECT_FALSE(fs::exists(out));
}

TEST_F(Cli, NonHexFingerprint) {
    std::string bad(32, '0');
    bad[5] = 'g';
    const std::string out = (dir / "u.safetensors").string();
    expect_failure({"instantiate", "--model", model.string(), "--fingerprint", bad, "--out", out}, kFormatError, bad,
                   "'g' at position 5 is not a hex digit");
    bad[5] = ' ';
    expect_failure({"generate", "--model", model.string(), "--fingerprint", bad, "--out", (dir / "g").string()}, kFormatError, bad,
                   "is not a hex digit");
    EXPECT_FALSE(fs::exists(out));
    // a fingerprint with more bits than the model's: a clear message, not a shape error
    const fs::path tiny4 = dir / "tiny4.safetensors";
    make_model(tiny4, ModelConfig::tiny(), 3);
    expect_failure({"instantiate", "--model", tiny4.string(), "--fingerprint", std::string(32, 'f'), "--out", out}, kFormatError,
                   std::string(32, 'f'), "expected 1 hex digits for 4 bits");
}

// ------------------------------------------------------------------------------------------ registries
TEST_F(Cli, RegistryThatIsNotSqlite) {
    const fs::path fake = dir / "registry.txt";
    spit(fake, "label,fingerprint\nalice,00000000000000000000000000000000\n");
    const std::string fake_before = slurp(fake);
    const std::string img = good_png.string();
    expect_failure({"verify", "--model", model.string(), "--registry", fake.string(), img}, kFormatError, fake.string(),
                   "not an SQLite database");
    expect_failure({"issue", "--registry", fake.string(), "--label", "x"}, kFormatError, fake.string(), "not an SQLite database");
    expect_failure({"instantiate", "--model", model.string(), "--registry", fake.string(), "--label", "alice", "--out",
                    (dir / "x.safetensors").string()},
                   kFormatError, fake.string(), "not an SQLite database");
    EXPECT_TRUE(unchanged(fake, fake_before));
    // An SQLite database of something else.
    const fs::path other = dir / "other.db";
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
        sqlite3_exec(db, "CREATE TABLE photos(id INTEGER); INSERT INTO photos VALUES(1);", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    const std::string other_before = slurp(other);
    expect_failure({"verify", "--model", model.string(), "--registry", other.string(), img}, kFormatError, other.string(),
                   "not an sgf registry");
    EXPECT_TRUE(unchanged(other, other_before));
    // `issue` refuses it too. (Known: Registry's constructor switches the file to WAL mode before it
    // checks the schema, so the foreign database's header bytes change; see registry.hpp.)
    expect_failure({"issue", "--registry", other.string(), "--label", "x"}, kFormatError, other.string(), "not an sgf registry");
    // An empty file is not a registry to verify against (and verify must not turn it into one).
    const fs::path empty = dir / "empty.db";
    spit(empty, "");
    expect_failure({"verify", "--model", model.string(), "--registry", empty.string(), img}, kFormatError, empty.string(),
                   "not an sgf registry");
    EXPECT_EQ(fs::file_size(empty), 0u);
    // A damaged registry (an SQLite header, then garbage) is named as such, without SQL, and left as it is.
    const fs::path damaged = dir / "damaged.db";
    spit(damaged, std::string("SQLite format 3\0", 16) + std::string(300, 'x'));
    const std::string damaged_before = slurp(damaged);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"registry", "list", damaged.string()},
                                                  std::vector<std::string>{"issue", "--registry", damaged.string(), "--label", "x"}}) {
        const Result r = expect_failure(args, kFormatError, damaged.string(), "the registry file is damaged");
        EXPECT_EQ(r.err.find("SELECT"), std::string::npos) << r.err;
    }
    EXPECT_TRUE(unchanged(damaged, damaged_before));
    // A registry to create in a folder that does not exist: the folder is named.
    expect_failure({"issue", "--registry", (dir / "no-folder" / "r.db").string(), "--label", "x"}, kIoError,
                   "the folder " + (dir / "no-folder").string() + " does not exist", "");
    EXPECT_FALSE(fs::exists(dir / "no-folder"));
    // A missing registry.
    const std::string missing = (dir / "missing.db").string();
    expect_failure({"verify", "--model", model.string(), "--registry", missing, img}, kIoError, missing, "registry not found");
    EXPECT_FALSE(fs::exists(missing));
    expect_failure({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "zoe", "--out",
                    (dir / "z.safetensors").string()},
                   kUsage, registry.string(), "no entry labelled 'zoe'");
}

TEST_F(Cli, RegistryAndModelWithDifferentFingerprintLengths) {
    const fs::path tiny4 = dir / "tiny4.safetensors";
    make_model(tiny4, ModelConfig::tiny(), 3);
    expect_failure({"verify", "--model", tiny4.string(), "--registry", registry.string(), good_png.string()}, kUsage,
                   registry.string(), "the registry holds 128-bit fingerprints, but the model uses 4-bit fingerprints");
    expect_failure({"instantiate", "--model", tiny4.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    (dir / "a.safetensors").string()},
                   kUsage, registry.string(), "the registry holds 128-bit fingerprints, but the model uses 4-bit fingerprints");
    expect_failure({"issue", "--registry", registry.string(), "--bits", "4", "--label", "x"}, kUsage, registry.string(),
                   "--bits 4 was given");
    // A registry for 4-bit fingerprints works end to end with the tiny preset.
    const fs::path reg4 = dir / "reg4.db";
    Result r = sgf({"--json", "issue", "--registry", reg4.string(), "--bits", "4", "--label", "a"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["issued"][0]["fingerprint"].get<std::string>().size(), 1u);
    // 4 bits can never reach p <= 1e-6: issuing works, but says that verification cannot attribute
    EXPECT_NE(r.err.find("warning: " + reg4.string()), std::string::npos) << r.err;
    EXPECT_NE(r.parsed().value("warning", "").find("no image can be attributed"), std::string::npos) << r.out;
    r = sgf({"--json", "issue", "--registry", reg4.string(), "--label", "b"});  // an existing registry keeps its length
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(r.parsed()["issued"][0]["fingerprint"].get<std::string>().size(), 1u);
    r = sgf({"--json", "instantiate", "--model", tiny4.string(), "--registry", reg4.string(), "--label", "a", "--out",
             (dir / "a.safetensors").string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    r = sgf({"--json", "verify", "--model", tiny4.string(), "--registry", reg4.string(), good_png.string()});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.out << r.err;  // 4 bits can never reach p <= 1e-6
    EXPECT_EQ(r.parsed()["results"][0]["threshold_bits"], 5);
    EXPECT_NE(r.err.find("no image can be attributed"), std::string::npos) << r.err;
    EXPECT_NE(r.parsed().value("warning", "").find("a 4-bit registry can hold at most 0 fingerprints. Use a larger --alpha"),
              std::string::npos)
        << r.out;
    // demo on such a model says so too, with its own remedy, on stderr and in its JSON
    r = sgf({"--json", "demo", "--model", tiny4.string(), "--users", "1", "--images", "1", "--real", "0", "--open", "0"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_NE(r.err.find("warning: no image can be attributed"), std::string::npos) << r.err;
    EXPECT_NE(r.parsed().value("warning", "").find("Use fewer --users"), std::string::npos) << r.out;
    // a 128-bit registry has no such problem: no warning
    r = sgf({"--json", "issue", "--registry", registry.string(), "--label", "carol"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_FALSE(r.parsed().contains("warning")) << r.out;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

// ------------------------------------------------------------------------------------------ model files
TEST_F(Cli, TruncatedOrCorruptModelFile) {
    const std::string bytes = slurp(model);
    const std::string img = good_png.string();
    auto check_all = [&](const fs::path& bad, const std::string& problem) {
        const std::string b = bad.string();
        expect_failure({"info", b}, kFormatError, b, problem);
        expect_failure({"decode", "--model", b, img}, kFormatError, b, problem);
        expect_failure({"verify", "--model", b, "--registry", registry.string(), img}, kFormatError, b, problem);
        expect_failure({"instantiate", "--model", b, "--fingerprint", std::string(32, '0'), "--out", (dir / "o.safetensors").string()},
                       kFormatError, b, problem);
        expect_failure({"generate", "--model", b, "--fingerprint", std::string(32, '0'), "--out", (dir / "o").string()}, kFormatError,
                       b, problem);
        EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
    };
    const fs::path truncated = dir / "truncated.safetensors";
    spit(truncated, bytes.substr(0, bytes.size() - 1000));
    check_all(truncated, "truncated");
    spit(truncated, bytes.substr(0, 5));
    check_all(truncated, "truncated: 5 bytes");
    const fs::path flipped = dir / "flipped.safetensors";
    std::string f = bytes;
    f[f.size() - 7] = char(f[f.size() - 7] ^ 0x40);
    spit(flipped, f);
    check_all(flipped, "checksum mismatch");
    const fs::path garbage = dir / "garbage.safetensors";
    f = bytes;
    f[8] = '#';  // the JSON header's opening brace
    spit(garbage, f);
    check_all(garbage, "header is not valid JSON");
    // A well-formed file whose tensor was renamed: every command that loads the networks names it.
    const fs::path renamed = dir / "renamed.safetensors";
    f = bytes;
    const auto at = f.find("\"F.b4.out.weight\"");
    ASSERT_NE(at, std::string::npos);
    f[at + 1] = 'X';
    spit(renamed, f);
    const std::string rn = renamed.string();
    expect_failure({"decode", "--model", rn, img}, kFormatError, rn, "tensor 'F.b4.out.weight' is missing");
    expect_failure({"verify", "--model", rn, "--registry", registry.string(), img}, kFormatError, rn,
                   "tensor 'F.b4.out.weight' is missing");
    EXPECT_EQ(sgf({"info", rn}).rc, kOk);  // info lists what the file holds; it does not check it against the config
    const fs::path png_as_model = dir / "image.safetensors";
    fs::copy_file(good_png, png_as_model);
    check_all(png_as_model, "an image (PNG), not a model file");  // it said: "... its first 8 bytes give a header length of ..."
    const std::string missing = (dir / "missing.safetensors").string();
    expect_failure({"decode", "--model", missing, img}, kIoError, missing, "cannot open");
    expect_failure({"info", missing}, kIoError, missing, "cannot open");
    // a baked generator holds no decoder
    const fs::path baked = dir / "baked.safetensors";
    ASSERT_EQ(sgf({"instantiate", "--model", model.string(), "--fingerprint", std::string(32, '5'), "--out", baked.string()}).rc, kOk);
    expect_failure({"verify", "--model", baked.string(), "--registry", registry.string(), img}, kFormatError, baked.string(),
                   "holds a 'baked-generator', expected meta-model");
}

// ------------------------------------------------------------------------------------------ train
// `train` with size options: the preset's sizes are replaced, the model file says so, and a bad
// size, or on --resume a size that differs from the checkpoint's, is a usage error that says why. A few steps of a tiny model on
// Fashion-MNIST (32 px, so the tiny preset's resolution is overridden too).
TEST_F(Cli, TrainWithModelSizeOptions) {
    const fs::path run = dir / "run";
    Result r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "12", "--w-dim", "24", "--embed-layers",
                    "1", "--channel-max", "8", "--batch", "4", "--kimg", "0.008", "--out", run.string(), "--json"});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const fs::path model_file = run / "model.safetensors";
    ASSERT_TRUE(fs::exists(model_file)) << r.out;
    r = sgf({"--json", "info", model_file.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    const json cfg = json::parse(r.parsed()["metadata"]["sgf.config"].get<std::string>());
    EXPECT_EQ(cfg["preset"], "tiny-custom");
    EXPECT_EQ(cfg["resolution"], 32);
    EXPECT_EQ(cfg["fingerprint_bits"], 12);
    EXPECT_EQ(cfg["w_dim"], 24);
    EXPECT_EQ(cfg["embed_layers"], 1);
    EXPECT_EQ(cfg["channel_max"], 8);
    EXPECT_EQ(cfg["z_dim"], ModelConfig::tiny().z_dim);  // not given: the preset's
    EXPECT_EQ(r.parsed()["tensor_list"]["F.b4.out.weight"]["shape"][0], ModelConfig::tiny().z_dim + 12);

    // --resume with a size that differs from the checkpoint's: refused, and the run is untouched
    const std::string ckpt_before = slurp(run / "checkpoint.safetensors");
    r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "64", "--out", run.string(), "--resume", "--kimg",
             "0.016"});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("whose fingerprint_bits is 12, not 64"), std::string::npos) << r.err;
    EXPECT_TRUE(unchanged(run / "checkpoint.safetensors", ckpt_before));
    // the original command plus --resume continues
    r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "12", "--w-dim", "24", "--embed-layers", "1",
             "--channel-max", "8", "--batch", "4", "--kimg", "0.016", "--out", run.string(), "--resume", "--json"});
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
    r = sgf({"train", "--preset", "tiny", "--resolution", "24", "--out", (dir / "bad").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("resolution must be a power of two >= 8, got 24"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainRefusesUnusableOptionsBeforeItReadsOrWritesAnything) {
    // --checkpoint-every 0 was a division by zero (SIGFPE); the others trained with a negative or
    // zero learning rate, a negative R1 gamma, ... Each is exit 2 naming the option; no folder.
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--checkpoint-every", "0"}, "--checkpoint-every must be >= 1 step, got 0"},
        {{"--grid-every", "-1"}, "--grid-every must be >= 1 step, got -1"},
        {{"--kimg", "nan"}, "--kimg must be finite and in 0..1e9"},
        {{"--lr", "0"}, "learning rate must be finite and > 0, got 0"},
        {{"--lr", "-1"}, "learning rate must be finite and > 0, got -1"},
        {{"--lr", "nan"}, "learning rate must be finite and > 0"},
        {{"--r1-gamma", "-1"}, "R1 gamma must be finite and >= 0, got -1"},
        {{"--r1-gamma", "inf"}, "R1 gamma must be finite and >= 0"},
        {{"--consistency-rampup", "-5"}, "consistency warm-up must be finite and >= 0 kimg, got -5"},
        {{"--immunise-strength", "-1"}, "immunise: strength must be >= 0, got -1"},
        {{"--immunise-rampup", "inf"}, "immunise: rampup_kimg must be >= 0"},
        {{"--batch", "0"}, "batch must be in 1..65536, got 0"},
        {{"--batch", "2000000000"}, "batch must be in 1..65536, got 2000000000"},  // was std::bad_alloc (exit 1)
        {{"--kimg", "1e30"}, "--kimg must be finite and in 0..1e9"},  // was 0 steps ("done") and an untrained model
        // CLI11 saturated 10^23 to 2^64-1 and wrapped -1; its range for weights was a 309-digit number
        {{"--seed", "99999999999999999999999"}, "--seed: '99999999999999999999999' is not a seed: give a decimal integer from 0 to 18446744073709551615"},
        {{"--seed", "18446744073709551616"}, "is not a seed"},
        {{"--seed", "-1"}, "--seed: '-1' is not a seed"},
        {{"--seed", "0x10"}, "is not a seed"},
        {{"--w-latent", "-1"}, "--w-latent: must be a finite number >= 0, got '-1'"},
        {{"--w-fingerprint", "inf"}, "--w-fingerprint: must be a finite number >= 0, got 'inf'"},
    };
    for (const auto& [args, message] : cases) {
        const fs::path out = dir / "never";
        std::vector<std::string> argv = {"train", "--preset", "tiny", "--resolution", "32", "--out", out.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        const Result r = sgf(argv);
        EXPECT_EQ(r.rc, kUsage) << args[0] << " " << args[1] << ": " << r.out << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << args[0] << " " << args[1] << ": " << r.err;
        EXPECT_FALSE(fs::exists(out)) << args[0] << " " << args[1];
    }
    // was exit 3 ("no checkpoint to resume from"): the conflict is checked before anything is read
    const Result r = sgf({"train", "--out", (dir / "never").string(), "--resume", "--init-from", "x.safetensors"});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("give one of them"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainTakesAnImmunisationRecipe) {
    // --immunise-recipe sets every key of ImmuniseConfig (before, only enabled/strength/rampup could
    // be set from the command line); --immunise-strength given as well overrides the recipe's strength
    const fs::path run = dir / "recipe";
    Result r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "12", "--batch", "4", "--kimg", "0.008",
                    "--immunise-recipe", R"({"p_crop": 0.25, "noise_std": 0.2, "jpeg_quality_min": 70, "strength": 2})",
                    "--immunise-strength", "0.5", "--out", run.string()});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const json tc = json::parse(io::SafetensorsFile::load(run / "model.safetensors").metadata.at("sgf.train_config"));
    ASSERT_TRUE(tc.contains("immunise")) << tc.dump();
    const json& im = tc["immunise"];
    EXPECT_EQ(im["enabled"], true);
    EXPECT_EQ(im["p_crop"], 0.25);
    EXPECT_EQ(im["noise_std"], 0.2);
    EXPECT_EQ(im["jpeg_quality_min"], 70);
    EXPECT_EQ(im["strength"], 0.5);
    EXPECT_EQ(im["p_blur"], ImmuniseConfig{}.p_blur);  // a key the recipe leaves out keeps its default
    // recipes that cannot be used: exit 2 naming the problem, nothing written
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"not json", "not valid JSON"},
        {"[0.25]", "must be a JSON object"},
        {R"({"p_crap": 0.25})", "unknown key 'p_crap'"},
        {R"({"p_crop": "0.25"})", "key 'p_crop' has a value of the wrong type"},
        {R"({"p_crop": 1.5})", "probabilities must be in [0, 1]"},
        {R"({"jpeg_quality_min": 4294967346})", "jpeg_quality_min must be 1..100"},  // 2^32 + 50 wrapped to 50
        {R"({"jpeg_quality_min": 0})", "jpeg_quality_min must be 1..100"},
        {R"({"enabled": false})", "contradicts giving a recipe"},
    };
    for (const auto& [recipe, message] : bad) {
        const fs::path out = dir / "never";
        r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--immunise-recipe", recipe, "--out", out.string()});
        EXPECT_EQ(r.rc, kUsage) << recipe << ": " << r.out << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << recipe << ": " << r.err;
        EXPECT_FALSE(fs::exists(out)) << recipe;
    }
}

TEST_F(Cli, TrainInitFromAReleaseFile) {
    const fs::path first = dir / "first";
    Result r = train_tiny(first);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const fs::path model_file = first / "model.safetensors";
    // the sizes come from the file: a size option is refused, and so is --resume
    r = sgf({"train", "--init-from", model_file.string(), "--bits", "64", "--out", (dir / "x").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("--init-from takes the model sizes from"), std::string::npos) << r.err;
    r = sgf({"train", "--init-from", model_file.string(), "--resume", "--out", first.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("give one of them"), std::string::npos) << r.err;
    r = sgf({"train", "--init-from", (dir / "missing.safetensors").string(), "--out", (dir / "y").string()});
    EXPECT_NE(r.rc, kOk);
    EXPECT_NE((r.out + r.err).find("missing.safetensors"), std::string::npos) << r.out << r.err;

    const fs::path second = dir / "second";
    r = sgf({"train", "--init-from", model_file.string(), "--batch", "4", "--kimg", "0.008", "--out", second.string()});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_NE(r.out.find("weights from"), std::string::npos) << r.out;
    r = sgf({"--json", "info", (second / "model.safetensors").string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    const json cfg = json::parse(r.parsed()["metadata"]["sgf.config"].get<std::string>());
    EXPECT_EQ(cfg["fingerprint_bits"], 12);
    EXPECT_EQ(cfg["preset"], "tiny-custom");
}

TEST_F(Cli, TrainDecoderOnlyChangesTheDecoderAlone) {
    const fs::path first = dir / "first";
    Result r = train_tiny(first);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const fs::path tuned = dir / "tuned";
    r = sgf({"train", "--init-from", (first / "model.safetensors").string(), "--decoder-only", "--batch", "4", "--kimg",
             "0.008", "--out", tuned.string()});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const auto a = io::SafetensorsFile::load(first / "model.safetensors");
    const auto b = io::SafetensorsFile::load(tuned / "model.safetensors");
    ASSERT_EQ(a.size(), b.size());
    int decoder_changed = 0, decoder_tensors = 0;
    for (const auto& [name, t] : a.tensors()) {
        ASSERT_TRUE(b.has(name)) << name;
        const bool same = t.bytes == b.tensors().at(name).bytes;
        if (name.rfind("F.", 0) == 0) {
            ++decoder_tensors;
            decoder_changed += !same;
        } else {
            EXPECT_TRUE(same) << name << " changed: decoder-only fine-tuning must leave G and D as they are";
        }
    }
    EXPECT_GT(decoder_tensors, 0);
    EXPECT_EQ(decoder_changed, decoder_tensors);
    EXPECT_NE(b.metadata.at("sgf.train_config").find("\"decoder_only\":true"), std::string::npos)
        << b.metadata.at("sgf.train_config");
    // --resume keeps the checkpoint's mode: asking a joint run to continue decoder-only is refused
    r = sgf({"train", "--resume", "--decoder-only", "--kimg", "0.016", "--out", first.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("not a decoder-only one"), std::string::npos) << r.err;
    r = sgf({"train", "--resume", "--kimg", "0.016", "--out", tuned.string()});  // continues decoder-only
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const auto c = io::SafetensorsFile::load(tuned / "model.safetensors");
    for (const auto& [name, t] : a.tensors()) {
        if (name.rfind("F.", 0) == 0) continue;
        EXPECT_EQ(t.bytes, c.tensors().at(name).bytes) << name;
    }
    // a baseline without fingerprint losses has nothing to fine-tune
    r = sgf({"train", "--init-from", (first / "model.safetensors").string(), "--decoder-only", "--no-fingerprint",
             "--out", (dir / "bad").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("decoder-only"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainClampDecoderInputIsKeptAndCannotBeSwitchedOnByResume) {
    const fs::path plain = dir / "plain";
    Result r = train_tiny(plain);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    // --resume keeps the checkpoint's objective: switching the clamp on is refused, naming the way to do it
    r = sgf({"train", "--resume", "--clamp-decoder-input", "--kimg", "0.016", "--out", plain.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("without --clamp-decoder-input"), std::string::npos) << r.err;
    const fs::path clamped = dir / "clamped";
    r = sgf({"train", "--init-from", (plain / "model.safetensors").string(), "--clamp-decoder-input", "--batch", "4",
             "--kimg", "0.008", "--out", clamped.string()});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const auto f = io::SafetensorsFile::load(clamped / "model.safetensors");
    EXPECT_NE(f.metadata.at("sgf.train_config").find("\"clamp_decoder_input\":true"), std::string::npos)
        << f.metadata.at("sgf.train_config");
    EXPECT_EQ(io::SafetensorsFile::load(plain / "model.safetensors").metadata.at("sgf.train_config").find("clamp"),
              std::string::npos);
    r = sgf({"train", "--resume", "--kimg", "0.016", "--out", clamped.string()});  // continues clamped
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_NE(io::SafetensorsFile::load(clamped / "model.safetensors").metadata.at("sgf.train_config").find("\"clamp_decoder_input\":true"),
              std::string::npos);
    // no decoder is trained without the fingerprint losses
    r = sgf({"train", "--preset", "tiny", "--clamp-decoder-input", "--no-fingerprint", "--out", (dir / "bad").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("--no-fingerprint"), std::string::npos) << r.err;
}

TEST_F(Cli, TrainXFlipIsRecordedKeptOnResumeAndCannotBeSwitchedOnByResume) {
    const fs::path plain = dir / "plain-noflip";
    Result r = train_tiny(plain);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    r = sgf({"train", "--resume", "--x-flip", "--kimg", "0.016", "--out", plain.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("without --x-flip"), std::string::npos) << r.err;
    const fs::path mirrored = dir / "mirrored";
    r = sgf({"train", "--init-from", (plain / "model.safetensors").string(), "--x-flip", "--batch", "4", "--kimg", "0.008",
             "--out", mirrored.string()});
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    auto config_of = [](const fs::path& run) {
        return io::SafetensorsFile::load(run / "model.safetensors").metadata.at("sgf.train_config");
    };
    EXPECT_NE(config_of(mirrored).find("\"x_flip\":true"), std::string::npos) << config_of(mirrored);
    EXPECT_EQ(config_of(plain).find("x_flip"), std::string::npos) << config_of(plain);
    r = sgf({"train", "--resume", "--kimg", "0.016", "--out", mirrored.string()});  // continues mirrored
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_NE(config_of(mirrored).find("\"x_flip\":true"), std::string::npos) << config_of(mirrored);
    r = sgf({"train", "--init-from", (plain / "model.safetensors").string(), "--x-flip", "--decoder-only", "--out",
             (dir / "bad-flip").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("--x-flip"), std::string::npos) << r.err;
}

// ------------------------------------------------------------------------------------------ no lost data, nothing left behind
TEST_F(Cli, InstantiateNeverReplacesItsInputsOrOtherFiles) {
    const std::string model_before = slurp(model);
    const auto bake = [&](const fs::path& out) {
        return sgf({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    out.string()});
    };
    expect_failure({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    registry.string()},
                   kUsage, registry.string(), "also an input");
    expect_failure({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    model.string()},
                   kUsage, model.string(), "also an input");
    EXPECT_TRUE(unchanged(model, model_before));
    const fs::path notes = dir / "notes.txt";
    spit(notes, "precious");
    expect_failure({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    notes.string()},
                   kUsage, notes.string(), "not a baked generator");
    EXPECT_EQ(slurp(notes), "precious");
    // a baked generator may be replaced (re-running the same command)
    const fs::path alice = dir / "alice.safetensors";
    ASSERT_EQ(bake(alice).rc, kOk);
    const Result again = bake(alice);
    EXPECT_EQ(again.rc, kOk) << again.err;
    // a FIFO is neither read (it would block) nor replaced
    const fs::path fifo = dir / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    const Result f = bake(fifo);
    EXPECT_EQ(f.rc, kUsage) << f.err;
    EXPECT_NE(f.err.find("not a regular file"), std::string::npos) << f.err;
    // a folder as --out: a usage error (exit 2) for every command writing one file, not an I/O error
    fs::create_directory(dir / "a-folder");
    expect_failure({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                    (dir / "a-folder").string()},
                   kUsage, "a-folder", "is a folder; give a file name");
    expect_failure({"export-decoder", "--model", model.string(), "--out", (dir / "a-folder").string()}, kUsage, "a-folder",
                   "is a folder; give a file name");
    expect_failure({"registry", "export", registry.string(), "--out", (dir / "a-folder").string()}, kUsage, "a-folder",
                   "is a folder; give a file name");
    // --fingerprint and --registry/--label are alternatives
    const Result both = sgf({"instantiate", "--model", model.string(), "--fingerprint", std::string(32, 'a'), "--registry",
                             registry.string(), "--label", "alice", "--out", (dir / "mix.safetensors").string()});
    EXPECT_EQ(both.rc, kUsage) << both.err;
    EXPECT_FALSE(fs::exists(dir / "mix.safetensors"));
}

TEST_F(Cli, IssueIssuesAllLabelsOrNone) {
    auto labels_in = [](const fs::path& p) {
        Registry reg(p, RegistryOptions{.create = false, .read_only = true});
        std::vector<std::string> out;
        for (const auto& e : reg.all()) out.push_back(e.label);
        return out;
    };
    const std::vector<std::string> before = labels_in(registry);
    Result r = sgf({"issue", "--registry", registry.string(), "--label", "new1", "--label", "alice"});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("'alice'"), std::string::npos) << r.err;
    EXPECT_EQ(labels_in(registry), before) << "new1 must not be issued when alice fails";
    r = sgf({"issue", "--registry", registry.string(), "--label", "x", "--label", "x"});
    EXPECT_EQ(r.rc, kUsage);
    EXPECT_NE(r.err.find("given twice"), std::string::npos) << r.err;
    EXPECT_EQ(labels_in(registry), before);
    // a new registry is not created for arguments that cannot work
    const fs::path fresh = dir / "fresh.db";
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"issue", "--registry", fresh.string()},
             {"issue", "--registry", fresh.string(), "--count", "0"},
             {"issue", "--registry", fresh.string(), "--count", "-3"},
             {"issue", "--registry", fresh.string(), "--bits", "0", "--label", "a"},
             {"issue", "--registry", fresh.string(), "--bits", "100000", "--label", "a"},
             {"issue", "--registry", fresh.string(), "--min-distance", "129", "--label", "a"},
             {"issue", "--registry", fresh.string(), "--label", "a", "--label", "a"}}) {
        r = sgf(args);
        EXPECT_EQ(r.rc, kUsage) << fmt::format("{}", fmt::join(args, " ")) << "\n" << r.err;
        EXPECT_FALSE(fs::exists(fresh)) << fmt::format("{}", fmt::join(args, " "));
    }
    // a registry that is full for its minimum distance: 4 bits at distance 4 hold two codes (a code
    // and its complement); asking for three issues none, and says why
    const fs::path small = dir / "small.db";
    r = sgf({"issue", "--registry", small.string(), "--bits", "4", "--min-distance", "4", "--count", "3"});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("full"), std::string::npos) << r.err;
    // the registry this failed command created is gone with it ("a command that stops with an error
    // has created nothing")
    for (const char* suffix : {"", "-wal", "-shm"}) EXPECT_FALSE(fs::exists(small.string() + suffix)) << suffix;
    r = sgf({"issue", "--registry", small.string(), "--bits", "4", "--min-distance", "4", "--count", "2"});
    EXPECT_EQ(r.rc, kOk) << r.err;
    EXPECT_EQ(labels_in(small).size(), 2u);
    r = sgf({"issue", "--registry", small.string(), "--min-distance", "2", "--label", "z"});  // not the registry's value
    EXPECT_EQ(r.rc, kUsage) << r.err;
    // an existing registry's minimum distance is checked against its own bits, not the default 128
    const fs::path wide = dir / "wide.db";
    r = sgf({"issue", "--registry", wide.string(), "--bits", "256", "--min-distance", "130", "--label", "a"});
    EXPECT_EQ(r.rc, kOk) << r.err;
    r = sgf({"issue", "--registry", wide.string(), "--min-distance", "130", "--label", "b"});
    EXPECT_EQ(r.rc, kOk) << r.err;
    // labels that cannot be stored are refused before a new registry is created
    for (const std::string& bad : {std::string(), std::string(300, 'x')}) {
        r = sgf({"issue", "--registry", fresh.string(), "--label", bad});
        EXPECT_EQ(r.rc, kUsage) << r.err;
        EXPECT_FALSE(fs::exists(fresh));
    }
}

TEST_F(Cli, CorruptRegistryMetadataIsAFormatError) {
    const fs::path reg2 = dir / "reg2.db";
    fs::copy_file(registry, reg2);
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(reg2.c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "UPDATE sgf_registry_meta SET value='abc' WHERE key='bits'", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
    }
    const std::string img = good_png.string();
    const Result r = sgf({"verify", "--model", model.string(), "--registry", reg2.string(), img});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find(reg2.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'bits' = 'abc'"), std::string::npos) << r.err;
}

TEST_F(Cli, FailingCommandsLeaveNoFoldersBehind) {
    // an output folder that cannot be made: an IoError naming it, not an internal error
    Result r = sgf({"generate", "--model", model.string(), "--fingerprint", std::string(32, 'a'), "--count", "1", "--out",
                    good_png.string()});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_NE(r.err.find("is not a folder"), std::string::npos) << r.err;
    r = sgf({"generate", "--model", model.string(), "--fingerprint", std::string(32, 'a'), "--count", "1", "--out",
             (good_png / "sub").string()});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_NE(r.err.find("cannot create folder"), std::string::npos) << r.err;
    // bad arguments: the folder is not created
    r = sgf({"generate", "--model", model.string(), "--count", "1", "--out", (dir / "gen").string()});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_FALSE(fs::exists(dir / "gen"));
    r = sgf({"train", "--resume", "--out", (dir / "never-trained").string()});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_FALSE(fs::exists(dir / "never-trained"));
    r = sgf({"train", "--init-from", (dir / "missing.safetensors").string(), "--out", (dir / "t2").string()});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_FALSE(fs::exists(dir / "t2"));
    // demo with a missing model: nothing printed on stdout, no folder
    r = sgf({"demo", "--model", (dir / "missing.safetensors").string(), "--keep", (dir / "kept").string()});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(fs::exists(dir / "kept"));
}

TEST_F(Cli, InfoRefusesMalformedConfigJson) {
    const fs::path bad = dir / "badcfg.safetensors";
    io::SafetensorsFile f;
    f.put<float>("x", {1}, std::vector<float>{1.0f});
    f.metadata["sgf.kind"] = "meta-model";
    f.metadata["sgf.config"] = "{bad";
    f.save(bad);
    for (const bool as_json : {false, true}) {
        std::vector<std::string> args{"info", bad.string()};
        if (as_json) args.insert(args.begin(), "--json");
        const Result r = sgf(args);
        EXPECT_EQ(r.rc, kFormatError) << r.out << r.err;  // text and JSON alike
        EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
    }
    // the text form shows the training configuration too
    const fs::path trained = dir / "t.safetensors";
    {
        auto g = io::SafetensorsFile::load(model);
        g.metadata["sgf.train_config"] = R"({"batch": 16})";
        g.save(trained);
    }
    const Result t = sgf({"info", trained.string()});
    EXPECT_EQ(t.rc, kOk) << t.err;
    EXPECT_NE(t.out.find("train_config: {\"batch\":16}"), std::string::npos) << t.out;
}

TEST_F(Cli, LabelsAndFileNamesThatAreNotUtf8) {
    // Non-UTF-8 bytes made --json output throw (exit 1, "internal error") after the work was done: a
    // label was issued although issue failed. Labels are now printable UTF-8, refused up front; file
    // names (not ours to choose) are written into the JSON with U+FFFD in place of a bad byte.
    auto printable = [](const std::string& t) {
        std::string o;
        for (const unsigned char ch : t) o += ch >= 0x20 && ch < 0x7f ? std::string(1, char(ch)) : fmt::format("\\x{:02x}", ch);
        return o;
    };
    const std::string before = slurp(registry);
    for (const std::string& bad : {std::string("eve\xff"), std::string("a\tb"), std::string("x\ny"), std::string("\x1b[2J"),
                                   std::string("\xc0\xaf"), std::string("\xed\xa0\x80")}) {
        for (const bool as_json : {false, true}) {
            std::vector<std::string> args = {"issue", "--registry", registry.string(), "--label", bad};
            if (as_json) args.insert(args.begin(), "--json");
            const Result r = sgf(args);
            EXPECT_EQ(r.rc, kUsage) << printable(bad) << "\n" << r.err;
            EXPECT_TRUE(r.out.empty()) << r.out;
        }
        EXPECT_TRUE(unchanged(registry, before)) << printable(bad);
    }
    Result r = sgf({"issue", "--registry", registry.string(), "--label", "caf\xc3\xa9 \xe2\x82\xac"});  // valid UTF-8 is fine
    EXPECT_EQ(r.rc, kOk) << r.err;
    const fs::path odd = dir / "a\xff.png";
    fs::copy_file(good_png, odd);
    r = sgf({"--json", "decode", "--model", model.string(), odd.string()});
    EXPECT_EQ(r.rc, kOk) << r.err;
    const json j = r.parsed();
    ASSERT_TRUE(j.contains("results")) << r.out;
    EXPECT_NE(j["results"][0]["image"].get<std::string>().find("a\xef\xbf\xbd.png"), std::string::npos) << r.out;
}

TEST_F(Cli, AResultThatCannotBeWrittenIsAnError) {
    // stdout on a full disk: issue exited 0 and the fingerprint's printout was lost
    if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
    const test::CommandResult r =
        test::run_command_to(SGF_CLI_PATH, {"--threads", "1", "info", model.string()}, dir, "/dev/full");
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_NE(r.err.find("standard output"), std::string::npos) << r.err;
}

// Session 24's adversarial review of the CLI (each block below was a reproduced defect).
void exec_sql(const fs::path& db_path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
    sqlite3_close(db);
}

TEST_F(Cli, AFailedPrintIssuesNothingAndAClosedPipeIsExit3) {
    if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
    // issue committed its fingerprints and then failed to print them (exit 3): a retry said "already
    // issued" and the fingerprint was never shown. The print is now part of the transaction.
    const std::string before = slurp(registry);
    test::CommandResult r = test::run_command_to(SGF_CLI_PATH, {"--threads", "1", "issue", "--registry", registry.string(), "--label", "zed"},
                                                 dir, "/dev/full");
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_NE(r.err.find("standard output"), std::string::npos) << r.err;
    EXPECT_TRUE(unchanged(registry, before)) << "zed was issued although its fingerprint could not be printed";
    const fs::path fresh = dir / "fresh.db";  // and a registry that only this failed issue created is gone again
    r = test::run_command_to(SGF_CLI_PATH, {"--threads", "1", "issue", "--registry", fresh.string(), "--label", "zed"}, dir, "/dev/full");
    EXPECT_EQ(r.rc, kIoError) << r.err;
    for (const char* suffix : {"", "-wal", "-shm"}) EXPECT_FALSE(fs::exists(fresh.string() + suffix)) << suffix;
    Result ok = sgf({"issue", "--registry", registry.string(), "--label", "zed"});
    EXPECT_EQ(ok.rc, kOk) << ok.err;

    // a closed pipe (`sgf ... | head -1` after head exits) killed sgf with SIGPIPE (status 141)
    const fs::path status = dir / "status.txt";
    const std::string cmd = fmt::format("{{ sleep 1; {} --threads 1 registry list {} 2>/dev/null; echo $? > {}; }} | true",
                                        test::shell_quote(SGF_CLI_PATH), test::shell_quote(registry.string()),
                                        test::shell_quote(status.string()));
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_EQ(slurp(status), fmt::format("{}\n", int(kIoError)));
    // eval printed with std::cout and never looked: with SIGPIPE ignored that became exit 0
    const std::string cmd2 = fmt::format("{{ sleep 1; {} --threads 1 eval --model {} --images 2 2>/dev/null; echo $? > {}; }} | true",
                                         test::shell_quote(SGF_CLI_PATH), test::shell_quote(model.string()),
                                         test::shell_quote(status.string()));
    ASSERT_EQ(std::system(cmd2.c_str()), 0);
    EXPECT_EQ(slurp(status), fmt::format("{}\n", int(kIoError)));
}

TEST_F(Cli, AnEmptyRegistryFileStaysEmptyWhenIssueOrImportFails) {
    // "Creates the registry when the file is missing (or empty)": a failing issue or import into an
    // empty file left a registry behind whose bits and minimum distance were fixed by the failed call.
    const fs::path empty = dir / "empty.db";
    std::ofstream(empty).close();
    Result r = sgf({"issue", "--registry", empty.string(), "--bits", "1", "--min-distance", "0", "--count", "3"});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_TRUE(fs::exists(empty));
    EXPECT_EQ(fs::file_size(empty), 0u);
    for (const char* suffix : {"-wal", "-shm"}) EXPECT_FALSE(fs::exists(empty.string() + suffix)) << suffix;
    spit(dir / "bad.csv", "label,fingerprint\na,zz\n");
    r = sgf({"registry", "import", empty.string(), (dir / "bad.csv").string(), "--bits", "16"});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_EQ(fs::file_size(empty), 0u);
    r = sgf({"issue", "--registry", empty.string(), "--bits", "64", "--label", "x"});  // the empty file is still free to become anything
    EXPECT_EQ(r.rc, kOk) << r.err;
}

TEST_F(Cli, RegistryExportRefusesTextJsonCannotCarryAndReplacesOnlyEarlierExports) {
    const fs::path reg8 = dir / "bad8.db";
    fs::copy_file(registry, reg8);
    exec_sql(reg8, "UPDATE fingerprints SET metadata = CAST(x'c3' AS TEXT) WHERE label = 'bob'");
    Result r = sgf({"registry", "export", reg8.string()});  // was exit 1: "internal error: [json.exception.type_error.316]"
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find(reg8.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not valid UTF-8"), std::string::npos) << r.err;
    EXPECT_EQ(sgf({"registry", "export", reg8.string(), "--format", "csv"}).rc, kOk);  // CSV copies the bytes

    // --out replaced any file whose first character was '[' (an INI file) or that began "label,fingerprint"
    for (const std::string& other : {std::string("[core]\n\turl = git@example.com:me/private.git\n"),
                                     std::string("label,fingerprint is what I wrote down\n"), std::string("[1, 2, 3]\n"),
                                     std::string("[{\"name\": 1}]")}) {
        const fs::path f = dir / "notes.json";
        spit(f, other);
        r = sgf({"registry", "export", registry.string(), "--out", f.string()});
        EXPECT_EQ(r.rc, kUsage) << other << r.err;
        EXPECT_EQ(slurp(f), other);
    }
    for (const char* fmt_name : {"json", "csv"}) {  // an earlier export (also an empty one) is replaced
        const fs::path f = dir / fmt::format("export.{}", fmt_name);
        EXPECT_EQ(sgf({"registry", "export", registry.string(), "--out", f.string()}).rc, kOk);
        EXPECT_EQ(sgf({"registry", "export", registry.string(), "--out", f.string()}).rc, kOk) << fmt_name;
    }
    // an earlier export of any size (it read at most 64 KiB of it: exit 4, "file is ... bytes, above the limit")
    {
        const fs::path f = dir / "export.json";
        std::ofstream(f, std::ios::app) << std::string(70000, ' ') << "\n";
        r = sgf({"registry", "export", registry.string(), "--out", f.string()});
        EXPECT_EQ(r.rc, kOk) << r.err;
        const fs::path notes = dir / "long-notes.txt";
        const std::string text(100000, 'x');
        spit(notes, text);
        r = sgf({"registry", "export", registry.string(), "--out", notes.string()});
        EXPECT_EQ(r.rc, kUsage) << r.err;
        EXPECT_NE(r.err.find("is not an earlier export"), std::string::npos) << r.err;
        EXPECT_EQ(slurp(notes), text);
    }
    spit(dir / "empty-export.json", "[]\n");
    EXPECT_EQ(sgf({"registry", "export", registry.string(), "--out", (dir / "empty-export.json").string()}).rc, kOk);
    EXPECT_NE(slurp(dir / "empty-export.json").find("alice"), std::string::npos);

    // a stored minimum distance above the bits was accepted (and made every issue fail after 10,000 draws)
    const fs::path reg3 = dir / "md.db";
    fs::copy_file(registry, reg3);
    exec_sql(reg3, "UPDATE sgf_registry_meta SET value = '999' WHERE key = 'min_distance'");
    r = sgf({"registry", "list", reg3.string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("'min_distance' = '999' is not an integer in 0..128"), std::string::npos) << r.err;
}

TEST_F(Cli, FileNamesAndForeignLabelsCannotForgeResultLines) {
    // a TAB and a newline in a file name wrote a line of their own ("a.png<TAB>attributed<TAB>bob...")
    const fs::path up = dir / "up";
    fs::create_directories(up);
    const std::string forged = "a.png\tattributed\tbob\t128 bits\nz.png";
    fs::copy_file(good_png, up / forged);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"decode", "--model", model.string(), up.string()},
          std::vector<std::string>{"verify", "--model", model.string(), "--registry", registry.string(), up.string()},
          std::vector<std::string>{"verify", "--model", model.string(), "--registry", registry.string(), "--outcome-only", up.string()},
          std::vector<std::string>{"verify", "--model", model.string(), "--registry", registry.string(), "--label", "alice", up.string()}}) {
        const Result r = sgf(args);
        EXPECT_NE(r.out.find("a.png\\x09attributed\\x09bob\\x09128 bits\\x0az.png"), std::string::npos) << args[0] << "\n" << r.out;
        EXPECT_EQ(r.out.find("\nz.png"), std::string::npos) << r.out;
    }
    // a literal backslash, a C1 control (U+009B, CSI to an 8-bit terminal) and a stray byte are
    // escaped too, so no two file names print alike; other UTF-8 passes
    const fs::path up2 = dir / "up2";
    fs::create_directories(up2);
    for (const std::string name : {"b\\x09c.png", "csi\xc2\x9b.png", "caf\xc3\xa9.png", "latin\xe9.png"})
        fs::copy_file(good_png, up2 / name);
    const Result r2 = sgf({"decode", "--model", model.string(), up2.string()});
    for (const std::string shown : {"b\\\\x09c.png", "csi\\xc2\\x9b.png", "caf\xc3\xa9.png", "latin\\xe9.png"})
        EXPECT_NE(r2.out.find(shown), std::string::npos) << shown << "\n" << r2.out;
    EXPECT_EQ(r2.out.find("\xc2\x9b"), std::string::npos) << r2.out;
    // the error line on stderr: a missing model named with an escape sequence and a newline
    const Result r3 = sgf({"info", (dir / "red\x1b[31m\nerror: forged.safetensors").string()});
    EXPECT_EQ(r3.rc, kIoError) << r3.err;
    EXPECT_EQ(r3.err.find('\x1b'), std::string::npos) << r3.err;
    EXPECT_NE(r3.err.find("red\\x1b[31m\\x0aerror: forged.safetensors"), std::string::npos) << r3.err;
    EXPECT_EQ(std::count(r3.err.begin(), r3.err.end(), '\n'), 1) << r3.err;
    // the default verify line printed a foreign registry's labels raw (escape sequences, newlines)
    const fs::path reg7 = dir / "m7.db";
    fs::copy_file(registry, reg7);
    exec_sql(reg7, "UPDATE fingerprints SET label = char(27) || '[31mEVIL' || char(10) || 'x' WHERE label = 'bob'");
    exec_sql(reg7, "UPDATE fingerprints SET label = char(27) || '[32mGOOD' || char(10) || 'y' WHERE label = 'alice'");
    Result r = sgf({"verify", "--model", model.string(), "--registry", reg7.string(), good_png.string()});
    EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\\x1b["), std::string::npos) << r.out;
    // a --files-from line with a NUL byte decoded the file named by its first part
    const char list[] = "good.png\0/nonexistent/evil.png\n";
    spit(dir / "nul.txt", std::string(list, sizeof list - 1));
    r = sgf({"verify", "--model", model.string(), "--registry", registry.string(), "--files-from", (dir / "nul.txt").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("line 1 holds a NUL byte"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, VerifyLabelIsNeverEmptyAndWarnsWhenNothingCanMatch) {
    // --label "" silently ran the registry-wide test
    Result r = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), "--label", "", good_png.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("never empty"), std::string::npos) << r.err;
    // --alpha 1e-40 needs 129 of 128 bits: say so, as the registry-wide test does
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--alpha", "1e-40",
             good_png.string()});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.err;
    EXPECT_NE(r.err.find("no image can match"), std::string::npos) << r.err;
    EXPECT_NE(r.parsed().value("warning", std::string()).find("no image can match"), std::string::npos) << r.out;
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), "--label", "alice", good_png.string()});
    EXPECT_FALSE(r.parsed().contains("warning")) << r.out;
    // the registry-wide test at an alpha whose alpha / N is below the smallest double: it was exit 2
    // ("alpha must be in (0, 1), got 0"), it is the same warning and not_fingerprinted as at 1e-40
    r = sgf({"--json", "verify", "--model", model.string(), "--registry", registry.string(), "--alpha", "5e-324", good_png.string()});
    EXPECT_EQ(r.rc, kNotFingerprinted) << r.err;
    EXPECT_NE(r.parsed().value("warning", std::string()).find("no image can be attributed"), std::string::npos) << r.out;
}

TEST_F(Cli, GenerateRemovesEveryFolderItMadeWhenAWriteFails) {
    const fs::path baked = dir / "alice.safetensors";
    ASSERT_EQ(sgf({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                   baked.string()}).rc,
              kOk);
    // a file-size limit of 0 bytes (SIGXFSZ ignored, so the write fails with EFBIG): the first PNG
    // cannot be written, after generate has made n1/n2/n3
    const fs::path out = dir / "n1" / "n2" / "n3";
    EXPECT_EQ(generate_under_file_size_limit(0, {"--model", baked.string(), "--count", "3", "--grid", "--out", out.string()}), kIoError);
    EXPECT_FALSE(fs::exists(dir / "n1")) << "generate left folders it made behind";
}

TEST_F(Cli, GenerateChecksItsFileNamesFirstAndWritesLargeCountsInParts) {
    const fs::path baked = dir / "alice.safetensors";
    ASSERT_EQ(sgf({"instantiate", "--model", model.string(), "--registry", registry.string(), "--label", "alice", "--out",
                   baked.string()}).rc,
              kOk);
    // a name that exists is refused before the model is read (it was refused after every image was made)
    fs::create_directories(dir / "taken");
    spit(dir / "taken" / "01099.png", "mine");
    Result r = sgf({"generate", "--model", (dir / "missing.safetensors").string(), "--count", "1100", "--out", (dir / "taken").string()});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("01099.png exists"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(dir / "taken" / "01099.png"), "mine");
    // a grid taller than a PNG can be is refused before any image is made (make_grid refused it at the end)
    r = sgf({"generate", "--model", baked.string(), "--count", "40000", "--grid", "--out", (dir / "tall").string()});  // 16 px
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("--grid takes at most"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "tall"));
    // 1,100 images are made and written 1,024 at a time; image 1,050 is the one docs/cli.md describes:
    // z from Philox(seed, stream 1000 + 1024), the first index of its batch of 32, and that batch's noise seed
    r = sgf({"generate", "--model", baked.string(), "--count", "1100", "--seed", "3", "--out", (dir / "many").string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_TRUE(fs::exists(dir / "many" / "01099.png"));
    EXPECT_FALSE(fs::exists(dir / "many" / "01100.png"));
    B b(1);
    auto G = io::load_baked_generator<B>(b, baked);
    // image `index`, made as docs/cli.md says: its batch of 32 (the last one shorter) from its first index
    auto documented = [&](int index) {
        const int first = index / 32 * 32, n = std::min(32, 1100 - first), z_dim = G.config().z_dim;
        std::vector<float> zv(std::size_t(n) * z_dim);
        for (std::size_t i = 0; i < zv.size(); ++i) zv[i] = float(philox::normal(RngKey{3, std::uint64_t(1000 + first), 0}, i));
        const auto z = from_host<B, float>(b, Shape{n, z_dim}, std::span<const float>(zv));
        return io::to_image(to_host<float>(b, G.forward_baked(b, z, std::uint64_t(3) ^ (0x9e37u + first)).image()), index - first);
    };
    for (int index : {40, 1050, 1099}) {  // in the first part; the second part's first batch; its last, short batch
        const io::Image want = documented(index), got = io::load_image(dir / "many" / fmt::format("{:05d}.png", index));
        ASSERT_EQ(got.pixels.size(), want.pixels.size());
        int worst = 0;
        for (std::size_t i = 0; i < got.pixels.size(); ++i) worst = std::max(worst, std::abs(int(got.pixels[i]) - int(want.pixels[i])));
        EXPECT_LE(worst, 1) << "image " << index << " is not the documented one";
    }
    // all or nothing across parts: every image is written, then the grid cannot be (a file-size limit
    // of 2 blocks: each 16-px PNG fits, the grid of 1,100 does not); every file and folder it made goes
    const fs::path nested = dir / "p1" / "p2";
    EXPECT_EQ(generate_under_file_size_limit(2, {"--model", baked.string(), "--count", "1100", "--grid", "--out", nested.string()}),
              kIoError);
    EXPECT_FALSE(fs::exists(dir / "p1")) << "generate left files or folders it made behind";
}

TEST_F(Cli, CommonWrongFilesGivenAsAModelAreNamed) {
    // a registry or a JPEG given as the model: named (a PNG: TruncatedOrCorruptModelFile); the first
    // bytes of either read as a header length far above the limit, which is what the message said
    Result r = sgf({"info", registry.string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find(registry.string() + ": an SQLite database (an sgf registry?), not a model file"), std::string::npos) << r.err;
    const fs::path jpeg = dir / "photo.jpg";
    spit(jpeg, std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", 11) + std::string(200, '\x01'));
    r = sgf({"decode", "--model", jpeg.string(), good_png.string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("an image (JPEG), not a model file"), std::string::npos) << r.err;
    // a file that is neither still gets the header-length message
    const fs::path junk = dir / "junk.bin";
    spit(junk, std::string(64, '\x7f'));
    r = sgf({"info", junk.string()});
    EXPECT_EQ(r.rc, kFormatError) << r.err;
    EXPECT_NE(r.err.find("header length"), std::string::npos) << r.err;
}

TEST_F(Cli, DemoRefusesSizesItCannotHoldBeforeLoadingAnything) {
    // it sat issuing 2,000,000 fingerprints (or made 2e9 images in memory) with no output
    for (const std::vector<std::string>& sizes : {std::vector<std::string>{"--users", "2000000", "--images", "1"},
                                                  std::vector<std::string>{"--users", "1", "--images", "2000000000"},
                                                  std::vector<std::string>{"--users", "1", "--open", "2000000"}}) {
        std::vector<std::string> args{"demo", "--model", (dir / "missing.safetensors").string()};
        args.insert(args.end(), sizes.begin(), sizes.end());
        const Result r = sgf(args);
        EXPECT_EQ(r.rc, kUsage) << r.err;
        EXPECT_NE(r.err.find("the demo makes at most 1000000"), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "");
    }
}

TEST_F(Cli, TrainRefusesAnOutInsideItsDataAndADataPathACheckpointCannotRecord) {
    // --out inside --data: the run's sample grids became training images of its next start, and the
    // interrupted run could never be resumed ("trained on ... (21 images), not on ... (23 images)")
    const fs::path data = dir / "data";
    fs::create_directories(data);
    for (int i = 0; i < 4; ++i) io::save_png(data / fmt::format("{}.png", i), gradient(32, 32, 1));
    Result r = sgf({"train", "--preset", "tiny", "--bits", "12", "--batch", "4", "--kimg", "0.008", "--data", data.string(), "--out",
                    (data / "run").string()});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("is inside --data"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(data / "run"));
    // a --data path that is not UTF-8: every step ran, then the first checkpoint failed, naming no file
    const fs::path odd = dir / "d\xff";
    fs::create_directories(odd);
    for (int i = 0; i < 4; ++i) io::save_png(odd / fmt::format("{}.png", i), gradient(32, 32, 1));
    r = sgf({"train", "--preset", "tiny", "--bits", "12", "--batch", "4", "--kimg", "0.008", "--data", odd.string(), "--out",
             (dir / "o_nu").string()});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("not valid UTF-8"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("step "), std::string::npos) << "no step ran: " << r.out;
    EXPECT_FALSE(fs::exists(dir / "o_nu"));
}

TEST_F(Cli, ResumeKeepsEveryLoggedStepOnceAndRefusesModesTheRunLacks) {
    const fs::path out = dir / "run";
    ASSERT_EQ(train_tiny(out).rc, kOk);  // 2 steps of 4 images: log rows 2 (the last step)
    const std::string log_before = slurp(out / "log.csv");
    // rows of a run killed after its last checkpoint, and a last line cut short by a full disk: on
    // resume they were kept (a step logged twice; the cut line merged with the next row)
    spit(out / "log.csv", log_before + "3,0.012,9.9,1,1,1,1,1,0.5,1,1,0\n" + "99,0.0");
    Result r = sgf({"train", "--out", out.string(), "--resume", "--kimg", "0.016"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    std::istringstream log(slurp(out / "log.csv"));
    std::string line;
    std::getline(log, line);  // the header
    std::vector<std::string> steps;
    while (std::getline(log, line)) steps.push_back(line.substr(0, line.find(',')));
    EXPECT_EQ(steps, (std::vector<std::string>{"2", "4"})) << slurp(out / "log.csv");
    // --no-fingerprint and --immunise on a run without them were silently ignored
    r = sgf({"train", "--out", out.string(), "--resume", "--kimg", "0.02", "--no-fingerprint"});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("--no-fingerprint can only start a new one"), std::string::npos) << r.err;
    r = sgf({"train", "--out", out.string(), "--resume", "--kimg", "0.02", "--immunise"});
    EXPECT_EQ(r.rc, kUsage) << r.err;
    EXPECT_NE(r.err.find("continues a run without --immunise"), std::string::npos) << r.err;
    // log.csv a folder: "internal error: filesystem error: cannot get file size" (exit 1)
    const fs::path log_path = out / "log.csv";
    fs::remove(log_path);
    fs::create_directories(log_path);
    r = sgf({"train", "--out", out.string(), "--resume", "--kimg", "0.02"});
    EXPECT_EQ(r.rc, kIoError) << r.err;
    EXPECT_NE(r.err.find("log.csv: the training log is not a regular file"), std::string::npos) << r.err;
}

TEST_F(Cli, DemoKeepRefusesAFolderThatIsNotEmpty) {
    // demo --keep wrote its registry and images into whatever the folder held
    const fs::path keep = dir / "prod";
    fs::create_directories(keep / "images");
    spit(keep / "images" / "user000_00.png", "precious");
    const Result r = sgf({"demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "0", "--open", "0",
                          "--keep", keep.string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("not an empty folder"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(keep / "images" / "user000_00.png"), "precious");
    EXPECT_FALSE(fs::exists(keep / "registry.db"));
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, TrainingThatDivergesStopsWithExitCode5) {
    // a learning rate of 1e30 sends the weights to infinity at the first step
    const Result r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "12", "--batch", "4", "--kimg", "0.2",
                          "--lr", "1e30", "--out", (dir / "diverged").string()});
    EXPECT_EQ(r.rc, 5) << r.out << r.err;
    EXPECT_NE(r.err.find("training diverged at step"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "diverged" / "model.safetensors"));
}

TEST_F(Cli, SgfTrainExitsWithTheCodesOfSgfTrain) {
    // sgf_train returned 2 for every error and 3 for NaN/Inf (sgf train: 3/4 for unreadable/corrupt
    // input, 5 for NaN/Inf)
    auto sgf_train = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"--threads", "1", "--batch", "4"});
        return Result{test::run_command(SGF_TRAIN_PATH, args, dir)};
    };
    const std::vector<std::string> tiny = {"--preset", "tiny", "--resolution", "32", "--bits", "12"};
    auto with_tiny = [&](std::vector<std::string> args) {
        args.insert(args.begin(), tiny.begin(), tiny.end());
        return args;
    };
    Result r = sgf_train(with_tiny({"--kimg", "0.2", "--lr", "1e30", "--out", (dir / "diverged").string()}));
    EXPECT_EQ(r.rc, kNumeric) << r.out << r.err;
    EXPECT_NE(r.err.find("training diverged at step"), std::string::npos) << r.err;
    r = sgf_train({"--kimg", "0.008", "--init-from", (dir / "missing.safetensors").string(), "--out", (dir / "a").string()});
    EXPECT_EQ(r.rc, kIoError) << r.out << r.err;
    EXPECT_NE(r.err.find("missing.safetensors"), std::string::npos) << r.err;
    const fs::path junk = dir / "junk.safetensors";
    spit(junk, "not a model file at all");
    r = sgf_train({"--kimg", "0.008", "--init-from", junk.string(), "--out", (dir / "b").string()});
    EXPECT_EQ(r.rc, kFormatError) << r.out << r.err;
    EXPECT_NE(r.err.find("junk.safetensors"), std::string::npos) << r.err;
    r = sgf_train(with_tiny({"--kimg", "0.008", "--lr", "0", "--out", (dir / "c").string()}));
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    r = sgf_train(with_tiny({"--kimg", "0.008", "--checkpoint-every", "x", "--out", (dir / "c").string()}));  // CLI11's own
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;                                                                 // code was 105
    r = sgf_train({"--immunise-recipe", "{", "--out", (dir / "c").string()});
    EXPECT_EQ(r.rc, kUsage) << r.out << r.err;
    EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
    for (const char* f : {"diverged", "a", "b", "c"}) EXPECT_FALSE(fs::exists(dir / f / "model.safetensors")) << f;
}

TEST_F(Cli, FashionMnistFolderFromTheEnvironment) {
    // SGF_FASHION_MNIST_DIR replaces Debian's path for every reader of the dataset (here demo's real images)
    const std::vector<std::string> demo{SGF_CLI_PATH, "--threads", "1", "--json", "demo", "--model", model.string(), "--users", "1",
                                        "--images", "1", "--real", "2", "--open", "0"};
    std::vector<std::string> args{"SGF_FASHION_MNIST_DIR=" + (dir / "no-such-fashion").string()};
    args.insert(args.end(), demo.begin(), demo.end());
    Result r{test::run_command("env", args, dir)};
    EXPECT_EQ(r.rc, kIoError) << r.out << r.err;
    EXPECT_NE(r.err.find("no-such-fashion"), std::string::npos) << r.err;
    if (!fs::exists(fs::path(io::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    fs::create_directory_symlink(io::kFashionMnistDir, dir / "elsewhere");
    args[0] = "SGF_FASHION_MNIST_DIR=" + (dir / "elsewhere").string();
    r = Result{test::run_command("env", args, dir)};
    EXPECT_EQ(r.rc, kOk) << r.err;
}

TEST_F(Cli, DemoOnTheCpuReportsEveryStageAndCleansUp) {
    const fs::path kept = dir / "kept";
    Result r = sgf({"--json", "demo", "--model", model.string(), "--users", "3", "--images", "2", "--real", "5", "--open", "2",
                    "--keep", kept.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    json j = r.parsed();
    EXPECT_EQ(j["users"], 3);
    EXPECT_EQ(j["images_per_user"], 2);
    EXPECT_EQ(j["unreadable"], 0);
    for (const char* k : {"bit_accuracy", "attribution_accuracy", "empirical_fpr_real"}) {
        EXPECT_GE(j[k].get<double>(), 0.0) << k;
        EXPECT_LE(j[k].get<double>(), 1.0) << k;
    }
    EXPECT_EQ(j["theoretical_family_fpr"], 1e-6);
    EXPECT_EQ(j["threshold_bits"], stats::family_bit_threshold(128, 1e-6, 3));
    for (const char* stage : {"load_model", "issue", "instantiate_and_generate", "prepare_real_and_open_world", "decode", "attribute"})
        EXPECT_TRUE(j["seconds"].contains(stage)) << stage;
    // --keep: the registry, one baked generator per user, and every verified image stay
    EXPECT_EQ(j["folder"], kept.string());
    Registry reg(kept / "registry.db", RegistryOptions{.create = false, .read_only = true});
    EXPECT_EQ(reg.size(), 3);
    int generators = 0, images = 0;
    for (const auto& e : fs::directory_iterator(kept / "users")) generators += e.path().extension() == ".safetensors";
    for (const auto& e : fs::directory_iterator(kept / "images")) images += e.path().extension() == ".png";
    EXPECT_EQ(generators, 3);
    EXPECT_EQ(images, 3 * 2 + 5 + 2);
    // without --keep the temporary folder is gone afterwards; the text form prints the table
    r = sgf({"demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "2", "--open", "1"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_NE(r.out.find("| attribution accuracy (2 users) |"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\r'), std::string::npos) << "a progress line into a pipe: " << r.out;
    EXPECT_NE(r.out.find("  2 baked generators ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| false attributions, 2 real Fashion-MNIST test images |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| false attributions, 1 open-world image (unregistered fingerprints) |"), std::string::npos) << r.out;
    const auto at = r.out.find("working folder ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string tmp = r.out.substr(at + 15, r.out.find('\n', at) - at - 15);
    EXPECT_FALSE(fs::exists(tmp)) << tmp;
    // the JSON names no folder that is gone, and no rate measured on no image (--real 0)
    r = sgf({"--json", "demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "0", "--open", "1"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    j = r.parsed();
    EXPECT_TRUE(j["folder"].is_null()) << j.dump();
    EXPECT_TRUE(j["empirical_fpr_real"].is_null()) << j.dump();
    r = sgf({"demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "0", "--open", "0"});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_NE(r.out.find("| empirical false-positive rate on real images | none measured (0 of 0 pass"), std::string::npos) << r.out;
}

TEST_F(Cli, DemoRealDirDecodesTheFolderInPlace) {
    const fs::path real = dir / "my-photos";
    fs::create_directories(real / "b");
    io::save_png(real / "a.png", gradient(40, 30, 3));
    io::save_png(real / "b" / "c.png", gradient(32, 32, 1));
    spit(real / "b" / "d.png", std::string("\x89PNG\r\n\x1a\n", 8) + "cut");  // unreadable: counted, not fatal
    io::save_png(real / "e.png", gradient(16, 16, 1));
    Result r = sgf({"--json", "demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "3", "--open", "0",
                    "--real-dir", real.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    json j = r.parsed();
    EXPECT_EQ(j["real_images_source"], real.string());
    EXPECT_EQ(j["unreadable"], 1) << "the first 3 in path order: a.png, b/c.png, b/d.png";
    r = sgf({"demo", "--model", model.string(), "--users", "2", "--images", "1", "--real", "5", "--open", "0", "--real-dir",
             real.string()});
    ASSERT_EQ(r.rc, kOk) << r.err;
    EXPECT_NE(r.out.find("| false attributions, 4 real images from " + real.string() + " |"), std::string::npos) << r.out;
    // a folder that is missing or holds no image: refused before anything is written
    const fs::path kept = dir / "kept";
    for (const fs::path& bad : {dir / "absent", dir / "users-empty"}) {
        fs::create_directories(dir / "users-empty");
        r = sgf({"demo", "--model", model.string(), "--real", "0", "--real-dir", bad.string(), "--keep", kept.string()});
        EXPECT_EQ(r.rc, kIoError) << r.err;
        EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(kept));
    }
}

}  // namespace
}  // namespace sgf
