// `sgf eval` end to end (examples/cli/eval_command.hpp, docs/evaluation.md): the built binary runs
// on tiny models with random weights made here, so no number is checked for quality, only that the
// report is complete and well-formed.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/robustness/image_attacks.hpp>
#include <sgf/robustness/finetune_attack.hpp>
#include <sgf/robustness/model_attacks.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>
#include "run_command.hpp"
#include <nlohmann/json.hpp>


#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using B = EigenCpu;

using test::slurp;

/// RFC-4180-style split of one CSV line (quoted fields may hold commas and doubled quotes).
std::vector<std::string> csv_split(const std::string& line) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
            else if (c == '"') quoted = false;
            else cur += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::vector<std::map<std::string, std::string>> read_csv(const fs::path& p, std::vector<std::string>* header_out) {
    std::ifstream in(p);
    std::string line;
    std::getline(in, line);
    const auto header = csv_split(line);
    if (header_out) *header_out = header;
    std::vector<std::map<std::string, std::string>> rows;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const auto f = csv_split(line);
        EXPECT_EQ(f.size(), header.size()) << line;
        std::map<std::string, std::string> r;
        for (std::size_t i = 0; i < header.size() && i < f.size(); ++i) r[header[i]] = f[i];
        rows.push_back(r);
    }
    return rows;
}

double number(const std::string& s) {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    EXPECT_EQ(used, s.size()) << "'" << s << "' is not a number";
    return v;
}

void make_model(const fs::path& path, std::uint64_t seed) {
    B b(1);
    ModelConfig cfg = ModelConfig::tiny();
    cfg.fingerprint_bits = 128;
    MetaGenerator<B> G(b, cfg, seed);
    auto F = make_decoder(b, cfg, seed + 1);
    auto D = make_discriminator(b, cfg, seed + 2);
    io::save_meta_model(b, path, G, F, D);
}

test::CommandResult run(const fs::path& dir, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"--threads", "2"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(SGF_CLI_PATH, argv, dir);
}

class EvalCli : public ::testing::Test {
protected:
    fs::path dir, model, immunised, baseline;
    void SetUp() override {
        dir = fs::path(SGF_TEST_TMPDIR) / ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::remove_all(dir);
        fs::create_directories(dir);
        model = dir / "model.safetensors";
        immunised = dir / "immunised.safetensors";
        baseline = dir / "baseline.safetensors";
        make_model(model, 11);
        make_model(immunised, 21);
        make_model(baseline, 31);
    }
};

TEST_F(EvalCli, QuickReportIsComplete) {
    const fs::path out = dir / "report";
    const auto r = run(dir, {"eval", "--model", model.string(), "--immunised", immunised.string(), "--baseline", baseline.string(),
                             "--quick", "--users-max", "20", "--out", out.string(), "--json"});
    ASSERT_EQ(r.rc, 0) << r.err;
    const json j = json::parse(r.out);
    // the keys of the bit-accuracy-only mode are kept
    for (const char* k : {"model", "images", "bits", "seed", "bit_accuracy_float", "bit_accuracy_png", "worst_image_float",
                          "worst_image_png", "saturated_pixels", "worst_bit_png", "bits_below_0.9_png", "per_bit_accuracy_png",
                          "seconds"})
        EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["images"], 48);
    EXPECT_EQ(j["per_bit_accuracy_png"].size(), 128u);
    const auto& rep = j["report"];
    ASSERT_EQ(rep["models"].size(), 2u);
    EXPECT_EQ(rep["models"][1]["role"], "immunised");
    EXPECT_EQ(rep["models"][0]["attribution"].size(), 6u) << "1, 10, 20 users, by each score";
    EXPECT_TRUE(rep["fidelity"].contains("baseline"));
    EXPECT_TRUE(rep["fidelity"]["relative_difference_vs_baseline"].contains("original"));
    EXPECT_GE(rep["fidelity"]["real_vs_real"]["fd_classifier"].get<double>(), 0.0);

    for (const char* f : {"report.md", "robustness.csv", "attribution.csv", "summary.json", "fd-classifier.safetensors"})
        EXPECT_TRUE(fs::exists(out / f)) << f;
    std::vector<attack::AttackInfo> all = attack::image_attacks();  // the default: every image and model attack
    all.insert(all.end(), attack::model_attacks().begin(), attack::model_attacks().end());
    all.push_back(attack::finetune_attack_info());
    for (const auto& a : all) {
        for (const char* sub : {"plots", "examples"}) {
            const fs::path p = out / sub / (a.name + ".png");
            ASSERT_TRUE(fs::exists(p)) << p;
            const io::Image img = io::load_image(p);
            EXPECT_EQ(img.channels, 3) << p;
            EXPECT_GT(img.width, 100) << p;
        }
    }

    std::vector<std::string> header;
    const auto rows = read_csv(out / "robustness.csv", &header);
    EXPECT_EQ(header, (std::vector<std::string>{"model", "kind", "attack", "strength", "identity", "images", "bit_accuracy",
                                                "worst_image_accuracy", "detection_rate", "mean_neg_log10_p", "detection_rate_weighted",
                                                "mean_neg_log10_p_weighted", "parameter"}));
    std::size_t strengths = 0, model_strengths = 0;
    for (const auto& a : attack::image_attacks()) strengths += a.sweep.size();
    for (const auto& a : attack::model_attacks()) model_strengths += a.sweep.size();
    model_strengths += attack::finetune_attack_info().sweep.size();
    EXPECT_EQ(rows.size(), 2 * (strengths + model_strengths)) << "one row per model x attack x strength";
    std::map<std::string, int> per_model, per_kind;
    for (const auto& row : rows) {
        ++per_model[row.at("model")];
        ++per_kind[row.at("kind")];
        if (row.at("kind") == "image") EXPECT_NO_THROW((void)attack::image_attack_info(row.at("attack")));
        else if (row.at("attack") != attack::finetune_attack_info().name) EXPECT_NO_THROW((void)attack::model_attack_info(row.at("attack")));
        (void)number(row.at("strength"));
        EXPECT_EQ(number(row.at("images")), 48);
        const double acc = number(row.at("bit_accuracy"));
        EXPECT_GE(acc, 0.0);
        EXPECT_LE(acc, 1.0);
        const double tpr = number(row.at("detection_rate"));
        EXPECT_GE(tpr, 0.0);
        EXPECT_LE(tpr, 1.0);
        EXPECT_GE(number(row.at("mean_neg_log10_p")), 0.0);
        const double tpr_weighted = number(row.at("detection_rate_weighted"));
        EXPECT_GE(tpr_weighted, 0.0);
        EXPECT_LE(tpr_weighted, 1.0);
        EXPECT_GE(number(row.at("mean_neg_log10_p_weighted")), 0.0);
        EXPECT_FALSE(row.at("parameter").empty());
    }
    EXPECT_EQ(per_model["original"], int(strengths + model_strengths));
    EXPECT_EQ(per_model["immunised"], int(strengths + model_strengths));
    EXPECT_EQ(per_kind["image"], int(2 * strengths));
    EXPECT_EQ(per_kind["model"], int(2 * model_strengths));

    const auto att = read_csv(out / "attribution.csv", nullptr);
    EXPECT_EQ(att.size(), 12u) << "2 models x 3 registry sizes x 2 scores";
    std::map<std::string, int> per_score;
    for (const auto& row : att) {
        ++per_score[row.at("score")];
        EXPECT_EQ(number(row.at("correct")) + number(row.at("wrong_user")) + number(row.at("inconclusive")) + number(row.at("missed")),
                  number(row.at("generated")));
    }
    EXPECT_EQ(per_score, (std::map<std::string, int>{{"bits", 6}, {"weighted", 6}}));

    const std::string md = slurp(out / "report.md");
    for (const char* s : {"## Clean detection", "## False positives on real images", "## Attribution", "## Fidelity (FD-classifier, not FID)",
                          "## Robustness", "![noise plot](plots/noise.png)", "![noise examples](examples/noise.png)"})
        EXPECT_NE(md.find(s), std::string::npos) << s;
    // "FID" appears only as "not FID"
    for (std::size_t at = md.find("FID"); at != std::string::npos; at = md.find("FID", at + 1))
        EXPECT_EQ(md.substr(at >= 4 ? at - 4 : 0, 4), "not ") << md.substr(at >= 40 ? at - 40 : 0, 80);

    // the cached classifier is reused by a second run (not retrained), and the run is deterministic
    const fs::path out2 = dir / "report2";
    fs::create_directories(out2);
    fs::copy_file(out / "fd-classifier.safetensors", out2 / "fd-classifier.safetensors");
    const auto r2 = run(dir, {"eval", "--model", model.string(), "--immunised", immunised.string(), "--baseline", baseline.string(),
                              "--quick", "--users-max", "20", "--out", out2.string(), "--json"});
    ASSERT_EQ(r2.rc, 0) << r2.err;
    const json j2 = json::parse(r2.out);
    EXPECT_FALSE(j2["report"]["fidelity"]["classifier_trained_now"].get<bool>());
    EXPECT_EQ(slurp(out / "robustness.csv"), slurp(out2 / "robustness.csv"));
    EXPECT_EQ(j2["report"]["fidelity"]["real_vs_real"], j["report"]["fidelity"]["real_vs_real"]);
}

TEST_F(EvalCli, TextProgressAndBitAccuracyOnlyMode) {
    // without --out: the bit accuracy only, as before
    const auto r = run(dir, {"eval", "--model", model.string(), "--images", "20", "--json"});
    ASSERT_EQ(r.rc, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["images"], 20);
    EXPECT_FALSE(j.contains("report"));
    // its text starts with the result (not with the empty line that ends a progress line on a terminal)
    const auto plain = run(dir, {"eval", "--model", model.string(), "--images", "8"});
    ASSERT_EQ(plain.rc, 0) << plain.err;
    EXPECT_EQ(plain.out.rfind(model.string() + ": 8 images", 0), 0u) << plain.out;
    for (const char* key : {"bit_accuracy_float", "bit_accuracy_png", "bit_accuracy_clamped", "saturated_pixels"}) {
        ASSERT_TRUE(j.contains(key)) << key;
        EXPECT_GE(j[key].get<double>(), 0.0) << key;
        EXPECT_LE(j[key].get<double>(), 1.0) << key;
    }
    // text mode of the full report prints progress and a summary
    const auto t = run(dir, {"eval", "--model", model.string(), "--quick", "--images", "8", "--users-max", "3", "--attacks", "noise,jpeg",
                             "--no-fidelity", "--out", (dir / "text").string()});
    ASSERT_EQ(t.rc, 0) << t.err;
    EXPECT_NE(t.out.find("robustness sweeps"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("wrote"), std::string::npos) << t.out;
    EXPECT_TRUE(fs::exists(dir / "text" / "plots" / "jpeg.png"));
    EXPECT_FALSE(fs::exists(dir / "text" / "plots" / "blur.png"));
}

TEST_F(EvalCli, WarnsWhenAlphaAsksForMoreBitsThanTheModelHas) {
    // 128 bits: P(all 128 match) = 2^-128 = 2.9e-39, so alpha 1e-40 needs 129 bits for one fingerprint,
    // and alpha 1e-38 needs 128 for one but 129 among 20 users (1e-38 / 20 < 2.9e-39)
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"1e-40", "needs 129 matching bits of 128: no image can be detected"}, {"1e-38", "over 20 users needs 129 matching bits"}, {"1e-6", ""}};
    for (const auto& [alpha, expected] : cases) {
        const auto r = run(dir, {"eval", "--model", model.string(), "--quick", "--images", "8", "--users-max", "20", "--attacks", "noise",
                                 "--no-fidelity", "--alpha", alpha, "--out", (dir / ("a" + alpha)).string(), "--json"});
        ASSERT_EQ(r.rc, 0) << alpha << "\n" << r.err;
        const json j = json::parse(r.out);
        if (expected.empty()) {
            EXPECT_FALSE(j.contains("warning")) << alpha << ": " << j.value("warning", "");
            EXPECT_EQ(r.err.find("warning"), std::string::npos) << alpha << ": " << r.err;
        } else {
            EXPECT_NE(j.value("warning", "").find(expected), std::string::npos) << alpha << ": " << j.value("warning", "");
            EXPECT_NE(r.err.find("sgf: warning: --alpha " + alpha), std::string::npos) << alpha << ": " << r.err;
        }
    }
}

TEST_F(EvalCli, UsageErrors) {
    EXPECT_EQ(run(dir, {"eval", "--model", model.string(), "--immunised", immunised.string()}).rc, 2) << "--immunised needs --out";
    EXPECT_EQ(run(dir, {"eval", "--model", model.string(), "--quick", "--attacks", "nope", "--out", (dir / "x").string()}).rc, 2);
    EXPECT_EQ(run(dir, {"eval", "--model", (dir / "missing.safetensors").string(), "--quick", "--out", (dir / "y").string()}).rc, 3);
    // refused before any measurement (it was refused only after every robustness sweep had run)
    for (const char* steps : {"0", "-1"}) {
        const auto r = run(dir, {"eval", "--model", model.string(), "--quick", "--fd-steps", steps, "--out", (dir / "z").string()});
        EXPECT_EQ(r.rc, 2) << steps;
        EXPECT_NE(r.err.find(std::string("--fd-steps must be at least 1, got ") + steps), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("robustness sweeps"), std::string::npos) << "no sweep ran: " << r.err;
    }    // values only the full report uses are checked without --out too (they were accepted silently),
    // and nothing is printed on stdout before the error
    for (const std::vector<std::string>& bad : {std::vector<std::string>{"--alpha", "2"}, {"--min-margin", "-5"}, {"--users-max", "0"},
                                               {"--attacks", "nosuch"}, {"--images", "0"}}) {
        std::vector<std::string> args = {"eval", "--model", model.string(), "--images", "4"};
        if (bad[0] == "--images") args.resize(3);
        args.insert(args.end(), bad.begin(), bad.end());
        const auto r = run(dir, args);
        EXPECT_EQ(r.rc, 2) << bad[0] << " " << bad[1] << "\n" << r.err;
        EXPECT_TRUE(r.out.empty()) << r.out;
    }
    // an --out that is a file: refused before the measurements, not when the report is written
    const fs::path file = dir / "a-file";
    { std::ofstream(file) << "mine"; }
    const auto r = run(dir, {"eval", "--model", model.string(), "--quick", "--out", file.string()});
    EXPECT_EQ(r.rc, 3) << r.err;
    EXPECT_NE(r.err.find("exists and is not a folder"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    // a classifier to be trained where it cannot be saved (a file where its folder would go):
    // refused before the measurements, not after them with no report written
    const auto r2 = run(dir, {"eval", "--model", model.string(), "--quick", "--out", (dir / "rep").string(), "--fd-classifier",
                              (file / "sub" / "fd.safetensors").string()});
    EXPECT_EQ(r2.rc, 3) << r2.err;
    EXPECT_NE(r2.err.find("is not a writable folder"), std::string::npos) << r2.err;
    EXPECT_NE(r2.err.find("a-file"), std::string::npos) << r2.err;
    EXPECT_EQ(r2.out.find("robustness"), std::string::npos) << "no sweep ran: " << r2.out;
    EXPECT_FALSE(fs::exists(dir / "rep" / "report.md"));
}

// Session 24's review: each of these ran every measurement before it failed (or not at all).
TEST_F(EvalCli, InputsThatCannotMakeAReportAreRefusedBeforeTheMeasurements) {
    const fs::path out = dir / "rep";
    auto expect_refused = [&](const std::vector<std::string>& extra, int rc, const std::string& message) {
        std::vector<std::string> args = {"eval", "--model", model.string(), "--quick", "--out", out.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        const auto r = run(dir, args);
        EXPECT_EQ(r.rc, rc) << extra[0] << "\n" << r.err;
        EXPECT_NE(r.err.find(message), std::string::npos) << extra[0] << ": " << r.err;
        // nothing on stdout (docs/cli.md; the "sgf eval: N images per measurement" line came first)
        EXPECT_EQ(r.out, "") << "no sweep ran, nothing printed: " << r.out;
        EXPECT_FALSE(fs::exists(out / "report.md"));
    };
    // an --fd-classifier of another kind: "holds a 'meta-model', expected fd-classifier" after all the sweeps
    expect_refused({"--fd-classifier", model.string()}, 4, "expected fd-classifier");
    // an --immunised model of another image size: "image_strip: image (2, 0) differs in size" at the very end
    {
        B b(1);
        ModelConfig cfg = ModelConfig::tiny();
        cfg.fingerprint_bits = 128;
        cfg.resolution = 32;
        MetaGenerator<B> G(b, cfg, 5);
        auto F = make_decoder(b, cfg, 6);
        auto D = make_discriminator(b, cfg, 7);
        io::save_meta_model(b, dir / "r32.safetensors", G, F, D);
    }
    expect_refused({"--immunised", (dir / "r32.safetensors").string()}, 2, "need the same image size");
    expect_refused({"--baseline", (dir / "r32.safetensors").string()}, 2, "it must make images of the same size");
    // an attack given twice: its sweep ran twice and robustness.csv held every row twice
    expect_refused({"--attacks", "noise,noise"}, 2, "attack 'noise' is given twice");
    // a report folder that cannot be written: found out after every measurement
    if (::getuid() != 0) {  // root writes anywhere
        const fs::path ro = dir / "ro";
        fs::create_directories(ro);
        fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
        const auto r = run(dir, {"eval", "--model", model.string(), "--quick", "--out", (ro / "rep").string()});
        EXPECT_EQ(r.rc, 3) << r.err;
        EXPECT_NE(r.err.find("is not a writable folder"), std::string::npos) << r.err;
        fs::permissions(ro, fs::perms::owner_all);
    }
    // --images far beyond any use: 2^63 - 1 images grew memory until the process was killed
    const auto r = run(dir, {"eval", "--model", model.string(), "--images", "99999999999"});
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find("--images must be in 1..1000000"), std::string::npos) << r.err;
}

// An existing classifier file is loaded whatever its steps; a user who ran a quick check with few
// steps got that classifier in every later report without a word (the helper audit of session 28).
TEST_F(EvalCli, AnFdClassifierWithFewerStepsThanAskedIsLoadedAndSaysSo) {
    const fs::path out = dir / "fd";
    auto eval_with_steps = [&](const std::string& steps) {
        return run(dir, {"eval", "--model", model.string(), "--quick", "--images", "8", "--users-max", "3", "--attacks", "noise",
                         "--out", out.string(), "--fd-steps", steps});
    };
    auto r = eval_with_steps("2");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << "trained now: " << r.err;
    ASSERT_TRUE(fs::exists(out / "fd-classifier.safetensors"));
    r = eval_with_steps("30");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.err.find("fd-classifier.safetensors: this FD classifier was trained for 2 steps and is loaded as it is (--fd-steps 30 "
                         "applies to a new one)"),
              std::string::npos)
        << r.err;
    r = eval_with_steps("2");
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    // no fidelity, no classifier, no warning
    r = run(dir, {"eval", "--model", model.string(), "--quick", "--images", "8", "--users-max", "3", "--attacks", "noise", "--out",
                  out.string(), "--fd-steps", "30", "--no-fidelity"});
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
}

TEST_F(EvalCli, ARerunReplacesTheWholeReportAndLeavesNoStagingFolder) {
    const fs::path out = dir / "rep";
    ASSERT_EQ(run(dir, {"eval", "--model", model.string(), "--quick", "--users-max", "10", "--attacks", "noise,blur", "--no-fidelity",
                        "--out", out.string()}).rc,
              0);
    EXPECT_TRUE(fs::exists(out / "plots" / "blur.png"));
    // files of the user's in the report's folders stay (a first version replaced plots/ and examples/ whole)
    { std::ofstream(out / "plots" / "notes.txt") << "mine"; }
    fs::create_directories(out / "examples" / "myproj");
    { std::ofstream(out / "examples" / "myproj" / "main.cpp") << "int main() {}"; }
    ASSERT_EQ(run(dir, {"eval", "--model", model.string(), "--quick", "--users-max", "10", "--attacks", "noise", "--no-fidelity",
                        "--out", out.string()}).rc,
              0);
    EXPECT_TRUE(fs::exists(out / "plots" / "noise.png"));
    EXPECT_FALSE(fs::exists(out / "plots" / "blur.png")) << "a plot of the earlier run stayed beside the new report";
    EXPECT_FALSE(fs::exists(out / "examples" / "blur.png"));
    EXPECT_FALSE(fs::exists(out / ".sgf-report-staging"));
    EXPECT_EQ(slurp(out / "plots" / "notes.txt"), "mine");
    EXPECT_TRUE(fs::exists(out / "examples" / "myproj" / "main.cpp"));
    // a report file that is a folder: refused before anything is replaced (was a half-renamed report, exit 1)
    const std::string md_before = slurp(out / "report.md");
    fs::remove(out / "summary.json");
    fs::create_directories(out / "summary.json" / "x");
    const auto r = run(dir, {"eval", "--model", model.string(), "--quick", "--users-max", "10", "--attacks", "blur", "--no-fidelity",
                             "--out", out.string()});
    EXPECT_EQ(r.rc, 3) << r.err;
    EXPECT_NE(r.err.find("summary.json: is not a regular file"), std::string::npos) << r.err;
    EXPECT_EQ(slurp(out / "report.md"), md_before);
    EXPECT_TRUE(fs::exists(out / "plots" / "noise.png"));
    EXPECT_FALSE(fs::exists(out / ".sgf-report-staging"));
    EXPECT_EQ(slurp(out / "robustness.csv").find(",blur,"), std::string::npos);
}

// --real-dir: the user's own real images (one sub-folder per class) for false positives, attribution
// and the fidelity reference; the classifier is trained in --out, and one trained on other data is refused
TEST_F(EvalCli, RealDirReplacesFashionMnist) {
    const fs::path real = dir / "real";
    for (int cls = 0; cls < 2; ++cls)
        for (int i = 0; i < 6; ++i) {
            io::Image im{18, 18, 1, std::vector<std::uint8_t>(18 * 18)};
            for (std::size_t k = 0; k < im.pixels.size(); ++k) im.pixels[k] = std::uint8_t(cls ? 200 - (k * 7 + i) % 40 : (k * 5 + i) % 90);
            fs::create_directories(real / (cls ? "light" : "dark"));
            io::save_png(real / (cls ? "light" : "dark") / fmt::format("{}.png", i), im);
        }
    const fs::path out = dir / "report";
    auto r = run(dir, {"--json", "eval", "--model", model.string(), "--quick", "--attacks", "noise", "--real-dir", real.string(), "--out",
                       out.string()});
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const auto& rep = j["report"];
    EXPECT_EQ(rep["real_images_available"], 12);
    EXPECT_NE(rep["real_images_source"].get<std::string>().find(real.string()), std::string::npos);
    EXPECT_EQ(rep["models"][0]["false_positives_real"]["real_images"], 12);
    EXPECT_EQ(rep["fidelity"]["classifier_classes"], 2);
    EXPECT_EQ(rep["fidelity"]["classifier"], (out / "fd-classifier.safetensors").string()) << "the default with --real-dir";
    EXPECT_TRUE(fs::exists(out / "fd-classifier.safetensors"));
    EXPECT_FALSE(fs::exists(dir / "fd-classifier.safetensors")) << "not beside the model";

    // a classifier trained on other data: refused before any measurement, naming both
    r = run(dir, {"eval", "--model", model.string(), "--quick", "--attacks", "noise", "--out", (dir / "fashion").string(),
                  "--fd-classifier", (out / "fd-classifier.safetensors").string()});
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find("was trained on " + fs::weakly_canonical(real).string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("fashion-mnist/train"), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("robustness"), std::string::npos) << "no sweep ran: " << r.out;

    // the report inside the folder of real images: its plots would be real images next time
    r = run(dir, {"eval", "--model", model.string(), "--quick", "--real-dir", real.string(), "--out", (real / "rep").string()});
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find("lies inside --real-dir"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(real / "rep"));

    // usage: only with --out; a missing folder is an I/O error that names it
    r = run(dir, {"eval", "--model", model.string(), "--images", "4", "--real-dir", real.string()});
    EXPECT_EQ(r.rc, 2) << r.err;
    r = run(dir, {"eval", "--model", model.string(), "--quick", "--real-dir", (dir / "nope").string(), "--out", (dir / "x").string()});
    EXPECT_EQ(r.rc, 3) << r.err;
    EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
}  // namespace sgf
