// The CUDA backend's own kernels: everything except GEMM (cuBLAS) and convolutions (cuDNN).
//
// Design: three generic kernels do all the launching, and each op is a small functor:
//  * for_each(n, f):                f(i) for every i < n (grid-stride loop);
//  * reduce_partial + reduce_final: a full reduction of f(i) in double, in a FIXED order for a
//                                   given n (per-block partials, then one block sums the partials),
//                                   so results are deterministic run to run - no atomics;
//  * segment_reduce(S, L, f, fin):  for each segment s < S, fin(s, sum_{j<L} f(s, j)), one block per
//                                   segment (grid-stride over segments), double accumulation.
// Semantics are those of backends/reference (the float64 oracle); the comments name the op.
//
// The functors are plain structs whose operator() is __host__ __device__ (with a host compiler,
// <cuda_runtime.h> makes both empty), which is how tests/cuda/emulated_backend.hpp runs the very
// same element code on the CPU for the conformance suite. Only the generic launch kernels below
// need nvcc.
#pragma once

#include <sgf/core/descriptors.hpp>
#include <sgf/core/philox.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace sgf::cuda::kernels {

/// Element code is __host__ __device__: the same functors run on the CPU in the emulated backend.
#define SGF_CUDA_HD __host__ __device__

inline constexpr int kThreads = 256;  // every launch uses 256 threads (a multiple of the warp size)

/// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned blocks_for(std::int64_t n) {
    const std::int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(std::clamp<std::int64_t>(b, 1, std::int64_t(1) << 20));
}
/// Blocks (= partial sums) of a full reduction over n elements: a function of n only.
inline unsigned partial_blocks(std::int64_t n) {
    const std::int64_t b = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(std::clamp<std::int64_t>(b, 1, 1024));
}

#if defined(__CUDACC__)
#define SGF_CUDA_GRID_LOOP(i, n)                                                          \
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
         i += std::int64_t(gridDim.x) * blockDim.x)

/// Sum of v over the block (blockDim.x a multiple of 32, at most 1024); valid in thread 0.
/// Ends with a barrier, so it may be called again in the same kernel.
__device__ inline double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    const int nwarps = static_cast<int>(blockDim.x >> 5);
    v = (threadIdx.x < static_cast<unsigned>(nwarps)) ? warp_sums[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;
}

template <class F>
__global__ void for_each(std::int64_t n, F f) {
    SGF_CUDA_GRID_LOOP(i, n) f(i);
}

template <class F>
__global__ void reduce_partial(std::int64_t n, F f, double* partial) {
    double acc = 0;
    SGF_CUDA_GRID_LOOP(i, n) acc += f(i);
    acc = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <class Fin>
__global__ void reduce_final(int parts, const double* partial, Fin fin) {
    double acc = 0;
    for (int i = static_cast<int>(threadIdx.x); i < parts; i += static_cast<int>(blockDim.x)) acc += partial[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) fin(acc);
}

template <class F, class Fin>
__global__ void segment_reduce(std::int64_t segments, std::int64_t len, F f, Fin fin) {
    for (std::int64_t s = blockIdx.x; s < segments; s += gridDim.x) {
        double acc = 0;
        for (std::int64_t j = threadIdx.x; j < len; j += blockDim.x) acc += f(s, j);
        acc = block_sum(acc);
        if (threadIdx.x == 0) fin(s, acc);
    }
}
#endif  // __CUDACC__

/// out = result + beta * out, never reading out when beta == 0 (the contract's overwrite).
template <class T>
SGF_CUDA_HD inline T combine(double result, T beta, const T& out) {
    return beta == T(0) ? T(result) : T(result + double(beta) * double(out));
}

// ------------------------------------------------------------------------------------ finishers
struct StoreDouble {  // reduce_final: *out = acc (device scratch, copied to the host afterwards)
    double* out;
    SGF_CUDA_HD void operator()(double acc) const { *out = acc; }
};
template <class T>
struct StoreCombine1 {  // reduce_final: out[0] = acc + beta * out[0]
    T* out;
    T beta;
    SGF_CUDA_HD void operator()(double acc) const { out[0] = combine(acc, beta, out[0]); }
};
template <class T>
struct StoreCombine {  // segment_reduce: out[s] = scale * acc + beta * out[s]
    T* out;
    double scale;
    T beta;
    SGF_CUDA_HD void operator()(std::int64_t s, double acc) const { out[s] = combine(scale * acc, beta, out[s]); }
};
struct StoreScaledDouble {  // segment_reduce: out[s] = scale * acc (double scratch)
    double* out;
    double scale;
    SGF_CUDA_HD void operator()(std::int64_t s, double acc) const { out[s] = scale * acc; }
};

// -------------------------------------------------------------------------------------- storage
template <class T>
struct Fill {
    T* p;
    T v;
    SGF_CUDA_HD void operator()(std::int64_t i) const { p[i] = v; }
};
template <class T>
struct Copy2d {  // dst[r*dst_ld + c] = src[r*src_ld + c]
    const T* src;
    T* dst;
    std::int64_t cols, src_ld, dst_ld;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t r = i / cols, c = i % cols;
        dst[r * dst_ld + c] = src[r * src_ld + c];
    }
};
template <class T>
struct ScaleRows {  // C[r*ldc + c] = beta * C[...] (0 when beta == 0, C not read): GEMM with K == 0 or alpha == 0
    T* c;
    std::int64_t cols, ldc;
    T beta;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        T& v = c[(i / cols) * ldc + i % cols];
        v = beta == T(0) ? T(0) : beta * v;
    }
};

// ---------------------------------------------------------------------------------- elementwise
template <class T>
struct BiasAct {  // y = gain * act(x + bias_scale * bias[c]); y may alias x
    const T* x;
    const T* bias;
    T* y;
    T bias_scale, gain;
    std::int64_t C, HW;
    bool lrelu;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const T b = bias ? bias[(i / HW) % C] * bias_scale : T(0);
        const T t = x[i] + b;
        y[i] = (lrelu && !(t > T(0))) ? t * (T(kLreluSlope) * gain) : t * gain;
    }
};
template <class T>
struct BiasActGrad {  // dx = dy * gain * act'(y), act' read from the forward output; dx may alias dy
    const T* y;
    const T* dy;
    T* dx;
    T gain;
    bool lrelu;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const T slope = (lrelu && !(y[i] > T(0))) ? T(kLreluSlope) * gain : gain;
        dx[i] = dy[i] * slope;
    }
};
template <class T>
struct ChannelValue {  // segment c of an NCHW tensor: element k < N*HW is x[n, c, j], n = k / HW, j = k % HW
    const T* x;
    std::int64_t C, HW;
    SGF_CUDA_HD double operator()(std::int64_t c, std::int64_t k) const {
        return double(x[((k / HW) * C + c) * HW + k % HW]);
    }
};
template <class T>
struct ScaleChannels {  // y[nc, :] = x[nc, :] * s[nc]
    const T* x;
    const T* s;
    T* y;
    std::int64_t HW;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] = x[i] * s[i / HW]; }
};
template <class T>
struct SegmentProduct {  // segment s: a[s*len + j] * b[s*len + j]
    const T* a;
    const T* b;
    std::int64_t len;
    SGF_CUDA_HD double operator()(std::int64_t s, std::int64_t j) const {
        const std::int64_t i = s * len + j;
        return double(a[i]) * double(b[i]);
    }
};
template <class T>
struct SegmentSquare {  // segment s: x[s*len + j]^2
    const T* x;
    std::int64_t len;
    SGF_CUDA_HD double operator()(std::int64_t s, std::int64_t j) const {
        const double v = double(x[s * len + j]);
        return v * v;
    }
};
template <class T>
struct AddNoise {  // y[n,c,h,w] += strength[0] * noise[n,h,w]
    T* y;
    const T* noise;
    const T* strength;
    std::int64_t C, HW;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] += strength[0] * noise[(i / (C * HW)) * HW + i % HW]; }
};
template <class T>
struct NoiseProduct {  // dy[n,c,h,w] * noise[n,h,w]
    const T* dy;
    const T* noise;
    std::int64_t C, HW;
    SGF_CUDA_HD double operator()(std::int64_t i) const {
        return double(dy[i]) * double(noise[(i / (C * HW)) * HW + i % HW]);
    }
};
template <class T>
struct Axpby {  // y = alpha * x + beta * y (y not read when beta == 0)
    const T* x;
    T* y;
    T alpha, beta;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] = beta == T(0) ? alpha * x[i] : alpha * x[i] + beta * y[i]; }
};
template <class T>
struct Mul {
    const T* a;
    const T* b;
    T* y;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] = a[i] * b[i]; }
};
template <class T>
struct RsqrtEps {  // 1 / sqrt(x + eps), IEEE division and square root (not the approximate rsqrt)
    const T* x;
    T* y;
    T eps;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] = T(1) / std::sqrt(x[i] + eps); }
};
template <class T>
struct Square {
    const T* x;
    T* y;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] = x[i] * x[i]; }
};
template <class T>
struct Clamp {  // y = min(max(x, lo), hi); mask (nullable) = 1{lo <= x <= hi}; y may alias x
    const T* x;
    T* y;
    T* mask;
    T lo, hi;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const T v = x[i];
        if (mask) mask[i] = (v >= lo && v <= hi) ? T(1) : T(0);
        y[i] = v < lo ? lo : (v > hi ? hi : v);
    }
};
template <class T>
struct QuantizeU8 {  // y = from_u8(to_u8(x)) of core/shape.hpp, in float; y may alias x
    const T* x;
    T* y;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const float v = (float(x[i]) + 1.0f) * 127.5f;
        // !(v > 0) also catches NaN; roundf rounds half away from zero, as std::lround in to_u8
        const float u = !(v > 0.0f) ? 0.0f : (v >= 255.0f ? 255.0f : ::roundf(v));
        y[i] = T(u / 127.5f - 1.0f);
    }
};
template <class T>
struct GroupScaleAdd {  // y[g*size + j] += alpha * coef[g] * x[g*size + j]
    const T* coef;
    const T* x;
    T* y;
    T alpha;
    std::int64_t size;
    SGF_CUDA_HD void operator()(std::int64_t i) const { y[i] += (alpha * coef[i / size]) * x[i]; }
};

// ----------------------------------------------------------------------------------- reductions
template <class T>
struct Load {
    const T* x;
    SGF_CUDA_HD double operator()(std::int64_t i) const { return double(x[i]); }
};
template <class T>
struct Product {
    const T* a;
    const T* b;
    SGF_CUDA_HD double operator()(std::int64_t i) const { return double(a[i]) * double(b[i]); }
};
template <class T>
struct ColumnValue {  // sum_rows: segment c (a column), element r: x[r*cols + c]
    const T* x;
    std::int64_t cols;
    SGF_CUDA_HD double operator()(std::int64_t c, std::int64_t r) const { return double(x[r * cols + c]); }
};
template <class T>
struct NonFinite {  // 1 for NaN or +-Inf, else 0 (all_finite: the count is 0)
    const T* x;
    SGF_CUDA_HD double operator()(std::int64_t i) const { return std::isfinite(x[i]) ? 0.0 : 1.0; }
};

// ----------------------------------------------------------------------------------- resampling
/// Geometry of one FirDesc for the kernels (taps and gain in T).
template <class T>
struct FirGeom {
    std::int64_t h, w, oh, ow;
    int up, down, pad0;
    T taps[4];
    T gain;
};

/// upfirdn2d forward, one output element per thread: y[oy,ox] = gain * sum_{a,b} taps[a] taps[b] *
/// padded[oy*down + a, ox*down + b], padded[py,px] = x[(py-pad0)/up, (px-pad0)/up] where that is a
/// data sample (py-pad0 >= 0, divisible by up, inside the input), else 0.
template <class T>
struct Fir {
    const T* x;
    T* y;
    FirGeom<T> g;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t ox = i % g.ow, oy = (i / g.ow) % g.oh, pl = i / (g.ow * g.oh);
        const T* xp = x + pl * g.h * g.w;
        T acc = 0;
        for (int a = 0; a < 4; ++a) {
            const std::int64_t ry = oy * g.down + a - g.pad0;
            if (ry < 0 || ry % g.up != 0) continue;
            const std::int64_t iy = ry / g.up;
            if (iy >= g.h) continue;
            T row = 0;
            for (int b = 0; b < 4; ++b) {
                const std::int64_t rx = ox * g.down + b - g.pad0;
                if (rx < 0 || rx % g.up != 0) continue;
                const std::int64_t ix = rx / g.up;
                if (ix >= g.w) continue;
                row += g.taps[b] * xp[iy * g.w + ix];
            }
            acc += g.taps[a] * row;
        }
        y[i] = g.gain * acc;
    }
};

/// The adjoint, one input element per thread (a gather, so no atomics): dx[iy,ix] = gain * sum over
/// the (oy, a), (ox, b) with oy*down + a = iy*up + pad0 and ox*down + b = ix*up + pad0 of
/// taps[a] taps[b] dy[oy,ox].
template <class T>
struct FirBackward {
    const T* dy;
    T* dx;
    FirGeom<T> g;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t ix = i % g.w, iy = (i / g.w) % g.h, pl = i / (g.w * g.h);
        const std::int64_t py = iy * g.up + g.pad0, px = ix * g.up + g.pad0;
        const T* dyp = dy + pl * g.oh * g.ow;
        T acc = 0;
        for (int a = 0; a < 4; ++a) {
            const std::int64_t ty = py - a;
            if (ty < 0 || ty % g.down != 0) continue;
            const std::int64_t oy = ty / g.down;
            if (oy >= g.oh) continue;
            T row = 0;
            for (int b = 0; b < 4; ++b) {
                const std::int64_t tx = px - b;
                if (tx < 0 || tx % g.down != 0) continue;
                const std::int64_t ox = tx / g.down;
                if (ox >= g.ow) continue;
                row += g.taps[b] * dyp[oy * g.ow + ox];
            }
            acc += g.taps[a] * row;
        }
        dx[i] = g.gain * acc;
    }
};

// ----------------------------------------------------------------------------- minibatch stddev
inline constexpr double kMbstdEps = 1e-8;

/// x viewed as [G, M, F]: mean and biased variance over g of element (m, j), in double.
template <class T>
SGF_CUDA_HD inline void mbstd_moments(const T* x, std::int64_t G, std::int64_t M, std::int64_t F, std::int64_t m,
                                     std::int64_t j, double& mean, double& sd) {
    double s = 0;
    for (std::int64_t g = 0; g < G; ++g) s += double(x[(g * M + m) * F + j]);
    mean = s / double(G);
    double v = 0;
    for (std::int64_t g = 0; g < G; ++g) {
        const double d = double(x[(g * M + m) * F + j]) - mean;
        v += d * d;
    }
    sd = std::sqrt(v / double(G) + kMbstdEps);
}
template <class T>
struct MbstdStd {  // sd[m*F + j] = sqrt(var_g x[g, m, j] + 1e-8)
    const T* x;
    double* sd;
    std::int64_t G, M, F;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        double mean, s;
        mbstd_moments(x, G, M, F, i / F, i % F, mean, s);
        sd[i] = s;
    }
};
struct SegmentLoadDouble {  // segment s: v[s*len + j]
    const double* v;
    std::int64_t len;
    SGF_CUDA_HD double operator()(std::int64_t s, std::int64_t j) const { return v[s * len + j]; }
};
template <class T>
struct MbstdOut {  // y[n] = concat(x[n], feature[n % M] broadcast over one H x W channel)
    const T* x;
    const double* feature;
    T* y;
    std::int64_t C, HW, M;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t per = (C + 1) * HW, n = i / per, r = i % per;
        y[i] = r < C * HW ? x[n * C * HW + r] : T(feature[n % M]);
    }
};
template <class T>
struct MbstdFeatureGrad {  // segment m: dy's extra channel of every sample n = g*M + m
    const T* dy;
    std::int64_t M, C, HW;
    SGF_CUDA_HD double operator()(std::int64_t m, std::int64_t k) const {
        const std::int64_t g = k / HW, j = k % HW;
        return double(dy[((g * M + m) * (C + 1) + C) * HW + j]);
    }
};
template <class T>
struct MbstdBackward {  // one thread per (m, j): writes dx[g*M + m, j] for every g (each dx element once)
    const T* x;
    const T* dy;
    const double* gstd;  // dL/dfeature[m] / F
    T* dx;
    std::int64_t G, M, F, HW;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t m = i / F, j = i % F;
        double mean, sd;
        mbstd_moments(x, G, M, F, m, j, mean, sd);
        const double k = gstd[m] / (double(G) * sd);
        for (std::int64_t g = 0; g < G; ++g) {
            const std::int64_t n = g * M + m, idx = n * F + j;
            dx[idx] = T(double(dy[n * (F + HW) + j]) + k * (double(x[idx]) - mean));
        }
    }
};

// ------------------------------------------------------------------------------- random numbers
template <class T>
struct Normal {
    RngKey key;
    T* out;
    SGF_CUDA_HD void operator()(std::int64_t i) const { out[i] = T(philox::normal(key, std::uint64_t(i))); }
};
template <class T>
struct Uniform {
    RngKey key;
    T* out;
    SGF_CUDA_HD void operator()(std::int64_t i) const { out[i] = T(philox::uniform(key, std::uint64_t(i))); }
};
template <class T>
struct Bits {
    RngKey key;
    T* out;
    SGF_CUDA_HD void operator()(std::int64_t i) const { out[i] = T(philox::bit(key, std::uint64_t(i))); }
};

// --------------------------------------------------------------------------------------- losses
SGF_CUDA_HD inline double sigmoid(double t) {
    if (t >= 0) return 1.0 / (1.0 + std::exp(-t));
    const double e = std::exp(t);
    return e / (1.0 + e);
}
SGF_CUDA_HD inline double softplus(double t) { return std::fmax(t, 0.0) + std::log1p(std::exp(-std::fabs(t))); }

/// Loss functors return the per-element loss (summed by reduce_partial) and write the gradient.
template <class T>
struct SoftplusLoss {  // softplus(sign * x); grad = grad_scale * sign * sigmoid(sign * x)
    const T* x;
    T* grad;
    double sign, grad_scale;
    SGF_CUDA_HD double operator()(std::int64_t i) const {
        const double t = sign * double(x[i]);
        if (grad) grad[i] = T(grad_scale * sign * sigmoid(t));
        return softplus(t);
    }
};
template <class T>
struct BceLogitsLoss {  // max(l,0) - l t + log1p(exp(-|l|)); grad = grad_scale * (sigmoid(l) - t)
    const T* logits;
    const T* targets;
    T* grad;
    double grad_scale;
    SGF_CUDA_HD double operator()(std::int64_t i) const {
        const double l = double(logits[i]), t = double(targets[i]);
        if (grad) grad[i] = T(grad_scale * (sigmoid(l) - t));
        return std::fmax(l, 0.0) - l * t + std::log1p(std::exp(-std::fabs(l)));
    }
};
template <class T>
struct MseLoss {  // (a - b)^2; grad_a = grad_scale * 2 (a - b)
    const T* a;
    const T* b;
    T* grad;
    double grad_scale;
    SGF_CUDA_HD double operator()(std::int64_t i) const {
        const double d = double(a[i]) - double(b[i]);
        if (grad) grad[i] = T(grad_scale * 2.0 * d);
        return d * d;
    }
};

// ------------------------------------------------------------------------------------ optimiser
template <class T>
struct AdamStep {  // bias-corrected Adam, written like the CPU backend: p -= step * m / (sqrt(v) * rc2 + eps)
    T* p;
    const T* g;
    T* m;
    T* v;
    T b1, b2, step, rc2, eps;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const T gi = g[i];
        const T mi = b1 * m[i] + (T(1) - b1) * gi;
        const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * mi / (std::sqrt(vi) * rc2 + eps);
    }
};
template <class T>
struct Ema {  // e = beta * e + (1 - beta) * src
    T* e;
    const T* src;
    T beta;
    SGF_CUDA_HD void operator()(std::int64_t i) const { e[i] = beta * e[i] + (T(1) - beta) * src[i]; }
};

// --------------------------------------------------------------- direct convolutions (no cuDNN)
/// The plain convolution kernels used when the build has no cuDNN or ConvEngine::direct is chosen:
/// one output element per thread, gathers only (no atomics, deterministic), accumulation in T.
struct ConvGeom {
    std::int64_t n, c_in, h, w, c_out, k, stride, pad, oh, ow;
};
template <class T>
struct ConvForwardDirect {  // y = alpha * conv(x, w) + beta * y
    const T* x;
    const T* wt;
    T* y;
    T alpha, beta;
    ConvGeom d;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t ox = i % d.ow, oy = (i / d.ow) % d.oh, o = (i / (d.ow * d.oh)) % d.c_out,
                           n = i / (d.ow * d.oh * d.c_out);
        T acc = 0;
        for (std::int64_t c = 0; c < d.c_in; ++c)
            for (std::int64_t ky = 0; ky < d.k; ++ky) {
                const std::int64_t iy = oy * d.stride - d.pad + ky;
                if (iy < 0 || iy >= d.h) continue;
                for (std::int64_t kx = 0; kx < d.k; ++kx) {
                    const std::int64_t ix = ox * d.stride - d.pad + kx;
                    if (ix < 0 || ix >= d.w) continue;
                    acc += x[((n * d.c_in + c) * d.h + iy) * d.w + ix] * wt[((o * d.c_in + c) * d.k + ky) * d.k + kx];
                }
            }
        y[i] = combine(double(alpha) * double(acc), beta, y[i]);
    }
};
template <class T>
struct ConvBackwardDataDirect {  // dx = alpha * conv^T(dy, w) + beta * dx
    const T* dy;
    const T* wt;
    T* dx;
    T alpha, beta;
    ConvGeom d;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t ix = i % d.w, iy = (i / d.w) % d.h, c = (i / (d.w * d.h)) % d.c_in,
                           n = i / (d.w * d.h * d.c_in);
        T acc = 0;
        for (std::int64_t ky = 0; ky < d.k; ++ky) {
            const std::int64_t ty = iy + d.pad - ky;
            if (ty < 0 || ty % d.stride != 0 || ty / d.stride >= d.oh) continue;
            const std::int64_t oy = ty / d.stride;
            for (std::int64_t kx = 0; kx < d.k; ++kx) {
                const std::int64_t tx = ix + d.pad - kx;
                if (tx < 0 || tx % d.stride != 0 || tx / d.stride >= d.ow) continue;
                const std::int64_t ox = tx / d.stride;
                for (std::int64_t o = 0; o < d.c_out; ++o)
                    acc += dy[((n * d.c_out + o) * d.oh + oy) * d.ow + ox] * wt[((o * d.c_in + c) * d.k + ky) * d.k + kx];
            }
        }
        dx[i] = combine(double(alpha) * double(acc), beta, dx[i]);
    }
};
template <class T>
struct ConvBackwardFilterDirect {  // dw = alpha * sum_{n,oy,ox} dy * x + beta * dw
    const T* x;
    const T* dy;
    T* dw;
    T alpha, beta;
    ConvGeom d;
    SGF_CUDA_HD void operator()(std::int64_t i) const {
        const std::int64_t kx = i % d.k, ky = (i / d.k) % d.k, c = (i / (d.k * d.k)) % d.c_in, o = i / (d.k * d.k * d.c_in);
        T acc = 0;
        for (std::int64_t n = 0; n < d.n; ++n)
            for (std::int64_t oy = 0; oy < d.oh; ++oy) {
                const std::int64_t iy = oy * d.stride - d.pad + ky;
                if (iy < 0 || iy >= d.h) continue;
                for (std::int64_t ox = 0; ox < d.ow; ++ox) {
                    const std::int64_t ix = ox * d.stride - d.pad + kx;
                    if (ix < 0 || ix >= d.w) continue;
                    acc += dy[((n * d.c_out + o) * d.oh + oy) * d.ow + ox] * x[((n * d.c_in + c) * d.h + iy) * d.w + ix];
                }
            }
        dw[i] = combine(double(alpha) * double(acc), beta, dw[i]);
    }
};

}  // namespace sgf::cuda::kernels
