// sgf::cuda: the CUDA backend (work in progress, see docs/cuda.md). Compiled by nvcc in the user's
// .cu translation unit. What is here today: error checking that turns CUDA failures into
// sgf::BackendError with the call, file and line; device discovery that never throws on machines
// without a driver or GPU; an owning device buffer; and the counter-based RNG kernels, which must
// reproduce the CPU backend's Philox draws exactly. The full op set (cuDNN convolutions, cuBLAS
// GEMM, fused kernels) is issue 7.
#pragma once

#include <sgf/core/concepts.hpp>
#include <sgf/core/philox.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#define SGF_CUDA_CHECK(call)                                                                             \
    do {                                                                                                 \
        const cudaError_t sgf_err_ = (call);                                                             \
        if (sgf_err_ != cudaSuccess)                                                                     \
            SGF_THROW(BackendError, "{} failed: {} ({}) at {}:{}", #call, cudaGetErrorString(sgf_err_), \
                      static_cast<int>(sgf_err_), __FILE__, __LINE__);                                   \
    } while (0)

namespace sgf::cuda {

/// Number of usable CUDA devices; 0 (never an exception) when there is no driver or no GPU.
inline int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error
        return 0;
    }
    return n;
}
inline bool gpu_available() noexcept { return device_count() > 0; }

/// Why there is no GPU, for skip messages.
inline std::string no_gpu_reason() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    cudaGetLastError();
    if (e != cudaSuccess) return fmt::format("cudaGetDeviceCount: {}", cudaGetErrorString(e));
    return n == 0 ? "no CUDA device found" : "";
}

/// Owning device memory of T.
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n) : n_(n) {
        if (n) SGF_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            if (p_) cudaFree(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() {
        if (p_) cudaFree(p_);
    }
    T* data() noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

namespace kernels {
template <class T>
__global__ void normal(RngKey key, std::int64_t n, T* out) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = T(philox::normal(key, std::uint64_t(i)));
}
template <class T>
__global__ void uniform(RngKey key, std::int64_t n, T* out) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = T(philox::uniform(key, std::uint64_t(i)));
}
template <class T>
__global__ void bits(RngKey key, std::int64_t n, T* out) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) out[i] = T(philox::bit(key, std::uint64_t(i)));
}
}  // namespace kernels

/// The RNG part of the backend contract on the GPU (same draws as every other backend).
template <class T>
struct Random {
    using Scalar = T;
    cudaStream_t stream = nullptr;
    void normal(const RngKey& k, std::int64_t n, T* out) { launch(kernels::normal<T>, k, n, out); }
    void uniform(const RngKey& k, std::int64_t n, T* out) { launch(kernels::uniform<T>, k, n, out); }
    void bits(const RngKey& k, std::int64_t n, T* out) { launch(kernels::bits<T>, k, n, out); }

private:
    template <class K>
    void launch(K kernel, const RngKey& k, std::int64_t n, T* out) {
        if (n <= 0) return;
        const int threads = 256;
        const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
        kernel<<<blocks, threads, 0, stream>>>(k, n, out);
        SGF_CUDA_CHECK(cudaGetLastError());
    }
};

static_assert(RandomBackend<Random<float>>, "the GPU RNG models the RandomBackend concept");

}  // namespace sgf::cuda
