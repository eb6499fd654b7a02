// Conformance-suite entries for the host emulation of the CUDA backend's op layer
// (emulated_backend.hpp): included, with SGF_TEST_CUDA defined, by the host-compiled
// conformance_cuda_emulated_*.cpp before the shared conformance sources. Runs (and passes) without
// a GPU. Tolerances as the CPU backends: the element code is the same in float, reductions in double.
#pragma once

#include "emulated_backend.hpp"

#include <memory>
#include <string>
#include <type_traits>

namespace sgf::test {

template <class T>
struct CudaEmulatedTraits {
    using Backend = cuda::test::EmulatedBackend<T>;
    static constexpr bool is_float = std::is_same_v<T, float>;
    static std::string name() { return is_float ? "cuda_emulated_f32" : "cuda_emulated_f64"; }
    static constexpr double tol = is_float ? 1e-7 : 1e-20;
    static constexpr double tol_conv = is_float ? 1e-9 : 1e-18;
    static std::unique_ptr<Backend> make(std::string&) { return std::make_unique<Backend>(); }
};

}  // namespace sgf::test

// the CUDA slot of tests/conformance/backend_list.hpp
#define SGF_TEST_CUDA_BACKENDS ::sgf::test::CudaEmulatedTraits<float>, ::sgf::test::CudaEmulatedTraits<double>
