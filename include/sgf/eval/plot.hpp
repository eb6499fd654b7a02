// Minimal raster drawing for the evaluation report: lines, rectangles, a built-in 5x7 bitmap font
// (upper-case letters, digits and common punctuation; lower-case is drawn as upper-case), line plots
// with axes, ticks, grid, reference lines and a legend, and labelled image strips. Everything draws
// into an 8-bit RGB io::Image, to be written with io::save_png. No external plotting dependency.
#pragma once

#include <sgf/io/image.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sgf::plot {

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};

inline constexpr Rgb kBlack{0, 0, 0}, kWhite{255, 255, 255}, kGrid{225, 225, 225}, kGray{140, 140, 140};
inline constexpr Rgb kBlue{31, 119, 180}, kOrange{255, 127, 14}, kGreen{44, 160, 44}, kRed{214, 39, 40};

/// A blank RGB canvas.
inline io::Image canvas(int width, int height, Rgb fill = kWhite) {
    io::Image img{width, height, 3, std::vector<std::uint8_t>(std::size_t(width) * std::size_t(height) * 3)};
    for (std::size_t i = 0; i < img.pixels.size(); i += 3) {
        img.pixels[i] = fill.r;
        img.pixels[i + 1] = fill.g;
        img.pixels[i + 2] = fill.b;
    }
    return img;
}

/// Sets one pixel; coordinates outside the image are ignored. Gray images get the colour's luma.
inline void put(io::Image& img, int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    if (img.channels >= 3) {
        img.at(y, x, 0) = c.r;
        img.at(y, x, 1) = c.g;
        img.at(y, x, 2) = c.b;
    } else {
        img.at(y, x, 0) = std::uint8_t(std::lround(0.299 * c.r + 0.587 * c.g + 0.114 * c.b));
    }
}

inline void fill_rect(io::Image& img, int x0, int y0, int w, int h, Rgb c) {
    for (int y = y0; y < y0 + h; ++y)
        for (int x = x0; x < x0 + w; ++x) put(img, x, y, c);
}

inline void rect_outline(io::Image& img, int x0, int y0, int w, int h, Rgb c) {
    for (int x = x0; x < x0 + w; ++x) {
        put(img, x, y0, c);
        put(img, x, y0 + h - 1, c);
    }
    for (int y = y0; y < y0 + h; ++y) {
        put(img, x0, y, c);
        put(img, x0 + w - 1, y, c);
    }
}

/// A line from (x0, y0) to (x1, y1), `thickness` px wide (a square brush), optionally dashed
/// (`dash` px on, `dash` px off, measured along the major axis).
inline void line(io::Image& img, double x0, double y0, double x1, double y1, Rgb c, int thickness = 1, int dash = 0) {
    const double dx = x1 - x0, dy = y1 - y0;
    const int steps = std::max(1, int(std::ceil(std::max(std::abs(dx), std::abs(dy)))));
    const int lo = -(thickness - 1) / 2, hi = thickness / 2;
    for (int i = 0; i <= steps; ++i) {
        if (dash > 0 && (i / dash) % 2 == 1) continue;
        const int x = int(std::lround(x0 + dx * i / steps)), y = int(std::lround(y0 + dy * i / steps));
        for (int a = lo; a <= hi; ++a)
            for (int b2 = lo; b2 <= hi; ++b2) put(img, x + a, y + b2, c);
    }
}

// ---- text -------------------------------------------------------------------------------------------

namespace detail {
struct Glyph {
    char ch;
    std::array<const char*, 7> rows;  ///< 5 columns each, '#' = ink
};
// A hand-drawn 5x7 font.
inline const std::vector<Glyph>& glyphs() {
    static const std::vector<Glyph> g{
        {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
        {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
        {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
        {'D', {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."}},
        {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
        {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
        {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
        {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
        {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
        {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
        {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
        {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
        {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
        {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
        {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
        {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
        {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
        {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
        {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
        {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
        {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
        {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
        {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
        {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
        {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
        {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
        {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
        {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
        {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
        {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
        {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
        {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
        {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
        {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
        {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
        {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
        {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
        {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
        {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
        {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
        {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
        {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
        {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
        {'@', {".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".###."}},
        {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
        {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
        {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
        {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
        {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
        {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
        {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
        {'^', {"..#..", ".#.#.", "#...#", ".....", ".....", ".....", "....."}},
        {'*', {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}},
        {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
        {'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
        {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
        {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
        {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
    };
    return g;
}
inline const Glyph* find_glyph(char c) {
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
    for (const auto& g : glyphs())
        if (g.ch == c) return &g;
    return nullptr;
}
}  // namespace detail

/// Width in pixels of `text` drawn at `scale` (6 px advance per character, 5 px glyphs).
inline int text_width(std::string_view text, int scale = 1) {
    return text.empty() ? 0 : (int(text.size()) * 6 - 1) * scale;
}
inline int text_height(int scale = 1) { return 7 * scale; }

/// Draws `text` with its top-left corner at (x, y). Characters outside the font are drawn as a box.
inline void text(io::Image& img, int x, int y, std::string_view s, Rgb c, int scale = 1) {
    for (char ch : s) {
        const auto* g = detail::find_glyph(ch);
        for (int r = 0; r < 7; ++r)
            for (int col = 0; col < 5; ++col) {
                const bool on = g ? g->rows[std::size_t(r)][col] == '#' : (r == 0 || r == 6 || col == 0 || col == 4);
                if (on) fill_rect(img, x + col * scale, y + r * scale, scale, scale, c);
            }
        x += 6 * scale;
    }
}

/// Text rotated by 90 degrees counter-clockwise (reads bottom to top), its bounding box's
/// top-left corner at (x, y).
inline void text_vertical(io::Image& img, int x, int y, std::string_view s, Rgb c, int scale = 1) {
    const int len = text_width(s, scale);
    int pos = 0;
    for (char ch : s) {
        const auto* g = detail::find_glyph(ch);
        for (int r = 0; r < 7; ++r)
            for (int col = 0; col < 5; ++col) {
                const bool on = g ? g->rows[std::size_t(r)][col] == '#' : (r == 0 || r == 6 || col == 0 || col == 4);
                // glyph pixel (col, r) -> (x + r, y + len - 1 - (pos + col))
                if (on) fill_rect(img, x + r * scale, y + len - (pos + col + 1) * scale, scale, scale, c);
            }
        pos += 6;
    }
}

// ---- line plots -------------------------------------------------------------------------------------

/// "Nice" tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about
/// `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 7) {
    if (!(hi > lo)) return {lo};
    const double raw = (hi - lo) / std::max(1, target - 1);
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    double step = p;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * p >= raw) {
            step = m * p;
            break;
        }
    std::vector<double> t;
    const auto k0 = std::int64_t(std::ceil(lo / step - 1e-9)), k1 = std::int64_t(std::floor(hi / step + 1e-9));
    for (std::int64_t k = k0; k <= k1; ++k) t.push_back(double(k) * step);  // integer multiples: no drift
    return t;
}

/// Tick label with as many decimals as the tick spacing `step` needs (0.1 -> "0.4", 2 -> "10").
inline std::string tick_label(double v, double step) {
    const int decimals = step > 0 ? std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6) : 0;
    return fmt::format("{:.{}f}", v, decimals);
}

struct Series {
    std::string name;
    Rgb color;
    std::vector<double> x, y;  ///< drawn in increasing x
};

struct HLine {
    std::string name;  ///< shown in the legend when not empty
    double y = 0;
    Rgb color = kGray;
};

struct PlotSpec {
    std::string title, x_label, y_label;
    int width = 800, height = 520;
    std::optional<double> y_min, y_max;  ///< default: the data range (with a margin)
    std::vector<Series> series;
    std::vector<HLine> hlines;  ///< dashed horizontal reference lines
};

/// A line plot: axes with ticks and labels, light grid, one polyline with square markers per series,
/// dashed reference lines, and a legend in the corner that covers the fewest data points.
inline io::Image line_plot(const PlotSpec& spec) {
    const int S = 2;  // text scale
    io::Image img = canvas(spec.width, spec.height);
    const int left = 110, right = 30, top = 50, bottom = 80;
    const int pw = spec.width - left - right, ph = spec.height - top - bottom;
    double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    bool any = false;
    for (const auto& s : spec.series)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
            if (!any) {
                xmin = xmax = s.x[i];
                ymin = ymax = s.y[i];
                any = true;
            }
            xmin = std::min(xmin, s.x[i]);
            xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, s.y[i]);
            ymax = std::max(ymax, s.y[i]);
        }
    if (xmax <= xmin) {
        xmin -= 0.5;
        xmax += 0.5;
    }
    if (spec.y_min) ymin = std::min(*spec.y_min, ymin);
    if (spec.y_max) ymax = std::max(*spec.y_max, ymax);
    if (ymax <= ymin) {
        ymin -= 0.5;
        ymax += 0.5;
    }
    auto X = [&](double v) { return left + (v - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double v) { return top + ph - (v - ymin) / (ymax - ymin) * ph; };

    // grid and ticks
    const auto xt = nice_ticks(xmin, xmax), yt = nice_ticks(ymin, ymax);
    const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double t : xt) {
        const int x = int(std::lround(X(t)));
        line(img, x, top, x, top + ph, kGrid);
        line(img, x, top + ph, x, top + ph + 6, kBlack);
        const std::string l = tick_label(t, xstep);
        text(img, x - text_width(l, S) / 2, top + ph + 12, l, kBlack, S);
    }
    for (double t : yt) {
        const int y = int(std::lround(Y(t)));
        line(img, left, y, left + pw, y, kGrid);
        line(img, left - 6, y, left, y, kBlack);
        const std::string l = tick_label(t, ystep);
        text(img, left - 10 - text_width(l, S), y - text_height(S) / 2, l, kBlack, S);
    }
    rect_outline(img, left, top, pw + 1, ph + 1, kBlack);
    // labels
    text(img, (spec.width - text_width(spec.title, S)) / 2, 15, spec.title, kBlack, S);
    text(img, left + (pw - text_width(spec.x_label, S)) / 2, spec.height - 10 - text_height(S), spec.x_label, kBlack, S);
    text_vertical(img, 12, top + (ph - text_width(spec.y_label, S)) / 2, spec.y_label, kBlack, S);

    for (const auto& h : spec.hlines)
        if (h.y >= ymin && h.y <= ymax) line(img, left, Y(h.y), left + pw, Y(h.y), h.color, 2, 8);
    for (const auto& s : spec.series) {
        std::vector<std::pair<double, double>> pts;
        for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
            if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) pts.push_back({s.x[i], s.y[i]});
        std::sort(pts.begin(), pts.end());
        for (std::size_t i = 1; i < pts.size(); ++i)
            line(img, X(pts[i - 1].first), Y(pts[i - 1].second), X(pts[i].first), Y(pts[i].second), s.color, 3);
        for (const auto& [px, py] : pts) fill_rect(img, int(std::lround(X(px))) - 4, int(std::lround(Y(py))) - 4, 9, 9, s.color);
    }

    // legend
    struct Entry {
        std::string name;
        Rgb color;
        bool dashed;
    };
    std::vector<Entry> entries;
    for (const auto& s : spec.series) entries.push_back({s.name, s.color, false});
    for (const auto& h : spec.hlines)
        if (!h.name.empty()) entries.push_back({h.name, h.color, true});
    if (!entries.empty()) {
        int lw = 0;
        for (const auto& e : entries) lw = std::max(lw, text_width(e.name, S));
        const int row = text_height(S) + 10, bw = lw + 70, bh = int(entries.size()) * row + 12;
        const std::array<std::pair<int, int>, 4> corners{{{left + pw - bw - 10, top + ph - bh - 10},
                                                          {left + 10, top + ph - bh - 10},
                                                          {left + pw - bw - 10, top + 10},
                                                          {left + 10, top + 10}}};
        int best = 0, best_hits = 1 << 30;
        for (int k = 0; k < 4; ++k) {
            int hits = 0;
            const auto [cx, cy] = corners[std::size_t(k)];
            for (const auto& s : spec.series)
                for (std::size_t i = 0; i + 1 < s.x.size() && i + 1 < s.y.size(); ++i)
                    for (int t = 0; t <= 20; ++t) {  // sample the polyline
                        const double px = X(s.x[i] + (s.x[i + 1] - s.x[i]) * t / 20.0), py = Y(s.y[i] + (s.y[i + 1] - s.y[i]) * t / 20.0);
                        hits += px >= cx && px <= cx + bw && py >= cy && py <= cy + bh;
                    }
            for (const auto& h : spec.hlines) hits += 10 * (Y(h.y) >= cy && Y(h.y) <= cy + bh);
            if (hits < best_hits) {
                best_hits = hits;
                best = k;
            }
        }
        const auto [bx, by] = corners[std::size_t(best)];
        fill_rect(img, bx, by, bw, bh, kWhite);
        rect_outline(img, bx, by, bw, bh, kGray);
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const int y = by + 8 + int(i) * row + text_height(S) / 2;
            line(img, bx + 10, y, bx + 50, y, entries[i].color, 3, entries[i].dashed ? 6 : 0);
            if (!entries[i].dashed) fill_rect(img, bx + 26, y - 4, 9, 9, entries[i].color);
            text(img, bx + 60, y - text_height(S) / 2, entries[i].name, kBlack, S);
        }
    }
    return img;
}

// ---- image strips -----------------------------------------------------------------------------------

/// A labelled grid: rows[r][c] is the image in row r, column c (all the same size); each column
/// gets `column_labels[c]` above it, each row `row_labels[r]` on its left (optional). Images are
/// enlarged `zoom` times (nearest neighbour); the result is RGB.
inline io::Image image_strip(const std::vector<std::vector<io::Image>>& rows, const std::vector<std::string>& column_labels,
                             const std::vector<std::string>& row_labels = {}, int zoom = 3) {
    SGF_CHECK(!rows.empty() && !rows[0].empty(), ArgumentError, "image_strip: no images");
    const int w = rows[0][0].width * zoom, h = rows[0][0].height * zoom, pad = 6;
    const std::size_t cols = rows[0].size();
    int label_h = text_height(1) + 8, row_w = 0;
    for (const auto& l : row_labels) row_w = std::max(row_w, text_width(l, 1) + 10);
    int col_w = w;
    for (const auto& l : column_labels) col_w = std::max(col_w, text_width(l, 1) + 4);
    io::Image img = canvas(row_w + int(cols) * (col_w + pad) + pad, label_h + int(rows.size()) * (h + pad) + pad, kWhite);
    for (std::size_t c = 0; c < cols && c < column_labels.size(); ++c) {
        const int x0 = row_w + pad + int(c) * (col_w + pad);
        text(img, x0 + (col_w - text_width(column_labels[c], 1)) / 2, 5, column_labels[c], kBlack, 1);
    }
    for (std::size_t r = 0; r < rows.size(); ++r) {
        SGF_CHECK(rows[r].size() == cols, ArgumentError, "image_strip: row {} has {} images, expected {}", r, rows[r].size(), cols);
        const int y0 = label_h + int(r) * (h + pad);
        if (r < row_labels.size()) text(img, 4, y0 + (h - text_height(1)) / 2, row_labels[r], kBlack, 1);
        for (std::size_t c = 0; c < cols; ++c) {
            const io::Image im = io::convert_channels(rows[r][c], 3);
            SGF_CHECK(im.width * zoom == w && im.height * zoom == h, ArgumentError, "image_strip: image ({}, {}) differs in size", r, c);
            const int x0 = row_w + pad + int(c) * (col_w + pad) + (col_w - w) / 2;
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    put(img, x0 + x, y0 + y, Rgb{im.at(y / zoom, x / zoom, 0), im.at(y / zoom, x / zoom, 1), im.at(y / zoom, x / zoom, 2)});
        }
    }
    return img;
}

}  // namespace sgf::plot
