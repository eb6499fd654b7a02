// 8-bit images: decoding (PNG and JPEG via stb, other formats off; size limits checked before decoding),
// atomic PNG writing, JPEG encoding, conversion to and from [-1, 1] float tensors, channel
// conversion, centre crop and an antialiased resize (docs/verification.md#image-preprocessing-for-decoding).
#pragma once

#include <sgf/core/shape.hpp>
#include <sgf/io/atomic_file.hpp>

#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace sgf::io {

struct ImageLimits {
    int max_side = 16384;
    std::int64_t max_pixels = 64ll << 20;
    /// PNG and JPEG only by default: stb_image's other decoders (BMP, GIF, PSD, TGA, HDR, PIC,
    /// PNM; TGA has no signature, so arbitrary bytes can reach it) widen the attack surface for
    /// formats sgf does not need (docs/security.md).
    bool allow_other_formats = false;
};

struct Image {
    int width = 0, height = 0, channels = 0;  ///< channels 1 (gray) or 3 (RGB)
    std::vector<std::uint8_t> pixels;         ///< interleaved HWC, row-major
    std::uint8_t& at(int y, int x, int c) { return pixels[(std::size_t(y) * width + x) * channels + c]; }
    std::uint8_t at(int y, int x, int c) const { return pixels[(std::size_t(y) * width + x) * channels + c]; }
};

namespace detail {
/// The signature tests stb_image applies first: JPEG is FF (FF...) D8, PNG its 8-byte signature.
inline bool is_jpeg(const std::uint8_t* p, std::size_t n) {
    if (n < 2 || p[0] != 0xFF) return false;
    std::size_t i = 1;
    while (i < n && p[i] == 0xFF) ++i;
    return i < n && p[i] == 0xD8;
}
inline bool is_png(const std::uint8_t* p, std::size_t n) {
    static const std::uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    return n >= 8 && std::memcmp(p, sig, 8) == 0;
}
/// JPEG checks for stb_image 2.27 (Debian 12's libstb), whose decoder trusts the stream in ways
/// tests/fuzz found to read or write out of bounds (fixed upstream in 2.28):
///  - a DHT table declaring more than 256 codes overflows the Huffman size and value arrays;
///  - a DC table symbol above 15 makes the coefficient decoder shift and index past its tables;
///  - a scan using a Huffman table that no DHT defined decodes with uninitialised heap memory.
/// The first two are checked at every FF C4 byte pair (read as stb would read a DHT from there),
/// so no interpretation of the stream reaches them. The third follows stb's own marker order
/// (padding before the frame header, FF fill bytes, entropy-coded data up to the next marker
/// other than RSTn), seeing every scan stb can decode and only tables stb has surely defined.
inline void check_jpeg_tables(const std::uint8_t* p, std::size_t n, const std::string& name) {
    auto byte = [&](std::size_t i) -> int { return i < n ? p[i] : 0; };  // stb reads 0 past the end
    auto be16 = [&](std::size_t i) { return byte(i) << 8 | byte(i + 1); };
    // Reads a DHT segment whose length field is at i; marks the tables it defines; returns the
    // offset after it, or 0 where stb stops with an error.
    auto dht = [&](std::size_t i, bool (*defined)[4]) -> std::size_t {
        long L = long(be16(i)) - 2;
        i += 2;
        while (L > 0) {
            const int q = byte(i++), tc = q >> 4, th = q & 15;
            if (tc > 1 || th > 3) return 0;  // stb rejects this table itself
            int codes = 0;
            for (int k = 0; k < 16; ++k) codes += byte(i++);
            if (codes > 256)
                SGF_THROW(FormatError, "{}: cannot decode image: corrupt JPEG: a Huffman table declares {} codes (at most 256)",
                          name, codes);
            if (tc == 0)
                for (int k = 0; k < codes; ++k)
                    if (byte(i + std::size_t(k)) > 15)
                        SGF_THROW(FormatError, "{}: cannot decode image: corrupt JPEG: DC Huffman symbol {} (at most 15)", name,
                                  byte(i + std::size_t(k)));
            if (defined) defined[tc][th] = true;
            i += std::size_t(codes);
            L -= 17 + codes;
        }
        return L == 0 ? i : 0;
    };
    for (std::size_t at = 0; at + 1 < n; ++at)
        if (p[at] == 0xFF && p[at + 1] == 0xC4) dht(at + 2, nullptr);

    bool defined[2][4] = {};
    bool frame = false, progressive = false, padding_ok = false;
    std::size_t i = 0;
    while (i < n && p[i] == 0xFF) ++i;
    ++i;  // D8 (is_jpeg)
    while (i < n) {
        if (p[i] != 0xFF) {
            if (padding_ok && !frame) {
                ++i;
                continue;
            }
            return;  // stb: "expected marker"
        }
        while (i < n && p[i] == 0xFF) ++i;
        if (i >= n) return;
        const int m = p[i++];
        padding_ok = true;
        const int len = be16(i);
        if (m == 0xD9 || len < 2) return;  // end of image, or a length stb rejects
        if (m == 0xC4) {
            i = dht(i, defined);
            if (i == 0) return;
        } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
            if (frame) return;  // stb: a second frame header is an unknown marker
            frame = true;
            progressive = m == 0xC2;
            i += std::size_t(len);
        } else if (m == 0xDA) {
            const int ns = byte(i + 2);
            if (!frame || ns < 1 || ns > 4 || len != 6 + 2 * ns) return;  // stb rejects the scan
            const int ss = byte(i + 3 + 2 * std::size_t(ns));
            for (int k = 0; k < ns; ++k) {
                const int q = byte(i + 4 + 2 * std::size_t(k)), hd = q >> 4, ha = q & 15;
                if (hd > 3 || ha > 3) return;
                const bool dc = !progressive || ss == 0, ac = !progressive || ss > 0;
                if ((dc && !defined[0][hd]) || (ac && !defined[1][ha]))
                    SGF_THROW(FormatError, "{}: cannot decode image: corrupt JPEG: a scan uses a Huffman table that was never defined",
                              name);
            }
            i += std::size_t(len);
            for (; i < n; ++i) {  // entropy-coded data
                if (p[i] != 0xFF) continue;
                std::size_t j = i + 1;
                while (j < n && p[j] == 0xFF) ++j;
                if (j < n && p[j] != 0x00 && !(p[j] >= 0xD0 && p[j] <= 0xD7)) break;
                i = j;
            }
        } else if (m == 0xDB || m == 0xDD || m == 0xDC || (m >= 0xE0 && m <= 0xEF) || m == 0xFE) {
            i += std::size_t(len);  // DQT, DRI, DNL, APPn, COM
        } else {
            return;  // stb: unknown marker
        }
    }
}

/// stb_image reads PNG chunks in order and grows its IDAT buffer to a chunk's declared length
/// before checking that the bytes exist (a 135-byte file asked for 2 GiB, found by tests/fuzz), and
/// inflates the image data without an output bound (a small "zlib bomb" would expand to gigabytes).
/// This walks the chunks the same way, rejects any chunk longer than what follows it, and inflates
/// the image data with zlib into a scratch buffer, rejecting it when it exceeds what a w x h image
/// can need (16-bit RGBA, Adam7 filter bytes included) or when zlib finds it corrupt.
inline void check_png_chunks(const std::uint8_t* p, std::size_t n, const std::string& name, int w, int h) {
    auto be32 = [&](std::size_t i) {
        return (std::uint32_t(p[i]) << 24) | (std::uint32_t(p[i + 1]) << 16) | (std::uint32_t(p[i + 2]) << 8) | p[i + 3];
    };
    const std::uint64_t cap = 8 * std::uint64_t(w) * std::uint64_t(h) + 16 * std::uint64_t(h) + 4096;
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) SGF_THROW(Error, "{}: zlib initialisation failed", name);
    struct End {
        z_stream* z;
        ~End() { inflateEnd(z); }
    } end{&zs};
    std::uint64_t produced = 0;
    bool stream_done = false, idat_seen = false;
    std::vector<std::uint8_t> scratch(64 << 10);
    for (std::size_t i = 8; i + 8 <= n;) {
        const std::uint32_t len = be32(i);
        const std::string type(reinterpret_cast<const char*>(p + i + 4), 4);
        i += 8;
        if (len > n - i)
            SGF_THROW(FormatError, "{}: cannot decode image: truncated or corrupt PNG: chunk '{}' claims {} bytes, {} remain", name,
                      type, len, n - i);
        if (type == "CgBI") SGF_THROW(FormatError, "{}: cannot decode image: Apple's CgBI PNG variant is not supported", name);
        // stb_image 2.27 copies an empty first IDAT chunk into its not yet allocated buffer
        // (memcpy to a null pointer; UBSan, found by tests/fuzz). No encoder writes one.
        if (type == "IDAT" && len == 0 && !idat_seen)
            SGF_THROW(FormatError, "{}: cannot decode image: corrupt PNG: empty IDAT chunk before the image data", name);
        if (type == "IDAT" && len > 0) idat_seen = true;
        if (type == "IDAT" && !stream_done) {
            zs.next_in = const_cast<Bytef*>(p + i);
            zs.avail_in = len;
            while (zs.avail_in > 0 && !stream_done) {
                zs.next_out = scratch.data();
                zs.avail_out = uInt(scratch.size());
                const int rc = inflate(&zs, Z_NO_FLUSH);
                produced += scratch.size() - zs.avail_out;
                if (produced > cap)
                    SGF_THROW(FormatError,
                              "{}: cannot decode image: corrupt PNG: image data inflates to more than the {} bytes a {}x{} image needs",
                              name, cap, w, h);
                if (rc == Z_STREAM_END) stream_done = true;
                else if (rc != Z_OK && rc != Z_BUF_ERROR)
                    SGF_THROW(FormatError, "{}: cannot decode image: corrupt PNG: image data is not valid zlib data ({})", name,
                              zs.msg ? zs.msg : "error");
                else if (rc == Z_BUF_ERROR && zs.avail_out != 0) break;  // needs the next chunk
            }
        }
        i += std::size_t(len) + 4;  // data and CRC
        if (type == "IEND") break;
    }
}
}  // namespace detail

/// Decodes an encoded image held in memory; `name` is used in error messages.
inline Image decode_image(const std::uint8_t* data, std::size_t size, const std::string& name, const ImageLimits& lim = {}) {
    if (size > std::size_t(INT32_MAX)) SGF_THROW(FormatError, "{}: file too large to be an image", name);
    if (size == 0) SGF_THROW(FormatError, "{}: an empty file (0 bytes), not a readable image", name);
    const bool jpeg = detail::is_jpeg(data, size), png = !jpeg && detail::is_png(data, size);
    if (!jpeg && !png && !lim.allow_other_formats)
        SGF_THROW(FormatError, "{}: not a readable image (neither PNG nor JPEG, the formats sgf reads: convert it to PNG)",
                  name);  // a program may allow stb's others: ImageLimits::allow_other_formats
    if (jpeg) detail::check_jpeg_tables(data, size, name);
    if (png && size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
        // the sizes a PNG header declares, checked before stb sees them: stb refuses sides above 2^24
        // as "unknown image type", which would hide that the header itself is the problem
        auto be32 = [&](std::size_t at) {
            return std::uint32_t(data[at]) << 24 | std::uint32_t(data[at + 1]) << 16 | std::uint32_t(data[at + 2]) << 8 | data[at + 3];
        };
        const std::uint32_t pw = be32(16), ph = be32(20);
        if (pw == 0 || ph == 0 || pw > std::uint32_t(lim.max_side) || ph > std::uint32_t(lim.max_side) ||
            std::uint64_t(pw) * ph > std::uint64_t(lim.max_pixels))
            SGF_THROW(FormatError, "{}: image is {}x{}, {} of {} px per side and {} pixels", name, pw, ph,
                      pw == 0 || ph == 0 ? "outside the limits" : "above the limit", lim.max_side, lim.max_pixels);
    }
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(data, int(size), &w, &h, &c))
        SGF_THROW(FormatError, "{}: not a readable image ({})", name, stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
    if (w <= 0 || h <= 0 || w > lim.max_side || h > lim.max_side || std::int64_t(w) * h > lim.max_pixels)
        SGF_THROW(FormatError, "{}: image is {}x{}, above the limit of {} px per side and {} pixels", name, w, h, lim.max_side,
                  lim.max_pixels);
    if (png) detail::check_png_chunks(data, size, name, w, h);
    const int want = (c == 1 || c == 2) ? 1 : 3;
    int w2 = 0, h2 = 0, c2 = 0;
    std::uint8_t* px = stbi_load_from_memory(data, int(size), &w2, &h2, &c2, want);
    // stb's reasons are terse ("IEN": no IEND chunk, i.e. a cut-off PNG); say what they mean in general
    if (!px) {
        // stb keeps one failure reason for all of its decoders: after a failed JPEG it can name another
        // format's test ("bad png sig"), so its reason is quoted only when it is about this format
        const std::string why = stbi_failure_reason() ? stbi_failure_reason() : "";
        const bool other = jpeg ? why.find("png") != std::string::npos : why.find("jpeg") != std::string::npos;
        SGF_THROW(FormatError, "{}: cannot decode {} image: truncated or corrupt image data{}", name, jpeg ? "JPEG" : png ? "PNG" : "the",
                  why.empty() || other ? std::string() : fmt::format(" (decoder: {})", why));
    }
    Image img{w2, h2, want, std::vector<std::uint8_t>(px, px + std::size_t(w2) * h2 * want)};
    stbi_image_free(px);
    return img;
}

/// An image file's bytes, undecoded (read_file refuses a file over 2 GiB, naming it).
inline std::vector<std::uint8_t> read_image_file(const std::filesystem::path& path) { return read_file(path, 1ull << 31); }

inline Image load_image(const std::filesystem::path& path, const ImageLimits& lim = {}) {
    const auto bytes = read_image_file(path);
    return decode_image(bytes.data(), bytes.size(), path.string(), lim);
}

namespace detail {
inline void append_bytes(void* ctx, void* data, int size) {
    auto* out = static_cast<std::string*>(ctx);
    out->append(static_cast<const char*>(data), std::size_t(size));
}
}  // namespace detail

namespace detail {
/// An Image is a plain struct anyone can fill: the encoders and every image helper check that its
/// sizes agree before they read width x height x channels bytes from it. `what` names the caller
/// or the image ("image 3").
inline bool image_is_consistent(const Image& img) {
    return img.width > 0 && img.height > 0 && img.width <= (1 << 24) && img.height <= (1 << 24) &&
           (img.channels == 1 || img.channels == 3) &&
           img.pixels.size() == std::size_t(img.width) * std::size_t(img.height) * std::size_t(img.channels);
}
inline void check_image(const Image& img, std::string_view what) {
    SGF_CHECK(image_is_consistent(img), ArgumentError, "{}: a {}x{} image with {} channel(s) needs {} bytes of pixels, it has {} (width and height >= 1, 1 or 3 channels)",
              what, img.width, img.height, img.channels,
              std::size_t(std::max(img.width, 0)) * std::size_t(std::max(img.height, 0)) * std::size_t(std::max(img.channels, 0)),
              img.pixels.size());
}
/// A resize target: positive, at most ImageLimits' 16384 px per side and 64 Mi pixels (what sgf
/// reads), so a typo cannot ask for gigabytes.
inline void check_resize_target(int width, int height, std::string_view what) {
    const ImageLimits lim;
    SGF_CHECK(width > 0 && height > 0, ArgumentError, "{}: target {}x{} must be positive", what, width, height);
    SGF_CHECK(width <= lim.max_side && height <= lim.max_side && std::int64_t(width) * height <= lim.max_pixels, ArgumentError,
              "{}: target {}x{} is above the limit of {} px per side and {} pixels", what, width, height, lim.max_side,
              lim.max_pixels);
}
}  // namespace detail

inline std::string encode_png(const Image& img) {
    detail::check_image(img, "encode_png");
    std::string out;
    if (!stbi_write_png_to_func(detail::append_bytes, &out, img.width, img.height, img.channels, img.pixels.data(),
                                img.width * img.channels))
        SGF_THROW(Error, "PNG encoding failed for a {}x{}x{} image", img.width, img.height, img.channels);
    return out;
}
inline std::string encode_jpeg(const Image& img, int quality) {
    detail::check_image(img, "encode_jpeg");
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
    SGF_CHECK(n >= 0 && n < s.n, ArgumentError, "to_image: sample {} of a batch of {}", n, s.n);
    SGF_CHECK(s.h >= 1 && s.w >= 1 && s.h <= (1 << 24) && s.w <= (1 << 24) && t.data.size() == std::size_t(s.size()), ShapeError,
              "to_image: a tensor of shape {} holds {} values", s.str(), t.data.size());
    Image img{int(s.w), int(s.h), int(s.c), std::vector<std::uint8_t>(std::size_t(s.sample_size()))};
    for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x)
            for (int c = 0; c < s.c; ++c)
                img.at(y, x, c) = to_u8(t.at(n, c, y, x));
    return img;
}

/// Image -> [1, C, H, W] floats in [-1, 1] (u8 / 127.5 - 1).
inline HostTensor<float> to_tensor(const Image& img) {
    detail::check_image(img, "to_tensor");
    HostTensor<float> t(Shape{1, img.channels, img.height, img.width});
    for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
            for (int c = 0; c < img.channels; ++c) t.at(0, c, y, x) = from_u8(img.at(y, x, c));
    return t;
}

/// RGB -> gray uses luma 0.299 R + 0.587 G + 0.114 B (rounded); gray -> RGB replicates.
inline Image convert_channels(const Image& img, int channels) {
    SGF_CHECK((channels == 1 || channels == 3) && (img.channels == 1 || img.channels == 3) && img.width >= 0 && img.height >= 0 &&
                  img.pixels.size() == std::size_t(img.width) * std::size_t(img.height) * std::size_t(img.channels),
              ArgumentError, "convert_channels: {}x{}x{} image with {} bytes to {} channels (1 or 3, sizes must agree)", img.width,
              img.height, img.channels, img.pixels.size(), channels);
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
    detail::check_image(img, "center_crop_square");
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
    detail::check_image(img, "resize");
    detail::check_resize_target(width, height, "resize");
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

/// The smallest side (in pixels, before cropping) of an image that sgf reads for a model of
/// resolution R, to decode it or to train or measure on it: R/4, at least 2 (8 px for `small`, 32 for
/// `paper128`). A smaller image would be enlarged more than 4x per side and hold under 1/16 of the
/// pixels the model sees.
inline int min_image_side(int resolution) { return std::max(2, resolution / 4); }

/// What the decoder sees: channel conversion, centre crop to a square, antialiased resize.
inline Image prepare_for_model(const Image& img, int channels, int resolution) {
    Image x = convert_channels(img, channels);
    if (x.width != x.height) x = center_crop_square(x);
    return resize(x, resolution, resolution);
}

/// Tiles images (same size and channels) into a rows x cols grid with `pad` pixels of background.
inline Image make_grid(const std::vector<Image>& images, int cols, int pad = 2, std::uint8_t background = 0) {
    SGF_CHECK(!images.empty() && cols > 0 && pad >= 0, ArgumentError, "make_grid: need images, cols > 0 and pad >= 0 (cols {}, pad {})",
              cols, pad);
    for (std::size_t k = 0; k < images.size(); ++k)
        if (!detail::image_is_consistent(images[k])) detail::check_image(images[k], fmt::format("make_grid: image {}", k));
    const int w = images[0].width, h = images[0].height, C = images[0].channels;
    const std::int64_t rows64 = (std::int64_t(images.size()) + cols - 1) / cols;
    SGF_CHECK(std::int64_t(cols) * (w + pad) + pad <= 65535 && rows64 * (h + pad) + pad <= 65535, ArgumentError,
              "make_grid: a {}x{} grid of {}x{} images with pad {} exceeds 65535 px per side", rows64, cols, w, h, pad);
    const int rows = int(rows64);
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
