// sgf::cuda::Backend<T>: the GPU backend (T = float for training and verification; double works
// too). Header-only, compiled by nvcc in the user's .cu translation unit; see docs/cuda.md.
//
//  * memory:        a per-backend caching allocator (backends/cuda/sgf/backends/cuda/memory.cuh);
//  * ordering:      one CUDA stream per backend; every op is enqueued on it; ops returning host
//                   values (sum, dot, losses, all_finite), download() and upload() synchronise;
//  * GEMM:          cuBLAS (row-major contract mapped onto column-major cublas<t>gemm_64);
//  * convolutions:  cuDNN forward / backward-data / backward-filter with one cached plan per shape
//                   (cuda/conv.cuh), workspace from the allocator; without cuDNN, or with
//                   ConvEngine::direct, sgf's own direct kernels;
//  * the rest:      sgf's kernels (ops in cuda/ops.cuh, element code in cuda/kernels.cuh),
//                   deterministic (no atomics) in every mode;
//  * modes:         Mode::fast (TF32 tensor cores, fastest cuDNN algorithms) and Mode::checking
//                   (CUDNN_FMA_MATH, deterministic algorithms, CUBLAS_PEDANTIC_MATH) for tests
//                   against the CPU backends;
//  * errors:        every failing CUDA / cuBLAS / cuDNN call throws sgf::BackendError naming the
//                   call, the library's error text and file:line; bad arguments throw
//                   ArgumentError / ShapeError before anything is launched, like the CPU backends.
// A backend object is not thread-safe (one stream); use one backend per thread or per device.
#pragma once

#include <sgf/backends/cuda/conv.cuh>
#include <sgf/backends/cuda/error.cuh>
#include <sgf/backends/cuda/kernels.cuh>
#include <sgf/backends/cuda/memory.cuh>
#include <sgf/backends/cuda/ops.cuh>
#include <sgf/core/concepts.hpp>
#include <sgf/core/philox.hpp>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sgf::cuda {

/// Which implementation runs the three convolutions.
enum class ConvEngine {
    cudnn,   // cuDNN (the default when the build found cuDNN)
    direct,  // sgf's direct kernels: slow, simple, deterministic; a cross-check and the no-cuDNN fallback
};

struct Options {
    int device = 0;
    Mode mode = Mode::fast;
    ConvEngine conv = have_cudnn() ? ConvEngine::cudnn : ConvEngine::direct;
    /// Synchronise and check for errors after every op, so that an asynchronous failure is
    /// reported by the op that caused it (debugging; the conformance tests use it).
    bool synchronous = false;
    /// Largest cuDNN workspace an algorithm may ask for.
    std::size_t max_workspace_bytes = std::size_t(1) << 30;
};

inline const char* mode_name(Mode m) { return m == Mode::fast ? "fast" : "checking"; }

template <class T>
class Backend : public detail::DeviceOps<Backend<T>, T> {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "sgf::cuda::Backend<T>: T is float or double");

public:
    using Scalar = T;
    using Buffer = cuda::Buffer<T>;

    explicit Backend(Options opt = {}) : opt_(opt) {
        const int count = device_count();
        if (count == 0) throw BackendError(fmt::format("sgf::cuda::Backend: no usable CUDA GPU ({})", no_gpu_reason()));
        SGF_CHECK(opt.device >= 0 && opt.device < count, ArgumentError,
                  "sgf::cuda::Backend: device {} does not exist ({} CUDA device(s))", opt.device, count);
        SGF_CHECK(opt.conv == ConvEngine::direct || have_cudnn(), ArgumentError,
                  "sgf::cuda::Backend: ConvEngine::cudnn requested but this build has no cuDNN");
        SGF_CUDA_CHECK(cudaSetDevice(opt.device));
        alloc_ = std::make_shared<DeviceAllocator>(opt.device);
        SGF_CUDA_CHECK(cudaStreamCreateWithFlags(&res_.stream, cudaStreamNonBlocking));
        SGF_CUDA_CHECK(cudaMallocHost(&res_.pinned, 64));
        SGF_CUBLAS_CHECK(cublasCreate(&res_.blas));
        SGF_CUBLAS_CHECK(cublasSetStream(res_.blas, res_.stream));
        const cublasMath_t math = opt.mode == Mode::checking ? CUBLAS_PEDANTIC_MATH
                                  : std::is_same_v<T, float> ? CUBLAS_TF32_TENSOR_OP_MATH
                                                             : CUBLAS_DEFAULT_MATH;
        SGF_CUBLAS_CHECK(cublasSetMathMode(res_.blas, math));
#if defined(SGF_HAVE_CUDNN)
        if (opt.conv == ConvEngine::cudnn) {
            SGF_CUDNN_CHECK(cudnnCreate(&res_.dnn));
            SGF_CUDNN_CHECK(cudnnSetStream(res_.dnn, res_.stream));
        }
#endif
    }
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    static constexpr std::string_view name() {
        if constexpr (std::is_same_v<T, float>) return "cuda-f32";
        else return "cuda-f64";
    }

    // ------------------------------------------------------------------------------ introspection
    const Options& options() const noexcept { return opt_; }
    Mode mode() const noexcept { return opt_.mode; }
    int device() const noexcept { return opt_.device; }
    cudaStream_t stream() const noexcept { return res_.stream; }
    cublasHandle_t cublas_handle() const noexcept { return res_.blas; }
    std::string device_name() const {
        cudaDeviceProp p{};
        SGF_CUDA_CHECK(cudaGetDeviceProperties(&p, opt_.device));
        return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                           double(p.totalGlobalMem) / double(1ull << 30));
    }
    AllocatorStats allocator_stats() const { return alloc_->stats(); }
    /// Returns the allocator's cached blocks to the driver (after finishing queued work).
    void empty_cache() {
        synchronize();
        alloc_->empty_cache();
    }
    /// Number of cached convolution plans (one per operation and shape).
    std::size_t conv_plan_count() const noexcept {
#if defined(SGF_HAVE_CUDNN)
        return plans_.size();
#else
        return 0;
#endif
    }
#if defined(SGF_HAVE_CUDNN)
    /// The cuDNN algorithm the cached plan uses for (kind, shape), or -1 when none is cached.
    /// kind: 0 forward, 1 backward data, 2 backward filter.
    int conv_algorithm(int kind, const ConvDesc& d) const {
        auto it = plans_.find(detail::conv_key(static_cast<detail::ConvKind>(kind), d));
        return it == plans_.end() ? -1 : it->second->algo;
    }
#endif

    // ------------------------------------------------------------------------------------ storage
    Buffer allocate(std::size_t n) {
        activate();
        return Buffer(alloc_, n);
    }
    /// Host -> device. Returns once the host data has been copied (the host buffer may be reused).
    void upload(const T* host, std::size_t n, T* dst) {
        if (!n) return;
        activate();
        SGF_CUDA_CHECK(cudaMemcpyAsync(dst, host, n * sizeof(T), cudaMemcpyHostToDevice, res_.stream));
        SGF_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
    }
    /// Device -> host; synchronises.
    void download(const T* src, std::size_t n, T* host) {
        if (!n) return;
        activate();
        SGF_CUDA_CHECK(cudaMemcpyAsync(host, src, n * sizeof(T), cudaMemcpyDeviceToHost, res_.stream));
        SGF_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
    }
    void fill(T* dst, std::size_t n, T v) {
        if (!n) return;
        activate();
        T zero = T(0);
        if (std::memcmp(&v, &zero, sizeof(T)) == 0) {  // +0.0: all bits zero
            SGF_CUDA_CHECK(cudaMemsetAsync(dst, 0, n * sizeof(T), res_.stream));
            after_library_call("fill");
        } else {
            each(std::int64_t(n), kernels::Fill<T>{dst, v}, "fill");
        }
    }
    /// Device -> device, memmove semantics (overlapping ranges go through a temporary).
    void copy(const T* src, T* dst, std::size_t n) {
        if (!n || src == dst) return;
        activate();
        const bool overlap = src < dst + n && dst < src + n;
        if (!overlap) {
            SGF_CUDA_CHECK(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice, res_.stream));
        } else {
            Buffer tmp(alloc_, n);
            SGF_CUDA_CHECK(cudaMemcpyAsync(tmp.data(), src, n * sizeof(T), cudaMemcpyDeviceToDevice, res_.stream));
            SGF_CUDA_CHECK(cudaMemcpyAsync(dst, tmp.data(), n * sizeof(T), cudaMemcpyDeviceToDevice, res_.stream));
        }
        after_library_call("copy");
    }
    /// dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols (preconditions: check_copy2d).
    void copy2d(std::int64_t rows, std::int64_t cols, const T* src, std::int64_t src_ld, T* dst, std::int64_t dst_ld) {
        check_copy2d(rows, cols, src_ld, dst_ld);
        if (rows <= 0 || cols <= 0) return;
        activate();
        if (src_ld >= cols && dst_ld >= cols) {
            SGF_CUDA_CHECK(cudaMemcpy2DAsync(dst, std::size_t(dst_ld) * sizeof(T), src, std::size_t(src_ld) * sizeof(T),
                                             std::size_t(cols) * sizeof(T), std::size_t(rows), cudaMemcpyDeviceToDevice,
                                             res_.stream));
            after_library_call("copy2d");
        } else {
            each(rows * cols, kernels::Copy2d<T>{src, dst, cols, src_ld, dst_ld}, "copy2d");
        }
    }
    void synchronize() {
        activate();
        SGF_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
    }

    // --------------------------------------------------------------------------------------- gemm
    /// Row-major C[M,N] = alpha * op(A) * op(B) + beta * C. cuBLAS is column-major, and a row-major
    /// matrix with row stride ld is, read column-major, its transpose with leading dimension ld.
    /// So the call computes C^T = op(B)^T op(A)^T: cublas<t>gemm(opB, opA, N, M, K, B, ldb, A, lda, C, ldc).
    void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
              const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
        SGF_CHECK(M >= 0 && N >= 0 && K >= 0, ArgumentError, "gemm: negative size M={} N={} K={}", M, N, K);
        if (M == 0 || N == 0) return;
        activate();
        if (K == 0 || alpha == T(0)) {  // C = beta * C without reading A and B (as the CPU backend)
            each(M * N, kernels::ScaleRows<T>{C, N, ldc, beta}, "gemm (K == 0 or alpha == 0)");
            return;
        }
        const cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        if constexpr (std::is_same_v<T, float>)
            SGF_CUBLAS_CHECK(cublasSgemm_64(res_.blas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
        else
            SGF_CUBLAS_CHECK(cublasDgemm_64(res_.blas, opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
        after_library_call("gemm");
    }

    // -------------------------------------------------------------------------------- convolution
    void conv2d_forward(const ConvDesc& d, T alpha, const T* x, const T* w, T beta, T* y) {
        d.validate("conv2d_forward");
        activate();
#if defined(SGF_HAVE_CUDNN)
        if (opt_.conv == ConvEngine::cudnn) {
            const detail::ConvPlan& p = plan(detail::ConvKind::forward, d);
            Workspace ws(alloc_, p.workspace);
            SGF_CUDNN_CHECK(cudnnConvolutionForward(res_.dnn, &alpha, p.x, x, p.w, w, p.conv,
                                                    static_cast<cudnnConvolutionFwdAlgo_t>(p.algo), ws.data(),
                                                    p.workspace, &beta, p.y, y));
            after_library_call("conv2d_forward");
            return;
        }
#endif
        this->direct_conv_forward(d, alpha, x, w, beta, y);
    }
    void conv2d_backward_data(const ConvDesc& d, T alpha, const T* dy, const T* w, T beta, T* dx) {
        d.validate("conv2d_backward_data");
        activate();
#if defined(SGF_HAVE_CUDNN)
        if (opt_.conv == ConvEngine::cudnn) {
            const detail::ConvPlan& p = plan(detail::ConvKind::backward_data, d);
            Workspace ws(alloc_, p.workspace);
            SGF_CUDNN_CHECK(cudnnConvolutionBackwardData(res_.dnn, &alpha, p.w, w, p.y, dy, p.conv,
                                                         static_cast<cudnnConvolutionBwdDataAlgo_t>(p.algo), ws.data(),
                                                         p.workspace, &beta, p.x, dx));
            after_library_call("conv2d_backward_data");
            return;
        }
#endif
        this->direct_conv_backward_data(d, alpha, dy, w, beta, dx);
    }
    void conv2d_backward_filter(const ConvDesc& d, T alpha, const T* x, const T* dy, T beta, T* dw) {
        d.validate("conv2d_backward_filter");
        activate();
#if defined(SGF_HAVE_CUDNN)
        if (opt_.conv == ConvEngine::cudnn) {
            const detail::ConvPlan& p = plan(detail::ConvKind::backward_filter, d);
            Workspace ws(alloc_, p.workspace);
            SGF_CUDNN_CHECK(cudnnConvolutionBackwardFilter(res_.dnn, &alpha, p.x, x, p.y, dy, p.conv,
                                                           static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.algo),
                                                           ws.data(), p.workspace, &beta, p.w, dw));
            after_library_call("conv2d_backward_filter");
            return;
        }
#endif
        this->direct_conv_backward_filter(d, alpha, x, dy, beta, dw);
    }

    // Elementwise, per-channel, reductions, FIR, mbstd, RNG, losses, Adam, EMA: detail::DeviceOps
    // (cuda/ops.cuh), launched through each / segments / reduce below.

private:
    friend class detail::DeviceOps<Backend<T>, T>;

    /// The raw handles, destroyed in the right order even when the constructor throws half-way.
    struct Resources {
        cudaStream_t stream = nullptr;
        cublasHandle_t blas = nullptr;
#if defined(SGF_HAVE_CUDNN)
        cudnnHandle_t dnn = nullptr;
#endif
        void* pinned = nullptr;  // 64 bytes of page-locked host memory for reduction results
        Resources() = default;
        Resources(const Resources&) = delete;
        Resources& operator=(const Resources&) = delete;
        ~Resources() {
            if (stream) cudaStreamSynchronize(stream);  // queued kernels may still use cached blocks
#if defined(SGF_HAVE_CUDNN)
            if (dnn) cudnnDestroy(dnn);
#endif
            if (blas) cublasDestroy(blas);
            if (stream) cudaStreamDestroy(stream);
            if (pinned) cudaFreeHost(pinned);
            cudaGetLastError();
        }
    };

    /// A workspace from the allocator (nothing for zero bytes).
    struct Workspace {
        cuda::Buffer<unsigned char> buf;
        Workspace(const std::shared_ptr<DeviceAllocator>& a, std::size_t bytes) : buf(a, bytes) {}
        void* data() noexcept { return buf.data(); }
    };

    void activate() const {
        int cur = -1;
        if (cudaGetDevice(&cur) != cudaSuccess || cur != opt_.device) SGF_CUDA_CHECK(cudaSetDevice(opt_.device));
    }

    /// After a kernel launch: launch errors always, execution errors too in synchronous mode.
    void check_launch(const char* what, std::source_location loc) {
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess) detail::throw_cuda(e, fmt::format("{} kernel launch", what).c_str(), loc);
        if (opt_.synchronous) {
            const cudaError_t s = cudaStreamSynchronize(res_.stream);
            if (s != cudaSuccess) detail::throw_cuda(s, fmt::format("{} (synchronous mode)", what).c_str(), loc);
        }
    }
    void after_library_call(const char* what, std::source_location loc = std::source_location::current()) {
        if (opt_.synchronous) {
            const cudaError_t s = cudaStreamSynchronize(res_.stream);
            if (s != cudaSuccess) detail::throw_cuda(s, fmt::format("{} (synchronous mode)", what).c_str(), loc);
        }
    }

    template <class U>
    cuda::Buffer<U> scratch(std::size_t n) {
        return cuda::Buffer<U>(alloc_, n);
    }
    template <class F>
    void each(std::int64_t n, const F& f, const char* what, std::source_location loc = std::source_location::current()) {
        if (n <= 0) return;
        kernels::for_each<<<kernels::blocks_for(n), kernels::kThreads, 0, res_.stream>>>(n, f);
        check_launch(what, loc);
    }
    template <class F, class Fin>
    void segments(std::int64_t count, std::int64_t len, const F& f, const Fin& fin, const char* what,
                  std::source_location loc = std::source_location::current()) {
        if (count <= 0) return;
        const unsigned grid = static_cast<unsigned>(std::min<std::int64_t>(count, std::int64_t(1) << 20));
        kernels::segment_reduce<<<grid, kernels::kThreads, 0, res_.stream>>>(count, len, f, fin);
        check_launch(what, loc);
    }
    /// fin(sum of f(i) for i < n), in a fixed order, on the device.
    template <class F, class Fin>
    void reduce(std::int64_t n, const F& f, const Fin& fin, const char* what,
                std::source_location loc = std::source_location::current()) {
        const unsigned parts = kernels::partial_blocks(n);
        cuda::Buffer<double> partial(alloc_, parts);
        kernels::reduce_partial<<<parts, kernels::kThreads, 0, res_.stream>>>(n, f, partial.data());
        check_launch(what, loc);
        kernels::reduce_final<<<1, kernels::kThreads, 0, res_.stream>>>(int(parts), partial.data(), fin);
        check_launch(what, loc);
    }
    template <class F>
    double reduce_to_host(std::int64_t n, const F& f, const char* what,
                          std::source_location loc = std::source_location::current()) {
        cuda::Buffer<double> result(alloc_, 1);
        reduce(n, f, kernels::StoreDouble{result.data()}, what, loc);
        double* host = static_cast<double*>(res_.pinned);
        SGF_CUDA_CHECK(cudaMemcpyAsync(host, result.data(), sizeof(double), cudaMemcpyDeviceToHost, res_.stream));
        SGF_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
        return *host;
    }

#if defined(SGF_HAVE_CUDNN)
    const detail::ConvPlan& plan(detail::ConvKind kind, const ConvDesc& d) {
        const auto key = detail::conv_key(kind, d);
        auto it = plans_.find(key);
        if (it == plans_.end())
            it = plans_.emplace(key, detail::make_conv_plan<T>(res_.dnn, kind, d, opt_.mode, opt_.max_workspace_bytes))
                     .first;
        return *it->second;
    }
#endif

    Options opt_;
    std::shared_ptr<DeviceAllocator> alloc_;  // declared before res_: outlives the stream sync
    Resources res_;
#if defined(SGF_HAVE_CUDNN)
    std::map<detail::ConvKey, std::unique_ptr<detail::ConvPlan>> plans_;
#endif
};

static_assert(sgf::Backend<cuda::Backend<float>>, "sgf::cuda::Backend<float> models sgf::Backend");
static_assert(sgf::Backend<cuda::Backend<double>>, "sgf::cuda::Backend<double> models sgf::Backend");

}  // namespace sgf::cuda

namespace sgf {
using CudaGpu = cuda::Backend<float>;
using CudaGpu64 = cuda::Backend<double>;

#if !defined(SGF_CUDA_NO_FLOAT64_TWIN)
/// R1 on the GPU runs on a float64 copy of D (train/objective.hpp, R1InFloat64): float32 central
/// differences of D's gradients cross lrelu kinks at every usable step. Same device and mode; the copy
/// has its own stream, and copy_across goes through the host, so the two never share a buffer.
/// Define SGF_CUDA_NO_FLOAT64_TWIN to fall back to float32 differences.
template <>
struct Float64Twin<cuda::Backend<float>> {
    static constexpr bool available = true;
    using type = cuda::Backend<double>;
    static type make(const cuda::Backend<float>& b) {
        cuda::Options o = b.options();
        o.max_workspace_bytes = std::min<std::size_t>(o.max_workspace_bytes, std::size_t(256) << 20);
        return type(o);
    }
};
#endif
}  // namespace sgf
