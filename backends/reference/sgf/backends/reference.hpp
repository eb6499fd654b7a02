// sgf::reference::Backend: the plain, obviously-correct implementation of every op in
// core/concepts.hpp. It is the TEST ORACLE: the conformance suite compares every other backend
// against it, and the gradient checks differentiate it numerically. Clarity over speed: every op
// is written as nested loops straight from its definition, in float64, with no im2col, no
// blocking and no threads. Do not use it for real work.
//
// Semantics that concepts.hpp leaves implicit, fixed here (every backend must follow them):
//  * beta == 0 means "overwrite": the output is NOT read, so it may hold garbage or NaN (the
//    BLAS / cuBLAS / cuDNN convention). Any other beta computes out = result + beta * out.
//    The conformance suite pre-fills outputs with NaN to check this.
//  * Ops without a beta overwrite their whole output (except add_noise and group_scale_add,
//    which add into y by definition).
//  * lrelu derivative in bias_act_backward is read from the forward output y:
//    act'(.) = 1 where y > 0, kLreluSlope (0.2) where y <= 0 (y == 0 counts as the negative
//    side; the pre-activation is exactly 0 there, where either one-sided derivative is valid).
//    This assumes gain > 0, as everywhere in sgf.
//  * group_scale_add's pointer order is (groups, size, coef, x, alpha, y).
//  * mbstd (StyleGAN2): G = min(group, N), N % G == 0 (else ShapeError), M = N / G; sample n
//    belongs to group column m = n % M (x viewed as [G, M, C, H, W], n = g*M + m); per m and per
//    element j of a sample: mean over g, var = mean over g of (x - mean)^2 (biased),
//    std = sqrt(var + 1e-8); feature[m] = mean of std over j = (c,h,w); y = concat(x, feature
//    broadcast over [1, H, W]) as the new last channel.
//  * losses: softplus(t) = max(t,0) + log1p(exp(-|t|)); BCE-with-logits(l, t) =
//    max(l,0) - l*t + log1p(exp(-|l|)); MSE (a-b)^2. Return the sum; grad (nullable) is
//    overwritten with grad_scale * d loss_i / d x_i.
//  * adam_step: PyTorch's Adam with bias correction:
//    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; m_hat = m/(1-b1^t); v_hat = v/(1-b2^t);
//    p -= lr * m_hat / (sqrt(v_hat) + eps).
//  * copy may be called with overlapping ranges (memmove semantics).
#pragma once

#include <sgf/core/concepts.hpp>
#include <sgf/core/philox.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace sgf::reference {

/// Host memory: a std::vector<double> with the data()/size() a backend buffer needs.
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::size_t n) : v_(n, 0.0) {}
    double* data() noexcept { return v_.data(); }
    std::size_t size() const noexcept { return v_.size(); }

private:
    std::vector<double> v_;
};

class Backend {
public:
    using Scalar = double;
    using Buffer = reference::Buffer;

    static constexpr std::string_view name() { return "reference"; }

    // ------------------------------------------------------------------------------------ storage
    Buffer allocate(std::size_t n) { return Buffer(n); }
    void upload(const double* host, std::size_t n, double* dst) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = host[i];
    }
    void download(const double* src, std::size_t n, double* host) {
        for (std::size_t i = 0; i < n; ++i) host[i] = src[i];
    }
    void fill(double* dst, std::size_t n, double v) {
        for (std::size_t i = 0; i < n; ++i) dst[i] = v;
    }
    void copy(const double* src, double* dst, std::size_t n) {
        if (n) std::memmove(dst, src, n * sizeof(double));
    }
    /// dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols (preconditions: check_copy2d).
    void copy2d(std::int64_t rows, std::int64_t cols, const double* src, std::int64_t src_ld, double* dst,
                std::int64_t dst_ld) {
        check_copy2d(rows, cols, src_ld, dst_ld);
        for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) dst[r * dst_ld + c] = src[r * src_ld + c];
    }
    void synchronize() {}

    // --------------------------------------------------------------------------------------- gemm
    /// Row-major: C[M,N] = alpha * op(A) * op(B) + beta * C. A is stored [M,K] (or [K,M] when ta)
    /// with row stride lda; B is stored [K,N] (or [N,K] when tb) with row stride ldb.
    void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
              std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
        const std::int64_t K_read = alpha == 0 ? 0 : K;  // BLAS: A and B are not read when alpha == 0
        for (std::int64_t i = 0; i < M; ++i)
            for (std::int64_t j = 0; j < N; ++j) {
                double acc = 0;
                for (std::int64_t k = 0; k < K_read; ++k) {
                    const double a = ta ? A[k * lda + i] : A[i * lda + k];
                    const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                    acc += a * b;
                }
                C[i * ldc + j] = combine(alpha * acc, beta, C[i * ldc + j]);
            }
    }

    // -------------------------------------------------------------------------------- convolution
    /// y[n,o,oy,ox] = alpha * sum_{i,ky,kx} x[n,i,oy*s-p+ky,ox*s-p+kx] * w[o,i,ky,kx] + beta * y
    void conv2d_forward(const ConvDesc& d, double alpha, const double* x, const double* w, double beta, double* y) {
        d.validate("reference conv2d_forward");
        const std::int64_t OH = d.out_h(), OW = d.out_w();
        for (std::int64_t n = 0; n < d.n; ++n)
            for (std::int64_t o = 0; o < d.c_out; ++o)
                for (std::int64_t oy = 0; oy < OH; ++oy)
                    for (std::int64_t ox = 0; ox < OW; ++ox) {
                        double acc = 0;
                        for (std::int64_t i = 0; i < d.c_in; ++i)
                            for (std::int64_t ky = 0; ky < d.k; ++ky)
                                for (std::int64_t kx = 0; kx < d.k; ++kx) {
                                    const std::int64_t iy = oy * d.stride - d.pad + ky;
                                    const std::int64_t ix = ox * d.stride - d.pad + kx;
                                    if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;  // zero padding
                                    acc += x[x_index(d, n, i, iy, ix)] * w[w_index(d, o, i, ky, kx)];
                                }
                        double& out = y[((n * d.c_out + o) * OH + oy) * OW + ox];
                        out = combine(alpha * acc, beta, out);
                    }
    }

    /// dx = alpha * conv^T(dy, w) + beta * dx: every (output position, tap) pair of the forward
    /// pass sends dy * w back to the input element it read.
    void conv2d_backward_data(const ConvDesc& d, double alpha, const double* dy, const double* w, double beta,
                              double* dx) {
        d.validate("reference conv2d_backward_data");
        const std::int64_t OH = d.out_h(), OW = d.out_w();
        std::vector<double> acc(static_cast<std::size_t>(d.n * d.c_in * d.h * d.w), 0.0);
        for (std::int64_t n = 0; n < d.n; ++n)
            for (std::int64_t o = 0; o < d.c_out; ++o)
                for (std::int64_t oy = 0; oy < OH; ++oy)
                    for (std::int64_t ox = 0; ox < OW; ++ox) {
                        const double g = dy[((n * d.c_out + o) * OH + oy) * OW + ox];
                        for (std::int64_t i = 0; i < d.c_in; ++i)
                            for (std::int64_t ky = 0; ky < d.k; ++ky)
                                for (std::int64_t kx = 0; kx < d.k; ++kx) {
                                    const std::int64_t iy = oy * d.stride - d.pad + ky;
                                    const std::int64_t ix = ox * d.stride - d.pad + kx;
                                    if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                                    acc[static_cast<std::size_t>(x_index(d, n, i, iy, ix))] +=
                                        g * w[w_index(d, o, i, ky, kx)];
                                }
                    }
        for (std::size_t j = 0; j < acc.size(); ++j) dx[j] = combine(alpha * acc[j], beta, dx[j]);
    }

    /// dw[o,i,ky,kx] = alpha * sum_{n,oy,ox} dy[n,o,oy,ox] * x[n,i,oy*s-p+ky,ox*s-p+kx] + beta * dw
    void conv2d_backward_filter(const ConvDesc& d, double alpha, const double* x, const double* dy, double beta,
                                double* dw) {
        d.validate("reference conv2d_backward_filter");
        const std::int64_t OH = d.out_h(), OW = d.out_w();
        for (std::int64_t o = 0; o < d.c_out; ++o)
            for (std::int64_t i = 0; i < d.c_in; ++i)
                for (std::int64_t ky = 0; ky < d.k; ++ky)
                    for (std::int64_t kx = 0; kx < d.k; ++kx) {
                        double acc = 0;
                        for (std::int64_t n = 0; n < d.n; ++n)
                            for (std::int64_t oy = 0; oy < OH; ++oy)
                                for (std::int64_t ox = 0; ox < OW; ++ox) {
                                    const std::int64_t iy = oy * d.stride - d.pad + ky;
                                    const std::int64_t ix = ox * d.stride - d.pad + kx;
                                    if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                                    acc += dy[((n * d.c_out + o) * OH + oy) * OW + ox] * x[x_index(d, n, i, iy, ix)];
                                }
                        double& out = dw[w_index(d, o, i, ky, kx)];
                        out = combine(alpha * acc, beta, out);
                    }
    }

    // -------------------------------------------------------------------------------- elementwise
    /// y = gain * act(x + bias_scale * bias[c]); bias may be null; y may alias x.
    void bias_act(const Shape& s, const double* x, const double* bias, double bias_scale, Act act, double gain,
                  double* y) {
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c)
                for (std::int64_t j = 0; j < s.plane(); ++j) {
                    const std::int64_t idx = (n * s.c + c) * s.plane() + j;
                    const double t = x[idx] + (bias ? bias_scale * bias[c] : 0.0);
                    y[idx] = gain * activate(act, t);
                }
    }

    /// dx = dy * gain * act'(y); dbias[c] = bias_scale * sum_{n,h,w} dx + beta * dbias[c] (dbias
    /// nullable). dx may alias dy.
    void bias_act_backward(const Shape& s, const double* y, const double* dy, Act act, double gain, double* dx,
                           double* dbias, double bias_scale, double beta) {
        std::vector<double> channel_sum(static_cast<std::size_t>(s.c), 0.0);
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c)
                for (std::int64_t j = 0; j < s.plane(); ++j) {
                    const std::int64_t idx = (n * s.c + c) * s.plane() + j;
                    const double g = dy[idx] * gain * activation_slope(act, y[idx]);
                    dx[idx] = g;
                    channel_sum[static_cast<std::size_t>(c)] += g;
                }
        if (dbias)
            for (std::int64_t c = 0; c < s.c; ++c)
                dbias[c] = combine(bias_scale * channel_sum[static_cast<std::size_t>(c)], beta, dbias[c]);
    }

    /// y[n,c,:,:] = x[n,c,:,:] * sc[n*C+c]; y may alias x.
    void scale_channels(const Shape& s, const double* x, const double* sc, double* y) {
        for (std::int64_t nc = 0; nc < s.n * s.c; ++nc)
            for (std::int64_t j = 0; j < s.plane(); ++j) y[nc * s.plane() + j] = x[nc * s.plane() + j] * sc[nc];
    }

    /// out[n*C+c] = sum_{h,w} a*b + beta * out
    void channel_dot(const Shape& s, const double* a, const double* b, double beta, double* out) {
        for (std::int64_t nc = 0; nc < s.n * s.c; ++nc) {
            double acc = 0;
            for (std::int64_t j = 0; j < s.plane(); ++j) acc += a[nc * s.plane() + j] * b[nc * s.plane() + j];
            out[nc] = combine(acc, beta, out[nc]);
        }
    }

    /// y[n,c,h,w] += strength[0] * noise[n,h,w]
    void add_noise(const Shape& s, double* y, const double* noise, const double* strength) {
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c)
                for (std::int64_t j = 0; j < s.plane(); ++j)
                    y[(n * s.c + c) * s.plane() + j] += strength[0] * noise[n * s.plane() + j];
    }

    /// ds[0] = sum dy[n,c,h,w] * noise[n,h,w] + beta * ds[0]
    void noise_backward(const Shape& s, const double* dy, const double* noise, double beta, double* ds) {
        double acc = 0;
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c)
                for (std::int64_t j = 0; j < s.plane(); ++j)
                    acc += dy[(n * s.c + c) * s.plane() + j] * noise[n * s.plane() + j];
        ds[0] = combine(acc, beta, ds[0]);
    }

    void axpby(std::int64_t n, double alpha, const double* x, double beta, double* y) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = combine(alpha * x[i], beta, y[i]);
    }
    void mul(std::int64_t n, const double* a, const double* b, double* y) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
    }
    void rsqrt_eps(std::int64_t n, const double* x, double eps, double* y) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = 1.0 / std::sqrt(x[i] + eps);
    }
    void square(std::int64_t n, const double* x, double* y) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * x[i];
    }
    void clamp(std::int64_t n, const double* x, double lo, double hi, double* y, double* mask) {
        for (std::int64_t i = 0; i < n; ++i) {
            const double v = x[i];
            if (mask) mask[i] = (v >= lo && v <= hi) ? 1.0 : 0.0;
            y[i] = v < lo ? lo : (v > hi ? hi : v);
        }
    }
    /// the 8-bit image value, through float like the image writer: from_u8(to_u8(float(x)))
    void quantize_u8(std::int64_t n, const double* x, double* y) {
        for (std::int64_t i = 0; i < n; ++i) y[i] = double(from_u8(to_u8(float(x[i]))));
    }
    /// out[g] = alpha * sum_j x[g*size + j]^2 (overwrites)
    void group_sumsq(std::int64_t groups, std::int64_t size, const double* x, double alpha, double* out) {
        for (std::int64_t g = 0; g < groups; ++g) {
            double acc = 0;
            for (std::int64_t j = 0; j < size; ++j) acc += x[g * size + j] * x[g * size + j];
            out[g] = alpha * acc;
        }
    }
    /// y[g*size+j] += alpha * coef[g] * x[g*size+j]
    void group_scale_add(std::int64_t groups, std::int64_t size, const double* coef, const double* x, double alpha,
                         double* y) {
        for (std::int64_t g = 0; g < groups; ++g)
            for (std::int64_t j = 0; j < size; ++j) y[g * size + j] += alpha * coef[g] * x[g * size + j];
    }

    // --------------------------------------------------------------------------------- reductions
    double sum(std::int64_t n, const double* x) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += x[i];
        return acc;
    }
    double dot(std::int64_t n, const double* a, const double* b) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
        return acc;
    }
    /// out[c] = sum_r x[r*cols + c] + beta * out[c]
    void sum_rows(std::int64_t rows, std::int64_t cols, const double* x, double beta, double* out) {
        for (std::int64_t c = 0; c < cols; ++c) {
            double acc = 0;
            for (std::int64_t r = 0; r < rows; ++r) acc += x[r * cols + c];
            out[c] = combine(acc, beta, out[c]);
        }
    }
    bool all_finite(std::int64_t n, const double* x) {
        for (std::int64_t i = 0; i < n; ++i)
            if (!std::isfinite(x[i])) return false;
        return true;
    }

    // ------------------------------------------------------------------------------- resampling
    /// upfirdn2d per plane, literally: build the upsampled + padded plane, correlate it with the
    /// 2-D filter gain * taps[a] * taps[b], keep every `down`-th sample.
    void fir(const FirDesc& f, const double* x, double* y) {
        f.validate("reference fir");
        const std::int64_t Hp = f.h * f.up + f.pad0 + f.pad1, Wp = f.w * f.up + f.pad0 + f.pad1;
        const std::int64_t OH = f.out_h(), OW = f.out_w();
        std::vector<double> padded(static_cast<std::size_t>(Hp * Wp));
        for (std::int64_t pl = 0; pl < f.n * f.c; ++pl) {
            std::fill(padded.begin(), padded.end(), 0.0);
            for (std::int64_t iy = 0; iy < f.h; ++iy)
                for (std::int64_t ix = 0; ix < f.w; ++ix)
                    padded[static_cast<std::size_t>((iy * f.up + f.pad0) * Wp + ix * f.up + f.pad0)] =
                        x[(pl * f.h + iy) * f.w + ix];
            for (std::int64_t oy = 0; oy < OH; ++oy)
                for (std::int64_t ox = 0; ox < OW; ++ox) {
                    double acc = 0;
                    for (int a = 0; a < FirDesc::ntaps; ++a)
                        for (int b = 0; b < FirDesc::ntaps; ++b)
                            acc += f.gain * f.taps[a] * f.taps[b] *
                                   padded[static_cast<std::size_t>((oy * f.down + a) * Wp + ox * f.down + b)];
                    y[(pl * OH + oy) * OW + ox] = acc;
                }
        }
    }

    /// The adjoint of fir: scatter dy through the filter into the padded plane, then gather the
    /// samples that came from the input. Overwrites dx.
    void fir_backward(const FirDesc& f, const double* dy, double* dx) {
        f.validate("reference fir_backward");
        const std::int64_t Hp = f.h * f.up + f.pad0 + f.pad1, Wp = f.w * f.up + f.pad0 + f.pad1;
        const std::int64_t OH = f.out_h(), OW = f.out_w();
        std::vector<double> padded(static_cast<std::size_t>(Hp * Wp));
        for (std::int64_t pl = 0; pl < f.n * f.c; ++pl) {
            std::fill(padded.begin(), padded.end(), 0.0);
            for (std::int64_t oy = 0; oy < OH; ++oy)
                for (std::int64_t ox = 0; ox < OW; ++ox)
                    for (int a = 0; a < FirDesc::ntaps; ++a)
                        for (int b = 0; b < FirDesc::ntaps; ++b)
                            padded[static_cast<std::size_t>((oy * f.down + a) * Wp + ox * f.down + b)] +=
                                f.gain * f.taps[a] * f.taps[b] * dy[(pl * OH + oy) * OW + ox];
            for (std::int64_t iy = 0; iy < f.h; ++iy)
                for (std::int64_t ix = 0; ix < f.w; ++ix)
                    dx[(pl * f.h + iy) * f.w + ix] =
                        padded[static_cast<std::size_t>((iy * f.up + f.pad0) * Wp + ix * f.up + f.pad0)];
        }
    }

    /// Minibatch standard deviation (StyleGAN2, one feature map); see the header comment.
    void mbstd(const Shape& s, int group, const double* x, double* y) {
        const auto [G, M] = mbstd_groups(s, group);
        const std::vector<double> feature = mbstd_feature(s, G, M, x);
        const std::int64_t C = s.c, HW = s.plane();
        for (std::int64_t n = 0; n < s.n; ++n) {
            for (std::int64_t c = 0; c < C; ++c)
                for (std::int64_t j = 0; j < HW; ++j) y[(n * (C + 1) + c) * HW + j] = x[(n * C + c) * HW + j];
            for (std::int64_t j = 0; j < HW; ++j)
                y[(n * (C + 1) + C) * HW + j] = feature[static_cast<std::size_t>(n % M)];
        }
    }

    /// (x, dy, dx): dx overwritten. dx = dy[:, :C] + d feature / d x, with
    /// dL/dfeature[m] = sum over the samples n of column m of the sum of dy's extra channel, and
    /// d std_j / d x[g] = (x[g] - mean) / (G * std_j) (the mean's own derivative cancels).
    void mbstd_backward(const Shape& s, int group, const double* x, const double* dy, double* dx) {
        const auto [G, M] = mbstd_groups(s, group);
        const std::int64_t C = s.c, HW = s.plane(), F = s.sample_size();
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < C; ++c)
                for (std::int64_t j = 0; j < HW; ++j) dx[(n * C + c) * HW + j] = dy[(n * (C + 1) + c) * HW + j];
        for (std::int64_t m = 0; m < M; ++m) {
            double dfeature = 0;
            for (std::int64_t g = 0; g < G; ++g)
                for (std::int64_t j = 0; j < HW; ++j) dfeature += dy[((g * M + m) * (C + 1) + C) * HW + j];
            for (std::int64_t j = 0; j < F; ++j) {
                double mean = 0;
                for (std::int64_t g = 0; g < G; ++g) mean += x[(g * M + m) * F + j];
                mean /= double(G);
                double var = 0;
                for (std::int64_t g = 0; g < G; ++g) var += (x[(g * M + m) * F + j] - mean) * (x[(g * M + m) * F + j] - mean);
                var /= double(G);
                const double sd = std::sqrt(var + kMbstdEps);
                for (std::int64_t g = 0; g < G; ++g) {
                    const std::int64_t idx = (g * M + m) * F + j;
                    dx[idx] += dfeature / double(F) * (x[idx] - mean) / (double(G) * sd);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------- random numbers
    void normal(const RngKey& k, std::int64_t n, double* out) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = philox::normal(k, static_cast<std::uint64_t>(i));
    }
    void uniform(const RngKey& k, std::int64_t n, double* out) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = philox::uniform(k, static_cast<std::uint64_t>(i));
    }
    void bits(const RngKey& k, std::int64_t n, double* out) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = double(philox::bit(k, static_cast<std::uint64_t>(i)));
    }

    // ------------------------------------------------------------------------------------ losses
    /// sum_i softplus(sign * x_i); grad_i = grad_scale * sign * sigmoid(sign * x_i)
    double softplus_loss(std::int64_t n, const double* x, double sign, double grad_scale, double* grad) {
        double total = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double t = sign * x[i];
            total += softplus(t);
            if (grad) grad[i] = grad_scale * sign * sigmoid(t);
        }
        return total;
    }
    /// sum_i max(l,0) - l*t + log1p(exp(-|l|)); grad_i = grad_scale * (sigmoid(l) - t)
    double bce_logits_loss(std::int64_t n, const double* logits, const double* targets, double grad_scale,
                           double* grad) {
        double total = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double l = logits[i], t = targets[i];
            total += std::max(l, 0.0) - l * t + std::log1p(std::exp(-std::abs(l)));
            if (grad) grad[i] = grad_scale * (sigmoid(l) - t);
        }
        return total;
    }
    /// sum_i (a_i - b_i)^2; grad_a_i = grad_scale * 2 (a_i - b_i)
    double mse_loss(std::int64_t n, const double* a, const double* b, double grad_scale, double* grad) {
        double total = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double d = a[i] - b[i];
            total += d * d;
            if (grad) grad[i] = grad_scale * 2.0 * d;
        }
        return total;
    }

    // -------------------------------------------------------------------------------- optimiser
    void adam_step(std::int64_t n, double* p, const double* g, double* m, double* v, const AdamParams& h,
                   std::int64_t t) {
        SGF_CHECK(t >= 1, ArgumentError, "reference adam_step: step {} must be >= 1", t);
        const double bc1 = 1.0 - std::pow(h.beta1, double(t));
        const double bc2 = 1.0 - std::pow(h.beta2, double(t));
        for (std::int64_t i = 0; i < n; ++i) {
            m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g[i];
            v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g[i] * g[i];
            const double m_hat = m[i] / bc1;
            const double v_hat = v[i] / bc2;
            p[i] -= h.lr * m_hat / (std::sqrt(v_hat) + h.eps);
        }
    }
    /// ema = beta * ema + (1 - beta) * src
    void ema(std::int64_t n, double* e, const double* src, double beta) {
        for (std::int64_t i = 0; i < n; ++i) e[i] = beta * e[i] + (1.0 - beta) * src[i];
    }

    // ------------------------------------------------------------------- helpers (public: tests)
    static constexpr double kMbstdEps = 1e-8;

    /// result + beta * out, never reading out when beta == 0 (it may be NaN).
    static double combine(double result, double beta, double out) { return beta == 0.0 ? result : result + beta * out; }
    static double activate(Act act, double t) { return act == Act::lrelu ? (t > 0 ? t : kLreluSlope * t) : t; }
    /// act' read from the forward output y (gain > 0): 1 where y > 0, kLreluSlope where y <= 0.
    static double activation_slope(Act act, double y) { return act == Act::lrelu ? (y > 0 ? 1.0 : kLreluSlope) : 1.0; }
    static double softplus(double t) { return std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t))); }
    static double sigmoid(double t) {
        if (t >= 0) return 1.0 / (1.0 + std::exp(-t));
        const double e = std::exp(t);
        return e / (1.0 + e);
    }

    /// (G, M) of the minibatch-stddev grouping; ShapeError when N is not divisible by G.
    static std::pair<std::int64_t, std::int64_t> mbstd_groups(const Shape& s, int group) {
        SGF_CHECK(group >= 1, ArgumentError, "reference mbstd: group size {} must be >= 1", group);
        SGF_CHECK(s.n >= 1 && s.c >= 1 && s.h >= 1 && s.w >= 1, ShapeError, "reference mbstd: invalid input shape {}",
                  s.str());
        const std::int64_t G = std::min<std::int64_t>(group, s.n);
        SGF_CHECK(s.n % G == 0, ShapeError, "reference mbstd: batch {} is not divisible by group size {}", s.n, G);
        return {G, s.n / G};
    }

private:
    static std::int64_t x_index(const ConvDesc& d, std::int64_t n, std::int64_t i, std::int64_t iy, std::int64_t ix) {
        return ((n * d.c_in + i) * d.h + iy) * d.w + ix;
    }
    static std::int64_t w_index(const ConvDesc& d, std::int64_t o, std::int64_t i, std::int64_t ky, std::int64_t kx) {
        return ((o * d.c_in + i) * d.k + ky) * d.k + kx;
    }

    static std::vector<double> mbstd_feature(const Shape& s, std::int64_t G, std::int64_t M, const double* x) {
        const std::int64_t F = s.sample_size();
        std::vector<double> feature(static_cast<std::size_t>(M), 0.0);
        for (std::int64_t m = 0; m < M; ++m) {
            double acc = 0;
            for (std::int64_t j = 0; j < F; ++j) {
                double mean = 0;
                for (std::int64_t g = 0; g < G; ++g) mean += x[(g * M + m) * F + j];
                mean /= double(G);
                double var = 0;
                for (std::int64_t g = 0; g < G; ++g) var += (x[(g * M + m) * F + j] - mean) * (x[(g * M + m) * F + j] - mean);
                var /= double(G);
                acc += std::sqrt(var + kMbstdEps);
            }
            feature[static_cast<std::size_t>(m)] = acc / double(F);
        }
        return feature;
    }
};

static_assert(sgf::Backend<reference::Backend>, "the reference backend must model sgf::Backend");

}  // namespace sgf::reference
