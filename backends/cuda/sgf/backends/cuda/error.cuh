// Error mapping and device discovery for the CUDA backend. Every failing CUDA runtime, cuBLAS or
// cuDNN call becomes an sgf::BackendError whose message names the call, the library's own error
// text and the file:line of the call (the exception's where() holds the same location).
// Device discovery never throws: on a machine without a driver or GPU it reports 0 devices and a
// reason, so that tests can skip with a readable message.
#pragma once

#include <sgf/core/error.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#if defined(SGF_HAVE_CUDNN)
#include <cudnn.h>
#endif

#include <source_location>
#include <string>

namespace sgf::cuda::detail {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* call, std::source_location loc) {
    cudaGetLastError();  // clear a non-sticky error so that later calls do not report it again
    throw BackendError(fmt::format("{} failed: {} ({}, code {}) at {}:{}", call, cudaGetErrorString(e),
                                   cudaGetErrorName(e), static_cast<int>(e), loc.file_name(), loc.line()),
                       loc);
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* call, std::source_location loc) {
    throw BackendError(fmt::format("{} failed: {} ({}, code {}) at {}:{}", call, cublasGetStatusString(s),
                                   cublasGetStatusName(s), static_cast<int>(s), loc.file_name(), loc.line()),
                       loc);
}

#if defined(SGF_HAVE_CUDNN)
[[noreturn]] inline void throw_cudnn(cudnnStatus_t s, const char* call, std::source_location loc) {
    char detail[512] = {0};
    cudnnGetLastErrorString(detail, sizeof(detail));
    std::string msg = fmt::format("{} failed: {} (code {}) at {}:{}", call, cudnnGetErrorString(s), static_cast<int>(s),
                                  loc.file_name(), loc.line());
    if (detail[0]) msg += fmt::format(" [cuDNN: {}]", detail);
    throw BackendError(msg, loc);
}
#endif

}  // namespace sgf::cuda::detail

/// SGF_CUDA_CHECK(cudaMalloc(...)): throws sgf::BackendError naming the call, the CUDA error and file:line.
#define SGF_CUDA_CHECK(call)                                                                        \
    do {                                                                                            \
        const cudaError_t sgf_cuda_err_ = (call);                                                   \
        if (sgf_cuda_err_ != cudaSuccess)                                                           \
            ::sgf::cuda::detail::throw_cuda(sgf_cuda_err_, #call, std::source_location::current()); \
    } while (0)

/// SGF_CUBLAS_CHECK(cublasSgemm(...)): the same for cuBLAS status codes.
#define SGF_CUBLAS_CHECK(call)                                                                          \
    do {                                                                                                \
        const cublasStatus_t sgf_cublas_st_ = (call);                                                   \
        if (sgf_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                    \
            ::sgf::cuda::detail::throw_cublas(sgf_cublas_st_, #call, std::source_location::current()); \
    } while (0)

#if defined(SGF_HAVE_CUDNN)
/// SGF_CUDNN_CHECK(cudnnConvolutionForward(...)): the same for cuDNN status codes (plus cuDNN's
/// own last-error text when it has one).
#define SGF_CUDNN_CHECK(call)                                                                         \
    do {                                                                                              \
        const cudnnStatus_t sgf_cudnn_st_ = (call);                                                   \
        if (sgf_cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                    \
            ::sgf::cuda::detail::throw_cudnn(sgf_cudnn_st_, #call, std::source_location::current()); \
    } while (0)
#endif

namespace sgf::cuda {

/// Number of usable CUDA devices; 0 (never an exception) when there is no driver or no GPU.
inline int device_count() noexcept {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the error
        return 0;
    }
    return n;
}
inline bool gpu_available() noexcept { return device_count() > 0; }

/// Why there is no GPU, for skip messages ("" when there is one).
inline std::string no_gpu_reason() {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    cudaGetLastError();
    if (e != cudaSuccess) return fmt::format("cudaGetDeviceCount: {} ({})", cudaGetErrorString(e), cudaGetErrorName(e));
    return n == 0 ? "no CUDA device found" : "";
}

/// Whether this build has the cuDNN convolution engine (else convolutions use sgf's direct kernels).
inline constexpr bool have_cudnn() noexcept {
#if defined(SGF_HAVE_CUDNN)
    return true;
#else
    return false;
#endif
}

}  // namespace sgf::cuda
