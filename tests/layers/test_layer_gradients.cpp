// Float64 central-difference gradient checks of every layer, through a random projection of the
// output, with respect to inputs, styles (the fingerprint embedding's output) and all parameters.
#include "gradcheck.hpp"

namespace sgf::test {
namespace {

template <class Layer>
std::vector<GradTarget> param_targets(B64& b, Layer& layer) {
    std::vector<GradTarget> out;
    layer.visit([&](Parameter<B64>& p) { out.push_back(target_of(b, p.name, p.value, p.grad)); });
    return out;
}

template <class Layer>
void randomise_params(B64& b, Layer& layer, std::uint64_t seed) {
    layer.visit([&](Parameter<B64>& p) {
        auto v = random_vector(p.value.size(), seed++ * 7919 + p.value.size(), 0.5);
        upload_into(b, std::span<const double>(v), p.value);
    });
}

TEST(LayerGradients, Dense) {
    B64 b;
    for (Act act : {Act::linear, Act::lrelu}) {
        Dense<B64> layer(b, "fc", DenseConfig{6, 5, 0.01, 0.0, act, act == Act::lrelu ? kSqrt2 : 1.0, true}, 1);
        randomise_params(b, layer, 3);
        Tensor<B64> x = random_tensor(b, Shape{3, 2, 3, 1}, 11);
        Tensor<B64> g = random_tensor(b, Shape{3, 5}, 12);
        auto f = [&] { auto c = layer.forward(b, x); return b.dot(g.size(), c.y.data(), g.data()); };
        auto ctx = layer.forward(b, x);
        Tensor<B64> dx = layer.backward(b, ctx, g.clone(b), GradMode::overwrite);
        auto targets = param_targets(b, layer);
        targets.push_back(target_of(b, "x", x, dx));
        expect_gradients(f, std::move(targets));
    }
}

struct ConvCase {
    std::int64_t c_in, c_out, k;
    bool down, bias;
    Act act;
};

TEST(LayerGradients, Conv2d) {
    B64 b;
    for (const ConvCase cc : {ConvCase{3, 4, 3, false, true, Act::lrelu}, ConvCase{3, 4, 1, false, true, Act::lrelu},
                              ConvCase{2, 3, 3, true, true, Act::lrelu}, ConvCase{2, 3, 1, true, false, Act::linear}}) {
        Conv2d<B64> layer(b, "conv", ConvConfig{cc.c_in, cc.c_out, cc.k, cc.down, cc.bias, cc.act, kSqrt2}, 5);
        randomise_params(b, layer, 7);
        Tensor<B64> x = random_tensor(b, Shape{2, cc.c_in, 6, 6}, 21);
        Tensor<B64> g = random_tensor(b, layer.output_shape(x.shape()), 22);
        auto f = [&] { auto c = layer.forward(b, x); return b.dot(g.size(), c.y.data(), g.data()); };
        auto ctx = layer.forward(b, x);
        ASSERT_EQ(ctx.y.shape(), g.shape());
        Tensor<B64> dx = layer.backward(b, ctx, g.clone(b), GradMode::overwrite);
        auto targets = param_targets(b, layer);
        targets.push_back(target_of(b, "x", x, dx));
        SCOPED_TRACE(fmt::format("k={} down={}", cc.k, cc.down));
        expect_gradients(f, std::move(targets));
    }
}

struct ModCase {
    std::int64_t c_in, c_out, k;
    bool demod, up, noise;
    Act act;
};

TEST(LayerGradients, ModulatedConv) {
    B64 b;
    for (const ModCase mc : {ModCase{3, 4, 3, true, false, true, Act::lrelu}, ModCase{3, 4, 3, true, true, true, Act::lrelu},
                             ModCase{4, 2, 1, false, false, false, Act::linear},  // ToRGB
                             ModCase{3, 2, 3, false, true, false, Act::linear}}) {
        SCOPED_TRACE(fmt::format("k={} demod={} up={} noise={}", mc.k, mc.demod, mc.up, mc.noise));
        ModConv<B64> layer(b, "mod", ModConvConfig{mc.c_in, mc.c_out, mc.k, 5, mc.demod, mc.up, mc.noise, mc.act, kSqrt2}, 9);
        randomise_params(b, layer, 13);
        Tensor<B64> x = random_tensor(b, Shape{2, mc.c_in, 4, 4}, 31);
        Tensor<B64> w = random_tensor(b, Shape{2, 5}, 32);
        Tensor<B64> g = random_tensor(b, layer.output_shape(x.shape()), 33);
        const RngKey key{77, 1, 0};
        auto f = [&] { auto c = layer.forward(b, x, w, key); return b.dot(g.size(), c.y.data(), g.data()); };
        auto ctx = layer.forward(b, x, w, key);
        ASSERT_EQ(ctx.y.shape(), g.shape());
        Tensor<B64> dw(b, w.shape(), 0.0);
        Tensor<B64> dx = layer.backward(b, ctx, g.clone(b), GradMode::overwrite, dw, 0.0);
        auto targets = param_targets(b, layer);
        targets.push_back(target_of(b, "x", x, dx));
        targets.push_back(target_of(b, "w (style input)", w, dw));
        expect_gradients(f, std::move(targets));
    }
}

TEST(LayerGradients, ResBlock) {
    B64 b;
    ResBlock<B64> layer(b, "blk", 3, 4, 17);
    randomise_params(b, layer, 19);
    Tensor<B64> x = random_tensor(b, Shape{2, 3, 8, 8}, 41);
    Tensor<B64> g = random_tensor(b, Shape{2, 4, 4, 4}, 42);
    auto f = [&] { auto c = layer.forward(b, x); return b.dot(g.size(), c.y.data(), g.data()); };
    auto ctx = layer.forward(b, x);
    Tensor<B64> dx = layer.backward(b, ctx, g.clone(b), GradMode::overwrite);
    auto targets = param_targets(b, layer);
    targets.push_back(target_of(b, "x", x, dx));
    expect_gradients(f, std::move(targets));
}

TEST(LayerGradients, MinibatchStd) {
    B64 b;
    for (int n : {4, 8, 2}) {
        MinibatchStd<B64> layer(4);
        Tensor<B64> x = random_tensor(b, Shape{n, 3, 4, 4}, 51);
        Tensor<B64> g = random_tensor(b, Shape{n, 4, 4, 4}, 52);
        auto f = [&] { auto y = layer.forward(b, x); return b.dot(g.size(), y.data(), g.data()); };
        Tensor<B64> dx = layer.backward(b, x, g);
        expect_gradients(f, {target_of(b, "x", x, dx)});
    }
}

TEST(LayerGradients, Resampling) {
    B64 b;
    Tensor<B64> x = random_tensor(b, Shape{2, 3, 6, 6}, 61);
    Tensor<B64> gu = random_tensor(b, Shape{2, 3, 12, 12}, 62);
    Tensor<B64> gd = random_tensor(b, Shape{2, 3, 3, 3}, 63);
    auto fu = [&] { auto y = upsample2x(b, x); return b.dot(gu.size(), y.data(), gu.data()); };
    auto fd = [&] { auto y = downsample2x(b, x); return b.dot(gd.size(), y.data(), gd.data()); };
    expect_gradients(fu, {target_of(b, "x (up)", x, upsample2x_backward(b, x.shape(), gu))});
    expect_gradients(fd, {target_of(b, "x (down)", x, downsample2x_backward(b, x.shape(), gd))});
}

TEST(LayerGradients, Losses) {
    B64 b;
    Tensor<B64> x = random_tensor(b, Shape{6, 3}, 71, 2.0);
    Tensor<B64> t(b, Shape{6, 3});
    b.bits(RngKey{5, 0, 0}, t.size(), t.data());
    Tensor<B64> y = random_tensor(b, Shape{6, 3}, 72);
    for (double sign : {1.0, -1.0}) {
        auto r = softplus_mean(b, x, sign, 0.7);
        expect_gradients([&] { return softplus_mean(b, x, sign, 0.7, false).value; }, {target_of(b, "softplus x", x, r.grad)});
    }
    auto rb = bce_logits_mean(b, x, t, 2.0);
    expect_gradients([&] { return bce_logits_mean(b, x, t, 2.0, false).value; }, {target_of(b, "bce logits", x, rb.grad)});
    auto rm = mse_mean(b, x, y, 1.5);
    expect_gradients([&] { return mse_mean(b, x, y, 1.5, false).value; }, {target_of(b, "mse a", x, rm.grad)});
}

}  // namespace
}  // namespace sgf::test
