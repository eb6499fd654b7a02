// The backends the conformance suite runs, in ONE place. Each entry is a small traits struct:
//
//   struct SomeTraits {
//       using Backend = ...;                       // a type modelling sgf::Backend
//       static std::string name();                 // test-name suffix, [A-Za-z0-9_] only
//       static constexpr double tol = ...;         // normalised-MSE threshold, general ops
//       static constexpr double tol_conv = ...;    // normalised-MSE threshold, convolutions / gemm
//       // Returns the backend, or nullptr with `skip_reason` set (e.g. no GPU present): the
//       // fixture then GTEST_SKIP()s every test of this backend with the reason printed.
//       static std::unique_ptr<Backend> make(std::string& skip_reason);
//   };
//
// To add a backend (e.g. CUDA): define its traits below under its #ifdef and append it to
// ConformanceBackends with a leading comma, in the marked block.
#pragma once

#include <sgf/backends/reference.hpp>

#if __has_include(<sgf/backends/eigen.hpp>)
#include <sgf/backends/eigen.hpp>
#define SGF_TEST_HAVE_EIGEN 1
#endif

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <type_traits>

namespace sgf::test {

/// The oracle itself: keeps the list non-empty and checks the harness (guards, NaN pre-fill,
/// RNG against philox, statistics) on the oracle too.
struct ReferenceTraits {
    using Backend = reference::Backend;
    static std::string name() { return "reference"; }
    static constexpr double tol = 1e-24;
    static constexpr double tol_conv = 1e-24;
    static std::unique_ptr<Backend> make(std::string&) { return std::make_unique<Backend>(); }
};

#ifdef SGF_TEST_HAVE_EIGEN
template <class T, int Threads, eigen::CpuConv Conv = eigen::CpuConv::best>
struct EigenTraits {
    using Backend = eigen::Backend<T>;
    static constexpr int threads = Threads;
    static std::string name() {
        return std::string(std::is_same_v<T, float> ? "eigen_f32" : "eigen_f64") +
               (Conv == eigen::CpuConv::im2col ? "_im2col" : "") + "_t" + std::to_string(Threads);
    }
    // style.md / ggml use 1e-7 in general and 5e-4 for convolutions; 5e-4 is meant for reduced-
    // precision GPU paths (TF32, fp16) and would let a wrong border pixel in 1 of 10^4 outputs
    // pass, so the CPU float backend, which accumulates in full float, is held to 1e-9 for
    // convolutions/GEMM (observed: <= 1e-12 on the sweep). float64: 1e-20 / 1e-18 (observed 1e-29).
    static constexpr double tol = std::is_same_v<T, float> ? 1e-7 : 1e-20;
    static constexpr double tol_conv = std::is_same_v<T, float> ? 1e-9 : 1e-18;
    static std::unique_ptr<Backend> make(std::string&) { return std::make_unique<Backend>(Threads, Conv); }
};
#endif

// ============================== THE BACKEND LIST ================================================
using ConformanceBackends = ::testing::Types<ReferenceTraits
#ifdef SGF_TEST_HAVE_EIGEN
                                             ,
                                             EigenTraits<float, 1>, EigenTraits<double, 1>, EigenTraits<float, 2>
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
                                             ,  // float32 convolutions run on oneDNN above: im2col here too
                                             EigenTraits<float, 2, eigen::CpuConv::im2col>
#endif
#endif
#ifdef SGF_TEST_CUDA
                                             ,  // defined by tests/cuda/cuda_traits.hpp (GPU; make() skips without
                                             SGF_TEST_CUDA_BACKENDS  // one) or tests/cuda/emulated_traits.hpp
#endif
                                             >;
// ================================================================================================

/// Test names: TypedSuite/eigen_f32_t1.Op instead of TypedSuite/1.Op.
struct BackendNames {
    template <class Traits>
    static std::string GetName(int) {
        return Traits::name();
    }
};

}  // namespace sgf::test
