// Image perturbations (sgf/robustness/image_attacks.hpp): shape, identity at the no-op strength,
// effect growing with strength, determinism from the seed, and the specific properties of each.
#include <sgf/io/datasets.hpp>
#include <sgf/robustness.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

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
    Images x(Shape{1, 1, 8, 8});
    EXPECT_THROW(apply(ImageAttack{"noise", -0.1}, x, 1), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"nope", 1}, x, 1), ArgumentError);
    EXPECT_THROW(apply(ImageAttack{"blur", 1}, Images{}, 1), ShapeError);
}

}  // namespace
}  // namespace sgf::attack
