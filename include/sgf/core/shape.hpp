// Shapes. Every tensor in sgf is 4-D NCHW (batch, channels, height, width), like dlib's tensors:
// a dense activation [N, F] is stored as [N, F, 1, 1]. One rank keeps every op and layer simple.
#pragma once

#include <sgf/core/error.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace sgf {

struct Shape {
    std::int64_t n = 0, c = 0, h = 1, w = 1;

    constexpr Shape() = default;
    constexpr Shape(std::int64_t n_, std::int64_t c_, std::int64_t h_ = 1, std::int64_t w_ = 1)
        : n(n_), c(c_), h(h_), w(w_) {}

    constexpr std::int64_t size() const noexcept { return n * c * h * w; }
    /// Elements per sample (c*h*w).
    constexpr std::int64_t sample_size() const noexcept { return c * h * w; }
    constexpr std::int64_t plane() const noexcept { return h * w; }
    constexpr bool valid() const noexcept { return n >= 0 && c >= 0 && h >= 0 && w >= 0; }
    friend constexpr bool operator==(const Shape&, const Shape&) = default;

    std::string str() const { return fmt::format("[{}, {}, {}, {}]", n, c, h, w); }
    /// As a caller wrote a matrix ([N, F] for z or fingerprints): the two dimensions when the sample is
    /// 1x1 (how a dense activation is stored), all four otherwise.
    std::string matrix_str() const { return h == 1 && w == 1 ? fmt::format("[{}, {}]", n, c) : str(); }
};

/// Throws ShapeError naming `who` when `actual` differs from `expected`.
inline void check_shape(const Shape& actual, const Shape& expected, std::string_view who) {
    if (!(actual == expected))
        SGF_THROW(ShapeError, "{}: expected shape {}, got {}", who, expected.str(), actual.str());
}

/// A plain host tensor: shape + contiguous NCHW floats. Used for images, datasets and file IO.
template <class T = float>
struct HostTensor {
    Shape shape;
    std::vector<T> data;

    HostTensor() = default;
    explicit HostTensor(Shape s, T value = T(0)) : shape(s), data(static_cast<std::size_t>(checked_size(s)), value) {}

    T& at(std::int64_t n, std::int64_t c, std::int64_t y, std::int64_t x) {
        return data[static_cast<std::size_t>(((n * shape.c + c) * shape.h + y) * shape.w + x)];
    }
    const T& at(std::int64_t n, std::int64_t c, std::int64_t y, std::int64_t x) const {
        return data[static_cast<std::size_t>(((n * shape.c + c) * shape.h + y) * shape.w + x)];
    }
    std::int64_t size() const noexcept { return shape.size(); }

    static std::int64_t checked_size(const Shape& s) {
        if (!s.valid()) SGF_THROW(ShapeError, "negative tensor dimension in shape {}", s.str());
        return s.size();
    }
};

/// One pixel value in [-1, 1] as an 8-bit image stores it: round(127.5 (x + 1)) clamped to 0..255
/// (algorithm.md 2); NaN as 0, +-inf as 255 / 0 (lround of those, or of anything beyond a long, is
/// unspecified: +inf came out black on x86) ...
inline std::uint8_t to_u8(float x) {
    const float v = (x + 1.0f) * 127.5f;
    if (!(v > 0.0f)) return 0;  // also NaN
    if (v >= 255.0f) return 255;
    return std::uint8_t(std::lround(v));
}
/// ... and back: u8 / 127.5 - 1.
inline float from_u8(std::uint8_t u) { return float(u) / 127.5f - 1.0f; }

}  // namespace sgf

template <>
struct fmt::formatter<sgf::Shape> : fmt::formatter<std::string> {
    auto format(const sgf::Shape& s, fmt::format_context& ctx) const {
        return fmt::formatter<std::string>::format(s.str(), ctx);
    }
};
