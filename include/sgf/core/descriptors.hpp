// Plain descriptors shared by every backend: what a convolution or a FIR resampling computes.
// They carry sizes only; pointers are passed to the backend op separately.
#pragma once

#include <sgf/core/shape.hpp>

#include <array>
#include <cstdint>

namespace sgf {

/// 2-D cross-correlation (like PyTorch's conv2d / cuDNN's CUDNN_CROSS_CORRELATION):
///   y[n,o,oy,ox] = sum_{i,ky,kx} x[n,i, oy*stride-pad+ky, ox*stride-pad+kx] * w[o,i,ky,kx]
/// with zero padding. x: [n, c_in, h, w]; w: [c_out, c_in, k, k]; y: [n, c_out, out_h, out_w].
struct ConvDesc {
    std::int64_t n = 0, c_in = 0, h = 0, w = 0;
    std::int64_t c_out = 0, k = 1, stride = 1, pad = 0;

    constexpr std::int64_t out_h() const noexcept { return (h + 2 * pad - k) / stride + 1; }
    constexpr std::int64_t out_w() const noexcept { return (w + 2 * pad - k) / stride + 1; }
    constexpr Shape x_shape() const noexcept { return {n, c_in, h, w}; }
    constexpr Shape w_shape() const noexcept { return {c_out, c_in, k, k}; }
    constexpr Shape y_shape() const noexcept { return {n, c_out, out_h(), out_w()}; }
    /// Multiply-adds x2 of one forward pass.
    constexpr double flops() const noexcept {
        return 2.0 * double(n) * double(c_out) * double(out_h()) * double(out_w()) * double(c_in) * double(k * k);
    }
    void validate(std::string_view who) const {
        SGF_CHECK(n > 0 && c_in > 0 && h > 0 && w > 0 && c_out > 0 && k > 0 && stride > 0 && pad >= 0, ArgumentError,
                  "{}: invalid convolution (n={}, c_in={}, h={}, w={}, c_out={}, k={}, stride={}, pad={})", who, n,
                  c_in, h, w, c_out, k, stride, pad);
        SGF_CHECK(h + 2 * pad >= k && w + 2 * pad >= k, ShapeError,
                  "{}: kernel {} larger than padded input {}x{}", who, k, h + 2 * pad, w + 2 * pad);
    }
};

/// Separable FIR resampling ("upfirdn2d", as in StyleGAN2), per channel:
///   1. upsample by `up` (insert up-1 zeros after every sample),
///   2. zero-pad by pad0 before and pad1 after (same in y and x),
///   3. correlate with the 2-D filter f[a][b] = gain * taps[a] * taps[b] (taps are normalised to
///      sum 1; the 4-tap [1,3,3,1] filter is symmetric, so correlation equals convolution),
///   4. keep every `down`-th sample.
/// out = (in*up + pad0 + pad1 - ntaps) / down + 1.
struct FirDesc {
    std::int64_t n = 0, c = 0, h = 0, w = 0;
    int up = 1, down = 1, pad0 = 0, pad1 = 0;
    double gain = 1.0;
    std::array<double, 4> taps{0.125, 0.375, 0.375, 0.125};  // [1,3,3,1] / 8

    static constexpr int ntaps = 4;
    constexpr std::int64_t out_h() const noexcept { return (h * up + pad0 + pad1 - ntaps) / down + 1; }
    constexpr std::int64_t out_w() const noexcept { return (w * up + pad0 + pad1 - ntaps) / down + 1; }
    constexpr Shape x_shape() const noexcept { return {n, c, h, w}; }
    constexpr Shape y_shape() const noexcept { return {n, c, out_h(), out_w()}; }
    void validate(std::string_view who) const {
        SGF_CHECK(n > 0 && c > 0 && h > 0 && w > 0 && up >= 1 && down >= 1 && pad0 >= 0 && pad1 >= 0, ArgumentError,
                  "{}: invalid FIR resampling (n={}, c={}, h={}, w={}, up={}, down={}, pad={},{})", who, n, c, h, w,
                  up, down, pad0, pad1);
        SGF_CHECK(h * up + pad0 + pad1 >= ntaps && w * up + pad0 + pad1 >= ntaps, ShapeError,
                  "{}: input {}x{} too small for the FIR filter", who, h, w);
    }

    /// x2 upsampling that keeps alignment (output 2h x 2w): StyleGAN2's upsample2d.
    static FirDesc up2(Shape s) { return {s.n, s.c, s.h, s.w, 2, 1, 2, 1, 4.0}; }
    /// x2 downsampling (output h/2 x w/2): StyleGAN2's downsample2d.
    static FirDesc down2(Shape s) { return {s.n, s.c, s.h, s.w, 1, 2, 1, 1, 1.0}; }
    /// Plain blur with the given padding and gain (used around strided / transposed convs).
    static FirDesc blur(Shape s, int pad0, int pad1, double gain) { return {s.n, s.c, s.h, s.w, 1, 1, pad0, pad1, gain}; }
};

/// Activation after bias: linear, or StyleGAN2's lrelu(t) = leaky_relu(t, 0.2) (times a gain, sqrt 2).
enum class Act { linear, lrelu };
inline constexpr double kLreluSlope = 0.2;
inline constexpr double kSqrt2 = 1.4142135623730951;

/// Adam hyper-parameters for one step (the lazy-regularisation correction is applied by the caller
/// when it builds these, see layers/optim.hpp).
struct AdamParams {
    double lr = 0.002, beta1 = 0.0, beta2 = 0.99, eps = 1e-8;
};

/// Key of the counter-based random stream: element i of a draw uses Philox counter
/// (offset + i, stream) under key `seed` (see core/philox.hpp), so every backend draws the same numbers.
struct RngKey {
    std::uint64_t seed = 0;
    std::uint64_t stream = 0;
    std::uint64_t offset = 0;
};

}  // namespace sgf
