// A host emulation of sgf::cuda::Backend for machines without a GPU: the SAME op layer
// (backends/cuda/sgf/backends/cuda/ops.cuh) and the SAME element functors
// (cuda/kernels.cuh) as the GPU backend, but each launch primitive is a plain sequential loop
// over host memory. The conformance suite runs it (cuda_emulated_* in test_conformance_cuda_emulated)
// so the index arithmetic of every custom kernel - FIR, mbstd, per-channel reductions, losses,
// Adam, the direct convolutions - and the way the ops compose them are checked against the
// float64 reference without a GPU. It is compiled only in builds with the CUDA backend
// (SGF_WITH_CUDA, on when nvcc is found: the kernels include cuda_runtime.h), so a machine without
// the CUDA toolkit does not run it; such a build says so at configure time (tests/cuda/CMakeLists.txt).
//
// What it does NOT check: the CUDA launch machinery (grid-stride loops, block reductions, streams),
// cuBLAS and cuDNN plumbing, the caching allocator, device math-library rounding. Those need a GPU
// (tests/cuda/test_cuda_backend.cu and the cuda_f32_* conformance instantiations).
//
// GEMM is a plain loop here (cuBLAS's job on the GPU); convolutions use the direct kernels
// (ConvEngine::direct on the GPU). Fresh buffers and scratch hold NaN, like uninitialised
// device memory would, so that a read of never-written memory shows up.
#pragma once

#include <sgf/backends/cuda/ops.cuh>

#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sgf::cuda::test {

template <class T>
class HostBuffer {
public:
    HostBuffer() = default;
    explicit HostBuffer(std::size_t n) : v_(n, std::numeric_limits<T>::quiet_NaN()) {}
    T* data() noexcept { return v_.data(); }
    std::size_t size() const noexcept { return v_.size(); }

private:
    std::vector<T> v_;
};

template <class T>
class EmulatedBackend : public detail::DeviceOps<EmulatedBackend<T>, T> {
public:
    using Scalar = T;
    using Buffer = HostBuffer<T>;

    static constexpr std::string_view name() {
        if constexpr (std::is_same_v<T, float>) return "cuda-emulated-f32";
        else return "cuda-emulated-f64";
    }

    Buffer allocate(std::size_t n) { return Buffer(n); }
    void upload(const T* host, std::size_t n, T* dst) {
        if (n) std::memcpy(dst, host, n * sizeof(T));
    }
    void download(const T* src, std::size_t n, T* host) {
        if (n) std::memcpy(host, src, n * sizeof(T));
    }
    void fill(T* dst, std::size_t n, T v) { each(std::int64_t(n), kernels::Fill<T>{dst, v}, "fill"); }
    void copy(const T* src, T* dst, std::size_t n) {
        if (n) std::memmove(dst, src, n * sizeof(T));
    }
    void copy2d(std::int64_t rows, std::int64_t cols, const T* src, std::int64_t src_ld, T* dst, std::int64_t dst_ld) {
        check_copy2d(rows, cols, src_ld, dst_ld);
        if (rows > 0 && cols > 0) each(rows * cols, kernels::Copy2d<T>{src, dst, cols, src_ld, dst_ld}, "copy2d");
    }
    void synchronize() {}

    /// Row-major GEMM as a plain loop (the GPU backend calls cuBLAS); the K == 0 / alpha == 0 path
    /// is the GPU backend's own kernel.
    void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
              const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
        if (M <= 0 || N <= 0) return;
        if (K <= 0 || alpha == T(0)) {
            each(M * N, kernels::ScaleRows<T>{C, N, ldc, beta}, "gemm");
            return;
        }
        for (std::int64_t i = 0; i < M; ++i)
            for (std::int64_t j = 0; j < N; ++j) {
                T acc = 0;
                for (std::int64_t k = 0; k < K; ++k) acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                T& c = C[i * ldc + j];
                c = beta == T(0) ? alpha * acc : alpha * acc + beta * c;
            }
    }

    void conv2d_forward(const ConvDesc& d, T alpha, const T* x, const T* w, T beta, T* y) {
        d.validate("conv2d_forward");
        this->direct_conv_forward(d, alpha, x, w, beta, y);
    }
    void conv2d_backward_data(const ConvDesc& d, T alpha, const T* dy, const T* w, T beta, T* dx) {
        d.validate("conv2d_backward_data");
        this->direct_conv_backward_data(d, alpha, dy, w, beta, dx);
    }
    void conv2d_backward_filter(const ConvDesc& d, T alpha, const T* x, const T* dy, T beta, T* dw) {
        d.validate("conv2d_backward_filter");
        this->direct_conv_backward_filter(d, alpha, x, dy, beta, dw);
    }

private:
    friend class detail::DeviceOps<EmulatedBackend<T>, T>;

    void activate() {}
    template <class U>
    HostBuffer<U> scratch(std::size_t n) {
        return HostBuffer<U>(n);
    }
    template <class F>
    void each(std::int64_t n, const F& f, const char*) {
        for (std::int64_t i = 0; i < n; ++i) f(i);
    }
    template <class F, class Fin>
    void segments(std::int64_t count, std::int64_t len, const F& f, const Fin& fin, const char*) {
        for (std::int64_t s = 0; s < count; ++s) {
            double acc = 0;
            for (std::int64_t j = 0; j < len; ++j) acc += f(s, j);
            fin(s, acc);
        }
    }
    template <class F, class Fin>
    void reduce(std::int64_t n, const F& f, const Fin& fin, const char*) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += f(i);
        fin(acc);
    }
    template <class F>
    double reduce_to_host(std::int64_t n, const F& f, const char*) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += f(i);
        return acc;
    }
};

static_assert(sgf::Backend<EmulatedBackend<float>>);
static_assert(sgf::Backend<EmulatedBackend<double>>);

}  // namespace sgf::cuda::test
