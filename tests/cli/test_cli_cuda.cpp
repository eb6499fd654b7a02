// `sgf --backend cuda`: every subcommand that runs networks, on the GPU, and the files it writes used
// on the CPU (and the other way round). The CUDA runs use the checking mode (SGF_CUDA_CHECKING=1), so
// both backends compute the same numbers up to float rounding. Skipped, with the reason, when the
// binary has no CUDA backend or there is no usable GPU.
#include <sgf/io/image.hpp>

#include "run_command.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kOk = 0, kUsage = 2, kBackend = 6;

struct CliCuda : ::testing::Test {
    fs::path dir = fs::path(SGF_TEST_TMPDIR) / "cuda";
    void SetUp() override {
        fs::remove_all(dir);
        fs::create_directories(dir);
        ::setenv("SGF_CUDA_CHECKING", "1", 1);
    }
    test::CommandResult sgf(std::vector<std::string> args, bool gpu = false) const {
        args.insert(args.begin(), {"--threads", "2"});
        if (gpu) args.insert(args.begin(), {"--backend", "cuda"});
        return test::run_command(SGF_CLI_PATH, args, dir);
    }
    static json parse(const test::CommandResult& r) {
        try {
            return json::parse(r.out);
        } catch (const json::exception& e) {
            ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.out << r.err;
            return json();
        }
    }
    static std::vector<std::string> pngs(const fs::path& folder) {
        std::vector<std::string> v;
        for (const auto& e : fs::directory_iterator(folder))
            if (e.path().extension() == ".png" && e.path().filename() != "grid.png") v.push_back(e.path().string());
        std::sort(v.begin(), v.end());
        return v;
    }
};

TEST_F(CliCuda, EveryNetworkCommandRunsOnTheGpuAndItsFilesLoadOnTheCpu) {
    const fs::path run = dir / "run";
    auto r = sgf({"train", "--preset", "tiny", "--resolution", "32", "--bits", "128", "--batch", "4", "--kimg", "0.016",
                  "--out", run.string(), "--json"},
                 true);
    if (r.rc == kBackend && r.err.find("no usable CUDA GPU") != std::string::npos) GTEST_SKIP() << r.err;
    if (r.rc == kUsage && r.err.find("build the target sgf_cli_cuda") != std::string::npos) GTEST_SKIP() << r.err;
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const fs::path model = run / "model.safetensors";
    ASSERT_TRUE(fs::exists(model));

    const fs::path reg = dir / "registry.db";
    ASSERT_EQ(sgf({"issue", "--registry", reg.string(), "--label", "alice", "--label", "bob"}).rc, kOk);
    // bake on the GPU, generate from the baked file on both backends: the same images
    const fs::path baked = dir / "alice.safetensors";
    r = sgf({"instantiate", "--model", model.string(), "--registry", reg.string(), "--label", "alice", "--out",
             baked.string()},
            true);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    ASSERT_EQ(sgf({"generate", "--model", baked.string(), "--count", "6", "--out", (dir / "cpu").string()}).rc, kOk);
    r = sgf({"generate", "--model", baked.string(), "--count", "6", "--out", (dir / "gpu").string()}, true);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    const auto cpu_files = pngs(dir / "cpu"), gpu_files = pngs(dir / "gpu");
    ASSERT_EQ(cpu_files.size(), 6u);
    ASSERT_EQ(gpu_files.size(), 6u);
    int worst = 0;
    for (std::size_t i = 0; i < cpu_files.size(); ++i) {
        const auto a = io::load_image(cpu_files[i]), b = io::load_image(gpu_files[i]);
        ASSERT_EQ(a.pixels.size(), b.pixels.size());
        for (std::size_t k = 0; k < a.pixels.size(); ++k) worst = std::max(worst, std::abs(int(a.pixels[k]) - int(b.pixels[k])));
    }
    EXPECT_LE(worst, 1) << "8-bit pixels of the same baked generator on the CPU and the GPU";

    // decode the same images on both backends: the same logits up to rounding
    std::vector<std::string> dec{"--json", "decode", "--model", model.string()};
    dec.insert(dec.end(), cpu_files.begin(), cpu_files.end());
    const auto dc = sgf(dec), dg = sgf(dec, true);
    ASSERT_EQ(dc.rc, kOk) << dc.err;
    ASSERT_EQ(dg.rc, kOk) << dg.err;
    const json jc = parse(dc), jg = parse(dg);
    for (std::size_t i = 0; i < cpu_files.size(); ++i) {
        const auto lc = jc["results"][i]["logits"].get<std::vector<double>>();
        const auto lg = jg["results"][i]["logits"].get<std::vector<double>>();
        ASSERT_EQ(lc.size(), lg.size());
        for (std::size_t k = 0; k < lc.size(); ++k) EXPECT_NEAR(lg[k], lc[k], 1e-4 * (1 + std::abs(lc[k]))) << i << " " << k;
    }

    // verify on the GPU: the same outcomes as on the CPU
    std::vector<std::string> ver{"--json", "verify", "--model", model.string(), "--registry", reg.string()};
    ver.insert(ver.end(), cpu_files.begin(), cpu_files.end());
    const auto vc = sgf(ver), vg = sgf(ver, true);
    EXPECT_EQ(vc.rc, vg.rc) << vc.err << vg.err;
    const json jvc = parse(vc), jvg = parse(vg);
    for (std::size_t i = 0; i < cpu_files.size(); ++i) {
        EXPECT_EQ(jvg["results"][i]["outcome"], jvc["results"][i]["outcome"]) << i;
        EXPECT_EQ(jvg["results"][i]["best_matching_bits"], jvc["results"][i]["best_matching_bits"]) << i;
    }

    // bit accuracy on both backends: the same draws, the same result up to rounding
    const auto ec = sgf({"--json", "eval", "--model", model.string(), "--images", "64"});
    const auto eg = sgf({"--json", "eval", "--model", model.string(), "--images", "64"}, true);
    ASSERT_EQ(ec.rc, kOk) << ec.err;
    ASSERT_EQ(eg.rc, kOk) << eg.err;
    EXPECT_NEAR(parse(eg)["bit_accuracy_float"].get<double>(), parse(ec)["bit_accuracy_float"].get<double>(), 2e-3);
    r = sgf({"eval", "--model", model.string(), "--out", (dir / "report").string()}, true);
    EXPECT_EQ(r.rc, kUsage) << r.err;

    // the demo end to end on the GPU (small sizes)
    r = sgf({"--json", "demo", "--model", model.string(), "--users", "3", "--images", "2", "--real", "20", "--open", "4"},
            true);
    ASSERT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_EQ(parse(r)["users"], 3);

    // and a model trained on the CPU resumes on the GPU
    const fs::path cpu_run = dir / "cpu-run";
    ASSERT_EQ(sgf({"train", "--preset", "tiny", "--resolution", "32", "--batch", "4", "--kimg", "0.008", "--out",
                   cpu_run.string(), "--json"})
                  .rc,
              kOk);
    r = sgf({"train", "--out", cpu_run.string(), "--resume", "--kimg", "0.016", "--json"}, true);
    EXPECT_EQ(r.rc, kOk) << r.out << r.err;
    EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sgf
