// StyleGAN2's residual discriminator block, used by the decoder F and the discriminator D:
//   main = conv1(conv0(x))   conv0: 3x3 C_in->C_in, lrelu; conv1: 3x3 down C_in->C_out, lrelu
//   skip = 1x1 down conv C_in->C_out, no bias, linear
//   y    = (main + skip) / sqrt(2)
#pragma once

#include <sgf/layers/conv.hpp>

namespace sgf {

template <Backend B>
class ResBlock {
public:
    using T = typename B::Scalar;
    struct Ctx {
        typename Conv2d<B>::Ctx c0, c1, skip;
        Tensor<B> y;
    };

    ResBlock() = default;
    ResBlock(B& b, std::string name, std::int64_t c_in, std::int64_t c_out, std::uint64_t seed) : name_(std::move(name)) {
        conv0_ = Conv2d<B>(b, name_ + ".conv0", ConvConfig{c_in, c_in, 3, false, true, Act::lrelu, kSqrt2}, seed);
        conv1_ = Conv2d<B>(b, name_ + ".conv1", ConvConfig{c_in, c_out, 3, true, true, Act::lrelu, kSqrt2}, seed);
        skip_ = Conv2d<B>(b, name_ + ".skip", ConvConfig{c_in, c_out, 1, true, false, Act::linear, 1.0}, seed);
    }
    const std::string& name() const { return name_; }
    Conv2d<B>& conv0() { return conv0_; }
    Conv2d<B>& conv1() { return conv1_; }
    Conv2d<B>& skip() { return skip_; }

    void visit(const ParamVisitor<B>& f) {
        conv0_.visit(f);
        conv1_.visit(f);
        skip_.visit(f);
    }

    Ctx forward(B& b, TensorView<T> x) const {
        Ctx ctx;
        ctx.c0 = conv0_.forward(b, x);
        ctx.c1 = conv1_.forward(b, ctx.c0.y);
        ctx.skip = skip_.forward(b, x);
        ctx.y = Tensor<B>(b, ctx.c1.y.shape());
        const T r = T(1.0 / kSqrt2);
        b.copy(ctx.c1.y.data(), ctx.y.data(), ctx.y.size());
        b.axpby(ctx.y.size(), r, ctx.skip.y.data(), r, ctx.y.data());
        return ctx;
    }

    Tensor<B> backward(B& b, const Ctx& ctx, Tensor<B>&& dy, GradMode mode, bool need_dx = true) {
        check_shape(dy.shape(), ctx.y.shape(), "resblock '" + name_ + "' backward dy");
        const T r = T(1.0 / kSqrt2);
        b.axpby(dy.size(), T(0), dy.data(), r, dy.data());
        Tensor<B> dskip = dy.clone(b);
        Tensor<B> dc0 = conv1_.backward(b, ctx.c1, std::move(dy), mode, true);
        Tensor<B> dx_skip = skip_.backward(b, ctx.skip, std::move(dskip), mode, need_dx);
        Tensor<B> dx = conv0_.backward(b, ctx.c0, std::move(dc0), mode, need_dx);
        if (need_dx) b.axpby(dx.size(), T(1), dx_skip.data(), T(1), dx.data());
        return dx;
    }

private:
    std::string name_;
    Conv2d<B> conv0_, conv1_, skip_;
};

}  // namespace sgf
