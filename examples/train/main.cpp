// Trains a fingerprinted GAN on the CPU backend. Example:
//   sgf_train --preset small --kimg 200 --out runs/small
//   sgf_train --out runs/small --resume
#include <sgf/sgf.hpp>
#include <sgf/train/loop.hpp>
#include <sgf/backends/eigen.hpp>

#include <CLI/CLI.hpp>

#include <thread>

int main(int argc, char** argv) {
    CLI::App app{"sgf_train: train a scalable-fingerprinting GAN (meta generator, decoder, discriminator)"};
    std::string preset = "small";
    sgf::TrainConfig tc;
    sgf::TrainLoopOptions opt;
    std::string out = "sgf-run";
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    app.add_option("--preset", preset, "model preset: tiny, small, paper128")->capture_default_str();
    app.add_option("--data", opt.data, "'fashion-mnist' or a folder of PNG/JPEG images")->capture_default_str();
    app.add_option("--out", out, "output folder (checkpoint, log.csv, sample grids, model.safetensors)")->capture_default_str();
    app.add_option("--kimg", opt.total_kimg, "train until this many thousand real images")->capture_default_str();
    app.add_option("--batch", tc.batch, "batch size")->capture_default_str();
    app.add_option("--lr", tc.adam.lr, "Adam learning rate (before the lazy-regularisation correction)")->capture_default_str();
    app.add_option("--r1-gamma", tc.r1_gamma, "R1 weight gamma")->capture_default_str();
    app.add_option("--consistency-rampup", tc.consistency_rampup_kimg,
                   "kimg over which the consistency weight grows from 0 to its value (0: constant)")->capture_default_str();
    app.add_option("--seed", tc.seed, "random seed")->capture_default_str();
    app.add_option("--threads", threads, "CPU threads")->capture_default_str();
    app.add_option("--checkpoint-every", opt.checkpoint_every, "steps between checkpoints")->capture_default_str();
    app.add_option("--grid-every", opt.grid_every, "steps between sample grids")->capture_default_str();
    app.add_flag("--resume", opt.resume, "continue the run in --out from its checkpoint");
    app.add_flag("--no-fingerprint", [&](std::int64_t) { tc.fingerprint = false; }, "baseline without fingerprint losses");
    app.add_flag("--immunise", tc.immunise.enabled,
                 "immunised training: random crop/blur/brightness-contrast/noise/JPEG between G and F (docs/robustness.md)");
    app.add_option("--immunise-strength", tc.immunise.strength, "scale of every immunisation range (0: identity)")
        ->capture_default_str();
    app.add_option("--immunise-rampup", tc.immunise.rampup_kimg, "kimg over which the immunisation strength grows from 0")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    opt.out_dir = out;
    try {
        sgf::EigenCpu cpu(threads);
        return sgf::run_training(cpu, sgf::ModelConfig::preset_named(preset), tc, opt);
    } catch (const sgf::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 2;
    }
}
