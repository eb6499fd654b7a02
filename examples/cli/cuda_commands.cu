// `sgf --backend cuda ...`: the network-running subcommands of commands.hpp on the CUDA backend
// (device 0, fast mode; SGF_CUDA_DEVICE picks another device, SGF_CUDA_CHECKING=1 the deterministic
// checking mode). Built into `sgf-cuda` when the build finds nvcc; the CPU binary `sgf` runs
// sgf-cuda for --backend cuda (cuda_dispatch.cpp).
#include <sgf/backends/cuda.cuh>

#include "commands.hpp"

namespace sgf_cli {

void remember_command_line(int, char**) {}

int run_on_cuda(Request& r) {
    if (!sgf::cuda::gpu_available())
        SGF_THROW(BackendError, "--backend cuda: no usable CUDA GPU ({}); use --backend cpu", sgf::cuda::no_gpu_reason());
    sgf::cuda::Options o;
    if (const char* d = std::getenv("SGF_CUDA_DEVICE")) o.device = std::atoi(d);
    if (const char* m = std::getenv("SGF_CUDA_CHECKING"); m && std::string(m) == "1") o.mode = sgf::cuda::Mode::checking;
    sgf::CudaGpu gpu(o);
    if (!r.c.json && r.command != Request::Command::train)
        fmt::print(stderr, "backend: CUDA on {} ({} mode)\n", gpu.device_name(),
                   o.mode == sgf::cuda::Mode::checking ? "checking" : "fast");
    return run_request(gpu, r);
}

}  // namespace sgf_cli
