// Image perturbations (sgf/robustness/image_attacks.hpp): shape, identity at the no-op strength,
// effect growing with strength, determinism from the seed, and the specific properties of each.
#include <sgf/io/datasets.hpp>
#include <sgf/robustness.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace sgf::attack {
namespace {

/// A smooth RGB test image (two samples): sinusoids plus a soft disk, inside [-0.9, 0.9].
Images smooth_rgb() {
    Images x(Shape{2, 3, 32, 32});
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < 3; ++c)
            for (int y = 0; y < 32; ++y)
                for (int xx = 0; xx < 32; ++xx) {
                    const double r = std::hypot(xx - 15.5 - 3 * n, y - 13.0);
                    const double disk = 1.0 / (1.0 + std::exp((r - 8.0) / 1.5));
                    const double v = 0.35 * std::sin(0.21 * xx + 0.9 * c + n) * std::cos(0.17 * y - 0.4 * c) + 0.5 * disk - 0.2;
                    x.at(n, c, y, xx) = float(std::clamp(v, -0.9, 0.9));
                }
    return x;
}

/// A Fashion-MNIST test image (gray, 32x32 padded), or a synthetic gray image without the dataset.
Images natural_gray() {
    if (std::filesystem::exists(std::filesystem::path(io::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz"))
        return io::load_fashion_mnist("test").batch({0});
    Images rgb = smooth_rgb();
    Images g(Shape{1, 1, 32, 32});
    for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) g.at(0, 0, y, x) = rgb.at(0, 1, y, x);
    return g;
}

double mse(const Images& a, const Images& b) {
    EXPECT_EQ(a.data.size(), b.data.size());
    double s = 0;
    for (std::size_t i = 0; i < a.data.size(); ++i) s += (double(a.data[i]) - b.data[i]) * (double(a.data[i]) - b.data[i]);
    return s / double(a.data.size());
}

bool identical(const Images& a, const Images& b) {
    if (!(a.shape == b.shape) || a.data.size() != b.data.size()) return false;
    for (std::size_t i = 0; i < a.data.size(); ++i)
        if (std::bit_cast<std::uint32_t>(a.data[i]) != std::bit_cast<std::uint32_t>(b.data[i])) return false;
    return true;
}

/// Images that go through 8 bits (what JPEG sees before encoding).
Images through_8bit(const Images& x) {
    Images out(x.shape);
    const std::int64_t S = x.shape.sample_size();
    for (std::int64_t n = 0; n < x.shape.n; ++n) {
        const Images t = io::to_tensor(io::to_image(x, n));
        std::copy(t.data.begin(), t.data.end(), out.data.begin() + n * S);
    }
    return out;
}

class ImageAttacks : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        rgb_ = new Images(smooth_rgb());
        gray_ = new Images(natural_gray());
    }
    static void TearDownTestSuite() {
        delete rgb_;
        delete gray_;
    }
    static Images* rgb_;
    static Images* gray_;
};
Images* ImageAttacks::rgb_ = nullptr;
Images* ImageAttacks::gray_ = nullptr;

TEST_F(ImageAttacks, EveryAttackKeepsShapeAndIsFinite) {
    for (const Images* x : {rgb_, gray_})
        for (const auto& info : image_attacks())
            for (double s : info.sweep) {
                const Images y = apply(ImageAttack{info.name, s}, *x, 5);
                EXPECT_EQ(y.shape, x->shape) << info.name << "@" << s;
                ASSERT_EQ(y.data.size(), x->data.size());
                for (float v : y.data) ASSERT_TRUE(std::isfinite(v)) << info.name << "@" << s;
            }
}

TEST_F(ImageAttacks, IdentityStrengthIsExactlyTheIdentity) {
    for (const Images* x : {rgb_, gray_})
        for (const auto& info : image_attacks()) {
            if (!info.identity) {
                EXPECT_EQ(info.name, "jpeg");
                continue;
            }
            EXPECT_EQ(info.sweep.front(), *info.identity) << info.name;
            EXPECT_TRUE(identical(apply(ImageAttack{info.name, *info.identity}, *x, 9), *x)) << info.name;
        }
    // the 8-bit overload too
    const io::Image u8 = io::to_image(*rgb_, 0);
    EXPECT_EQ(apply(ImageAttack{"combined", 0}, u8, 1).pixels, u8.pixels);
}

TEST_F(ImageAttacks, EffectGrowsWithStrength) {
    // Every sweep value on the smooth image; every other one on the Fashion-MNIST image, where the
    // MSE of geometric attacks is not strictly monotone between neighbouring strengths (a 27 px and
    // a 26 px crop resample on different grids: combined levels 3 -> 4 give 0.192 -> 0.179).
    for (const Images* x : {rgb_, gray_})
        for (const auto& info : image_attacks()) {
            double prev = -1;
            const std::size_t stride = x == rgb_ ? 1 : 2;
            for (std::size_t i = 0; i < info.sweep.size(); i += stride) {
                const double s = info.sweep[i];
                const double e = mse(apply(ImageAttack{info.name, s}, *x, 3), *x);
                EXPECT_GT(e, prev) << info.name << "@" << s << " (channels " << x->shape.c << ")";
                prev = e;
            }
        }
}

TEST_F(ImageAttacks, DeterministicFromTheSeed) {
    for (const auto& info : image_attacks()) {
        const ImageAttack a{info.name, info.sweep[info.sweep.size() / 2]};
        const Images y1 = apply(a, *rgb_, 11), y2 = apply(a, *rgb_, 11), y3 = apply(a, *rgb_, 12);
        EXPECT_TRUE(identical(y1, y2)) << a.label();
        const bool random = info.name == "noise" || info.name == "combined";
        EXPECT_EQ(identical(y1, y3), !random) << a.label();
    }
}

TEST_F(ImageAttacks, GaussianNoiseHasTheRequestedStd) {
    for (double s : {0.05, 0.2}) {
        const double e = mse(gaussian_noise(*rgb_, s, 4), *rgb_);
        EXPECT_NEAR(std::sqrt(e), s, 0.05 * s);
    }
    // same seed, different std: the same normals scaled
    const Images a = gaussian_noise(*rgb_, 0.1, 4), b = gaussian_noise(*rgb_, 0.3, 4);
    for (std::size_t i = 0; i < a.data.size(); i += 97)
        EXPECT_NEAR(b.data[i] - rgb_->data[i], 3 * (a.data[i] - rgb_->data[i]), 1e-5);
}

TEST_F(ImageAttacks, JpegQuality100IsCloseButNotIdenticalAndQuality10IsMuchWorse) {
    for (const Images* x : {rgb_, gray_}) {
        const Images q8 = through_8bit(*x);
        const Images j100 = jpeg(*x, 100), j10 = jpeg(*x, 10);
        const double e100 = mse(j100, q8), e10 = mse(j10, q8);
        EXPECT_FALSE(identical(j100, q8));
        EXPECT_GT(e100, 0);
        EXPECT_LT(e100, 2e-4) << "channels " << x->shape.c;  // about 1 grey level rms
        EXPECT_GT(e10, 20 * e100) << "channels " << x->shape.c;
        // output lies on the 8-bit grid of [-1, 1]
        for (float v : j10.data) {
            const double k = (double(v) + 1.0) * 127.5;
            ASSERT_NEAR(k, std::round(k), 1e-3);
        }
    }
    EXPECT_THROW(jpeg(*rgb_, 0), ArgumentError);
    EXPECT_THROW(jpeg(*rgb_, 101), ArgumentError);
}

TEST_F(ImageAttacks, BlurKeepsConstantsAndMatchesTheKernelSizeRule) {
    Images flat(Shape{1, 3, 16, 16}, 0.25f);
    for (double k : {3.0, 9.0, 45.0}) {  // 45 > 16: reflect-101 repeats
        const Images y = gaussian_blur_kernel(flat, k);
        for (float v : y.data) ASSERT_NEAR(v, 0.25f, 1e-6);
    }
    EXPECT_DOUBLE_EQ(kernel_size_sigma(3), 0.8);
    EXPECT_NEAR(kernel_size_sigma(45), 7.1, 1e-12);
    // an even size is rounded up to the next odd one
    EXPECT_TRUE(identical(gaussian_blur_kernel(*rgb_, 4), gaussian_blur_kernel(*rgb_, 5)));
    EXPECT_TRUE(identical(gaussian_blur_kernel(*rgb_, 5), gaussian_blur(*rgb_, kernel_size_sigma(5), 2)));
    // blur preserves the mean up to border effects
    double m0 = 0, m1 = 0;
    const Images b = gaussian_blur(*rgb_, 1.0);
    for (std::size_t i = 0; i < b.data.size(); ++i) m0 += rgb_->data[i], m1 += b.data[i];
    EXPECT_NEAR(m0 / double(b.data.size()), m1 / double(b.data.size()), 1e-2);
}

TEST_F(ImageAttacks, RotationDirectionAndBorders) {
    // 90 degrees counter-clockwise as displayed: out(y, x) = in(x, W - 1 - y)
    const Images y = rotate(*rgb_, 90);
    for (int c = 0; c < 3; ++c)
        for (int r = 0; r < 32; ++r)
            for (int q = 0; q < 32; ++q) ASSERT_NEAR(y.at(1, c, r, q), rgb_->at(1, c, q, 31 - r), 1e-5);
    // a constant image stays constant (edge replication, no black corners)
    Images flat(Shape{1, 1, 9, 13}, -0.5f);
    for (float v : rotate(flat, 17).data) ASSERT_NEAR(v, -0.5f, 1e-6);
}

TEST_F(ImageAttacks, CropAndResize) {
    // crop 0.5 of a 32 px image keeps rows/cols 8..23; a horizontal ramp stays a ramp of half slope
    Images ramp(Shape{1, 1, 32, 32});
    for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) ramp.at(0, 0, y, x) = float(x) / 16.0f - 1.0f;
    const Images c = center_crop(ramp, 0.5);
    for (int x = 2; x < 30; ++x) EXPECT_NEAR(c.at(0, 0, 5, x + 1) - c.at(0, 0, 5, x), 0.5 / 16.0, 1e-5);
    EXPECT_NEAR(0.5 * (c.at(0, 0, 0, 15) + c.at(0, 0, 0, 16)), 0.5 * (ramp.at(0, 0, 0, 15) + ramp.at(0, 0, 0, 16)), 1e-5);
    // down (symmetric averaging) and up (bilinear) keep a linear ramp away from the edges
    const Images r = resize_down_up(ramp, 2);
    for (int x = 4; x < 28; ++x) EXPECT_NEAR(r.at(0, 0, 3, x), ramp.at(0, 0, 3, x), 1e-5);  // edges clamp
    EXPECT_THROW(center_crop(ramp, 0), ArgumentError);
    EXPECT_THROW(resize_down_up(ramp, 0.5), ArgumentError);
    EXPECT_EQ(resize_images(*rgb_, 20, 12).shape, (Shape{2, 3, 12, 20}));
}

TEST_F(ImageAttacks, Relighting) {
    EXPECT_NEAR(mse(brightness(*rgb_, 0.2), *rgb_), 0.04, 1e-6);
    const Images flat = contrast(*rgb_, 0);
    for (std::int64_t i = 1; i < 3 * 32 * 32; ++i) ASSERT_FLOAT_EQ(flat.data[std::size_t(i)], flat.data[0]);
    const Images g = gamma(*rgb_, 2);
    for (std::size_t i = 0; i < g.data.size(); i += 31) {
        const double u = (rgb_->data[i] + 1.0) / 2;
        EXPECT_NEAR(g.data[i], 2 * u * u - 1, 1e-6);
    }
}

TEST_F(ImageAttacks, CombinedTableIsMonotoneAndStartsAtTheIdentity) {
    const CombinedParams p0 = combined_params(0);
    EXPECT_EQ(p0.crop_fraction, 1.0);
    EXPECT_EQ(p0.blur_kernel_128, 0);
    EXPECT_EQ(p0.noise_std, 0.0);
    EXPECT_EQ(p0.jpeg_quality, 0);
    for (int l = 2; l <= 10; ++l) {
        const auto a = combined_params(l - 1), b = combined_params(l);
        EXPECT_LT(b.crop_fraction, a.crop_fraction);
        EXPECT_GT(b.blur_kernel_128, a.blur_kernel_128);
        EXPECT_GT(b.noise_std, a.noise_std);
        EXPECT_LT(b.jpeg_quality, a.jpeg_quality);
    }
    EXPECT_THROW(combined_params(11), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"combined", 2.5}, *rgb_, 1), ArgumentError);
}

TEST(ImageAttackRegistry, NamesParsingAndErrors) {
    std::vector<std::string> names;
    for (const auto& a : image_attacks()) {
        EXPECT_TRUE(std::find(names.begin(), names.end(), a.name) == names.end()) << a.name;
        names.push_back(a.name);
        EXPECT_GE(a.sweep.size(), 4u) << a.name;
        for (double s : a.sweep) EXPECT_TRUE(s >= a.min && s <= a.max) << a.name << "@" << s;
    }
    const ImageAttack j = parse_image_attack("jpeg@50");
    EXPECT_EQ(j.name, "jpeg");
    EXPECT_EQ(j.strength, 50);
    EXPECT_EQ(parse_image_attack("noise=0.1").strength, 0.1);
    EXPECT_EQ(j.label(), "jpeg@50");
    EXPECT_THROW(parse_image_attack("jpeg"), ArgumentError);
    EXPECT_THROW(parse_image_attack("jpeg@fifty"), ArgumentError);
    EXPECT_THROW(parse_image_attack("sharpen@1"), ArgumentError);
    // strengths are checked when parsed, not only when applied ("noise@nan" was accepted)
    for (const char* bad : {"noise@nan", "noise@inf", "jpeg@500", "noise@-0.1"}) EXPECT_THROW(parse_image_attack(bad), ArgumentError) << bad;
    // and exactly as apply checks them: no fraction 0 for crop, whole numbers for JPEG and combined
    Images x(Shape{1, 1, 8, 8});
    for (const char* bad : {"crop@0", "jpeg@50.5", "combined@2.5"}) {
        EXPECT_THROW(parse_image_attack(bad), ArgumentError) << bad;
        const auto at = std::string_view(bad).find('@');
        EXPECT_THROW(apply(ImageAttack{std::string(bad, at), std::stod(bad + at + 1)}, x, 1), ArgumentError) << bad;
    }
    for (const char* good : {"crop@1e-3", "jpeg@50", "combined@2", "gamma@1e-6"}) EXPECT_NO_THROW(apply(parse_image_attack(good), x, 1)) << good;
    // the combined attack refuses images JPEG cannot hold before doing any work, naming itself
    try {
        (void)combined(Images(Shape{1, 2, 8, 8}), 3, 1);
        ADD_FAILURE() << "combined ran on 2 channels";
    } catch (const ShapeError& e) {
        EXPECT_NE(std::string(e.what()).find("attack combined: level 3 ends with JPEG"), std::string::npos) << e.what();
    }
    EXPECT_EQ(combined(Images(Shape{1, 2, 8, 8}), 0, 1).shape, (Shape{1, 2, 8, 8}));  // level 0: nothing to encode
    EXPECT_THROW(apply(ImageAttack{"noise", -0.1}, x, 1), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"nope", 1}, x, 1), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"blur", 1}, Images{}, 1), ShapeError);
}


// ---- exact definitions ------------------------------------------------------------------------------
// The tests below compare every deterministic attack with an independent reference written from
// the definitions in image_attacks.hpp's file comment (direct loops in double, no separability, no
// library helpers), on small images whose values are all distinct so that a wrong kernel, a wrong
// border rule or a wrong window shows up.

/// [N, C, H, W] with all values distinct: (53 i mod 127) / 64 - 1 over the flat index i (< 127).
Images distinct_values(Shape s) {
    Images x(s);
    EXPECT_LT(x.data.size(), 127u);
    for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = float(double((53 * i) % 127) / 64.0 - 1.0);
    return x;
}

/// Reflect-101 by repeated mirroring (... 2 1 | 0 1 2 ... n-1 | n-2 ...), written without a period.
std::int64_t mirror101(std::int64_t i, std::int64_t n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/// Gaussian blur as a direct 2-D sum: weights exp(-(j^2 + k^2) / (2 s^2)) over the (2r+1)^2 window,
/// normalised to sum 1, reflect-101 borders on both axes.
Images ref_blur(const Images& x, double sigma, int r) {
    Images out(x.shape);
    const std::int64_t H = x.shape.h, W = x.shape.w;
    double total = 0;
    for (int j = -r; j <= r; ++j)
        for (int k = -r; k <= r; ++k) total += std::exp(-double(j * j + k * k) / (2 * sigma * sigma));
    for (std::int64_t n = 0; n < x.shape.n; ++n)
        for (std::int64_t c = 0; c < x.shape.c; ++c)
            for (std::int64_t y = 0; y < H; ++y)
                for (std::int64_t xx = 0; xx < W; ++xx) {
                    double s = 0;
                    for (int j = -r; j <= r; ++j)
                        for (int k = -r; k <= r; ++k)
                            s += std::exp(-double(j * j + k * k) / (2 * sigma * sigma)) *
                                 double(x.at(n, c, mirror101(y + j, H), mirror101(xx + k, W)));
                    out.at(n, c, y, xx) = float(s / total);
                }
    return out;
}

/// 1-D weights of the documented resampler for output o of a side in -> out resize: a triangle of
/// half-width max(1, in / out) centred on (o + 0.5) in / out - 0.5, normalised, indices clamped.
std::vector<double> ref_triangle_weights(int in, int out, int o) {
    std::vector<double> w(std::size_t(in), 0.0);
    const double scale = double(in) / out, support = std::max(1.0, scale), centre = (o + 0.5) * scale - 0.5;
    double total = 0;
    for (int i = -3 * in; i <= 4 * in; ++i) {
        const double t = std::max(0.0, 1.0 - std::abs(i - centre) / support);
        w[std::size_t(std::clamp(i, 0, in - 1))] += t;
        total += t;
    }
    for (auto& v : w) v /= total;
    return w;
}

/// Plain bilinear interpolation with aligned sample centres (src = (dst + 0.5) in / out - 0.5) and
/// clamped indices: the documented meaning of the resampler when upscaling.
std::vector<double> ref_bilinear_weights(int in, int out, int o) {
    std::vector<double> w(std::size_t(in), 0.0);
    const double src = (o + 0.5) * double(in) / out - 0.5;
    const int i0 = int(std::floor(src));
    const double f = src - i0;
    w[std::size_t(std::clamp(i0, 0, in - 1))] += 1 - f;
    w[std::size_t(std::clamp(i0 + 1, 0, in - 1))] += f;
    return w;
}

/// Resize as a direct 2-D weighted sum (weights per axis from `weights`).
template <class Weights>
Images ref_resize(const Images& x, int width, int height, Weights weights) {
    Images out(Shape{x.shape.n, x.shape.c, height, width});
    const int H = int(x.shape.h), W = int(x.shape.w);
    for (std::int64_t n = 0; n < x.shape.n; ++n)
        for (std::int64_t c = 0; c < x.shape.c; ++c)
            for (int yo = 0; yo < height; ++yo)
                for (int xo = 0; xo < width; ++xo) {
                    const auto wy = weights(H, height, yo), wx = weights(W, width, xo);
                    double s = 0;
                    for (int y = 0; y < H; ++y)
                        for (int xx = 0; xx < W; ++xx) s += wy[std::size_t(y)] * wx[std::size_t(xx)] * double(x.at(n, c, y, xx));
                    out.at(n, c, yo, xo) = float(s);
                }
    return out;
}

Images ref_resize_triangle(const Images& x, int width, int height) { return ref_resize(x, width, height, ref_triangle_weights); }
Images ref_resize_bilinear(const Images& x, int width, int height) { return ref_resize(x, width, height, ref_bilinear_weights); }

/// Rotation: output pixel p shows the source point that a counter-clockwise turn (as displayed) by
/// `degrees` about ((W-1)/2, (H-1)/2) carries onto p. Worked in mathematical coordinates (Y up),
/// sampled bilinearly from the edge-replicated image (indices clamped).
Images ref_rotate(const Images& x, double degrees) {
    Images out(x.shape);
    const std::int64_t H = x.shape.h, W = x.shape.w;
    const double a = degrees * std::acos(-1.0) / 180.0;
    const double cx = (W - 1) / 2.0, cy = (H - 1) / 2.0;
    auto px = [&](std::int64_t n, std::int64_t c, std::int64_t r, std::int64_t q) {
        return double(x.at(n, c, std::clamp<std::int64_t>(r, 0, H - 1), std::clamp<std::int64_t>(q, 0, W - 1)));
    };
    for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t xx = 0; xx < W; ++xx) {
            const double X = xx - cx, Y = cy - y;                              // output point, Y up
            const double SX = X * std::cos(-a) - Y * std::sin(-a);              // turn back by -a
            const double SY = X * std::sin(-a) + Y * std::cos(-a);
            const double sx = cx + SX, sy = cy - SY;                            // back to pixel rows
            const double fx0 = std::floor(sx), fy0 = std::floor(sy);
            const double fx = sx - fx0, fy = sy - fy0;
            const auto q0 = std::int64_t(fx0), r0 = std::int64_t(fy0);
            for (std::int64_t n = 0; n < x.shape.n; ++n)
                for (std::int64_t c = 0; c < x.shape.c; ++c)
                    out.at(n, c, y, xx) = float((1 - fy) * ((1 - fx) * px(n, c, r0, q0) + fx * px(n, c, r0, q0 + 1)) +
                                                fy * ((1 - fx) * px(n, c, r0 + 1, q0) + fx * px(n, c, r0 + 1, q0 + 1)));
        }
    return out;
}

void expect_close(const Images& got, const Images& want, double tol, const std::string& what) {
    ASSERT_EQ(got.shape, want.shape) << what;
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < got.data.size(); ++i) {
        const double d = std::abs(double(got.data[i]) - double(want.data[i]));
        if (!(d <= worst)) worst = d, at = i;
    }
    EXPECT_LE(worst, tol) << what << ": element " << at << " is " << got.data[at] << ", expected " << want.data[at];
}

TEST(ImageAttackDefinitions, BlurReflect101BordersOnAHandComputedRow) {
    // one row a b c d, sigma 1, radius 2: weights w0 = 1, w1 = e^-1/2, w2 = e^-2; reflect-101 gives
    // index -1 -> 1, -2 -> 2, 4 -> 2, 5 -> 1 (a height of 1 makes the vertical pass the identity)
    const double a = 0.1, b = -0.4, c = 0.7, d = 0.25;
    Images row(Shape{1, 1, 1, 4});
    row.data = {float(a), float(b), float(c), float(d)};
    const double w0 = 1, w1 = std::exp(-0.5), w2 = std::exp(-2.0), Z = w0 + 2 * w1 + 2 * w2;
    const double A = double(float(a)), Bv = double(float(b)), C = double(float(c)), D = double(float(d));
    const double want[4] = {(w0 * A + 2 * w1 * Bv + 2 * w2 * C) / Z, (w0 * Bv + w1 * (A + C) + w2 * (Bv + D)) / Z,
                            (w0 * C + w1 * (Bv + D) + w2 * (A + C)) / Z, (w0 * D + 2 * w1 * C + 2 * w2 * Bv) / Z};
    const Images y = gaussian_blur(row, 1.0, 2);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.data[std::size_t(i)], want[i], 1e-6) << "column " << i;
    // the default radius for sigma 0.6 is ceil(1.8) = 2: the same row with sigma 0.6
    const double v1 = std::exp(-0.5 / 0.36), v2 = std::exp(-2.0 / 0.36), Zv = 1 + 2 * v1 + 2 * v2;
    EXPECT_NEAR(gaussian_blur(row, 0.6).data[0], (A + 2 * v1 * Bv + 2 * v2 * C) / Zv, 1e-6);
}

TEST(ImageAttackDefinitions, BlurMatchesADirect2DConvolution) {
    const Images x = distinct_values(Shape{2, 2, 5, 6});
    // auto radius ceil(3 sigma): 2, 3 (reaches past a 5 px side), 4, 6 (past both sides, repeated mirroring)
    for (double sigma : {0.5, 0.7, 1.3, 2.0})
        expect_close(gaussian_blur(x, sigma), ref_blur(x, sigma, int(std::ceil(3 * sigma))), 1e-6, "blur sigma " + std::to_string(sigma));
    // explicit radius, larger than the image (period 8 vertically, 10 horizontally)
    expect_close(gaussian_blur(x, 1.5, 11), ref_blur(x, 1.5, 11), 1e-6, "blur sigma 1.5 radius 11");
}

TEST(ImageAttackDefinitions, BlurKernelUsesOpenCvSigmaAndRadius) {
    const Images x = distinct_values(Shape{1, 3, 5, 6});
    // k -> odd k' (even rounds up), sigma = 0.3 ((k' - 1) / 2 - 1) + 0.8, radius (k' - 1) / 2
    const struct {
        double k;
        double sigma;
        int radius;
    } cases[] = {{3, 0.8, 1}, {4, 1.1, 2}, {5, 1.1, 2}, {9, 1.7, 4}, {15, 2.6, 7}, {45, 7.1, 22}};
    for (const auto& t : cases)
        expect_close(gaussian_blur_kernel(x, t.k), ref_blur(x, t.sigma, t.radius), 1e-6, "blur_kernel " + std::to_string(t.k));
}

TEST(ImageAttackDefinitions, ResizeMatchesTheTriangleFilterAndBilinear) {
    // hand-computed rows: 6 -> 3 is a triangle of half-width 2 centred on 2 o + 0.5, weights
    // 1/8 3/8 3/8 1/8 over 2o-1 .. 2o+2 (index -1 clamps to 0); 3 -> 6 is bilinear at (o + 0.5) / 2 - 0.5
    Images row(Shape{1, 1, 1, 6});
    row.data = {0.5f, -0.25f, 1.0f, 0.0f, -1.0f, 0.75f};
    const auto v = [&](int i) { return double(row.data[std::size_t(i)]); };
    const Images down = resize_images(row, 3, 1);
    EXPECT_NEAR(down.data[0], 0.5 * v(0) + 0.375 * v(1) + 0.125 * v(2), 1e-7);
    EXPECT_NEAR(down.data[1], 0.125 * v(1) + 0.375 * v(2) + 0.375 * v(3) + 0.125 * v(4), 1e-7);
    EXPECT_NEAR(down.data[2], 0.125 * v(3) + 0.375 * v(4) + 0.5 * v(5), 1e-7);
    Images three(Shape{1, 1, 1, 3});
    three.data = {0.5f, -0.25f, 1.0f};
    const Images up = resize_images(three, 6, 1);
    const double p = 0.5, q = -0.25, r = 1.0;
    const double want_up[6] = {p, 0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q, 0.75 * q + 0.25 * r, 0.25 * q + 0.75 * r, r};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(up.data[std::size_t(i)], want_up[i], 1e-7) << "column " << i;

    const Images x = distinct_values(Shape{2, 2, 5, 6});
    // upscaling on both axes is exact bilinear
    expect_close(resize_images(x, 13, 9), ref_resize_bilinear(x, 13, 9), 1e-6, "resize 6x5 -> 13x9 (bilinear)");
    expect_close(resize_images(x, 7, 8), ref_resize_bilinear(x, 7, 8), 1e-6, "resize 6x5 -> 7x8 (bilinear)");
    // downscaling, mixed, and down to a single pixel follow the widened triangle
    for (auto [w, h] : {std::pair{4, 2}, std::pair{3, 7}, std::pair{11, 3}, std::pair{1, 1}, std::pair{5, 4}})
        expect_close(resize_images(x, w, h), ref_resize_triangle(x, w, h), 1e-6,
                     "resize 6x5 -> " + std::to_string(w) + "x" + std::to_string(h));
    // resize_down_up: side -> round(side / f) -> side
    expect_close(resize_down_up(x, 2), ref_resize_bilinear(ref_resize_triangle(x, 3, 3), 6, 5), 1e-6, "resize@2 (5x6 -> 3x3)");
    expect_close(resize_down_up(x, 1.6), ref_resize_bilinear(ref_resize_triangle(x, 4, 3), 6, 5), 1e-6, "resize@1.6 (5x6 -> 3x4)");
    expect_close(resize_down_up(x, 8), ref_resize_bilinear(ref_resize_triangle(x, 1, 1), 6, 5), 1e-6, "resize@8 (5x6 -> 1x1)");
}

TEST(ImageAttackDefinitions, CenterCropTakesTheDocumentedWindowAndResizesBack) {
    const Images x = distinct_values(Shape{2, 2, 5, 6});
    // crop side max(1, round(f side)), offset floor((side - crop) / 2); then bilinear back up to 5x6
    const struct {
        double f;
        int ch, cw, y0, x0;
    } cases[] = {{0.6, 3, 4, 1, 1}, {0.5, 3, 3, 1, 1}, {0.3, 2, 2, 1, 2}, {0.8, 4, 5, 0, 0}, {0.05, 1, 1, 2, 2}};
    for (const auto& t : cases) {
        Images window(Shape{2, 2, t.ch, t.cw});
        for (int n = 0; n < 2; ++n)
            for (int c = 0; c < 2; ++c)
                for (int y = 0; y < t.ch; ++y)
                    for (int xx = 0; xx < t.cw; ++xx) window.at(n, c, y, xx) = x.at(n, c, t.y0 + y, t.x0 + xx);
        expect_close(center_crop(x, t.f), ref_resize_bilinear(window, 6, 5), 1e-6, "crop " + std::to_string(t.f));
    }
    // a one-pixel crop is that pixel everywhere
    const Images one = center_crop(x, 0.05);
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < 2; ++c)
            for (int y = 0; y < 5; ++y)
                for (int xx = 0; xx < 6; ++xx) ASSERT_EQ(one.at(n, c, y, xx), x.at(n, c, 2, 2));
}

TEST(ImageAttackDefinitions, BrightnessContrastAndGammaFollowTheirFormulas) {
    Images x = distinct_values(Shape{2, 3, 4, 5});
    for (std::int64_t n = 0; n < 2; ++n)  // different means per channel and per sample
        for (std::int64_t c = 0; c < 3; ++c)
            for (std::int64_t i = 0; i < 20; ++i) x.data[std::size_t((n * 3 + c) * 20 + i)] += float(0.15 * double(c - 1) + 0.1 * double(n));
    x.at(0, 0, 0, 0) = -1.3f;  // outside [-1, 1]: gamma clamps, the others do not
    x.at(1, 2, 3, 4) = 1.25f;
    // brightness: y = x + b, with its sign
    for (double b : {0.3, -0.45}) {
        const Images y = brightness(x, b);
        for (std::size_t i = 0; i < x.data.size(); ++i) ASSERT_NEAR(y.data[i], double(x.data[i]) + b, 1e-6) << "b " << b;
    }
    // contrast: mean + f (x - mean), one mean per sample over all its pixels and channels
    const std::int64_t S = x.shape.sample_size();
    for (double f : {0.0, 0.4, 1.7}) {
        const Images y = contrast(x, f);
        for (std::int64_t n = 0; n < 2; ++n) {
            double mean = 0;
            for (std::int64_t i = 0; i < S; ++i) mean += x.data[std::size_t(n * S + i)];
            mean /= double(S);
            for (std::int64_t i = 0; i < S; ++i) {
                const std::size_t k = std::size_t(n * S + i);
                ASSERT_NEAR(y.data[k], mean + f * (double(x.data[k]) - mean), 1e-6) << "f " << f << " element " << k;
            }
        }
    }
    // the per-sample mean is not a per-channel or per-batch mean: the channel means differ here
    double m0 = 0, m1 = 0;
    for (int i = 0; i < 20; ++i) m0 += x.data[std::size_t(i)], m1 += x.data[std::size_t(20 + i)];
    EXPECT_GT(std::abs(m0 - m1) / 20, 0.05);
    // gamma: 2 clamp((x + 1) / 2, 0, 1)^g - 1
    for (double g : {0.5, 2.2}) {
        const Images y = gamma(x, g);
        for (std::size_t i = 0; i < x.data.size(); ++i) {
            const double u = std::min(1.0, std::max(0.0, (double(x.data[i]) + 1) / 2));
            ASSERT_NEAR(y.data[i], 2 * std::pow(u, g) - 1, 1e-6) << "g " << g << " element " << i;
        }
    }
    EXPECT_FLOAT_EQ(gamma(x, 2.2).data[0], -1.0f);
    EXPECT_FLOAT_EQ(gamma(x, 0.5).data.back(), 1.0f);
    // g = 1 is the identity, values outside [-1, 1] included (documented: no clamp at the identity)
    EXPECT_EQ(gamma(x, 1.0).data, x.data);
    EXPECT_FLOAT_EQ(gamma(x, 1.0 + 1e-9).data[0], -1.0f);
}

TEST(ImageAttackDefinitions, RotationMatchesInverseBilinearMappingWithEdgeReplication) {
    const Images x = distinct_values(Shape{2, 2, 5, 6});
    for (double deg : {7.0, -12.0, 33.0, 90.0, -135.0})
        expect_close(rotate(x, deg), ref_rotate(x, deg), 1e-6, "rotate " + std::to_string(deg));
    // by hand: +90 on a 3x3 image (counter-clockwise as displayed) brings the top-right pixel to
    // the top-left and the top-left to the bottom-left
    Images s(Shape{1, 1, 3, 3});
    for (int i = 0; i < 9; ++i) s.data[std::size_t(i)] = float(i) / 8;
    const Images r = rotate(s, 90);
    EXPECT_NEAR(r.at(0, 0, 0, 0), s.at(0, 0, 0, 2), 1e-6);
    EXPECT_NEAR(r.at(0, 0, 2, 0), s.at(0, 0, 0, 0), 1e-6);
    EXPECT_NEAR(r.at(0, 0, 1, 1), s.at(0, 0, 1, 1), 1e-6);
}

/// A test image (48x48 unless told) with fine detail (blur and crop visibly change it), inside [-0.9, 0.9].
Images detailed(std::int64_t n, std::int64_t c, std::int64_t side, std::int64_t width = 0) {
    if (width == 0) width = side;
    Images x(Shape{n, c, side, width});
    for (std::size_t i = 0; i < x.data.size(); ++i) {
        const double t = double((2654435761u * std::uint32_t(i + 1)) >> 8) / double(1u << 24);  // in [0, 1)
        x.data[i] = float(0.9 * (2 * t - 1));
    }
    for (std::int64_t k = 0; k < n; ++k)
        for (std::int64_t ch = 0; ch < c; ++ch)
            for (std::int64_t y = 0; y < side; ++y)
                for (std::int64_t xx = 0; xx < width; ++xx) {
                    float& v = x.at(k, ch, y, xx);
                    v = float(0.5 * v + 0.4 * std::sin(0.4 * double(xx) + 0.3 * double(y) + double(ch + k)));
                }
    return x;
}

TEST(ImageAttackDefinitions, CombinedTableMatchesTheDocumentedRows) {
    const struct {
        double crop;
        int kernel;
        double noise;
        int quality;
    } rows[11] = {{1.00, 0, 0.00, 0},   {0.95, 3, 0.01, 90},  {0.90, 5, 0.02, 80},  {0.85, 7, 0.03, 70},
                  {0.80, 9, 0.05, 60},  {0.75, 11, 0.07, 50}, {0.70, 15, 0.10, 40}, {0.60, 19, 0.15, 30},
                  {0.50, 25, 0.20, 20}, {0.40, 35, 0.30, 15}, {0.30, 45, 0.50, 10}};
    for (int l = 0; l <= 10; ++l) {
        const CombinedParams p = combined_params(l);
        EXPECT_EQ(p.crop_fraction, rows[l].crop) << "level " << l;
        EXPECT_EQ(p.blur_kernel_128, rows[l].kernel) << "level " << l;
        EXPECT_EQ(p.noise_std, rows[l].noise) << "level " << l;
        EXPECT_EQ(p.jpeg_quality, rows[l].quality) << "level " << l;
    }
}

TEST(ImageAttackDefinitions, CombinedIsCropThenScaledBlurThenNoiseThenJpeg) {
    // documented: crop -> blur with sigma = kernel_size_sigma(k) * S / 128 (radius ceil(3 sigma))
    // -> noise -> JPEG, each as the individual attack; S = the side of the (square) image
    for (std::int64_t channels : {3, 1}) {
        const Images x = detailed(2, channels, 48);
        const std::uint64_t seed = 77;
        for (int level : {1, 4, 8, 10}) {
            const CombinedParams p = combined_params(level);
            const int k = p.blur_kernel_128;
            const double sigma = (0.3 * ((k - 1) / 2.0 - 1.0) + 0.8) * 48.0 / 128.0;
            const Images cropped = center_crop(x, p.crop_fraction);
            const Images blurred = gaussian_blur(cropped, sigma);
            const Images expected = jpeg(gaussian_noise(blurred, p.noise_std, seed), p.jpeg_quality);
            const std::string what = "level " + std::to_string(level) + ", channels " + std::to_string(channels);
            EXPECT_TRUE(identical(combined(x, level, seed), expected)) << what;
            // the comparison can see the order and the scaling: the alternatives give other images
            EXPECT_FALSE(identical(expected, jpeg(gaussian_noise(center_crop(gaussian_blur(x, sigma), p.crop_fraction), p.noise_std, seed),
                                                  p.jpeg_quality)))
                << what << ": blur before crop";
            EXPECT_FALSE(identical(expected, jpeg(gaussian_blur(gaussian_noise(cropped, p.noise_std, seed), sigma), p.jpeg_quality)))
                << what << ": noise before blur";
            EXPECT_FALSE(identical(expected, jpeg(gaussian_noise(gaussian_blur(cropped, sigma * 128.0 / 48.0), p.noise_std, seed),
                                                  p.jpeg_quality)))
                << what << ": unscaled sigma";
            EXPECT_FALSE(identical(expected, gaussian_noise(jpeg(blurred, p.jpeg_quality), p.noise_std, seed)))
                << what << ": JPEG before noise";
        }
    }
}

TEST(ImageAttackDefinitions, BlurOfAVanishingSigmaIsTheIdentityAndHugeSigmasAreRefused) {
    const Images x = detailed(1, 1, 16);
    // sigma^2 underflowed to 0: 0/0 made every pixel NaN
    for (double s : {1e-170, 1e-300, 0.05}) EXPECT_TRUE(identical(gaussian_blur(x, s), x)) << s;
    EXPECT_THROW(gaussian_blur(x, 1e6), ArgumentError);  // 6e6 taps per pixel: a hang
    EXPECT_THROW(gaussian_blur(x, 1.0, 1 << 30), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"blur", 2000}, x, 1), ArgumentError);
}

// Direct calls beyond the registry's ranges: gaussian_blur_kernel(x, 3e9) wrapped the kernel size to
// k <= 1 and returned the image unblurred; resize_images to 2^30 x 1 threw std::bad_alloc.
TEST(ImageAttackDefinitions, KernelSizesAndResizeTargetsBeyondTheirRangesAreRefused) {
    const Images x = detailed(1, 1, 16);
    for (double k : {3e9, 1e20, 6002.0}) EXPECT_THROW(gaussian_blur_kernel(x, k), ArgumentError) << k;
    EXPECT_FALSE(identical(gaussian_blur_kernel(x, 5), x));
    EXPECT_THROW(resize_images(x, 1 << 30, 1), ArgumentError);
    EXPECT_THROW(resize_images(x, 16385, 16), ArgumentError);
    EXPECT_EQ(resize_images(x, 32, 8).shape.w, 32);
}

TEST(ImageAttackDefinitions, CombinedScalesTheBlurByTheShorterSideOfTheUncroppedInput) {
    // documented: on an H x W input S = min(H, W), taken before the crop
    for (const auto& [h, w] : {std::pair<std::int64_t, std::int64_t>{40, 64}, {64, 40}}) {
        const Images x = detailed(1, 3, h, w);
        const std::uint64_t seed = 5;
        const CombinedParams p = combined_params(6);
        const double k_sigma = 0.3 * ((p.blur_kernel_128 - 1) / 2.0 - 1.0) + 0.8;
        const Images cropped = center_crop(x, p.crop_fraction);
        const auto attacked = [&](double s) {
            return jpeg(gaussian_noise(gaussian_blur(cropped, k_sigma * s / 128.0), p.noise_std, seed), p.jpeg_quality);
        };
        const std::string what = std::to_string(h) + "x" + std::to_string(w);
        EXPECT_TRUE(identical(combined(x, 6, seed), attacked(40.0))) << what;
        EXPECT_FALSE(identical(combined(x, 6, seed), attacked(64.0))) << what << ": the longer side";
        // center_crop resizes back to H x W; the side of the crop window itself is the wrong S too
        EXPECT_FALSE(identical(combined(x, 6, seed), attacked(std::round(p.crop_fraction * 40.0)))) << what << ": the crop window";
    }
}

}  // namespace
}  // namespace sgf::attack
