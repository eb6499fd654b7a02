// The backend contract. A backend is an object (it may own thread pools, streams, library
// handles) with a Scalar type, an owning Buffer type and a set of ops on raw pointers into its
// memory (device pointers for a GPU backend). Layers, networks and losses are templates over a
// type modelling `Backend`; they never touch element memory themselves, so a GPU backend fits
// without changes to the core.
//
// Conventions for every op:
//  * tensors are dense NCHW (see core/shape.hpp); pointers may alias only where an op says so;
//  * `beta` selects overwrite (0) or accumulate (1) into the output: out = result + beta * out,
//    as in BLAS and cuDNN. This is how backward passes implement GradMode::accumulate/overwrite;
//  * ops are asynchronous with respect to the host except those returning a host value
//    (sum, dot, losses, all_finite) and download(), which synchronise.
// Exact semantics of each op are those of the plain reference backend
// (backends/reference/sgf/backends/reference.hpp), which is the test oracle.
#pragma once

#include <sgf/core/descriptors.hpp>
#include <sgf/core/error.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sgf {

template <class B>
using scalar_t = typename B::Scalar;

/// copy2d's precondition, checked by every backend: non-negative sizes and leading dimensions, and
/// dst_ld >= cols when more than one row is copied (with dst_ld < cols destination rows overlap and
/// the copy would write elements twice, leaving which value wins to the backend). src_ld < cols is
/// allowed: overlapping source rows are plain reads (src_ld = 0 repeats one row).
inline void check_copy2d(std::int64_t rows, std::int64_t cols, std::int64_t src_ld, std::int64_t dst_ld) {
    SGF_CHECK(rows >= 0 && cols >= 0 && src_ld >= 0 && dst_ld >= 0, ArgumentError,
              "copy2d: negative size or leading dimension (rows {}, cols {}, src_ld {}, dst_ld {})", rows, cols, src_ld, dst_ld);
    SGF_CHECK(rows <= 1 || cols == 0 || dst_ld >= cols, ArgumentError,
              "copy2d: dst_ld {} < cols {} with {} rows would write destination elements twice", dst_ld, cols, rows);
}

/// Allocation, host<->backend copies, fills, strided copies.
template <class B>
concept StorageBackend = requires(B& b, const B& cb, typename B::Buffer& buf, typename B::Scalar* p,
                                  const typename B::Scalar* cp, typename B::Scalar v, std::size_t n,
                                  std::int64_t i) {
    requires std::floating_point<typename B::Scalar>;
    requires std::movable<typename B::Buffer>;
    { B::name() } -> std::convertible_to<std::string_view>;
    { b.allocate(n) } -> std::same_as<typename B::Buffer>;
    { buf.data() } -> std::same_as<typename B::Scalar*>;
    { buf.size() } -> std::convertible_to<std::size_t>;
    b.upload(cp, n, p);    // host -> backend
    b.download(cp, n, p);  // backend -> host (synchronises)
    b.fill(p, n, v);
    b.copy(cp, p, n);                 // backend -> backend
    b.copy2d(i, i, cp, i, p, i);      // rows, cols, src, src_ld, dst, dst_ld (see check_copy2d)
    b.synchronize();
};

/// Row-major GEMM: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C. As in BLAS, A and B are not
/// read when alpha == 0 or K == 0 (C becomes beta * C, even if A or B hold NaN), and C is not read
/// when beta == 0 (C becomes alpha * op(A) op(B), even if C held NaN).
template <class B>
concept GemmBackend = requires(B& b, typename B::Scalar* p, const typename B::Scalar* cp, typename B::Scalar v,
                               std::int64_t i, bool t) {
    b.gemm(t, t, i, i, i, v, cp, i, cp, i, v, p, i);
};

/// Convolution forward, backward-data and backward-filter (stride, zero padding; see ConvDesc).
///   forward:          y  = alpha * conv(x, w) + beta * y
///   backward_data:    dx = alpha * conv^T(dy, w) + beta * dx   (also a transposed convolution)
///   backward_filter:  dw = alpha * d<conv(x,w), dy>/dw + beta * dw
template <class B>
concept ConvBackend = requires(B& b, const ConvDesc& d, typename B::Scalar* p, const typename B::Scalar* cp,
                               typename B::Scalar v) {
    b.conv2d_forward(d, v, cp, cp, v, p);
    b.conv2d_backward_data(d, v, cp, cp, v, p);
    b.conv2d_backward_filter(d, v, cp, cp, v, p);
};

/// Elementwise and per-channel ops, including the fused bias + activation used after every layer.
template <class B>
concept ElementwiseBackend = requires(B& b, const Shape& s, typename B::Scalar* p, const typename B::Scalar* cp,
                                      typename B::Scalar v, std::int64_t i, Act a) {
    // y = gain * act(x + bias_scale * bias[c]); bias may be null; y may alias x.
    b.bias_act(s, cp, cp, v, a, v, p);
    // dx = dy * gain * act'(.) (the sign is read from y, the forward output); dbias (nullable):
    // dbias[c] = bias_scale * sum_{n,h,w} dx + beta * dbias[c]. dx may alias dy.
    b.bias_act_backward(s, cp, cp, a, v, p, p, v, v);
    b.scale_channels(s, cp, cp, p);   // y[n,c,:,:] = x[n,c,:,:] * s[n*C+c]; y may alias x
    b.channel_dot(s, cp, cp, v, p);   // out[n*C+c] = sum_{h,w} a*b + beta * out
    b.add_noise(s, p, cp, cp);        // y[n,c,h,w] += strength[0] * noise[n,h,w]
    b.noise_backward(s, cp, cp, v, p);  // ds[0] = sum dy[n,c,h,w] * noise[n,h,w] + beta * ds[0]
    b.axpby(i, v, cp, v, p);          // y = alpha * x + beta * y
    b.mul(i, cp, cp, p);              // y = a * b
    b.rsqrt_eps(i, cp, v, p);         // y = 1 / sqrt(x + eps)
    b.square(i, cp, p);               // y = x * x
    // y = min(max(x, lo), hi), mask (nullable) = 1{lo <= x <= hi}; lo <= hi; NaN gives y NaN, mask 0;
    // y may alias x, mask may alias neither
    b.clamp(i, cp, v, v, p, p);
    // y = from_u8(to_u8(x)) (core/shape.hpp): the value an 8-bit image file stores for x, computed in
    // float as the image writer does (NaN and -inf -> -1, +inf -> 1); y may alias x
    b.quantize_u8(i, cp, p);
    b.group_sumsq(i, i, cp, v, p);    // out[g] = alpha * sum_j x[g*size + j]^2   (groups, size, x, alpha, out)
    b.group_scale_add(i, i, cp, cp, v, p);  // y[g*size+j] += alpha * coef[g] * x[g*size+j]
};

/// Reductions. sum/dot return host values.
template <class B>
concept ReductionBackend = requires(B& b, typename B::Scalar* p, const typename B::Scalar* cp, typename B::Scalar v,
                                    std::int64_t i) {
    { b.sum(i, cp) } -> std::convertible_to<double>;
    { b.dot(i, cp, cp) } -> std::convertible_to<double>;
    b.sum_rows(i, i, cp, v, p);  // out[c] = sum_r x[r*cols + c] + beta * out[c]   (rows, cols, x, beta, out)
    { b.all_finite(i, cp) } -> std::same_as<bool>;
};

/// FIR up/down-sampling (see FirDesc) and its adjoint, and the minibatch-stddev layer.
template <class B>
concept ResampleBackend = requires(B& b, const FirDesc& f, const Shape& s, typename B::Scalar* p,
                                   const typename B::Scalar* cp, int g) {
    b.fir(f, cp, p);            // y = upfirdn(x)
    b.fir_backward(f, cp, p);   // dx = upfirdn^T(dy)   (overwrites dx)
    b.mbstd(s, g, cp, p);                // y: [N, C+1, H, W] = concat(x, stddev feature), group size g
    b.mbstd_backward(s, g, cp, cp, p);   // (x, dy, dx): dx overwritten
};

/// Counter-based random numbers (Philox4x32-10, see core/philox.hpp): identical on every backend.
template <class B>
concept RandomBackend = requires(B& b, const RngKey& k, typename B::Scalar* p, std::int64_t i) {
    b.normal(k, i, p);    // N(0, 1)
    b.uniform(k, i, p);   // U(0, 1)
    b.bits(k, i, p);      // 0.0 / 1.0 with probability 1/2
};

/// Losses. Each returns the SUM over the n elements of the per-element loss (host value) and, when
/// grad is not null, writes grad[i] = grad_scale * d loss_i / d x_i (overwrites).
template <class B>
concept LossBackend = requires(B& b, typename B::Scalar* p, const typename B::Scalar* cp, typename B::Scalar v,
                               std::int64_t i) {
    { b.softplus_loss(i, cp, v, v, p) } -> std::convertible_to<double>;   // (n, x, sign, grad_scale, grad): softplus(sign*x)
    { b.bce_logits_loss(i, cp, cp, v, p) } -> std::convertible_to<double>;  // (n, logits, targets, grad_scale, grad)
    { b.mse_loss(i, cp, cp, v, p) } -> std::convertible_to<double>;       // (n, a, b, grad_scale, grad_a): (a-b)^2
};

/// Optimiser step and parameter EMA.
template <class B>
concept OptimiserBackend = requires(B& b, typename B::Scalar* p, const typename B::Scalar* cp, typename B::Scalar v,
                                    std::int64_t i, const AdamParams& h) {
    b.adam_step(i, p, cp, p, p, h, i);  // (n, param, grad, m, v, hyper, step t >= 1), bias-corrected Adam
    b.ema(i, p, cp, v);                 // ema = beta * ema + (1 - beta) * src
};

/// Everything sgf needs from a backend.
template <class B>
concept Backend = StorageBackend<B> && GemmBackend<B> && ConvBackend<B> && ElementwiseBackend<B> &&
                  ReductionBackend<B> && ResampleBackend<B> && RandomBackend<B> && LossBackend<B> &&
                  OptimiserBackend<B>;

/// The float64 counterpart of a float32 backend, where there is one: specialised next to the backend
/// (backends/eigen: eigen::Backend<double> for eigen::Backend<float>) with
///   static constexpr bool available = true;  using type = <the float64 backend>;
///   static type make(const B&);               // same device / thread count
/// Used where float32 cannot be accurate, e.g. R1's Hessian-vector product (train/objective.hpp).
template <class B>
struct Float64Twin {
    static constexpr bool available = false;
};

}  // namespace sgf
