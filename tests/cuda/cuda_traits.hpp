// The CUDA backend's entries for the conformance suite (tests/conformance/backend_list.hpp, the
// SGF_TEST_CUDA slot). Included, with SGF_TEST_CUDA defined, by the nvcc-compiled translation
// units tests/conformance/conformance_cuda_*.cu before the shared test sources; the same
// conformance tests then run on the GPU. Without a GPU, make() returns nullptr with the reason and
// every CUDA conformance test is SKIPPED with that reason printed.
//
// Tolerances (normalised MSE against the float64 reference, see docs/cuda.md):
//  * sgf's own kernels (everything but GEMM and convolutions): 1e-7, as the CPU float backend;
//    reductions and losses accumulate in double.
//  * checking mode, GEMM and convolutions: 1e-9, as the CPU float backend (full-float FMA math,
//    no TF32; expected ~1e-12).
//  * fast mode, GEMM and convolutions: 1e-5. TF32 keeps 10 mantissa bits, a relative rounding
//    error of up to 2^-11 per operand, so expect nmse ~1e-7; 1e-5 still fails a single wrong
//    output element in 10^4 (style.md's 5e-4 would not).
#pragma once

#include <sgf/backends/cuda.cuh>

#include <memory>
#include <string>
#include <type_traits>

namespace sgf::test {

template <class T, cuda::Mode M>
struct CudaTraits {
    using Backend = cuda::Backend<T>;
    static constexpr bool is_float = std::is_same_v<T, float>;
    static std::string name() {
        return std::string(is_float ? "cuda_f32_" : "cuda_f64_") + (M == cuda::Mode::checking ? "checking" : "fast");
    }
    static constexpr double tol = is_float ? 1e-7 : 1e-20;
    static constexpr double tol_conv = !is_float ? 1e-18 : M == cuda::Mode::checking ? 1e-9 : 1e-5;
    /// normal(): device log/cos are not correctly rounded; in float the result still rounds to the
    /// host's value, in double it may differ in the last bits (test_pointwise.cpp)
    static constexpr int rng_normal_ulps = is_float ? 0 : 4;
    static std::unique_ptr<Backend> make(std::string& skip_reason) {
        if (!cuda::gpu_available()) {
            skip_reason = "no CUDA GPU (" + cuda::no_gpu_reason() + ")";
            return nullptr;
        }
        // synchronous: an asynchronous kernel failure is reported by the op that caused it
        return std::make_unique<Backend>(cuda::Options{.mode = M, .synchronous = true});
    }
};

}  // namespace sgf::test

// the CUDA slot of tests/conformance/backend_list.hpp. float64 runs the R1 penalty's copy of D on
// the GPU (Float64Twin, objective.hpp: cuDNN double convolutions, cublasDgemm), so every op is also
// checked at double precision (checking mode: fast mode's TF32 applies to float only).
#define SGF_TEST_CUDA_BACKENDS                                                                                     \
    ::sgf::test::CudaTraits<float, ::sgf::cuda::Mode::checking>, ::sgf::test::CudaTraits<float, ::sgf::cuda::Mode::fast>, \
        ::sgf::test::CudaTraits<double, ::sgf::cuda::Mode::checking>
