// Trains a fingerprinted GAN on the CUDA backend (built when nvcc is found; docs/cuda.md). Same
// options, outputs and checkpoints as sgf_train (the CPU program): a run can be started on one and
// resumed on the other. Example:
//   sgf_train_cuda --preset small --kimg 3000 --out runs/small-gpu --w-latent 0.125
//   sgf_train_cuda --out runs/small-gpu --resume --kimg 6000
#include <sgf/backends/cuda.cuh>
#include <sgf/sgf.hpp>
#include <sgf/train/loop.hpp>

#include "../common/exit_codes.hpp"
#include "training_options.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    CLI::App app{"sgf_train_cuda: train a scalable-fingerprinting GAN on a CUDA GPU"};
    sgf_examples::TrainingCommand cmd;
    int device = 0;
    bool checking = false;
    sgf_examples::add_training_options(app, cmd);
    app.add_option("--device", device, "CUDA device index")->capture_default_str();
    app.add_flag("--checking", checking, "deterministic, slower kernels (docs/cuda.md, 'Modes and tolerances')");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? sgf_examples::kOk : sgf_examples::kUsage;  // --help: 0; a parse or validation error: 2
    }
    cmd.opt.out_dir = cmd.out;
    return sgf_examples::run_with_exit_codes([&] {  // exit codes as `sgf train` (docs/cli.md)
        const sgf::ModelConfig mc = cmd.model_config();
        if (!sgf::cuda::gpu_available())
            SGF_THROW(BackendError, "no usable CUDA GPU ({}); train on the CPU with sgf_train", sgf::cuda::no_gpu_reason());
        sgf::cuda::Backend<float> gpu(sgf::cuda::Options{
            .device = device, .mode = checking ? sgf::cuda::Mode::checking : sgf::cuda::Mode::fast});
        fmt::print("device: {} ({} mode)\n", gpu.device_name(), checking ? "checking" : "fast");
        return sgf::run_training(gpu, mc, cmd.tc, cmd.opt);
    });
}
