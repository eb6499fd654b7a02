// cuDNN convolutions for the CUDA backend, in the cudnn-frontend style: one plan per
// (operation, shape) - tensor, filter and convolution descriptors plus the chosen algorithm and
// its workspace size - built on first use and cached by the backend, so a training step pays for
// descriptor setup and the algorithm heuristic once per layer shape.
//
// Algorithm choice (cudnnGet*Algorithm_v7 heuristics, no benchmarking runs):
//  * Mode::checking - the convolution's math type is CUDNN_FMA_MATH (no TF32 / tensor cores) and
//    only deterministic GEMM-style algorithms are accepted: forward IMPLICIT_PRECOMP_GEMM,
//    IMPLICIT_GEMM, GEMM or DIRECT; backward data ALGO_1; backward filter ALGO_1. (FFT and
//    Winograd variants change the rounding substantially; ALGO_0 / ALGO_3 of the backward passes
//    accumulate with atomics and are not bitwise reproducible.) When cuDNN offers none of these for
//    a shape, any deterministic FMA-math algorithm is taken; failing that, the plan throws.
//  * Mode::fast - CUDNN_DEFAULT_MATH (TF32 tensor cores allowed for float on Ampere and later) and
//    the heuristic's first choice that fits the workspace limit, whatever its determinism.
#pragma once

#include <sgf/backends/cuda/error.cuh>
#include <sgf/core/descriptors.hpp>

#if defined(SGF_HAVE_CUDNN)

#include <cudnn.h>

#include <algorithm>
#include <array>
#include <climits>
#include <initializer_list>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>

namespace sgf::cuda {

/// fast: TF32 tensor cores allowed, fastest algorithms (default). checking: full-float FMA math,
/// deterministic algorithms, pedantic cuBLAS - for tests against the CPU backends.
enum class Mode { fast, checking };

namespace detail {

enum class ConvKind { forward, backward_data, backward_filter };

inline const char* conv_kind_name(ConvKind k) {
    return k == ConvKind::forward ? "conv2d_forward"
           : k == ConvKind::backward_data ? "conv2d_backward_data"
                                          : "conv2d_backward_filter";
}

/// One cached cuDNN plan: descriptors, algorithm, workspace size.
struct ConvPlan {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t conv = nullptr;
    int algo = -1;
    std::size_t workspace = 0;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    bool deterministic = false;

    ConvPlan() = default;
    ConvPlan(const ConvPlan&) = delete;
    ConvPlan& operator=(const ConvPlan&) = delete;
    ~ConvPlan() {
        if (x) cudnnDestroyTensorDescriptor(x);
        if (y) cudnnDestroyTensorDescriptor(y);
        if (w) cudnnDestroyFilterDescriptor(w);
        if (conv) cudnnDestroyConvolutionDescriptor(conv);
    }
};

using ConvKey = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t>;
inline ConvKey conv_key(ConvKind k, const ConvDesc& d) {
    return {static_cast<int>(k), d.n, d.c_in, d.h, d.w, d.c_out, d.k, d.stride, d.pad};
}

inline std::string conv_str(const ConvDesc& d) {
    return fmt::format("n={} c_in={} h={} w={} c_out={} k={} stride={} pad={}", d.n, d.c_in, d.h, d.w, d.c_out, d.k,
                       d.stride, d.pad);
}

/// The first perf result that passes `ok`, or nullptr.
template <class Perf, class Ok>
const Perf* first_ok(const Perf* perf, int count, Ok ok) {
    for (int i = 0; i < count; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && ok(perf[i])) return &perf[i];
    return nullptr;
}

template <class Perf>
bool is_fma(const Perf& p) {
    return p.mathType == CUDNN_FMA_MATH || p.mathType == CUDNN_DEFAULT_MATH;
}

/// Builds the plan for one convolution in T (float or double).
template <class T>
std::unique_ptr<ConvPlan> make_conv_plan(cudnnHandle_t h, ConvKind kind, const ConvDesc& d, Mode mode,
                                         std::size_t max_workspace) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
    constexpr cudnnDataType_t dt = std::is_same_v<T, float> ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
    const std::int64_t dims[] = {d.n, d.c_in, d.h, d.w, d.c_out, d.k};
    for (std::int64_t v : dims)
        SGF_CHECK(v <= INT_MAX, ArgumentError, "{}: dimension {} exceeds cuDNN's int range ({})", conv_kind_name(kind), v,
                  conv_str(d));
    const std::int64_t biggest = std::max({d.x_shape().size(), d.y_shape().size(), d.w_shape().size()});
    SGF_CHECK(biggest <= INT_MAX, ArgumentError, "{}: a tensor of {} elements exceeds cuDNN's 2^31 limit ({})",
              conv_kind_name(kind), biggest, conv_str(d));

    auto p = std::make_unique<ConvPlan>();
    SGF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    SGF_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    SGF_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    SGF_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    const int n = int(d.n), ci = int(d.c_in), co = int(d.c_out), k = int(d.k);
    SGF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, n, ci, int(d.h), int(d.w)));
    SGF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, n, co, int(d.out_h()), int(d.out_w())));
    SGF_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, co, ci, k, k));
    SGF_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, int(d.pad), int(d.pad), int(d.stride), int(d.stride), 1, 1,
                                                    CUDNN_CROSS_CORRELATION, dt));
    int on = 0, oc = 0, oh = 0, ow = 0;
    SGF_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
    SGF_CHECK(on == n && oc == co && oh == d.out_h() && ow == d.out_w(), BackendError,
              "{}: cuDNN's output size {}x{}x{}x{} differs from sgf's {} ({})", conv_kind_name(kind), on, oc, oh, ow,
              d.y_shape().str(), conv_str(d));
    const bool checking = mode == Mode::checking;
    SGF_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, checking ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));

    // Chooses among the heuristic's ranked list; in checking mode falls back to probing the
    // allow-list directly (the workspace query fails for algorithms that do not support the shape).
    auto choose = [&](const auto* perf, int count, auto allowed, auto workspace_of) {
        using Perf = std::remove_cv_t<std::remove_pointer_t<decltype(perf)>>;
        const Perf* pick = nullptr;
        if (checking) {
            pick = first_ok(perf, count, [&](const Perf& r) {
                return r.determinism == CUDNN_DETERMINISTIC && is_fma(r) && r.memory <= max_workspace &&
                       allowed(int(r.algo));
            });
            if (!pick)  // none of the GEMM-style ones: any deterministic FMA-math algorithm
                pick = first_ok(perf, count, [&](const Perf& r) {
                    return r.determinism == CUDNN_DETERMINISTIC && is_fma(r) && r.memory <= max_workspace;
                });
        } else {
            pick = first_ok(perf, count, [&](const Perf& r) { return r.memory <= max_workspace; });
        }
        if (pick) {
            p->algo = int(pick->algo);
            p->math = checking ? CUDNN_FMA_MATH : pick->mathType;
            p->deterministic = pick->determinism == CUDNN_DETERMINISTIC;
        } else {
            for (int a = 0; a < 16 && p->algo < 0; ++a) {
                std::size_t ws = 0;
                if (allowed(a) && workspace_of(a, ws) == CUDNN_STATUS_SUCCESS && ws <= max_workspace) {
                    p->algo = a;
                    p->math = checking ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
                    p->deterministic = true;
                }
            }
            char drop[256];
            cudnnGetLastErrorString(drop, sizeof(drop));  // drop the messages of the failed probes
        }
        SGF_CHECK(p->algo >= 0, BackendError,
                  "{}: cuDNN offers no {} algorithm for {} within the {}-byte workspace limit", conv_kind_name(kind),
                  checking ? "deterministic FMA-math (checking mode)" : "usable", conv_str(d), max_workspace);
    };

    switch (kind) {
        case ConvKind::forward: {
            std::array<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT> perf{};
            int count = 0;
            SGF_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, int(perf.size()),
                                                                   &count, perf.data()));
            auto allowed = [&](int a) {
                if (!checking) return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // fallback only
                return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
                       a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM ||
                       a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
            };
            auto ws_of = [&](int a, std::size_t& ws) {
                return cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y,
                                                               static_cast<cudnnConvolutionFwdAlgo_t>(a), &ws);
            };
            choose(perf.data(), count, allowed, ws_of);
            SGF_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->math));
            SGF_CUDNN_CHECK(ws_of(p->algo, p->workspace));
            break;
        }
        case ConvKind::backward_data: {
            std::array<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT> perf{};
            int count = 0;
            SGF_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, int(perf.size()),
                                                                        &count, perf.data()));
            auto allowed = [&](int a) {
                return checking ? a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 : a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
            };
            auto ws_of = [&](int a, std::size_t& ws) {
                return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x,
                                                                    static_cast<cudnnConvolutionBwdDataAlgo_t>(a), &ws);
            };
            choose(perf.data(), count, allowed, ws_of);
            SGF_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->math));
            SGF_CUDNN_CHECK(ws_of(p->algo, p->workspace));
            break;
        }
        case ConvKind::backward_filter: {
            std::array<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT> perf{};
            int count = 0;
            SGF_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                                          int(perf.size()), &count, perf.data()));
            auto allowed = [&](int a) {
                return checking ? a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 : a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
            };
            auto ws_of = [&](int a, std::size_t& ws) {
                return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                    h, p->x, p->y, p->conv, p->w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(a), &ws);
            };
            choose(perf.data(), count, allowed, ws_of);
            SGF_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, p->math));
            SGF_CUDNN_CHECK(ws_of(p->algo, p->workspace));
            break;
        }
    }
    return p;
}

}  // namespace detail
}  // namespace sgf::cuda

#else  // no cuDNN: the backend uses its direct convolution kernels

namespace sgf::cuda {
enum class Mode { fast, checking };
}

#endif
