// `sgf --backend cuda` in a build without nvcc (cuda_commands.cu is the real one).
#include "commands.hpp"

namespace sgf_cli {

int run_on_cuda(Request&) {
    SGF_THROW(ArgumentError, "--backend cuda: this sgf binary was built without the CUDA backend (see docs/cuda.md)");
}

}  // namespace sgf_cli
