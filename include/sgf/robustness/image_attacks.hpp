// Image perturbations for the robustness evaluation (algorithm.md section 7, the paper's Figure 5).
//
// Every attack maps a batch of float images [N, C, H, W] in the decoder's range [-1, 1] (the type
// of io::to_tensor, io::ImageDataset::batch and the decode pipeline) to a batch of the same shape.
// Each sample is attacked independently. The random attacks are Gaussian noise and the combined
// attack's noise step; they draw philox::normal(RngKey{seed, name_hash("attack.noise"), 0}, i) for
// element i of the batch (NCHW order, one stream whatever the shape; Philox, name_hash and normal()
// are specified in docs/architecture.md, "Random numbers"), so a (batch, seed) pair always gives the
// same result on every machine. sgf eval seeds attack a at sweep index k with
// eval::detail::mix(--seed, name_hash(a), k) (SplitMix64's finaliser, include/sgf/eval/evaluation.hpp).
//
// Clamping: the float-to-float attacks do not clamp (a generator's output is linear and may leave
// [-1, 1]; clamping would break "strength 0 is the identity"). JPEG goes through 8 bits
// (io::to_image: round(127.5 (x + 1)) clamped to 0..255) and gamma clamps to [-1, 1] first, because
// a power needs a non-negative base (except at g = 1, which returns its input unchanged, as every
// attack does at its identity strength).
//
// Arithmetic: every attack computes in double from its float inputs and rounds each output value to
// float once per step: blur keeps its intermediate (horizontal) pass in double, crop is an exact copy
// followed by one resize, resize is two steps (down, then up, each rounded to float), and noise
// (double(x) + s * normal, both terms in double), brightness, contrast and gamma round their double
// result once. "round" is half away from zero
// (std::lround): a crop side of 4.5 px keeps 5. blur_kernel rounds a fractional size the same way,
// then makes it odd (k | 1). JPEG is stb_image_write's baseline encoder, which subsamples chroma
// (4:2:0) at quality <= 90, decoded by stb_image: other encoders give other (similar) images.
//
// | name        | strength                                   | identity | natural range   |
// |-------------|--------------------------------------------|----------|-----------------|
// | noise       | std of additive N(0, s^2), [-1, 1] scale    | 0        | 0 .. 0.5        |
// | blur        | Gaussian sigma in pixels, radius ceil(3 s)  | 0        | 0 .. 4          |
// | blur_kernel | kernel size k in pixels (even k -> k + 1), | 0 (k<=1) | 0 .. 45         |
// |             | sigma = 0.3 ((k - 1) / 2 - 1) + 0.8 (OpenCV) |          |                 |
// | jpeg        | quality 1..100 (stb encoder, stb decoder)   | none     | 100 .. 10       |
// | crop        | kept fraction of each side, centred, then   | 1        | 1 .. 0.5        |
// |             | resized back (filter below)                 |          |                 |
// | resize      | factor f >= 1: side -> round(side / f) -> side | 1      | 1 .. 8          |
// | brightness  | offset added on the [-1, 1] scale           | 0        | 0 .. 0.5        |
// | contrast    | factor about the sample's mean              | 1        | 1 .. 0.2        |
// | gamma       | exponent on (x + 1) / 2 (clamped to [0, 1]; | 1        | 1 .. 3          |
// |             | g = 1: the input unchanged, no clamp)       |          |                 |
// | rotate      | degrees, counter-clockwise as displayed     | 0        | 0 .. 20         |
// | combined    | level 0..10, see combined_params()          | 0        | 0 .. 10         |
//
// Resizing (crop, resize): the separable antialiased triangle filter of io/image.hpp
// (io::detail::resize_weights), applied to floats without 8-bit rounding: exact bilinear when
// upscaling (sample centres aligned, src = (dst + 0.5) in/out - 0.5, edges clamped), a triangle
// widened by the factor (area-like averaging) when downscaling.
// Blur borders: reflect-101 (OpenCV's default: ... 2 1 | 0 1 2 ... n-1 | n-2 ...), repeated as
// often as needed so a kernel larger than the image is still well defined.
// Rotation: about the image centre ((W - 1) / 2, (H - 1) / 2), inverse mapping with bilinear
// interpolation; source points outside the image take the nearest edge pixel (edge replication),
// so no artificial black corners appear.
#pragma once

#include <sgf/core/error.hpp>
#include <sgf/core/philox.hpp>
#include <sgf/core/shape.hpp>
#include <sgf/io/image.hpp>
#include <sgf/layers/parameter.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sgf::attack {

using Images = HostTensor<float>;

namespace detail {

inline void check_images(const Images& x, const char* what) {
    SGF_CHECK(x.shape.valid() && x.shape.n > 0 && x.shape.c > 0 && x.shape.h > 0 && x.shape.w > 0 &&
                  x.data.size() == std::size_t(x.shape.size()),
              ShapeError, "attack {}: expected a non-empty [N, C, H, W] batch, got shape {}", what, x.shape.str());
}

/// JPEG (and so the jpeg attack and every combined level >= 1) holds gray or RGB samples only.
inline bool jpeg_can_hold(std::int64_t channels) { return channels == 1 || channels == 3; }

/// Reflect-101 index for any integer i (period 2 (n - 1)).
inline std::int64_t reflect101(std::int64_t i, std::int64_t n) {
    if (n == 1) return 0;
    const std::int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

/// Separable convolution of every plane with a symmetric 1-D kernel k[0..2r] (reflect-101 borders).
inline Images convolve_separable(const Images& x, const std::vector<double>& k) {
    const std::int64_t r = std::int64_t(k.size() / 2), H = x.shape.h, W = x.shape.w;
    const std::int64_t planes = x.shape.n * x.shape.c;
    Images out(x.shape);
    std::vector<double> tmp(std::size_t(H * W));
    for (std::int64_t p = 0; p < planes; ++p) {
        const float* src = x.data.data() + p * H * W;
        float* dst = out.data.data() + p * H * W;
        for (std::int64_t y = 0; y < H; ++y)
            for (std::int64_t xx = 0; xx < W; ++xx) {
                double s = 0;
                for (std::int64_t j = -r; j <= r; ++j) s += k[std::size_t(j + r)] * src[y * W + reflect101(xx + j, W)];
                tmp[std::size_t(y * W + xx)] = s;
            }
        for (std::int64_t y = 0; y < H; ++y)
            for (std::int64_t xx = 0; xx < W; ++xx) {
                double s = 0;
                for (std::int64_t j = -r; j <= r; ++j) s += k[std::size_t(j + r)] * tmp[std::size_t(reflect101(y + j, H) * W + xx)];
                dst[y * W + xx] = float(s);
            }
    }
    return out;
}

}  // namespace detail

/// Float resize of every plane to width x height with io/image.hpp's antialiased triangle filter
/// (see the file comment). Same size: an exact copy.
inline Images resize_images(const Images& x, int width, int height) {
    detail::check_images(x, "resize");
    io::detail::check_resize_target(width, height, "resize");
    if (x.shape.w == width && x.shape.h == height) return x;
    const int Wi = int(x.shape.w), Hi = int(x.shape.h);
    const auto wx = io::detail::resize_weights(Wi, width), wy = io::detail::resize_weights(Hi, height);
    Images out(Shape{x.shape.n, x.shape.c, height, width});
    std::vector<double> tmp(std::size_t(Hi) * width);
    const std::int64_t planes = x.shape.n * x.shape.c;
    for (std::int64_t p = 0; p < planes; ++p) {
        const float* src = x.data.data() + p * Hi * Wi;
        float* dst = out.data.data() + p * std::int64_t(height) * width;
        for (int y = 0; y < Hi; ++y)
            for (int xo = 0; xo < width; ++xo) {
                double s = 0;
                for (const auto& [i, wt] : wx[std::size_t(xo)]) s += wt * src[std::size_t(y) * Wi + i];
                tmp[std::size_t(y) * width + xo] = s;
            }
        for (int yo = 0; yo < height; ++yo)
            for (int xo = 0; xo < width; ++xo) {
                double s = 0;
                for (const auto& [j, wt] : wy[std::size_t(yo)]) s += wt * tmp[std::size_t(j) * width + xo];
                dst[std::size_t(yo) * width + xo] = float(s);
            }
    }
    return out;
}

// ---- the individual attacks ----------------------------------------------------------------------

/// x + std * N(0, 1), no clamping. Draws from RngKey{seed, name_hash("attack.noise"), 0}.
inline Images gaussian_noise(const Images& x, double std, std::uint64_t seed) {
    detail::check_images(x, "noise");
    SGF_CHECK(std::isfinite(std) && std >= 0, ArgumentError, "attack noise: std must be >= 0, got {}", std);
    Images out = x;
    if (std == 0) return out;
    const RngKey key{seed, name_hash("attack.noise"), 0};
    for (std::size_t i = 0; i < out.data.size(); ++i) out.data[i] = float(double(out.data[i]) + std * philox::normal(key, i));
    return out;
}

/// Largest blur sigma in pixels (radius 3000 taps per side; far beyond any image sgf decodes).
inline constexpr double kMaxBlurSigma = 1000;

/// Gaussian blur with standard deviation sigma (pixels, at most kMaxBlurSigma); radius = explicit
/// `radius`, or ceil(3 sigma) when radius < 0 (covers 99.7 % of the mass). Weights
/// exp(-j^2 / (2 sigma^2)), normalised.
inline Images gaussian_blur(const Images& x, double sigma, int radius = -1) {
    detail::check_images(x, "blur");
    SGF_CHECK(std::isfinite(sigma) && sigma >= 0 && sigma <= kMaxBlurSigma, ArgumentError,
              "attack blur: sigma must be in 0..{}, got {}", kMaxBlurSigma, sigma);
    SGF_CHECK(radius <= 3 * int(kMaxBlurSigma), ArgumentError, "attack blur: radius must be at most {}, got {}", 3 * int(kMaxBlurSigma),
              radius);
    // sigma == 0, radius == 0, or a sigma so small that exp(-1 / (2 sigma^2)) is 0: the kernel is a delta
    if (sigma == 0 || radius == 0 || std::exp(-0.5 / (sigma * sigma)) == 0) return x;
    const int r = radius > 0 ? radius : std::max(1, int(std::ceil(3.0 * sigma)));
    std::vector<double> k(std::size_t(2 * r + 1));
    double total = 0;
    for (int j = -r; j <= r; ++j) total += k[std::size_t(j + r)] = std::exp(-0.5 * double(j) * j / (sigma * sigma));
    for (auto& v : k) v /= total;
    return detail::convolve_separable(x, k);
}

/// OpenCV's sigma for a kernel of odd size k given sigma <= 0 (getGaussianKernel):
/// 0.3 ((k - 1) / 2 - 1) + 0.8.
inline double kernel_size_sigma(int k) { return 0.3 * ((k - 1) * 0.5 - 1.0) + 0.8; }

/// Gaussian blur by kernel size, like the paper's "kernel 0 -> 45": k <= 1 is the identity, an even
/// k is rounded up to the next odd size, sigma = kernel_size_sigma(k), radius (k - 1) / 2.
inline Images gaussian_blur_kernel(const Images& x, double kernel_size) {
    detail::check_images(x, "blur_kernel");
    SGF_CHECK(std::isfinite(kernel_size) && kernel_size >= 0 && kernel_size <= 6001, ArgumentError,
              "attack blur_kernel: kernel size must be in 0..6001 px, got {}", kernel_size);  // the registry's range
    const int k = int(std::lround(kernel_size)) | 1;
    if (k <= 1) return x;
    return gaussian_blur(x, kernel_size_sigma(k), (k - 1) / 2);
}

/// JPEG re-encoding of every sample at `quality` (1..100) with stb_image_write's encoder (to memory)
/// and stb_image's decoder, through 8 bits (io::to_image / io::to_tensor). Gray samples are encoded
/// as JPEG's 3-component form and converted back with the luma rule (exact for R = G = B).
inline Images jpeg(const Images& x, int quality) {
    detail::check_images(x, "jpeg");
    SGF_CHECK(quality >= 1 && quality <= 100, ArgumentError, "attack jpeg: quality must be 1..100, got {}", quality);
    SGF_CHECK(detail::jpeg_can_hold(x.shape.c), ShapeError, "attack jpeg: needs 1 or 3 channels, got shape {}", x.shape.str());
    Images out(x.shape);
    const std::int64_t S = x.shape.sample_size();
    for (std::int64_t n = 0; n < x.shape.n; ++n) {
        const std::string bytes = io::encode_jpeg(io::to_image(x, n), quality);
        io::Image back = io::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "jpeg attack");
        back = io::convert_channels(back, int(x.shape.c));
        SGF_CHECK(back.width == x.shape.w && back.height == x.shape.h, FormatError, "attack jpeg: decoded size {}x{} differs",
                  back.width, back.height);
        const Images t = io::to_tensor(back);
        std::copy(t.data.begin(), t.data.end(), out.data.begin() + n * S);
    }
    return out;
}

/// Centre crop keeping `fraction` of each side (crop side = max(1, round(fraction * side)), offset
/// floor((side - crop) / 2)), resized back to the original size with resize_images.
inline Images center_crop(const Images& x, double fraction) {
    detail::check_images(x, "crop");
    SGF_CHECK(std::isfinite(fraction) && fraction > 0 && fraction <= 1, ArgumentError,
              "attack crop: fraction must be in (0, 1], got {}", fraction);
    const std::int64_t H = x.shape.h, W = x.shape.w;
    const std::int64_t ch = std::max<std::int64_t>(1, std::llround(fraction * double(H)));
    const std::int64_t cw = std::max<std::int64_t>(1, std::llround(fraction * double(W)));
    if (ch == H && cw == W) return x;
    const std::int64_t y0 = (H - ch) / 2, x0 = (W - cw) / 2;
    Images crop(Shape{x.shape.n, x.shape.c, ch, cw});
    for (std::int64_t n = 0; n < x.shape.n; ++n)
        for (std::int64_t c = 0; c < x.shape.c; ++c)
            for (std::int64_t y = 0; y < ch; ++y)
                for (std::int64_t xx = 0; xx < cw; ++xx) crop.at(n, c, y, xx) = x.at(n, c, y + y0, xx + x0);
    return resize_images(crop, int(W), int(H));
}

/// Resize down by `factor` (side -> max(1, round(side / factor))) and back up to the original size.
inline Images resize_down_up(const Images& x, double factor) {
    detail::check_images(x, "resize");
    SGF_CHECK(std::isfinite(factor) && factor >= 1, ArgumentError, "attack resize: factor must be >= 1, got {}", factor);
    const int H = int(x.shape.h), W = int(x.shape.w);
    const int h = std::max(1, int(std::lround(H / factor))), w = std::max(1, int(std::lround(W / factor)));
    if (h == H && w == W) return x;
    return resize_images(resize_images(x, w, h), W, H);
}

/// x + delta (no clamping).
inline Images brightness(const Images& x, double delta) {
    detail::check_images(x, "brightness");
    SGF_CHECK(std::isfinite(delta), ArgumentError, "attack brightness: offset must be finite");
    Images out = x;
    if (delta == 0) return out;
    for (auto& v : out.data) v = float(double(v) + delta);
    return out;
}

/// mean + factor (x - mean), mean over each sample's pixels and channels (torchvision-like blend
/// with the mean grey); factor 1 is the identity, 0 a flat image.
inline Images contrast(const Images& x, double factor) {
    detail::check_images(x, "contrast");
    SGF_CHECK(std::isfinite(factor) && factor >= 0, ArgumentError, "attack contrast: factor must be >= 0, got {}", factor);
    Images out = x;
    if (factor == 1) return out;
    const std::int64_t S = x.shape.sample_size();
    for (std::int64_t n = 0; n < x.shape.n; ++n) {
        double mean = 0;
        for (std::int64_t i = 0; i < S; ++i) mean += x.data[std::size_t(n * S + i)];
        mean /= double(S);
        for (std::int64_t i = 0; i < S; ++i) {
            float& v = out.data[std::size_t(n * S + i)];
            v = float(mean + factor * (double(v) - mean));
        }
    }
    return out;
}

/// Gamma on intensities u = (x + 1) / 2 clamped to [0, 1]: u^g, mapped back to [-1, 1].
/// g > 1 darkens the mid-tones, g < 1 brightens them. g = 1 returns x unchanged, values outside
/// [-1, 1] included (the identity strength is exact; any other g clamps them).
inline Images gamma(const Images& x, double g) {
    detail::check_images(x, "gamma");
    SGF_CHECK(std::isfinite(g) && g > 0, ArgumentError, "attack gamma: exponent must be > 0, got {}", g);
    Images out = x;
    if (g == 1) return out;
    for (auto& v : out.data) v = float(2.0 * std::pow(std::clamp((double(v) + 1.0) * 0.5, 0.0, 1.0), g) - 1.0);
    return out;
}

/// Rotation by `degrees` about the image centre (positive: counter-clockwise as displayed, y down),
/// bilinear, edge replication outside the image.
inline Images rotate(const Images& x, double degrees) {
    detail::check_images(x, "rotate");
    SGF_CHECK(std::isfinite(degrees), ArgumentError, "attack rotate: angle must be finite");
    if (degrees == 0) return x;
    const std::int64_t H = x.shape.h, W = x.shape.w;
    const double a = degrees * 3.14159265358979323846 / 180.0, ca = std::cos(a), sa = std::sin(a);
    const double cx = 0.5 * double(W - 1), cy = 0.5 * double(H - 1);
    Images out(x.shape);
    const std::int64_t planes = x.shape.n * x.shape.c;
    for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t xx = 0; xx < W; ++xx) {
            // Inverse map. With y pointing down, a counter-clockwise turn on screen of a point
            // (dx, dy) is (dx cos a + dy sin a, -dx sin a + dy cos a); its inverse is the transpose.
            const double dx = double(xx) - cx, dy = double(y) - cy;
            const double sx = std::clamp(cx + dx * ca - dy * sa, 0.0, double(W - 1));
            const double sy = std::clamp(cy + dx * sa + dy * ca, 0.0, double(H - 1));
            const std::int64_t x0 = std::min<std::int64_t>(std::int64_t(sx), W - 1), y0 = std::min<std::int64_t>(std::int64_t(sy), H - 1);
            const std::int64_t x1 = std::min(x0 + 1, W - 1), y1 = std::min(y0 + 1, H - 1);
            const double fx = sx - double(x0), fy = sy - double(y0);
            for (std::int64_t p = 0; p < planes; ++p) {
                const float* s = x.data.data() + p * H * W;
                const double v = (1 - fy) * ((1 - fx) * s[y0 * W + x0] + fx * s[y0 * W + x1]) +
                                 fy * ((1 - fx) * s[y1 * W + x0] + fx * s[y1 * W + x1]);
                out.data[std::size_t(p * H * W + y * W + xx)] = float(v);
            }
        }
    return out;
}

// ---- the combined attack -------------------------------------------------------------------------

/// One row of the combined-attack table. The blur is given as the paper's kernel size on a 128 px
/// image; on an H x W input it becomes sigma = kernel_size_sigma(k) * S / 128 with S = min(H, W) of
/// the input (before the crop; radius ceil(3 sigma)), so a level means the same relative degradation
/// at every resolution (as the crop fraction, the noise std and the JPEG quality already do).
struct CombinedParams {
    double crop_fraction = 1;  ///< center_crop
    int blur_kernel_128 = 0;   ///< 0: no blur
    double noise_std = 0;      ///< gaussian_noise
    int jpeg_quality = 0;      ///< 0: no JPEG
};

/// The combined attack's table, applied in the order crop -> blur -> noise -> JPEG (JPEG last, as
/// when a perturbed image is finally saved). Level 0 is the identity; level 10 reaches the
/// paper's strongest single settings for blur (kernel 45), noise (0.5) and JPEG (quality 10).
/// The paper does not publish its recipe; this follows its idea (all of crop, blur, noise and
/// JPEG at once, each growing with the level), mild at level 1.
///
/// | level | crop fraction | blur kernel @128 px | noise std | JPEG quality |
/// |-------|---------------|---------------------|-----------|--------------|
/// |   0   | 1.00          | -                   | 0         | -            |
/// |   1   | 0.95          | 3                   | 0.01      | 90           |
/// |   2   | 0.90          | 5                   | 0.02      | 80           |
/// |   3   | 0.85          | 7                   | 0.03      | 70           |
/// |   4   | 0.80          | 9                   | 0.05      | 60           |
/// |   5   | 0.75          | 11                  | 0.07      | 50           |
/// |   6   | 0.70          | 15                  | 0.10      | 40           |
/// |   7   | 0.60          | 19                  | 0.15      | 30           |
/// |   8   | 0.50          | 25                  | 0.20      | 20           |
/// |   9   | 0.40          | 35                  | 0.30      | 15           |
/// |  10   | 0.30          | 45                  | 0.50      | 10           |
inline CombinedParams combined_params(int level) {
    static constexpr std::array<CombinedParams, 11> table{{
        {1.00, 0, 0.00, 0},
        {0.95, 3, 0.01, 90},
        {0.90, 5, 0.02, 80},
        {0.85, 7, 0.03, 70},
        {0.80, 9, 0.05, 60},
        {0.75, 11, 0.07, 50},
        {0.70, 15, 0.10, 40},
        {0.60, 19, 0.15, 30},
        {0.50, 25, 0.20, 20},
        {0.40, 35, 0.30, 15},
        {0.30, 45, 0.50, 10},
    }};
    SGF_CHECK(level >= 0 && level <= 10, ArgumentError, "attack combined: level must be 0..10, got {}", level);
    return table[std::size_t(level)];
}

/// The combined attack at `level` (see combined_params); the noise uses `seed`.
inline Images combined(const Images& x, int level, std::uint64_t seed) {
    detail::check_images(x, "combined");
    const CombinedParams p = combined_params(level);
    // before any work: its last step is JPEG (levels >= 1)
    SGF_CHECK(p.jpeg_quality == 0 || detail::jpeg_can_hold(x.shape.c), ShapeError,
              "attack combined: level {} ends with JPEG, which needs 1 or 3 channels, got shape {}", level, x.shape.str());
    Images y = center_crop(x, p.crop_fraction);
    if (p.blur_kernel_128 > 1)
        y = gaussian_blur(y, kernel_size_sigma(p.blur_kernel_128) * double(std::min(x.shape.h, x.shape.w)) / 128.0);
    y = gaussian_noise(y, p.noise_std, seed);
    if (p.jpeg_quality > 0) y = jpeg(y, p.jpeg_quality);
    return y;
}

// ---- uniform interface and registry --------------------------------------------------------------

struct ImageAttack {
    std::string name;
    double strength = 0;
    /// "name@strength", e.g. "jpeg@50" (shortest round-trip formatting).
    std::string label() const { return fmt::format("{}@{}", name, strength); }
};

/// What `sgf eval` needs to sweep an attack.
struct AttackInfo {
    std::string name;
    std::string parameter;           ///< what the strength means
    std::optional<double> identity;  ///< the no-op strength, if there is one
    double min = 0, max = 0;         ///< accepted strengths (inclusive, except min when min_exclusive)
    std::vector<double> sweep;       ///< natural sweep, mild to strong (starts at the identity if any)
    bool integer = false;            ///< only whole numbers (JPEG quality, combined level)
    bool min_exclusive = false;      ///< min itself is refused (crop keeps a fraction > 0)
};

inline const std::vector<AttackInfo>& image_attacks() {
    static const std::vector<AttackInfo> list{
        {"noise", "std of additive Gaussian noise on the [-1, 1] scale", 0.0, 0, 1e6, {0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5}},
        {"blur", "Gaussian sigma in pixels (radius ceil(3 sigma))", 0.0, 0, kMaxBlurSigma, {0, 0.5, 1, 1.5, 2, 3, 4}},
        {"blur_kernel", "Gaussian kernel size in pixels (odd; sigma by OpenCV's rule)", 0.0, 0, 6001, {0, 3, 5, 9, 15, 25, 45}},
        {"jpeg", "JPEG quality", std::nullopt, 1, 100, {100, 90, 75, 60, 50, 30, 20, 10}, true},
        {"crop", "kept fraction of each side (centre crop, resized back)", 1.0, 0, 1, {1, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5}, false, true},
        {"resize", "downscale factor (resized back up)", 1.0, 1, 1e6, {1, 1.5, 2, 3, 4, 8}},
        {"brightness", "offset added on the [-1, 1] scale", 0.0, -1e6, 1e6, {0, 0.1, 0.2, 0.3, 0.5}},
        {"contrast", "contrast factor about the sample mean", 1.0, 0, 1e6, {1, 0.8, 0.6, 0.4, 0.2}},
        {"gamma", "gamma exponent on (x + 1) / 2", 1.0, 1e-6, 1e6, {1, 1.25, 1.5, 2, 3}},
        {"rotate", "rotation in degrees (counter-clockwise)", 0.0, -360, 360, {0, 1, 2, 5, 10, 20}},
        {"combined", "combined-attack level (crop, blur, noise, JPEG; see combined_params)", 0.0, 0, 10,
         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, true},
    };
    return list;
}

/// The registry entry of `name`; throws ArgumentError listing the known names.
inline const AttackInfo& image_attack_info(std::string_view name) {
    for (const auto& a : image_attacks())
        if (a.name == name) return a;
    std::string known;
    for (const auto& a : image_attacks()) known += (known.empty() ? "" : ", ") + a.name;
    SGF_THROW(ArgumentError, "unknown image attack '{}' (known: {})", name, known);
}

namespace detail {
inline int integral_strength(const ImageAttack& a) {
    const double r = std::round(a.strength);
    SGF_CHECK(std::isfinite(a.strength) && std::abs(a.strength - r) < 1e-9, ArgumentError,
              "attack {}: strength must be an integer, got {}", a.name, a.strength);
    return int(r);
}
}  // namespace detail

/// ArgumentError unless `a` names a registered attack with a strength apply() accepts: finite, in
/// the registered range, whole where the attack needs it. apply and parse_image_attack both check this.
inline void check_attack(const ImageAttack& a) {
    const AttackInfo& info = image_attack_info(a.name);
    SGF_CHECK(std::isfinite(a.strength) && a.strength >= info.min && a.strength <= info.max &&
                  !(info.min_exclusive && a.strength == info.min),
              ArgumentError, "attack {}: strength {} outside {}{}, {}]", a.name, a.strength, info.min_exclusive ? "(" : "[", info.min,
              info.max);
    if (info.integer) (void)detail::integral_strength(a);
}

/// Applies one attack to a batch [N, C, H, W] in [-1, 1]; the result has the same shape. `seed`
/// matters only for the random attacks (noise, combined).
inline Images apply(const ImageAttack& a, const Images& x, std::uint64_t seed) {
    check_attack(a);
    const std::string_view n = a.name;
    if (n == "noise") return gaussian_noise(x, a.strength, seed);
    if (n == "blur") return gaussian_blur(x, a.strength);
    if (n == "blur_kernel") return gaussian_blur_kernel(x, a.strength);
    if (n == "jpeg") return jpeg(x, detail::integral_strength(a));
    if (n == "crop") return center_crop(x, a.strength);
    if (n == "resize") return resize_down_up(x, a.strength);
    if (n == "brightness") return brightness(x, a.strength);
    if (n == "contrast") return contrast(x, a.strength);
    if (n == "gamma") return gamma(x, a.strength);
    if (n == "rotate") return rotate(x, a.strength);
    if (n == "combined") return combined(x, detail::integral_strength(a), seed);
    SGF_THROW(ArgumentError, "image attack '{}' is registered but not implemented", a.name);
}

/// An 8-bit image through an attack: io::to_tensor -> apply -> io::to_image.
inline io::Image apply(const ImageAttack& a, const io::Image& img, std::uint64_t seed) {
    return io::to_image(apply(a, io::to_tensor(img), seed));
}

/// Parses "name@strength" or "name=strength" (e.g. "jpeg@50", "noise=0.1").
inline ImageAttack parse_image_attack(std::string_view s) {
    const auto at = s.find_first_of("@=");
    SGF_CHECK(at != std::string_view::npos && at > 0 && at + 1 < s.size(), ArgumentError,
              "attack '{}': expected name@strength, e.g. jpeg@50", s);
    ImageAttack a{std::string(s.substr(0, at)), 0};
    const std::string num(s.substr(at + 1));
    std::size_t used = 0;
    try {
        a.strength = std::stod(num, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    SGF_CHECK(used == num.size() && std::isfinite(a.strength), ArgumentError, "attack '{}': '{}' is not a finite number", s, num);
    check_attack(a);  // what apply would refuse is refused here (crop@0, jpeg@50.5)
    return a;
}

}  // namespace sgf::attack
