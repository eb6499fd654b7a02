// `sgf --backend cuda ...` in the CPU binary: runs the same command line in `sgf-cuda`, the build of
// the same tool with the CUDA backend (cuda_commands.cu), from the folder that holds this binary. The
// CPU binary thus does not load cuBLAS and cuDNN (about 0.2 s per start) and runs without them.
#include "commands.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sgf_cli {

namespace {
std::vector<char*>& saved_argv() {
    static std::vector<char*> argv;
    return argv;
}
}  // namespace

void remember_command_line(int argc, char** argv) { saved_argv().assign(argv, argv + argc + 1); }

int run_on_cuda(Request&) {
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    const fs::path gpu = self.parent_path() / "sgf-cuda";
    if (ec || !fs::exists(gpu))
        SGF_THROW(ArgumentError,
                  "--backend cuda: {} not found: build the target sgf_cli_cuda (needs nvcc; a build without it has no CUDA "
                  "backend, see docs/cuda.md)",
                  gpu.string());
    auto& argv = saved_argv();
    SGF_CHECK(!argv.empty(), ArgumentError, "--backend cuda: command line not recorded");
    ::execv(gpu.c_str(), argv.data());  // returns only on failure
    SGF_THROW(BackendError, "--backend cuda: cannot run {}: {}", gpu.string(), std::strerror(errno));
}

}  // namespace sgf_cli
