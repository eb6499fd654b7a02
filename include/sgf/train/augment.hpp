// Immunised training (algorithm.md 7, the paper's "immunised" model): random image perturbations
// inserted between the generator and the decoder F during training, so that F learns to read the
// fingerprint (and z) from degraded images. Only F's input is perturbed: the discriminator and the
// consistency loss still see the clean img1 / img2, so realism and content are judged on what G
// really produces. The gradient of F's losses flows back to G through the adjoint of each
// perturbation (JPEG: straight-through, see below). User documentation: docs/robustness.md.
//
// Recipe. Per sample and per perturbation, an independent draw decides whether the perturbation is
// applied (probability p_*), then its parameter is drawn uniformly from a range that scales with
// `strength` (s; 0 makes every perturbation the identity and switches JPEG off). They are applied in
// this fixed order (JPEG last, as when an image is finally saved):
//
// | # | perturbation        | per-sample parameter (s = strength x ramp)                            | defaults            |
// |---|---------------------|------------------------------------------------------------------------|---------------------|
// | 1 | crop and resize     | kept fraction f ~ U[1 - s (1 - crop_min), 1] of each side: crop      | p_crop 0.5,         |
// |   |                     | round(f H) x round(f W) at a uniform integer position, resized back   | crop_min 0.8        |
// |   |                     | bilinearly (io::detail::resize_weights, as attack::center_crop)       |                     |
// | 2 | Gaussian blur       | sigma ~ U[0, s blur_sigma] px at 32 px (times side / 32), radius      | p_blur 0.5,         |
// |   |                     | ceil(3 sigma), reflect-101 borders (as attack::gaussian_blur)         | blur_sigma 1.0      |
// | 3 | brightness/contrast | y = a (x - mean) + mean + b, mean over the sample's pixels and        | p_color 0.5,        |
// |   |                     | channels; a ~ U[1 - s contrast, 1 + s contrast] (>= 0),               | contrast 0.5,       |
// |   |                     | b ~ U[-s brightness, s brightness] ([-1, 1] scale)                    | brightness 0.2      |
// | 4 | Gaussian noise      | x + std N(0, 1), std ~ U[0, s noise_std] ([-1, 1] scale)              | p_noise 0.5,        |
// |   |                     |                                                                        | noise_std 0.1       |
// | 5 | JPEG                | quality ~ U{q0, ..., 100}, q0 = round(100 - s (100 - jpeg_quality_min)) | p_jpeg 0.5,       |
// |   |                     | (only when s > 0)                                                      | jpeg_quality_min 50 |
//
// `rampup_kimg` > 0 grows s linearly from 0 to `strength` over that many thousand images (F first
// learns to read clean images). With the defaults about 1/32 of the samples stay clean.
//
// Differentiability. Crop-and-resize and blur are linear and separable: per sample n,
// Y_c = A_n X_c B_n^T for every channel c, with A_n = Blur_y Crop_y (H x H) and B_n = Blur_x Crop_x
// (W x W) built on the host in float64 and applied with the backend's gemm; the backward pass is the
// adjoint dX_c = A_n^T dY_c B_n. Brightness/contrast is affine with a symmetric linear part
// a I + (1 - a) 11^T / S, so its backward is dX = a dY + (1 - a) mean(dY). Noise is additive
// (Jacobian I). JPEG uses straight-through estimation: the forward pass is the real codec (host
// copies through attack::jpeg: 8-bit rounding, stb encoder at the drawn quality, stb decoder), the
// backward pass is exactly the identity. Everything except JPEG runs on backend ops only.
//
// Randomness. Counter-based: the plan of training step t is drawn from
// RngKey{seed, name_hash("sgf.immunise") ^ t, .}, uniform index 16 n + j for sample n's j-th draw and
// the noise field from offset 2^40, so a run resumed from a checkpoint continues bit-identically.
#pragma once

#include <sgf/core/philox.hpp>
#include <sgf/layers/parameter.hpp>
#include <sgf/robustness/image_attacks.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace sgf {

/// The immunisation knobs (TrainConfig::immunise). See the file comment for the recipe table.
struct ImmuniseConfig {
    bool enabled = false;     ///< off: training is exactly the plain objective
    double strength = 1.0;    ///< multiplies every range below; 0 = identity (no JPEG either)
    double rampup_kimg = 0.0; ///< strength ramps up linearly over this many kimg (0: constant)
    double p_crop = 0.5;      ///< probability of crop-and-resize per sample
    double crop_min = 0.8;    ///< smallest kept fraction of each side (at strength 1)
    double p_blur = 0.5;      ///< probability of Gaussian blur per sample
    double blur_sigma = 1.0;  ///< largest blur sigma in pixels on a 32 px image (scaled by side / 32)
    double p_color = 0.5;     ///< probability of brightness/contrast per sample
    double brightness = 0.2;  ///< largest brightness offset |b| on the [-1, 1] scale
    double contrast = 0.5;    ///< contrast factor a in [1 - contrast, 1 + contrast]
    double p_noise = 0.5;     ///< probability of additive Gaussian noise per sample
    double noise_std = 0.1;   ///< largest noise std on the [-1, 1] scale
    double p_jpeg = 0.5;      ///< probability of JPEG (straight-through) per sample
    int jpeg_quality_min = 50;  ///< lowest JPEG quality (at strength 1); the highest is 100

    void validate() const {
        auto prob = [](double p) { return std::isfinite(p) && p >= 0 && p <= 1; };
        SGF_CHECK(prob(p_crop) && prob(p_blur) && prob(p_color) && prob(p_noise) && prob(p_jpeg), ArgumentError,
                  "immunise: probabilities must be in [0, 1]");
        SGF_CHECK(std::isfinite(strength) && strength >= 0, ArgumentError, "immunise: strength must be >= 0, got {}",
                  strength);
        SGF_CHECK(std::isfinite(rampup_kimg) && rampup_kimg >= 0, ArgumentError, "immunise: rampup_kimg must be >= 0");
        SGF_CHECK(std::isfinite(crop_min) && crop_min > 0 && crop_min <= 1, ArgumentError,
                  "immunise: crop_min must be in (0, 1], got {}", crop_min);
        SGF_CHECK(std::isfinite(blur_sigma) && blur_sigma >= 0 && std::isfinite(noise_std) && noise_std >= 0 &&
                      std::isfinite(brightness) && brightness >= 0,
                  ArgumentError, "immunise: blur_sigma, noise_std and brightness must be >= 0");
        SGF_CHECK(std::isfinite(contrast) && contrast >= 0 && contrast <= 1, ArgumentError,
                  "immunise: contrast must be in [0, 1], got {}", contrast);
        SGF_CHECK(jpeg_quality_min >= 1 && jpeg_quality_min <= 100, ArgumentError,
                  "immunise: jpeg_quality_min must be 1..100, got {}", jpeg_quality_min);
    }
    /// The strength after the ramp-up, `kimg` thousand images into training.
    double strength_at(double kimg) const {
        if (rampup_kimg <= 0) return strength;
        return strength * std::min(1.0, std::max(0.0, kimg) / rampup_kimg);
    }
};

inline void to_json(nlohmann::json& j, const ImmuniseConfig& c) {
    j = nlohmann::json{{"enabled", c.enabled},       {"strength", c.strength},   {"rampup_kimg", c.rampup_kimg},
                       {"p_crop", c.p_crop},         {"crop_min", c.crop_min},   {"p_blur", c.p_blur},
                       {"blur_sigma", c.blur_sigma}, {"p_color", c.p_color},     {"brightness", c.brightness},
                       {"contrast", c.contrast},     {"p_noise", c.p_noise},     {"noise_std", c.noise_std},
                       {"p_jpeg", c.p_jpeg},         {"jpeg_quality_min", c.jpeg_quality_min}};
}
/// Every key is optional (missing keys keep their defaults).
inline void from_json(const nlohmann::json& j, ImmuniseConfig& c) {
    const ImmuniseConfig d;
    c.enabled = j.value("enabled", d.enabled);
    c.strength = j.value("strength", d.strength);
    c.rampup_kimg = j.value("rampup_kimg", d.rampup_kimg);
    c.p_crop = j.value("p_crop", d.p_crop);
    c.crop_min = j.value("crop_min", d.crop_min);
    c.p_blur = j.value("p_blur", d.p_blur);
    c.blur_sigma = j.value("blur_sigma", d.blur_sigma);
    c.p_color = j.value("p_color", d.p_color);
    c.brightness = j.value("brightness", d.brightness);
    c.contrast = j.value("contrast", d.contrast);
    c.p_noise = j.value("p_noise", d.p_noise);
    c.noise_std = j.value("noise_std", d.noise_std);
    c.p_jpeg = j.value("p_jpeg", d.p_jpeg);
    c.jpeg_quality_min = j.value("jpeg_quality_min", d.jpeg_quality_min);
}

/// The perturbation parameters of one sample. The defaults are the identity.
struct ImmuniseSample {
    int crop_h = 0, crop_w = 0;  ///< crop size (0 or the full side: no crop)
    int crop_y = 0, crop_x = 0;  ///< crop position (top-left)
    double blur_sigma = 0;       ///< pixels; 0: no blur
    double contrast = 1;         ///< a
    double brightness = 0;       ///< b
    double noise_std = 0;        ///< 0: no noise
    int jpeg_quality = 0;        ///< 1..100; 0: no JPEG
};

/// Everything random about one immunised G+F step: per-sample parameters and the noise field's key.
struct ImmunisePlan {
    Shape shape;                          ///< the image batch [N, C, H, W]
    std::vector<ImmuniseSample> samples;  ///< N entries
    RngKey noise_key;                     ///< N(0, 1) field, element i of the batch (NCHW) takes draw i
};

/// Draws the plan of training step `step` (strength already ramped; see ImmuniseConfig::strength_at).
inline ImmunisePlan draw_immunise_plan(const ImmuniseConfig& cfg, const Shape& images, double strength,
                                       std::uint64_t seed, std::uint64_t step) {
    SGF_CHECK(images.valid() && images.n > 0 && images.c > 0 && images.h > 0 && images.w > 0, ShapeError,
              "immunise: bad image batch shape {}", images.str());
    const double s = std::isfinite(strength) ? std::max(strength, 0.0) : 0.0;
    const RngKey key{seed, name_hash("sgf.immunise") ^ step, 0};
    ImmunisePlan plan{images, std::vector<ImmuniseSample>(std::size_t(images.n)), RngKey{key.seed, key.stream, 1ull << 40}};
    const int H = int(images.h), W = int(images.w);
    const double side_scale = double(std::min(H, W)) / 32.0;
    const int q0 = std::clamp(int(std::lround(100.0 - s * (100.0 - cfg.jpeg_quality_min))), 1, 100);
    for (std::int64_t n = 0; n < images.n; ++n) {
        auto u = [&](int j) { return philox::uniform(key, std::uint64_t(n) * 16 + std::uint64_t(j)); };
        ImmuniseSample& p = plan.samples[std::size_t(n)];
        p.crop_h = H;
        p.crop_w = W;
        if (u(0) < cfg.p_crop) {
            const double f = 1.0 - s * (1.0 - cfg.crop_min) * u(1);
            p.crop_h = std::clamp(int(std::lround(f * H)), 1, H);
            p.crop_w = std::clamp(int(std::lround(f * W)), 1, W);
            p.crop_y = std::min(H - p.crop_h, int(u(2) * double(H - p.crop_h + 1)));
            p.crop_x = std::min(W - p.crop_w, int(u(3) * double(W - p.crop_w + 1)));
        }
        if (u(4) < cfg.p_blur) p.blur_sigma = s * cfg.blur_sigma * side_scale * u(5);
        if (u(6) < cfg.p_color) {
            p.contrast = std::max(0.0, 1.0 + s * cfg.contrast * (2.0 * u(7) - 1.0));
            p.brightness = s * cfg.brightness * (2.0 * u(8) - 1.0);
        }
        if (u(9) < cfg.p_noise) p.noise_std = s * cfg.noise_std * u(10);
        if (s > 0 && u(11) < cfg.p_jpeg) p.jpeg_quality = std::min(100, q0 + int(u(12) * double(100 - q0 + 1)));
    }
    return plan;
}

namespace immunise {

/// Row-major n x n identity.
inline std::vector<double> identity_matrix(int n) {
    std::vector<double> m(std::size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i) m[std::size_t(i) * n + i] = 1.0;
    return m;
}

/// Resampling matrix (n x n, row-major) of one axis of a crop of `crop` samples at `offset`, resized
/// back to n with io::detail::resize_weights (bilinear when enlarging, edges clamped to the crop).
inline std::vector<double> crop_matrix(int n, int crop, int offset) {
    SGF_CHECK(crop >= 1 && crop <= n && offset >= 0 && offset + crop <= n, ArgumentError,
              "immunise crop: window {} at {} outside 0..{}", crop, offset, n);
    if (crop == n) return identity_matrix(n);
    std::vector<double> m(std::size_t(n) * n, 0.0);
    const auto w = io::detail::resize_weights(crop, n);
    for (int o = 0; o < n; ++o)
        for (const auto& [i, wt] : w[std::size_t(o)]) m[std::size_t(o) * n + std::size_t(offset + i)] += wt;
    return m;
}

/// Blur_1d(sigma) * M for an n x n row-major M: each output row o is sum_j k[j] M[reflect101(o + j)],
/// with attack::gaussian_blur's kernel (radius max(1, ceil(3 sigma)), normalised). sigma 0: M.
inline std::vector<double> blur_rows(const std::vector<double>& m, int n, double sigma) {
    if (!(sigma > 0)) return m;
    const int r = std::max(1, int(std::ceil(3.0 * sigma)));
    std::vector<double> k(std::size_t(2 * r + 1));
    double total = 0;
    for (int j = -r; j <= r; ++j) total += k[std::size_t(j + r)] = std::exp(-0.5 * double(j) * j / (sigma * sigma));
    for (auto& v : k) v /= total;
    std::vector<double> out(m.size(), 0.0);
    for (int o = 0; o < n; ++o)
        for (int j = -r; j <= r; ++j) {
            const std::int64_t src = attack::detail::reflect101(o + j, n);
            const double kj = k[std::size_t(j + r)];
            for (int c = 0; c < n; ++c) out[std::size_t(o) * n + c] += kj * m[std::size_t(src) * n + c];
        }
    return out;
}

/// The 1-D Gaussian blur matrix (reflect-101 borders) of an axis of n samples.
inline std::vector<double> blur_matrix(int n, double sigma) { return blur_rows(identity_matrix(n), n, sigma); }

/// Crop-and-resize then blur of one sample, as the two axis matrices A (H x H) and B (W x W):
/// Y_c = A X_c B^T.
inline std::pair<std::vector<double>, std::vector<double>> sample_matrices(const ImmuniseSample& p, int H, int W) {
    const int ch = p.crop_h > 0 ? p.crop_h : H, cw = p.crop_w > 0 ? p.crop_w : W;
    return {blur_rows(crop_matrix(H, ch, p.crop_y), H, p.blur_sigma),
            blur_rows(crop_matrix(W, cw, p.crop_x), W, p.blur_sigma)};
}

inline bool separable_active(const ImmuniseSample& p, const Shape& s) {
    const bool crop = (p.crop_h > 0 && p.crop_h != s.h) || (p.crop_w > 0 && p.crop_w != s.w);
    return crop || p.blur_sigma > 0;
}
inline bool color_active(const ImmuniseSample& p) { return p.contrast != 1.0 || p.brightness != 0.0; }

}  // namespace immunise

/// What the backward pass of the perturbations needs (they are linear or affine in the image, so no
/// activations are kept: only the per-sample operators) and the perturbed images.
template <Backend B>
struct ImmuniseCtx {
    Shape shape;
    Tensor<B> y;                        ///< the perturbed images (F's input)
    std::vector<char> sep_active;       ///< per sample: crop and/or blur applied
    Tensor<B> rows, cols;               ///< [N, 1, H, H] and [N, 1, W, W]: A_n and B_n
    bool any_color = false;
    Tensor<B> color_scale, color_mean;  ///< [N]: a_n and (1 - a_n) / S
    Tensor<B> ones;                     ///< [S]: for per-sample sums
    const Tensor<B>& output() const { return y; }
};

namespace immunise {

/// y_n = A_n x_n B_n^T per channel for active samples, a copy otherwise (transpose: the adjoint).
template <Backend B>
void separable_apply(B& b, const ImmuniseCtx<B>& ctx, const typename B::Scalar* x, typename B::Scalar* y,
                     bool transpose) {
    using T = typename B::Scalar;
    const Shape& s = ctx.shape;
    const std::int64_t H = s.h, W = s.w, C = s.c, S = s.sample_size(), HW = H * W;
    Tensor<B> tmp;
    for (std::int64_t n = 0; n < s.n; ++n) {
        const T* xn = x + n * S;
        T* yn = y + n * S;
        if (!ctx.sep_active[std::size_t(n)]) {
            b.copy(xn, yn, std::size_t(S));
            continue;
        }
        if (tmp.empty()) tmp = Tensor<B>(b, Shape{1, C, H, W});
        const T* A = ctx.rows.data() + n * H * H;
        const T* Bm = ctx.cols.data() + n * W * W;
        if (!transpose) {
            // Z = X B^T on X viewed as [C H, W]; then Y_c = A Z_c
            b.gemm(false, true, C * H, W, W, T(1), xn, W, Bm, W, T(0), tmp.data(), W);
            for (std::int64_t c = 0; c < C; ++c)
                b.gemm(false, false, H, W, H, T(1), A, H, tmp.data() + c * HW, W, T(0), yn + c * HW, W);
        } else {
            // Z_c = A^T dY_c; then dX = Z B on Z viewed as [C H, W]
            for (std::int64_t c = 0; c < C; ++c)
                b.gemm(true, false, H, W, H, T(1), A, H, xn + c * HW, W, T(0), tmp.data() + c * HW, W);
            b.gemm(false, false, C * H, W, W, T(1), tmp.data(), W, Bm, W, T(0), yn, W);
        }
    }
}

/// y = a_n x + (1 - a_n) mean_n(x) + offset_n (offset may be null: the linear part, which is
/// self-adjoint). y may alias x.
template <Backend B>
void color_apply(B& b, const ImmuniseCtx<B>& ctx, const typename B::Scalar* x, const typename B::Scalar* offset,
                 typename B::Scalar* y) {
    using T = typename B::Scalar;
    const Shape& s = ctx.shape;
    const std::int64_t N = s.n, S = s.sample_size();
    Tensor<B> add(b, Shape{N, 1});
    // add_n = (1 - a_n) / S * sum_i x_ni (+ offset_n)
    b.gemm(false, false, N, 1, S, T(1), x, S, ctx.ones.data(), 1, T(0), add.data(), 1);
    b.mul(N, add.data(), ctx.color_mean.data(), add.data());
    if (offset) b.axpby(N, T(1), offset, T(1), add.data());
    b.scale_channels(Shape{N, 1, S, 1}, x, ctx.color_scale.data(), y);
    b.bias_act(Shape{1, N, S, 1}, y, add.data(), T(1), Act::linear, T(1), y);
}

}  // namespace immunise

/// Applies the plan's perturbations to a batch of images [N, C, H, W] (crop+blur, brightness/
/// contrast, noise, JPEG). The context keeps the per-sample operators for immunise_backward.
template <Backend B>
ImmuniseCtx<B> immunise_forward(B& b, const Tensor<B>& x, const ImmunisePlan& plan) {
    using T = typename B::Scalar;
    const Shape& s = x.shape();
    check_shape(s, plan.shape, "immunise input");
    SGF_CHECK(plan.samples.size() == std::size_t(s.n), ShapeError, "immunise: plan has {} samples, batch {}",
              plan.samples.size(), s.n);
    const std::int64_t N = s.n, H = s.h, W = s.w, S = s.sample_size();
    ImmuniseCtx<B> ctx;
    ctx.shape = s;
    ctx.y = Tensor<B>(b, s);
    // (1, 2) crop-and-resize and blur: one separable linear map per sample
    ctx.sep_active.assign(std::size_t(N), 0);
    bool any_sep = false;
    for (std::int64_t n = 0; n < N; ++n) {
        const bool active = immunise::separable_active(plan.samples[std::size_t(n)], s);
        ctx.sep_active[std::size_t(n)] = char(active);
        any_sep = any_sep || active;
    }
    if (any_sep) {
        std::vector<double> rows(std::size_t(N * H * H)), cols(std::size_t(N * W * W));
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& p = plan.samples[std::size_t(n)];
            if (!ctx.sep_active[std::size_t(n)]) continue;
            const auto [A, Bm] = immunise::sample_matrices(p, int(H), int(W));
            std::copy(A.begin(), A.end(), rows.begin() + n * H * H);
            std::copy(Bm.begin(), Bm.end(), cols.begin() + n * W * W);
        }
        ctx.rows = from_host<B, double>(b, Shape{N, 1, H, H}, std::span<const double>(rows));
        ctx.cols = from_host<B, double>(b, Shape{N, 1, W, W}, std::span<const double>(cols));
        immunise::separable_apply(b, ctx, x.data(), ctx.y.data(), false);
    } else {
        b.copy(x.data(), ctx.y.data(), x.size());
    }
    // (3) brightness / contrast
    for (const auto& p : plan.samples) ctx.any_color |= immunise::color_active(p);
    if (ctx.any_color) {
        std::vector<double> a(static_cast<std::size_t>(N)), m(static_cast<std::size_t>(N)), off(static_cast<std::size_t>(N));
        for (std::int64_t n = 0; n < N; ++n) {
            const auto& p = plan.samples[std::size_t(n)];
            a[std::size_t(n)] = p.contrast;
            m[std::size_t(n)] = (1.0 - p.contrast) / double(S);
            off[std::size_t(n)] = p.brightness;
        }
        ctx.color_scale = from_host<B, double>(b, Shape{N, 1}, std::span<const double>(a));
        ctx.color_mean = from_host<B, double>(b, Shape{N, 1}, std::span<const double>(m));
        ctx.ones = Tensor<B>(b, Shape{S, 1}, T(1));
        const Tensor<B> offset = from_host<B, double>(b, Shape{N, 1}, std::span<const double>(off));
        immunise::color_apply(b, ctx, ctx.y.data(), offset.data(), ctx.y.data());
    }
    // (4) noise: y += std_n * N(0, 1)
    bool any_noise = false;
    for (const auto& p : plan.samples) any_noise |= p.noise_std > 0;
    if (any_noise) {
        std::vector<double> stds(static_cast<std::size_t>(N));
        for (std::int64_t n = 0; n < N; ++n) stds[std::size_t(n)] = plan.samples[std::size_t(n)].noise_std;
        const Tensor<B> sd = from_host<B, double>(b, Shape{N, 1}, std::span<const double>(stds));
        Tensor<B> noise(b, s);
        b.normal(plan.noise_key, noise.size(), noise.data());
        b.scale_channels(Shape{N, 1, S, 1}, noise.data(), sd.data(), noise.data());
        b.axpby(noise.size(), T(1), noise.data(), T(1), ctx.y.data());
    }
    // (5) JPEG on host copies of the selected samples (straight-through in the backward pass)
    bool any_jpeg = false;
    for (const auto& p : plan.samples) any_jpeg |= p.jpeg_quality > 0;
    if (any_jpeg) {
        const std::vector<T> host = to_host_vector<T>(b, ctx.y);
        attack::Images one(Shape{1, s.c, H, W});
        std::vector<T> back(static_cast<std::size_t>(S));
        for (std::int64_t n = 0; n < N; ++n) {
            const int q = plan.samples[std::size_t(n)].jpeg_quality;
            if (q <= 0) continue;
            for (std::int64_t i = 0; i < S; ++i) one.data[std::size_t(i)] = float(host[std::size_t(n * S + i)]);
            const attack::Images out = attack::jpeg(one, q);
            for (std::int64_t i = 0; i < S; ++i) back[std::size_t(i)] = T(out.data[std::size_t(i)]);
            b.upload(back.data(), std::size_t(S), ctx.y.data() + n * S);
        }
    }
    return ctx;
}

/// dL/dx from dL/dy: identity for JPEG (straight-through) and noise, then the adjoints of
/// brightness/contrast and of crop+blur.
template <Backend B>
Tensor<B> immunise_backward(B& b, const ImmuniseCtx<B>& ctx, Tensor<B>&& dy) {
    check_shape(dy.shape(), ctx.shape, "immunise backward dy");
    if (ctx.any_color) immunise::color_apply(b, ctx, dy.data(), nullptr, dy.data());
    bool any_sep = false;
    for (char a : ctx.sep_active) any_sep |= a != 0;
    if (!any_sep) return std::move(dy);
    Tensor<B> dx(b, ctx.shape);
    immunise::separable_apply(b, ctx, dy.data(), dx.data(), true);
    return dx;
}

}  // namespace sgf
