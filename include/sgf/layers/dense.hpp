// Equalised-learning-rate dense layer: y = act(x W^T * lr_mult/sqrt(in) + b * lr_mult) * gain.
// Stored W ~ N(0, 1/lr_mult^2) of shape [out, in] (StyleGAN2's convention, so the effective
// initial weights are He-initialised whatever lr_mult); b starts at bias_init / lr_mult (so the
// effective bias starts at bias_init). Inputs [N, C, H, W] are flattened to [N, C*H*W].
#pragma once

#include <sgf/layers/parameter.hpp>

#include <cmath>

namespace sgf {

struct DenseConfig {
    std::int64_t in = 0, out = 0;
    double lr_mult = 1.0;
    double bias_init = 0.0;
    Act act = Act::linear;
    double gain = 1.0;  ///< multiplies the activation output; sqrt(2) for lrelu by convention
    bool bias = true;
};

template <Backend B>
class Dense {
public:
    using T = typename B::Scalar;

    struct Ctx {
        TensorView<T> x;  ///< input; its owner must outlive the context
        Tensor<B> y;                   ///< output (post-activation)
    };

    Dense() = default;
    Dense(B& b, std::string name, DenseConfig cfg, std::uint64_t seed) : name_(std::move(name)), cfg_(cfg) {
        SGF_CHECK(cfg.in > 0 && cfg.out > 0, ArgumentError, "dense '{}': sizes must be positive (in={}, out={})", name_,
                  cfg.in, cfg.out);
        weight_ = make_parameter(b, name_ + ".weight", {cfg.out, cfg.in}, seed, true, 1.0 / cfg.lr_mult);
        if (cfg.bias) bias_ = make_parameter(b, name_ + ".bias", {cfg.out}, seed, false, cfg.bias_init / cfg.lr_mult);
    }

    const std::string& name() const { return name_; }
    const DenseConfig& config() const { return cfg_; }
    T weight_scale() const { return T(cfg_.lr_mult / std::sqrt(double(cfg_.in))); }
    Parameter<B>& weight() { return weight_; }
    Parameter<B>& bias() { return bias_; }
    const Parameter<B>& weight() const { return weight_; }
    const Parameter<B>& bias() const { return bias_; }

    void visit(const ParamVisitor<B>& f) {
        f(weight_);
        if (cfg_.bias) f(bias_);
    }

    Ctx forward(B& b, TensorView<T> x) const {
        SGF_CHECK(x.shape().sample_size() == cfg_.in, ShapeError,
                  "dense '{}': expected input with {} features per sample, got shape {}", name_, cfg_.in, x.shape().str());
        const std::int64_t N = x.shape().n;
        Ctx ctx{x, Tensor<B>(b, Shape{N, cfg_.out})};
        b.gemm(false, true, N, cfg_.out, cfg_.in, weight_scale(), x.data(), cfg_.in, weight_.value.data(), cfg_.in, T(0),
               ctx.y.data(), cfg_.out);
        b.bias_act(ctx.y.shape(), ctx.y.data(), cfg_.bias ? bias_.value.data() : nullptr, T(cfg_.lr_mult), cfg_.act,
                   T(cfg_.gain), ctx.y.data());
        return ctx;
    }

    /// Consumes dy (same shape as the output); returns dx shaped like the input (or an empty tensor
    /// when need_dx is false). Parameter gradients follow `mode`.
    Tensor<B> backward(B& b, const Ctx& ctx, Tensor<B>&& dy, GradMode mode, bool need_dx = true) {
        check_shape(dy.shape(), ctx.y.shape(), "dense '" + name_ + "' backward dy");
        const std::int64_t N = dy.shape().n;
        T* dbias = (cfg_.bias && mode != GradMode::skip) ? bias_.grad.data() : nullptr;
        b.bias_act_backward(dy.shape(), ctx.y.data(), dy.data(), cfg_.act, T(cfg_.gain), dy.data(), dbias, T(cfg_.lr_mult),
                            grad_beta<T>(mode));
        if (mode != GradMode::skip)
            b.gemm(true, false, cfg_.out, cfg_.in, N, weight_scale(), dy.data(), cfg_.out, ctx.x.data(), cfg_.in,
                   grad_beta<T>(mode), weight_.grad.data(), cfg_.in);
        if (!need_dx) return {};
        Tensor<B> dx(b, ctx.x.shape());
        b.gemm(false, false, N, cfg_.in, cfg_.out, weight_scale(), dy.data(), cfg_.out, weight_.value.data(), cfg_.in, T(0),
               dx.data(), cfg_.in);
        return dx;
    }

private:
    std::string name_;
    DenseConfig cfg_;
    Parameter<B> weight_, bias_;
};

}  // namespace sgf
