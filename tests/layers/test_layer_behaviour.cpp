// Layer forward passes against plain host references, gradient modes, error messages, optimiser.
#include "gradcheck.hpp"

#include <cmath>

namespace sgf::test {
namespace {

double lrelu_ref(double t) { return (t > 0 ? t : 0.2 * t) * kSqrt2; }

// Direct cross-correlation of one sample with an explicit weight, zero padding.
std::vector<double> conv_ref(const std::vector<double>& x, std::int64_t C, std::int64_t H, std::int64_t W,
                             const std::vector<double>& w, std::int64_t O, std::int64_t k, std::int64_t stride,
                             std::int64_t pad, std::int64_t& OH, std::int64_t& OW) {
    OH = (H + 2 * pad - k) / stride + 1;
    OW = (W + 2 * pad - k) / stride + 1;
    std::vector<double> y(static_cast<std::size_t>(O * OH * OW), 0.0);
    for (std::int64_t o = 0; o < O; ++o)
        for (std::int64_t oy = 0; oy < OH; ++oy)
            for (std::int64_t ox = 0; ox < OW; ++ox) {
                double acc = 0;
                for (std::int64_t i = 0; i < C; ++i)
                    for (std::int64_t ky = 0; ky < k; ++ky)
                        for (std::int64_t kx = 0; kx < k; ++kx) {
                            const std::int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            acc += x[static_cast<std::size_t>((i * H + iy) * W + ix)] *
                                   w[static_cast<std::size_t>(((o * C + i) * k + ky) * k + kx)];
                        }
                y[static_cast<std::size_t>((o * OH + oy) * OW + ox)] = acc;
            }
    return y;
}

TEST(LayerForward, DenseMatchesDefinition) {
    B64 b;
    Dense<B64> fc(b, "fc", DenseConfig{4, 3, 0.01, 0.5, Act::lrelu, kSqrt2, true}, 1);
    Tensor<B64> x = random_tensor(b, Shape{2, 4}, 3);
    auto y = to_host_vector<double>(b, fc.forward(b, x).y);
    auto W = to_host_vector<double>(b, fc.weight().value), bias = to_host_vector<double>(b, fc.bias().value);
    auto xv = to_host_vector<double>(b, x);
    for (int n = 0; n < 2; ++n)
        for (int o = 0; o < 3; ++o) {
            double t = bias[o] * 0.01;
            for (int i = 0; i < 4; ++i) t += xv[n * 4 + i] * W[o * 4 + i] * 0.01 / 2.0;
            EXPECT_NEAR(y[n * 3 + o], lrelu_ref(t), 1e-12);
        }
    EXPECT_NEAR(bias[0] * 0.01, 0.5, 1e-12) << "bias_init is the effective initial bias";
}

TEST(LayerForward, ModulatedConvEqualsPerSampleWeights) {
    // y[n] = lrelu(conv(x[n], W''_n) + noise + b) with W''_n[o,i] = W[o,i] s_n[i] d_n[o]: the paper's definition.
    B64 b;
    const std::int64_t C = 3, O = 4, H = 5, k = 3;
    ModConv<B64> layer(b, "mod", ModConvConfig{C, O, k, 6, true, false, true, Act::lrelu, kSqrt2}, 2);
    layer.visit([&](Parameter<B64>& p) {
        auto v = random_vector(p.value.size(), p.value.size() + 5, 0.5);
        upload_into(b, std::span<const double>(v), p.value);
    });
    Tensor<B64> x = random_tensor(b, Shape{2, C, H, H}, 7);
    Tensor<B64> w = random_tensor(b, Shape{2, 6}, 8);
    const RngKey key{3, 4, 0};
    auto y = to_host_vector<double>(b, layer.forward(b, x, w, key).y);
    auto xv = to_host_vector<double>(b, x);
    auto bias = to_host_vector<double>(b, layer.bias().value);
    const double strength = to_host_vector<double>(b, layer.noise_strength().value)[0];
    std::vector<double> noise(static_cast<std::size_t>(2 * H * H));
    for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = philox::normal(key, i);
    for (std::int64_t n = 0; n < 2; ++n) {
        Tensor<B64> wn = random_tensor(b, Shape{1, 6}, 99);
        auto wv = to_host_vector<double>(b, w);
        upload_into(b, std::span<const double>(wv.data() + n * 6, 6), wn);
        auto Wn = layer.bake_weight(b, wn);  // the explicit per-sample weight W''_n
        std::vector<double> xn(xv.begin() + n * C * H * H, xv.begin() + (n + 1) * C * H * H);
        std::int64_t OH, OW;
        auto u = conv_ref(xn, C, H, H, Wn, O, k, 1, 1, OH, OW);
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t p = 0; p < H * H; ++p) {
                const double t = u[o * H * H + p] + strength * noise[n * H * H + p] + bias[o];
                EXPECT_NEAR(y[(n * O + o) * H * H + p], lrelu_ref(t), 1e-10);
            }
    }
}

TEST(LayerForward, UpModulatedConvIsTransposedConvThenFir) {
    // Up layer = transposed stride-2 conv with the per-sample weight, then [1,3,3,1] FIR (gain 4, pad 1/1).
    B64 b;
    const std::int64_t C = 2, O = 3, H = 3;
    ModConv<B64> layer(b, "up", ModConvConfig{C, O, 3, 4, true, true, false, Act::linear, 1.0}, 4);
    Tensor<B64> x = random_tensor(b, Shape{1, C, H, H}, 5);
    Tensor<B64> w = random_tensor(b, Shape{1, 4}, 6);
    auto y = to_host_vector<double>(b, layer.forward(b, x, w, std::nullopt).y);
    auto Wb = layer.bake_weight(b, w);  // [C_in, C_out, 3, 3]
    auto xv = to_host_vector<double>(b, x);
    const std::int64_t T = 2 * H + 1;
    std::vector<double> t(static_cast<std::size_t>(O * T * T), 0.0);
    for (std::int64_t i = 0; i < C; ++i)
        for (std::int64_t o = 0; o < O; ++o)
            for (std::int64_t iy = 0; iy < H; ++iy)
                for (std::int64_t ix = 0; ix < H; ++ix)
                    for (std::int64_t ky = 0; ky < 3; ++ky)
                        for (std::int64_t kx = 0; kx < 3; ++kx)
                            t[(o * T + 2 * iy + ky) * T + 2 * ix + kx] +=
                                xv[(i * H + iy) * H + ix] * Wb[((i * O + o) * 3 + ky) * 3 + kx];
    const double f[4] = {1 / 8.0, 3 / 8.0, 3 / 8.0, 1 / 8.0};
    const std::int64_t OH = 2 * H;
    ASSERT_EQ(static_cast<std::int64_t>(y.size()), O * OH * OH);
    for (std::int64_t o = 0; o < O; ++o)
        for (std::int64_t oy = 0; oy < OH; ++oy)
            for (std::int64_t ox = 0; ox < OH; ++ox) {
                double acc = 0;
                for (int a = 0; a < 4; ++a)
                    for (int c = 0; c < 4; ++c) {
                        const std::int64_t py = oy + a - 1, px = ox + c - 1;  // pad 1 before
                        if (py < 0 || py >= T || px < 0 || px >= T) continue;
                        acc += 4.0 * f[a] * f[c] * t[(o * T + py) * T + px];
                    }
                const double bias = 0.0;
                EXPECT_NEAR(y[(o * OH + oy) * OH + ox], acc + bias, 1e-10);
            }
}

TEST(LayerForward, DemodulationNormalisesOutputScale) {
    // With unit-variance inputs, demodulated outputs have about unit variance whatever the style scale.
    B64 b;
    ModConv<B64> layer(b, "mod", ModConvConfig{64, 32, 3, 16, true, false, false, Act::linear, 1.0}, 4);
    Tensor<B64> x = random_tensor(b, Shape{4, 64, 8, 8}, 5);
    for (double scale : {0.1, 10.0}) {
        Tensor<B64> w = random_tensor(b, Shape{4, 16}, 6, scale);
        auto y = to_host_vector<double>(b, layer.forward(b, x, w, std::nullopt).y);
        double var = 0;
        for (double v : y) var += v * v;
        var /= double(y.size());
        EXPECT_GT(var, 0.5);
        EXPECT_LT(var, 1.6);
    }
}

TEST(GradModes, AccumulateAddsOverwriteReplacesSkipLeaves) {
    B64 b;
    Conv2d<B64> conv(b, "c", ConvConfig{2, 3, 3, false, true, Act::lrelu, kSqrt2}, 1);
    Tensor<B64> x = random_tensor(b, Shape{2, 2, 4, 4}, 2);
    Tensor<B64> g = random_tensor(b, Shape{2, 3, 4, 4}, 3);
    auto ctx = conv.forward(b, x);
    conv.backward(b, ctx, g.clone(b), GradMode::overwrite);
    auto once_w = to_host_vector<double>(b, conv.weight().grad), once_b = to_host_vector<double>(b, conv.bias().grad);
    conv.backward(b, ctx, g.clone(b), GradMode::accumulate);
    auto twice_w = to_host_vector<double>(b, conv.weight().grad), twice_b = to_host_vector<double>(b, conv.bias().grad);
    for (std::size_t i = 0; i < once_w.size(); ++i) EXPECT_NEAR(twice_w[i], 2 * once_w[i], 1e-12);
    for (std::size_t i = 0; i < once_b.size(); ++i) EXPECT_NEAR(twice_b[i], 2 * once_b[i], 1e-12);
    conv.backward(b, ctx, g.clone(b), GradMode::overwrite);
    auto again_w = to_host_vector<double>(b, conv.weight().grad);
    for (std::size_t i = 0; i < once_w.size(); ++i) EXPECT_NEAR(again_w[i], once_w[i], 1e-12);
    Tensor<B64> dx_skip = conv.backward(b, ctx, g.clone(b), GradMode::skip);
    auto after_skip = to_host_vector<double>(b, conv.weight().grad);
    EXPECT_EQ(after_skip, again_w) << "skip must not touch parameter gradients";
    Tensor<B64> dx_over = conv.backward(b, ctx, g.clone(b), GradMode::overwrite);
    EXPECT_EQ(to_host_vector<double>(b, dx_skip), to_host_vector<double>(b, dx_over)) << "skip still yields dL/dx";
}

TEST(GradModes, ModConvSkipLeavesAllParameterGradients) {
    B64 b;
    ModConv<B64> layer(b, "m", ModConvConfig{2, 3, 3, 4, true, true, true, Act::lrelu, kSqrt2}, 1);
    Tensor<B64> x = random_tensor(b, Shape{2, 2, 4, 4}, 2);
    Tensor<B64> w = random_tensor(b, Shape{2, 4}, 3);
    Tensor<B64> g = random_tensor(b, Shape{2, 3, 8, 8}, 4);
    layer.visit([&](Parameter<B64>& p) { b.fill(p.grad.data(), p.grad.size(), 0.25); });
    auto ctx = layer.forward(b, x, w, RngKey{1, 2, 3});
    Tensor<B64> dw(b, w.shape(), 0.0);
    layer.backward(b, ctx, g.clone(b), GradMode::skip, dw, 0.0);
    layer.visit([&](Parameter<B64>& p) {
        for (double v : to_host_vector<double>(b, p.grad)) EXPECT_EQ(v, 0.25) << p.name;
    });
    double mag = 0;
    for (double v : to_host_vector<double>(b, dw)) mag += std::abs(v);
    EXPECT_GT(mag, 0.0) << "the style gradient still flows in skip mode";
}

TEST(Errors, ShapeMismatchNamesLayerExpectedAndActual) {
    B64 b;
    Conv2d<B64> conv(b, "decoder.b8.conv0", ConvConfig{3, 4, 3}, 1);
    Tensor<B64> x(b, Shape{1, 5, 8, 8}, 0.0);
    try {
        conv.forward(b, x);
        FAIL() << "expected ShapeError";
    } catch (const ShapeError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("decoder.b8.conv0"), std::string::npos) << m;
        EXPECT_NE(m.find("3 input channels"), std::string::npos) << m;
        EXPECT_NE(m.find("[1, 5, 8, 8]"), std::string::npos) << m;
    }
    ModConv<B64> mod(b, "g.b4.conv", ModConvConfig{4, 4, 3, 8}, 1);
    Tensor<B64> x4(b, Shape{2, 4, 4, 4}, 0.0), wbad(b, Shape{2, 7}, 0.0);
    EXPECT_THROW(mod.forward(b, x4, wbad, std::nullopt), ShapeError);
    Dense<B64> fc(b, "fc", DenseConfig{10, 2}, 1);
    Tensor<B64> xs(b, Shape{2, 9}, 0.0);
    EXPECT_THROW(fc.forward(b, xs), ShapeError);
    EXPECT_THROW(Dense<B64>(b, "neg", DenseConfig{-1, 2}, 1), ArgumentError);
    EXPECT_THROW(Tensor<B64>(b, Shape{2, -3, 1, 1}), ShapeError);
    Tensor<B64> odd(b, Shape{1, 3, 5, 5}, 0.0);
    Conv2d<B64> down(b, "down", ConvConfig{3, 3, 3, true}, 1);
    EXPECT_THROW(down.forward(b, odd), ShapeError);
}

TEST(Optimiser, LazyRegularisationCorrection) {
    const AdamParams base{0.002, 0.0, 0.99, 1e-8};
    const AdamParams g = lazy_regularised(base, 4), d = lazy_regularised(base, 16);
    EXPECT_NEAR(g.lr, 0.0016, 1e-15);
    EXPECT_NEAR(g.beta2, std::pow(0.99, 0.8), 1e-15);
    EXPECT_NEAR(d.lr, 0.002 * 16 / 17, 1e-15);
    EXPECT_NEAR(d.beta2, std::pow(0.99, 16.0 / 17.0), 1e-15);
    EXPECT_EQ(g.beta1, 0.0);
}

TEST(Optimiser, AdamStepMatchesHandComputation) {
    B64 b;
    Parameter<B64> p = make_parameter(b, "p", {3}, 1, false, 1.0);
    const std::vector<double> g0{0.5, -2.0, 0.0};
    upload_into(b, std::span<const double>(g0), p.grad);
    Adam<B64> opt(b, {&p}, AdamParams{0.1, 0.9, 0.99, 1e-8});
    opt.step(b);
    opt.step(b);
    auto v = to_host_vector<double>(b, p.value);
    for (int i = 0; i < 3; ++i) {
        double m = 0, s = 0, x = 1.0;
        for (int t = 1; t <= 2; ++t) {
            m = 0.9 * m + 0.1 * g0[i];
            s = 0.99 * s + 0.01 * g0[i] * g0[i];
            x -= 0.1 * (m / (1 - std::pow(0.9, t))) / (std::sqrt(s / (1 - std::pow(0.99, t))) + 1e-8);
        }
        EXPECT_NEAR(v[i], x, 1e-12) << i;
    }
}

TEST(Optimiser, EmaHalfLife) {
    EXPECT_NEAR(ema_beta(16, 10000), std::pow(0.5, 16.0 / 10000), 1e-15);
    B64 b;
    Parameter<B64> live = make_parameter(b, "a", {2}, 1, false, 1.0), ema = make_parameter(b, "a", {2}, 1, false, 0.0);
    const double beta = ema_beta(1, 1);  // half-life of one step
    ema_update<B64>(b, {&ema}, {&live}, beta);
    for (double v : to_host_vector<double>(b, ema.value)) EXPECT_NEAR(v, 0.5, 1e-15);
}

}  // namespace
}  // namespace sgf::test
