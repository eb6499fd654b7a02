// Forward passes of Conv2d, ResBlock and ModConv on the Eigen CPU backend (float32 and float64)
// against plain host references written here from docs/architecture.md alone: direct loops in
// double for upfirdn2d ([1,3,3,1]/8, the paddings of the resampling table), cross-correlation,
// the stride-2 transposed convolution, the equalised-lr scales, modulation, demodulation (eps
// 1e-8), Philox noise, bias and lrelu. Every parameter is set explicitly to a random, non-trivial
// value; nothing of the layer under test (bake_weight, weight_scale, FirDesc) computes an expected
// value.
#include <sgf/sgf.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace sgf::test {
namespace {

using Vec = std::vector<double>;
constexpr double kRt2 = 1.4142135623730951;

/// Random N(0, scale^2) values rounded to the backend's scalar, so backend and reference see the
/// same numbers.
template <class T>
Vec rnd(std::size_t n, std::uint64_t seed, double scale = 1.0, double offset = 0.0) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> nd(0.0, 1.0);
    Vec v(n);
    for (auto& x : v) x = double(static_cast<T>(offset + scale * nd(rng)));
    return v;
}

std::size_t at(std::int64_t i) { return static_cast<std::size_t>(i); }

/// A [N, C, H, W] host tensor in double.
struct HT {
    std::int64_t n = 0, c = 0, h = 0, w = 0;
    Vec v;
    HT() = default;
    HT(std::int64_t n_, std::int64_t c_, std::int64_t h_, std::int64_t w_)
        : n(n_), c(c_), h(h_), w(w_), v(at(n_ * c_ * h_ * w_), 0.0) {}
    double& operator()(std::int64_t a, std::int64_t b, std::int64_t y, std::int64_t x) {
        return v[at(((a * c + b) * h + y) * w + x)];
    }
    double operator()(std::int64_t a, std::int64_t b, std::int64_t y, std::int64_t x) const {
        return v[at(((a * c + b) * h + y) * w + x)];
    }
};

/// upfirdn2d from its definition: zero insertion (up-1 zeros after every sample), zero padding p0
/// before / p1 after, valid correlation with gain * f[a] f[b], f = [1,3,3,1]/8, every down-th sample.
HT upfirdn(const HT& x, int up, int down, int p0, int p1, double gain) {
    const double f[4] = {1 / 8.0, 3 / 8.0, 3 / 8.0, 1 / 8.0};
    const std::int64_t UH = x.h * up + p0 + p1, UW = x.w * up + p0 + p1;
    const std::int64_t OH = (UH - 4) / down + 1, OW = (UW - 4) / down + 1;
    HT y(x.n, x.c, OH, OW);
    for (std::int64_t n = 0; n < x.n; ++n)
        for (std::int64_t c = 0; c < x.c; ++c) {
            HT p(1, 1, UH, UW);  // upsampled and padded plane
            for (std::int64_t iy = 0; iy < x.h; ++iy)
                for (std::int64_t ix = 0; ix < x.w; ++ix) p(0, 0, iy * up + p0, ix * up + p0) = x(n, c, iy, ix);
            for (std::int64_t oy = 0; oy < OH; ++oy)
                for (std::int64_t ox = 0; ox < OW; ++ox) {
                    double acc = 0;
                    for (int a = 0; a < 4; ++a)
                        for (int b = 0; b < 4; ++b) acc += gain * f[a] * f[b] * p(0, 0, oy * down + a, ox * down + b);
                    y(n, c, oy, ox) = acc;
                }
        }
    return y;
}

/// Cross-correlation with zero padding, weight [O, C, k, k] (PyTorch conv2d), times `scale`.
HT conv(const HT& x, const Vec& w, std::int64_t O, std::int64_t k, std::int64_t stride, std::int64_t pad, double scale) {
    const std::int64_t OH = (x.h + 2 * pad - k) / stride + 1, OW = (x.w + 2 * pad - k) / stride + 1;
    HT y(x.n, O, OH, OW);
    for (std::int64_t n = 0; n < x.n; ++n)
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t oy = 0; oy < OH; ++oy)
                for (std::int64_t ox = 0; ox < OW; ++ox) {
                    double acc = 0;
                    for (std::int64_t i = 0; i < x.c; ++i)
                        for (std::int64_t ky = 0; ky < k; ++ky)
                            for (std::int64_t kx = 0; kx < k; ++kx) {
                                const std::int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
                                acc += x(n, i, iy, ix) * w[at(((o * x.c + i) * k + ky) * k + kx)];
                            }
                    y(n, o, oy, ox) = acc * scale;
                }
    return y;
}

/// Transposed convolution, stride 2, no padding, weight [C_in, O, 3, 3] (PyTorch conv_transpose2d):
/// every input pixel scatters its 3x3 patch at (2y, 2x). H x W -> (2H+1) x (2W+1).
HT conv_transpose2(const HT& x, const Vec& w, std::int64_t O, double scale) {
    HT t(x.n, O, 2 * x.h + 1, 2 * x.w + 1);
    for (std::int64_t n = 0; n < x.n; ++n)
        for (std::int64_t i = 0; i < x.c; ++i)
            for (std::int64_t o = 0; o < O; ++o)
                for (std::int64_t iy = 0; iy < x.h; ++iy)
                    for (std::int64_t ix = 0; ix < x.w; ++ix)
                        for (std::int64_t ky = 0; ky < 3; ++ky)
                            for (std::int64_t kx = 0; kx < 3; ++kx)
                                t(n, o, 2 * iy + ky, 2 * ix + kx) +=
                                    scale * x(n, i, iy, ix) * w[at(((i * O + o) * 3 + ky) * 3 + kx)];
    return t;
}

/// y = act(x + bias[c] * bias_mult) * gain per channel.
HT bias_act(HT x, const Vec* bias, double bias_mult, bool lrelu_act, double gain) {
    for (std::int64_t n = 0; n < x.n; ++n)
        for (std::int64_t c = 0; c < x.c; ++c)
            for (std::int64_t p = 0; p < x.h * x.w; ++p) {
                double& t = x.v[at((n * x.c + c) * x.h * x.w + p)];
                if (bias) t += (*bias)[at(c)] * bias_mult;
                t = (lrelu_act ? (t > 0 ? t : 0.2 * t) : t) * gain;
            }
    return x;
}

/// Per-element check: |actual - expected| <= rel * (|expected| + 0.1 * rms(expected)); the rms
/// term keeps values that cancel to about zero from demanding a relative precision no float sum has.
void expect_close(const std::vector<double>& actual, const HT& expected, double rel, const std::string& what) {
    ASSERT_EQ(actual.size(), expected.v.size()) << what;
    double ss = 0;
    for (double e : expected.v) ss += e * e;
    const double rms = std::sqrt(ss / double(expected.v.size()));
    ASSERT_GT(rms, 1e-3) << what << ": the expected output is ~0, the comparison would be vacuous";
    std::size_t bad = 0, worst = 0;
    double worst_r = 0;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        const double bound = rel * (std::abs(expected.v[i]) + 0.1 * rms);
        const double r = std::abs(actual[i] - expected.v[i]) / bound;
        if (!(r <= 1.0)) ++bad;
        if (!(r <= worst_r)) worst_r = r, worst = i;
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << actual.size() << " elements differ; worst element "
                       << worst << ": actual " << actual[worst] << " expected " << expected.v[worst] << " (error "
                       << worst_r << " x bound)";
}

template <class B>
void set_param(B& b, Parameter<B>& p, const Vec& v) {
    ASSERT_EQ(static_cast<std::int64_t>(v.size()), p.value.size()) << p.name;
    upload_into(b, std::span<const double>(v), p.value);
}

template <class B>
Tensor<B> upload(B& b, const HT& x) {
    return from_host<B, double>(b, Shape{x.n, x.c, x.h, x.w}, std::span<const double>(x.v));
}

template <class B>
HT random_input(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::uint64_t seed) {
    HT x(n, c, h, w);
    x.v = rnd<typename B::Scalar>(x.v.size(), seed);
    return x;
}

template <class B>
constexpr double rel_tol() {
    return std::is_same_v<typename B::Scalar, float> ? 1e-4 : 1e-10;
}

// ----------------------------------------------------------------------------------- Conv2d

struct ConvCase {
    std::int64_t c_in, c_out, k;
    bool down, bias, lrelu_act;
    double gain, lr_mult;
};

/// docs/architecture.md: plain convs pad k/2; a 3x3 down conv is blur (2, 2, gain 1) then stride 2,
/// no padding; a 1x1 down conv is down2 (pad 1/1, keep every 2nd) then the 1x1 conv. The weight
/// scale is lr_mult / sqrt(C_in k k), the bias is multiplied by lr_mult, then act, then gain.
HT conv2d_reference(const HT& x, const ConvCase& cc, const Vec& W, const Vec& bias) {
    const double scale = cc.lr_mult / std::sqrt(double(cc.c_in * cc.k * cc.k));
    HT u;
    if (!cc.down)
        u = conv(x, W, cc.c_out, cc.k, 1, cc.k / 2, scale);
    else if (cc.k == 1)
        u = conv(upfirdn(x, 1, 2, 1, 1, 1.0), W, cc.c_out, 1, 1, 0, scale);
    else
        u = conv(upfirdn(x, 1, 1, 2, 2, 1.0), W, cc.c_out, cc.k, 2, 0, scale);
    return bias_act(std::move(u), cc.bias ? &bias : nullptr, cc.lr_mult, cc.lrelu_act, cc.gain);
}

template <class B>
void check_conv2d() {
    using T = typename B::Scalar;
    B b(1);
    const ConvCase cases[] = {
        {3, 4, 3, false, true, true, kRt2, 1.0},   // plain 3x3 (conv0 of a residual block)
        {4, 5, 3, false, true, true, kRt2, 0.37},  // lr_mult on weight and bias
        {3, 5, 1, false, true, true, kRt2, 1.0},   // fromrgb-like 1x1
        {3, 4, 3, true, true, true, kRt2, 1.0},    // down 3x3: blur (2,2) + stride 2
        {5, 3, 3, true, true, false, 1.7, 2.5},    // down 3x3, linear, other gain and lr_mult
        {4, 3, 1, true, false, false, 1.0, 1.0},   // the residual skip: down2 + 1x1, no bias, linear
        {3, 4, 1, true, true, true, kRt2, 0.5},    // down2 + 1x1 with bias, lrelu and lr_mult
    };
    std::uint64_t seed = 100;
    for (const ConvCase& cc : cases) {
        SCOPED_TRACE(::testing::Message() << "c_in=" << cc.c_in << " c_out=" << cc.c_out << " k=" << cc.k
                                          << " down=" << cc.down << " bias=" << cc.bias << " lrelu=" << cc.lrelu_act
                                          << " gain=" << cc.gain << " lr_mult=" << cc.lr_mult);
        Conv2d<B> layer(b, "conv",
                        ConvConfig{cc.c_in, cc.c_out, cc.k, cc.down, cc.bias, cc.lrelu_act ? Act::lrelu : Act::linear,
                                   cc.gain, cc.lr_mult},
                        7);
        const Vec W = rnd<T>(at(cc.c_out * cc.c_in * cc.k * cc.k), ++seed);
        const Vec bias = rnd<T>(at(cc.c_out), ++seed, 0.8);
        set_param(b, layer.weight(), W);
        if (cc.bias) set_param(b, layer.bias(), bias);
        const HT x = random_input<B>(2, cc.c_in, 8, 8, ++seed);
        Tensor<B> xt = upload(b, x);
        auto ctx = layer.forward(b, xt);
        const HT expected = conv2d_reference(x, cc, W, bias);
        ASSERT_EQ(ctx.y.shape(), (Shape{expected.n, expected.c, expected.h, expected.w}));
        EXPECT_EQ(expected.h, cc.down ? 4 : 8);
        expect_close(to_host_vector<double>(b, ctx.y), expected, rel_tol<B>(), "conv2d forward");
    }
}

TEST(LayerReference, Conv2dForwardMatchesPlainReferenceFloat32) { check_conv2d<EigenCpu>(); }
TEST(LayerReference, Conv2dForwardMatchesPlainReferenceFloat64) { check_conv2d<EigenCpu64>(); }

// --------------------------------------------------------------------------------- ResBlock

template <class B>
void check_resblock() {
    using T = typename B::Scalar;
    B b(1);
    const std::pair<std::int64_t, std::int64_t> shapes[] = {{3, 5}, {4, 3}};
    for (const auto& [C, O] : shapes) {
        SCOPED_TRACE(::testing::Message() << "c_in=" << C << " c_out=" << O);
        ResBlock<B> blk(b, "blk", C, O, 9);
        // every parameter, by name, set to its own random values
        std::map<std::string, Vec> vals;
        std::uint64_t seed = 300 + std::uint64_t(C);
        blk.visit([&](Parameter<B>& p) {
            const bool is_bias = p.name.size() > 5 && p.name.substr(p.name.size() - 5) == ".bias";
            vals[p.name] = rnd<T>(at(p.value.size()), ++seed, is_bias ? 0.8 : 1.0);
            set_param(b, p, vals[p.name]);
        });
        ASSERT_EQ(vals.size(), 5u) << "conv0 weight+bias, conv1 weight+bias, skip weight (no bias)";
        for (const char* n : {"blk.conv0.weight", "blk.conv0.bias", "blk.conv1.weight", "blk.conv1.bias", "blk.skip.weight"})
            ASSERT_TRUE(vals.count(n)) << n;
        ASSERT_EQ(vals["blk.conv0.weight"].size(), at(C * C * 9));
        ASSERT_EQ(vals["blk.conv1.weight"].size(), at(O * C * 9));
        ASSERT_EQ(vals["blk.skip.weight"].size(), at(O * C));

        const HT x = random_input<B>(2, C, 8, 8, seed + 50);
        Tensor<B> xt = upload(b, x);
        auto ctx = blk.forward(b, xt);

        // a = lrelu(conv3x3(x)); a = lrelu(downconv3x3(a)); skip = downconv1x1(x), no bias, linear
        const double s3 = 1.0 / std::sqrt(double(C * 9)), s1 = 1.0 / std::sqrt(double(C));
        HT a = bias_act(conv(x, vals["blk.conv0.weight"], C, 3, 1, 1, s3), &vals["blk.conv0.bias"], 1.0, true, kRt2);
        a = bias_act(conv(upfirdn(a, 1, 1, 2, 2, 1.0), vals["blk.conv1.weight"], O, 3, 2, 0, s3), &vals["blk.conv1.bias"],
                     1.0, true, kRt2);
        const HT skip = conv(upfirdn(x, 1, 2, 1, 1, 1.0), vals["blk.skip.weight"], O, 1, 1, 0, s1);
        ASSERT_EQ(a.v.size(), skip.v.size());
        HT expected = a;
        for (std::size_t i = 0; i < expected.v.size(); ++i) expected.v[i] = (a.v[i] + skip.v[i]) / kRt2;
        ASSERT_EQ(ctx.y.shape(), (Shape{2, O, 4, 4}));
        expect_close(to_host_vector<double>(b, ctx.y), expected, rel_tol<B>(), "resblock forward");
    }
}

TEST(LayerReference, ResBlockForwardMatchesPlainReferenceFloat32) { check_resblock<EigenCpu>(); }
TEST(LayerReference, ResBlockForwardMatchesPlainReferenceFloat64) { check_resblock<EigenCpu64>(); }

// ---------------------------------------------------------------------------------- ModConv

struct ModCase {
    std::int64_t c_in, c_out, k, w_dim;
    bool demod, up, noise, lrelu_act;
    double gain;
    double style_scale;  ///< scale of the affine bias b_A around 1 (or, if tiny, of b_A itself)
    bool tiny_style;     ///< A = 0, b_A ~ 1e-4: sum s^2 |W|^2 is of the order of the 1e-8 eps
};

struct ModParams {
    Vec A, bA, V, bias;
    double strength = 0;
};

/// docs/architecture.md, "Modulated convolution", computed from the raw parameter values:
///   s = A w / sqrt(w_dim) + b_A   (dense, m = 1; b_A holds the paper's b + 1)
///   x_s = x s;  u = conv(x_s, V / sqrt(C_in k k))   or for up layers: transposed stride-2 conv of
///   x_s with V [C_in, C_out, 3, 3], then FIR blur (pad 1/1, gain 4);
///   d[n,o] = 1/sqrt(sum_i s[n,i]^2 sum_k W[o,i,k]^2 + 1e-8);  u *= d (demodulated layers)
///   u += strength * noise[n, y, x], noise element i = philox::normal(key, i) over [N, 1, H, W]
///   y = act(u + bias) * gain
HT modconv_reference(const HT& x, const Vec& w, const ModCase& mc, const ModParams& p, const RngKey* key,
                     double eps = 1e-8) {
    const std::int64_t N = x.n, C = mc.c_in, O = mc.c_out, K = mc.k * mc.k;
    Vec s(at(N * C));
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < C; ++i) {
            double acc = 0;
            for (std::int64_t j = 0; j < mc.w_dim; ++j) acc += p.A[at(i * mc.w_dim + j)] * w[at(n * mc.w_dim + j)];
            s[at(n * C + i)] = acc / std::sqrt(double(mc.w_dim)) + p.bA[at(i)];
        }
    HT xs = x;
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t i = 0; i < C; ++i)
            for (std::int64_t q = 0; q < x.h * x.w; ++q) xs.v[at((n * C + i) * x.h * x.w + q)] *= s[at(n * C + i)];
    const double ws = 1.0 / std::sqrt(double(C * K));
    HT u = mc.up ? upfirdn(conv_transpose2(xs, p.V, O, ws), 1, 1, 1, 1, 4.0) : conv(xs, p.V, O, mc.k, 1, mc.k / 2, ws);
    if (mc.demod) {
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t o = 0; o < O; ++o) {
                double q = 0;
                for (std::int64_t i = 0; i < C; ++i) {
                    double w2 = 0;
                    for (std::int64_t t = 0; t < K; ++t) {
                        // W[o,i,t]: stored [C_out, C_in, k, k], or [C_in, C_out, 3, 3] for up layers
                        const double wv = ws * p.V[at((mc.up ? (i * O + o) : (o * C + i)) * K + t)];
                        w2 += wv * wv;
                    }
                    q += s[at(n * C + i)] * s[at(n * C + i)] * w2;
                }
                const double d = 1.0 / std::sqrt(q + eps);
                for (std::int64_t r = 0; r < u.h * u.w; ++r) u.v[at((n * O + o) * u.h * u.w + r)] *= d;
            }
    }
    if (mc.noise && key) {
        for (std::int64_t n = 0; n < N; ++n)
            for (std::int64_t o = 0; o < O; ++o)
                for (std::int64_t r = 0; r < u.h * u.w; ++r)
                    u.v[at((n * O + o) * u.h * u.w + r)] += p.strength * philox::normal(*key, std::uint64_t(n * u.h * u.w + r));
    }
    return bias_act(std::move(u), &p.bias, 1.0, mc.lrelu_act, mc.gain);
}

template <class B>
void check_modconv() {
    using T = typename B::Scalar;
    B b(1);
    const ModCase cases[] = {
        {3, 4, 3, 5, true, false, true, true, kRt2, 0.3, false},   // 3x3, demod, noise, lrelu (conv1 of a block)
        {4, 3, 3, 6, true, true, true, true, kRt2, 0.3, false},    // up: transposed conv + blur, demod, noise
        {5, 2, 1, 4, false, false, false, false, 1.0, 0.3, false}, // ToRGB: 1x1, no demod, no noise, linear
        {3, 4, 3, 5, true, false, true, true, kRt2, 0.0, true},    // tiny style: the eps of d is not negligible
        {3, 2, 3, 4, true, true, false, false, 1.3, 0.0, true},    // tiny style, up
    };
    std::uint64_t seed = 500;
    for (const ModCase& mc : cases) {
        SCOPED_TRACE(::testing::Message() << "c_in=" << mc.c_in << " c_out=" << mc.c_out << " k=" << mc.k
                                          << " demod=" << mc.demod << " up=" << mc.up << " noise=" << mc.noise
                                          << " tiny_style=" << mc.tiny_style);
        ModConv<B> layer(b, "mc",
                         ModConvConfig{mc.c_in, mc.c_out, mc.k, mc.w_dim, mc.demod, mc.up, mc.noise,
                                       mc.lrelu_act ? Act::lrelu : Act::linear, mc.gain},
                         11);
        // the affine's stored bias starts at 1 (the paper's "+ 1")
        for (double v : to_host_vector<double>(b, layer.affine().bias().value)) ASSERT_EQ(v, 1.0);
        ASSERT_EQ(layer.affine().weight().value.size(), mc.c_in * mc.w_dim);
        ASSERT_EQ(layer.weight().dims, (mc.up ? std::vector<std::int64_t>{mc.c_in, mc.c_out, 3, 3}
                                              : std::vector<std::int64_t>{mc.c_out, mc.c_in, mc.k, mc.k}));
        ModParams p;
        p.A = mc.tiny_style ? Vec(at(mc.c_in * mc.w_dim), 0.0) : rnd<T>(at(mc.c_in * mc.w_dim), ++seed);
        p.bA = mc.tiny_style ? rnd<T>(at(mc.c_in), ++seed, 1e-4) : rnd<T>(at(mc.c_in), ++seed, mc.style_scale, 1.0);
        p.V = rnd<T>(at(mc.c_in * mc.c_out * mc.k * mc.k), ++seed);
        p.bias = rnd<T>(at(mc.c_out), ++seed, 0.5);
        p.strength = mc.noise ? double(T(0.7)) : 0.0;
        set_param(b, layer.affine().weight(), p.A);
        set_param(b, layer.affine().bias(), p.bA);
        set_param(b, layer.weight(), p.V);
        set_param(b, layer.bias(), p.bias);
        if (mc.noise) set_param(b, layer.noise_strength(), Vec{p.strength});

        const std::int64_t H = mc.up ? 4 : 8;
        const HT x = random_input<B>(2, mc.c_in, H, H, ++seed);
        const Vec w = rnd<T>(at(2 * mc.w_dim), ++seed);
        Tensor<B> xt = upload(b, x);
        Tensor<B> wt = from_host<B, double>(b, Shape{2, mc.w_dim}, std::span<const double>(w));
        const RngKey key{1234, 3, 17};
        auto ctx = layer.forward(b, xt, wt, key);
        const HT expected = modconv_reference(x, w, mc, p, &key);
        ASSERT_EQ(ctx.y.shape(), (Shape{2, mc.c_out, mc.up ? 2 * H : H, mc.up ? 2 * H : H}));
        expect_close(to_host_vector<double>(b, ctx.y), expected, rel_tol<B>(), "modconv forward");

        if (mc.noise) {  // the noise term is really there: without it the reference is far off
            const HT quiet = modconv_reference(x, w, mc, p, nullptr);
            double diff = 0;
            for (std::size_t i = 0; i < quiet.v.size(); ++i) diff = std::max(diff, std::abs(quiet.v[i] - expected.v[i]));
            EXPECT_GT(diff, 0.1);
            auto ctx0 = layer.forward(b, xt, wt, std::nullopt);
            expect_close(to_host_vector<double>(b, ctx0.y), quiet, rel_tol<B>(), "modconv forward without noise");
        }
        if (mc.tiny_style) {  // the eps term matters here, so a different eps would be caught
            const HT no_eps = modconv_reference(x, w, mc, p, &key, 0.0);
            double diff = 0, mag = 0;
            for (std::size_t i = 0; i < no_eps.v.size(); ++i) {
                diff = std::max(diff, std::abs(no_eps.v[i] - expected.v[i]));
                mag = std::max(mag, std::abs(expected.v[i]));
            }
            EXPECT_GT(diff, 0.05 * mag);
        }
    }
}

TEST(LayerReference, ModConvForwardFromRawParametersFloat32) { check_modconv<EigenCpu>(); }
TEST(LayerReference, ModConvForwardFromRawParametersFloat64) { check_modconv<EigenCpu64>(); }

}  // namespace
}  // namespace sgf::test
