// The training options shared by `sgf_train` and `sgf train` (docs/cli.md), declared once.
#pragma once

#include <sgf/train/loop.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace sgf_examples {

struct TrainingCommand {
    std::string preset = "small";
    std::string out = "sgf-run";
    sgf::TrainConfig tc;
    sgf::TrainLoopOptions opt;
};

/// Adds every training option to `app` (the program or the `train` subcommand).
inline void add_training_options(CLI::App& app, TrainingCommand& cmd) {
    auto& tc = cmd.tc;
    auto& opt = cmd.opt;
    app.add_option("--preset", cmd.preset, "model preset: tiny, small, paper128")->capture_default_str();
    app.add_option("--data", opt.data, "'fashion-mnist' or a folder of PNG/JPEG images")->capture_default_str();
    app.add_option("--out", cmd.out, "output folder (checkpoint, log.csv, sample grids, model.safetensors)")
        ->capture_default_str();
    app.add_option("--kimg", opt.total_kimg, "train until this many thousand real images")->capture_default_str();
    app.add_option("--batch", tc.batch, "batch size")->capture_default_str();
    app.add_option("--lr", tc.adam.lr, "Adam learning rate (before the lazy-regularisation correction)")
        ->capture_default_str();
    app.add_option("--r1-gamma", tc.r1_gamma, "R1 weight gamma")->capture_default_str();
    app.add_option("--consistency-rampup", tc.consistency_rampup_kimg,
                   "kimg over which the consistency weight grows from 0 to its value (0: constant)")
        ->capture_default_str();
    app.add_option("--w-adversarial", tc.weights.adversarial, "weight of the adversarial loss")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--w-consistency", tc.weights.consistency, "weight of the consistency loss")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--w-latent", tc.weights.latent, "weight of the latent reconstruction loss")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--w-fingerprint", tc.weights.fingerprint, "weight of the fingerprint BCE loss")
        ->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--seed", tc.seed, "random seed")->capture_default_str();
    app.add_option("--checkpoint-every", opt.checkpoint_every, "steps between checkpoints")->capture_default_str();
    app.add_option("--grid-every", opt.grid_every, "steps between sample grids")->capture_default_str();
    app.add_flag("--resume", opt.resume, "continue the run in --out from its checkpoint");
    app.add_flag("--no-fingerprint", [&tc](std::int64_t) { tc.fingerprint = false; },
                 "baseline without fingerprint losses");
    app.add_flag("--immunise", tc.immunise.enabled,
                 "immunised training: random crop/blur/brightness-contrast/noise/JPEG between G and F "
                 "(docs/robustness.md)");
    app.add_option("--immunise-strength", tc.immunise.strength, "scale of every immunisation range (0: identity)")
        ->capture_default_str();
    app.add_option("--immunise-rampup", tc.immunise.rampup_kimg,
                   "kimg over which the immunisation strength grows from 0")
        ->capture_default_str();
}

}  // namespace sgf_examples
