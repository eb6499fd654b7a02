// 8-bit images: decoding (PNG, JPEG, BMP, ... via stb, with size limits checked before decoding),
// atomic PNG writing, JPEG encoding, conversion to and from [-1, 1] float tensors, channel
// conversion, centre crop and an antialiased resize (see docs/data.md for the exact filter).
#pragma once

#include <sgf/core/shape.hpp>
#include <sgf/io/atomic_file.hpp>

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace sgf::io {

struct ImageLimits {
    int max_side = 16384;
    std::int64_t max_pixels = 64ll << 20;
};

struct Image {
    int width = 0, height = 0, channels = 0;  ///< channels 1 (gray) or 3 (RGB)
    std::vector<std::uint8_t> pixels;         ///< interleaved HWC, row-major
    std::uint8_t& at(int y, int x, int c) { return pixels[(std::size_t(y) * width + x) * channels + c]; }
    std::uint8_t at(int y, int x, int c) const { return pixels[(std::size_t(y) * width + x) * channels + c]; }
};

/// Decodes an encoded image held in memory; `name` is used in error messages.
inline Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name, const ImageLimits& lim = {}) {
    if (size > std::size_t(INT32_MAX)) SGF_THROW(FormatError, "{}: file too large to be an image", name);
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(data, int(size), &w, &h, &c))
        SGF_THROW(FormatError, "{}: not a readable image ({})", name, stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
    if (w <= 0 || h <= 0 || w > lim.max_side || h > lim.max_side || std::int64_t(w) * h > lim.max_pixels)
        SGF_THROW(FormatError, "{}: image is {}x{}, above the limit of {} px per side and {} pixels", name, w, h, lim.max_side,
                  lim.max_pixels);
    const int want = (c == 1 || c == 2) ? 1 : 3;
    int w2 = 0, h2 = 0, c2 = 0;
    std::uint8_t* px = stbi_load_from_memory(data, int(size), &w2, &h2, &c2, want);
    if (!px) SGF_THROW(FormatError, "{}: cannot decode image: {}", name, stbi_failure_reason() ? stbi_failure_reason() : "corrupt data");
    Image img{w2, h2, want, std::vector<std::uint8_t>(px, px + std::size_t(w2) * h2 * want)};
    stbi_image_free(px);
    return img;
}

inline Image load_image(const std::filesystem::path& path, const ImageLimits& lim = {}) {
    const auto bytes = read_file(path, 1ull << 31);
    return decode_image(bytes.data(), bytes.size(), path.string(), lim);
}

namespace detail {
inline void append_bytes(void* ctx, void* data, int size) {
    auto* out = static_cast<std::string*>(ctx);
    out->append(static_cast<const char*>(data), std::size_t(size));
}
}  // namespace detail

inline std::string encode_png(const Image& img) {
    std::string out;
    if (!stbi_write_png_to_func(detail::append_bytes, &out, img.width, img.height, img.channels, img.pixels.data(),
                                img.width * img.channels))
        SGF_THROW(Error, "PNG encoding failed for a {}x{}x{} image", img.width, img.height, img.channels);
    return out;
}
inline std::string encode_jpeg(const Image& img, int quality) {
    std::string out;
    if (!stbi_write_jpg_to_func(detail::append_bytes, &out, img.width, img.height, img.channels, img.pixels.data(),
                                std::clamp(quality, 1, 100)))
        SGF_THROW(Error, "JPEG encoding failed for a {}x{}x{} image", img.width, img.height, img.channels);
    return out;
}
inline void save_png(const std::filesystem::path& path, const Image& img) { write_file_atomic(path, encode_png(img)); }

/// Sample n of a [N, C, H, W] tensor in [-1, 1] -> 8-bit image (round(127.5 (x + 1)), clamped).
inline Image to_image(const HostTensor<float>& t, std::int64_t n = 0) {
    const Shape& s = t.shape;
    SGF_CHECK(s.c == 1 || s.c == 3, ShapeError, "to_image: expected 1 or 3 channels, got shape {}", s.str());
    Image img{int(s.w), int(s.h), int(s.c), std::vector<std::uint8_t>(std::size_t(s.sample_size()))};
    for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x)
            for (int c = 0; c < s.c; ++c)
                img.at(y, x, c) = std::uint8_t(std::clamp(std::lround((t.at(n, c, y, x) + 1.0f) * 127.5f), 0l, 255l));
    return img;
}

/// Image -> [1, C, H, W] floats in [-1, 1] (u8 / 127.5 - 1).
inline HostTensor<float> to_tensor(const Image& img) {
    HostTensor<float> t(Shape{1, img.channels, img.height, img.width});
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
            for (int c = 0; c < img.channels; ++c) t.at(0, c, y, x) = float(img.at(y, x, c)) / 127.5f - 1.0f;
    return t;
}

/// RGB -> gray uses luma 0.299 R + 0.587 G + 0.114 B (rounded); gray -> RGB replicates.
inline Image convert_channels(const Image& img, int channels) {
    if (img.channels == channels) return img;
    Image out{img.width, img.height, channels, std::vector<std::uint8_t>(std::size_t(img.width) * img.height * channels)};
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
            if (channels == 1)
                out.at(y, x, 0) = std::uint8_t(std::lround(0.299 * img.at(y, x, 0) + 0.587 * img.at(y, x, 1) + 0.114 * img.at(y, x, 2)));
            else
                for (int c = 0; c < 3; ++c) out.at(y, x, c) = img.at(y, x, 0);
        }
    return out;
}

inline Image center_crop_square(const Image& img) {
    const int s = std::min(img.width, img.height), x0 = (img.width - s) / 2, y0 = (img.height - s) / 2;
    Image out{s, s, img.channels, std::vector<std::uint8_t>(std::size_t(s) * s * img.channels)};
    for (int y = 0; y < s; ++y)
        std::copy_n(&img.pixels[((std::size_t(y + y0)) * img.width + x0) * img.channels], std::size_t(s) * img.channels,
                    &out.pixels[std::size_t(y) * s * img.channels]);
    return out;
}

namespace detail {
/// 1-D antialiased resampling weights: a triangle (linear) kernel whose support is widened by the
/// downscale factor, sample centres aligned (src = (dst + 0.5) * in/out - 0.5), weights normalised.
inline std::vector<std::vector<std::pair<int, double>>> resize_weights(int in, int out) {
    const double scale = double(in) / double(out), support = std::max(1.0, scale);
    std::vector<std::vector<std::pair<int, double>>> w(static_cast<std::size_t>(out));
    for (int o = 0; o < out; ++o) {
        const double center = (o + 0.5) * scale - 0.5;
        const int lo = int(std::floor(center - support)), hi = int(std::ceil(center + support));
        double total = 0;
        for (int i = lo; i <= hi; ++i) {
            const double t = 1.0 - std::abs(double(i) - center) / support;
            if (t <= 0) continue;
            w[o].push_back({std::clamp(i, 0, in - 1), t});
            total += t;
        }
        for (auto& p : w[o]) p.second /= total;
    }
    return w;
}
}  // namespace detail

/// Antialiased resize (separable triangle filter, support scaled by the downscale factor: exact
/// bilinear when upscaling, area-like averaging when downscaling; edges clamp).
inline Image resize(const Image& img, int width, int height) {
    SGF_CHECK(width > 0 && height > 0, ArgumentError, "resize: target {}x{} must be positive", width, height);
    if (img.width == width && img.height == height) return img;
    const auto wx = detail::resize_weights(img.width, width), wy = detail::resize_weights(img.height, height);
    const int C = img.channels;
    std::vector<double> tmp(std::size_t(img.height) * width * C, 0.0);
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < width; ++x)
            for (const auto& [i, wt] : wx[x])
                for (int c = 0; c < C; ++c) tmp[(std::size_t(y) * width + x) * C + c] += wt * img.at(y, i, c);
    Image out{width, height, C, std::vector<std::uint8_t>(std::size_t(width) * height * C)};
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < C; ++c) {
                double v = 0;
                for (const auto& [j, wt] : wy[y]) v += wt * tmp[(std::size_t(j) * width + x) * C + c];
                out.at(y, x, c) = std::uint8_t(std::clamp(std::lround(v), 0l, 255l));
            }
    return out;
}

/// What the decoder sees: channel conversion, centre crop to a square, antialiased resize.
inline Image prepare_for_model(const Image& img, int channels, int resolution) {
    Image x = convert_channels(img, channels);
    if (x.width != x.height) x = center_crop_square(x);
    return resize(x, resolution, resolution);
}

/// Tiles images (same size and channels) into a rows x cols grid with `pad` pixels of background.
inline Image make_grid(const std::vector<Image>& images, int cols, int pad = 2, std::uint8_t background = 0) {
    SGF_CHECK(!images.empty() && cols > 0, ArgumentError, "make_grid: need images and cols > 0");
    const int w = images[0].width, h = images[0].height, C = images[0].channels;
    const int rows = int((images.size() + cols - 1) / cols);
    Image g{cols * (w + pad) + pad, rows * (h + pad) + pad, C, {}};
    g.pixels.assign(std::size_t(g.width) * g.height * C, background);
    for (std::size_t k = 0; k < images.size(); ++k) {
        const Image& im = images[k];
        SGF_CHECK(im.width == w && im.height == h && im.channels == C, ArgumentError, "make_grid: image {} differs in size", k);
        const int ox = pad + int(k % cols) * (w + pad), oy = pad + int(k / cols) * (h + pad);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int c = 0; c < C; ++c) g.at(oy + y, ox + x, c) = im.at(y, x, c);
    }
    return g;
}

}  // namespace sgf::io
