// The CPU half of the CPU-GPU parity tests (parity.hpp), on the Eigen float32 backend.
#include "parity.hpp"

#include <sgf/backends/eigen.hpp>

namespace sgf::parity {

std::vector<float> cpu_generate_8bit(int n, std::uint64_t seed) {
    EigenCpu b(2);
    return generate_8bit(b, default_model(), n, seed);
}
std::vector<float> cpu_decode_logits(const std::vector<float>& images) {
    EigenCpu b(2);
    return decode_logits(b, default_model(), images);
}
std::vector<float> cpu_baked_images(const std::vector<float>& bits, int n, std::uint64_t seed) {
    EigenCpu b(2);
    return baked_images(b, default_model(), bits, n, seed);
}
std::vector<double> cpu_training_losses(int steps, TrainPath path) {
    EigenCpu b(2);
    const auto [cfg, tc] = training_setup(path);
    return training_losses(b, cfg, tc, steps);
}

}  // namespace sgf::parity
