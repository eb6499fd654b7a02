// Equalised-learning-rate convolution, optionally downsampling by 2 as StyleGAN2 does:
//   plain:        y = act(conv(x, W * s, stride 1, pad k/2) + b) * gain
//   down, k > 1:  x' = FIR blur [1,3,3,1] with pad (p0, p1) = ((k+1)/2, (k+1)/2 - ... ) see below;
//                 y = act(conv(x', W * s, stride 2, pad 0) + b) * gain
//   down, k == 1: x' = FIR down2 (blur, pad 1/1, keep every 2nd); y = act(conv1x1(x', W * s) + b) * gain
// with s = lr_mult / sqrt(C_in k k). For the k > 1 case the blur padding is p = (4 - 2) + (k - 1),
// p0 = (p + 1) / 2, p1 = p / 2 (StyleGAN2's conv2d_resample), so an H x H input gives H/2 x H/2.
#pragma once

#include <sgf/layers/parameter.hpp>

#include <cmath>
#include <optional>

namespace sgf {

struct ConvConfig {
    std::int64_t c_in = 0, c_out = 0, k = 3;
    bool down = false;
    bool bias = true;
    Act act = Act::lrelu;
    double gain = kSqrt2;
    double lr_mult = 1.0;
};

template <Backend B>
class Conv2d {
public:
    using T = typename B::Scalar;

    struct Ctx {
        TensorView<T> x;  ///< input; its owner must outlive the context
        Tensor<B> xb;                  ///< blurred input (down only)
        Tensor<B> y;                   ///< output (post-activation)
    };

    Conv2d() = default;
    Conv2d(B& b, std::string name, ConvConfig cfg, std::uint64_t seed) : name_(std::move(name)), cfg_(cfg) {
        SGF_CHECK(cfg.c_in > 0 && cfg.c_out > 0 && cfg.k > 0, ArgumentError,
                  "conv '{}': sizes must be positive (c_in={}, c_out={}, k={})", name_, cfg.c_in, cfg.c_out, cfg.k);
        weight_ = make_parameter(b, name_ + ".weight", {cfg.c_out, cfg.c_in, cfg.k, cfg.k}, seed, true);
        if (cfg.bias) bias_ = make_parameter(b, name_ + ".bias", {cfg.c_out}, seed, false);
    }

    const std::string& name() const { return name_; }
    const ConvConfig& config() const { return cfg_; }
    T weight_scale() const { return T(cfg_.lr_mult / std::sqrt(double(cfg_.c_in * cfg_.k * cfg_.k))); }
    Parameter<B>& weight() { return weight_; }
    Parameter<B>& bias() { return bias_; }
    const Parameter<B>& weight() const { return weight_; }
    const Parameter<B>& bias() const { return bias_; }
    void visit(const ParamVisitor<B>& f) {
        f(weight_);
        if (cfg_.bias) f(bias_);
    }

    Shape output_shape(const Shape& x) const {
        return cfg_.down ? Shape{x.n, cfg_.c_out, x.h / 2, x.w / 2} : Shape{x.n, cfg_.c_out, x.h, x.w};
    }

    Ctx forward(B& b, TensorView<T> x) const {
        const Shape& s = x.shape();
        SGF_CHECK(s.c == cfg_.c_in, ShapeError, "conv '{}': expected {} input channels, got shape {}", name_, cfg_.c_in,
                  s.str());
        SGF_CHECK(!cfg_.down || (s.h % 2 == 0 && s.w % 2 == 0 && s.h >= 2), ShapeError,
                  "conv '{}': downsampling needs an even input size, got shape {}", name_, s.str());
        Ctx ctx;
        ctx.x = x;
        TensorView<T> in = x;
        if (cfg_.down) {
            const FirDesc f = blur_desc(s);
            ctx.xb = Tensor<B>(b, f.y_shape());
            b.fir(f, x.data(), ctx.xb.data());
            in = ctx.xb.view();
        }
        const ConvDesc d = conv_desc(in.shape());
        ctx.y = Tensor<B>(b, d.y_shape());
        b.conv2d_forward(d, weight_scale(), in.data(), weight_.value.data(), T(0), ctx.y.data());
        b.bias_act(ctx.y.shape(), ctx.y.data(), cfg_.bias ? bias_.value.data() : nullptr, T(cfg_.lr_mult), cfg_.act,
                   T(cfg_.gain), ctx.y.data());
        return ctx;
    }

    Tensor<B> backward(B& b, const Ctx& ctx, Tensor<B>&& dy, GradMode mode, bool need_dx = true) {
        check_shape(dy.shape(), ctx.y.shape(), "conv '" + name_ + "' backward dy");
        T* dbias = (cfg_.bias && mode != GradMode::skip) ? bias_.grad.data() : nullptr;
        b.bias_act_backward(dy.shape(), ctx.y.data(), dy.data(), cfg_.act, T(cfg_.gain), dy.data(), dbias, T(cfg_.lr_mult),
                            grad_beta<T>(mode));
        const TensorView<T> in = cfg_.down ? ctx.xb.view() : ctx.x;
        const ConvDesc d = conv_desc(in.shape());
        if (mode != GradMode::skip)
            b.conv2d_backward_filter(d, weight_scale(), in.data(), dy.data(), grad_beta<T>(mode), weight_.grad.data());
        if (!need_dx) return {};
        Tensor<B> din(b, in.shape());
        b.conv2d_backward_data(d, weight_scale(), dy.data(), weight_.value.data(), T(0), din.data());
        if (!cfg_.down) return din;
        Tensor<B> dx(b, ctx.x.shape());
        b.fir_backward(blur_desc(ctx.x.shape()), din.data(), dx.data());
        return dx;
    }

private:
    FirDesc blur_desc(const Shape& s) const {
        if (cfg_.k == 1) return FirDesc::down2(s);
        const int p = 2 + static_cast<int>(cfg_.k) - 1;
        return FirDesc::blur(s, (p + 1) / 2, p / 2, 1.0);
    }
    ConvDesc conv_desc(const Shape& in) const {
        const bool strided = cfg_.down && cfg_.k > 1;
        return ConvDesc{in.n, cfg_.c_in, in.h, in.w, cfg_.c_out, cfg_.k, strided ? 2 : 1, strided ? 0 : cfg_.k / 2};
    }

    std::string name_;
    ConvConfig cfg_;
    Parameter<B> weight_, bias_;
};

}  // namespace sgf
