// Trains a fingerprinted GAN on the CPU backend. Example:
//   sgf_train --preset small --kimg 200 --out runs/small
//   sgf_train --out runs/small --resume
#include <sgf/sgf.hpp>
#include <sgf/train/loop.hpp>
#include <sgf/backends/eigen.hpp>

#include "../common/exit_codes.hpp"
#include "training_options.hpp"

#include <CLI/CLI.hpp>

#include <thread>

int main(int argc, char** argv) {
    CLI::App app{"sgf_train: train a scalable-fingerprinting GAN (meta generator, decoder, discriminator)"};
    sgf_examples::TrainingCommand cmd;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    sgf_examples::add_training_options(app, cmd);
    app.add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024))->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? sgf_examples::kOk : sgf_examples::kUsage;  // --help: 0; a parse or validation error: 2
    }
    cmd.opt.out_dir = cmd.out;
    return sgf_examples::run_with_exit_codes([&] {  // exit codes as `sgf train` (docs/cli.md)
        sgf::EigenCpu cpu(threads);
        return sgf::run_training(cpu, cmd.model_config(), cmd.tc, cmd.opt);
    });
}
