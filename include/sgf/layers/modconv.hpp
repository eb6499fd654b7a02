// The modulated convolution of StyleGAN2 as used by the scalable-fingerprinting generator
// (algorithm.md 3.3), in its per-sample "scale the activations" form:
//   s   = A w + b_A                      affine style, b_A starts at 1 (= the paper's "+1")
//   xs  = x (.) s                        per sample n, per input channel i
//   u   = conv(xs, W),  W = V / sqrt(C_in k k)
//   d   = 1 / sqrt(sum_i s_i^2 sum_k W[o,i,k]^2 + 1e-8)   (demodulate; ToRGB skips this)
//   y   = act(d (.) u + strength * noise + bias) * gain
// which equals convolving each sample with its own W''[o,i,k] = W[o,i,k] s_i d_o.
// Upsampling layers (up = true) replace conv by a stride-2 transposed convolution followed by the
// FIR filter [1,3,3,1] (gain 4, pad 1/1), StyleGAN2's conv2d_resample; their weight is stored
// [C_in, C_out, k, k] like PyTorch's ConvTranspose2d. An H x H input then gives 2H x 2H.
#pragma once

#include <sgf/layers/dense.hpp>

#include <cmath>
#include <optional>

namespace sgf {

struct ModConvConfig {
    std::int64_t c_in = 0, c_out = 0, k = 3;
    std::int64_t w_dim = 0;      ///< width of the style input w
    bool demodulate = true;
    bool up = false;
    bool noise = true;           ///< learned-strength noise injection
    Act act = Act::lrelu;
    double gain = kSqrt2;
    /// A baked layer (a fingerprinted per-user copy): the weight already holds W'' (modulated,
    /// demodulated and equalised-lr scaled), so there is no affine, no modulation, no
    /// demodulation and no run-time scale; forward ignores w.
    bool baked = false;
};

template <Backend B>
class ModConv {
public:
    using T = typename B::Scalar;
    static constexpr double kDemodEps = 1e-8;

    struct Ctx {
        TensorView<T> x;  ///< input; its owner must outlive the context
        typename Dense<B>::Ctx style;  ///< s = style.y, [N, C_in]
        Tensor<B> xs;                  ///< x (.) s
        Tensor<B> u;                   ///< conv output before demodulation (after FIR for up layers)
        Tensor<B> s2, wsq, d;          ///< demodulation terms (demodulate only)
        Tensor<B> noise;               ///< [N,1,H,W] (noise only)
        Tensor<B> y;                   ///< output
    };

    ModConv() = default;
    ModConv(B& b, std::string name, ModConvConfig cfg, std::uint64_t seed) : name_(std::move(name)), cfg_(cfg) {
        SGF_CHECK(cfg.c_in > 0 && cfg.c_out > 0 && cfg.k > 0 && cfg.w_dim > 0, ArgumentError,
                  "modconv '{}': sizes must be positive (c_in={}, c_out={}, k={}, w_dim={})", name_, cfg.c_in, cfg.c_out,
                  cfg.k, cfg.w_dim);
        SGF_CHECK(!cfg.up || cfg.k == 3, ArgumentError, "modconv '{}': upsampling layers use k = 3, got {}", name_, cfg.k);
        if (!cfg.baked)
            affine_ = Dense<B>(b, name_ + ".affine", DenseConfig{cfg.w_dim, cfg.c_in, 1.0, 1.0, Act::linear, 1.0, true}, seed);
        std::vector<std::int64_t> ws = cfg.up ? std::vector<std::int64_t>{cfg.c_in, cfg.c_out, cfg.k, cfg.k}
                                               : std::vector<std::int64_t>{cfg.c_out, cfg.c_in, cfg.k, cfg.k};
        weight_ = make_parameter(b, name_ + ".weight", ws, seed, true);
        if (cfg.noise) noise_strength_ = make_parameter(b, name_ + ".noise_strength", {1}, seed, false);
        bias_ = make_parameter(b, name_ + ".bias", {cfg.c_out}, seed, false);
    }

    const std::string& name() const { return name_; }
    const ModConvConfig& config() const { return cfg_; }
    T weight_scale() const { return cfg_.baked ? T(1) : T(1.0 / std::sqrt(double(cfg_.c_in * cfg_.k * cfg_.k))); }
    Dense<B>& affine() { return affine_; }
    Parameter<B>& weight() { return weight_; }
    Parameter<B>& bias() { return bias_; }
    Parameter<B>& noise_strength() { return noise_strength_; }
    const Dense<B>& affine() const { return affine_; }
    const Parameter<B>& weight() const { return weight_; }
    const Parameter<B>& bias() const { return bias_; }
    const Parameter<B>& noise_strength() const { return noise_strength_; }

    void visit(const ParamVisitor<B>& f) {
        if (!cfg_.baked) affine_.visit(f);
        f(weight_);
        if (cfg_.noise) f(noise_strength_);
        f(bias_);
    }

    Shape output_shape(const Shape& x) const {
        return cfg_.up ? Shape{x.n, cfg_.c_out, 2 * x.h, 2 * x.w} : Shape{x.n, cfg_.c_out, x.h, x.w};
    }

    /// x: [N, C_in, H, W]; w: [N, w_dim]; noise_key: where the noise is drawn from (same key, same
    /// noise on every backend); nullopt means no noise (zero).
    Ctx forward(B& b, TensorView<T> x, TensorView<T> w, std::optional<RngKey> noise_key) const {
        const Shape& s = x.shape();
        SGF_CHECK(s.c == cfg_.c_in, ShapeError, "modconv '{}': expected {} input channels, got shape {}", name_, cfg_.c_in,
                  s.str());
        SGF_CHECK(cfg_.baked || (w.shape().n == s.n && w.shape().sample_size() == cfg_.w_dim), ShapeError,
                  "modconv '{}': expected styles of shape [{}, {}], got {}", name_, s.n, cfg_.w_dim, w.shape().str());
        const std::int64_t N = s.n;
        Ctx ctx;
        ctx.x = x;
        if (cfg_.baked) {
            ctx.u = conv(b, x);
        } else {
            ctx.style = affine_.forward(b, w);
            ctx.xs = Tensor<B>(b, s);
            b.scale_channels(s, x.data(), ctx.style.y.data(), ctx.xs.data());
            ctx.u = conv(b, ctx.xs);
        }
        const T* sv = cfg_.baked ? nullptr : ctx.style.y.data();
        const Shape& ys = ctx.u.shape();
        ctx.y = Tensor<B>(b, ys);
        if (cfg_.demodulate && !cfg_.baked) {
            ctx.s2 = Tensor<B>(b, Shape{N, cfg_.c_in});
            b.square(ctx.s2.size(), sv, ctx.s2.data());
            ctx.wsq = Tensor<B>(b, Shape{cfg_.up ? cfg_.c_in : cfg_.c_out, cfg_.up ? cfg_.c_out : cfg_.c_in});
            const T ws = weight_scale();
            b.group_sumsq(cfg_.c_in * cfg_.c_out, cfg_.k * cfg_.k, weight_.value.data(), ws * ws, ctx.wsq.data());
            ctx.d = Tensor<B>(b, Shape{N, cfg_.c_out});
            // q[n,o] = sum_i s2[n,i] wsq[o,i]
            if (cfg_.up)
                b.gemm(false, false, N, cfg_.c_out, cfg_.c_in, T(1), ctx.s2.data(), cfg_.c_in, ctx.wsq.data(), cfg_.c_out,
                       T(0), ctx.d.data(), cfg_.c_out);
            else
                b.gemm(false, true, N, cfg_.c_out, cfg_.c_in, T(1), ctx.s2.data(), cfg_.c_in, ctx.wsq.data(), cfg_.c_in,
                       T(0), ctx.d.data(), cfg_.c_out);
            b.rsqrt_eps(ctx.d.size(), ctx.d.data(), T(kDemodEps), ctx.d.data());
            b.scale_channels(ys, ctx.u.data(), ctx.d.data(), ctx.y.data());
        } else {
            b.copy(ctx.u.data(), ctx.y.data(), ctx.u.size());
        }
        if (cfg_.noise && noise_key) {
            ctx.noise = Tensor<B>(b, Shape{N, 1, ys.h, ys.w});
            b.normal(*noise_key, ctx.noise.size(), ctx.noise.data());
            b.add_noise(ys, ctx.y.data(), ctx.noise.data(), noise_strength_.value.data());
        }
        b.bias_act(ys, ctx.y.data(), bias_.value.data(), T(1), cfg_.act, T(cfg_.gain), ctx.y.data());
        return ctx;
    }

    /// Consumes dy. Returns dx; adds dL/dw into dw (shape [N, w_dim]) as dw = dL/dw + w_beta * dw.
    Tensor<B> backward(B& b, const Ctx& ctx, Tensor<B>&& dy, GradMode mode, Tensor<B>& dw, T w_beta,
                       bool need_dx = true) {
        check_shape(dy.shape(), ctx.y.shape(), "modconv '" + name_ + "' backward dy");
        const Shape& ys = dy.shape();
        const Shape& xs = ctx.x.shape();
        const std::int64_t N = xs.n;
        const T beta = grad_beta<T>(mode);
        const bool params = mode != GradMode::skip;
        b.bias_act_backward(ys, ctx.y.data(), dy.data(), cfg_.act, T(cfg_.gain), dy.data(),
                            params ? bias_.grad.data() : nullptr, T(1), beta);
        if (params && cfg_.noise && !ctx.noise.empty())
            b.noise_backward(ys, dy.data(), ctx.noise.data(), beta, noise_strength_.grad.data());
        // dy is now dL/d(d (.) u).
        if (cfg_.baked) return conv_backward(b, ctx, std::move(dy), mode, need_dx);
        Tensor<B> gd;
        if (cfg_.demodulate) {
            gd = Tensor<B>(b, Shape{N, cfg_.c_out});
            b.channel_dot(ys, dy.data(), ctx.u.data(), T(0), gd.data());
            b.scale_channels(ys, dy.data(), ctx.d.data(), dy.data());  // dy := dL/du
        }
        Tensor<B> gxs = conv_backward(b, ctx, std::move(dy), mode, true);
        // s-gradient from the activation scaling: gs[n,i] = sum_hw gxs * x
        Tensor<B> gs(b, Shape{N, cfg_.c_in});
        b.channel_dot(xs, gxs.data(), ctx.x.data(), T(0), gs.data());
        if (cfg_.demodulate) {
            // d = (q + eps)^-1/2  ->  gq = -1/2 d^3 gd
            Tensor<B> gq(b, gd.shape());
            b.mul(gq.size(), ctx.d.data(), ctx.d.data(), gq.data());
            b.mul(gq.size(), gq.data(), ctx.d.data(), gq.data());
            b.mul(gq.size(), gq.data(), gd.data(), gq.data());
            b.axpby(gq.size(), T(0), gq.data(), T(-0.5), gq.data());
            // gs += 2 s (.) (gq wsq)   with wsq indexed [o,i] (or [i,o] for up layers)
            Tensor<B> t(b, Shape{N, cfg_.c_in});
            if (cfg_.up)
                b.gemm(false, true, N, cfg_.c_in, cfg_.c_out, T(1), gq.data(), cfg_.c_out, ctx.wsq.data(), cfg_.c_out, T(0),
                       t.data(), cfg_.c_in);
            else
                b.gemm(false, false, N, cfg_.c_in, cfg_.c_out, T(1), gq.data(), cfg_.c_out, ctx.wsq.data(), cfg_.c_in, T(0),
                       t.data(), cfg_.c_in);
            b.mul(t.size(), t.data(), ctx.style.y.data(), t.data());
            b.axpby(t.size(), T(2), t.data(), T(1), gs.data());
            if (params) {
                // gwsq = sum_n gq[n,o] s2[n,i];  dV += 2 ws^2 gwsq (.) V
                Tensor<B> gwsq(b, ctx.wsq.shape());
                if (cfg_.up)
                    b.gemm(true, false, cfg_.c_in, cfg_.c_out, N, T(1), ctx.s2.data(), cfg_.c_in, gq.data(), cfg_.c_out,
                           T(0), gwsq.data(), cfg_.c_out);
                else
                    b.gemm(true, false, cfg_.c_out, cfg_.c_in, N, T(1), gq.data(), cfg_.c_out, ctx.s2.data(), cfg_.c_in,
                           T(0), gwsq.data(), cfg_.c_in);
                const T ws = weight_scale();
                b.group_scale_add(cfg_.c_in * cfg_.c_out, cfg_.k * cfg_.k, gwsq.data(), weight_.value.data(), T(2) * ws * ws,
                                  weight_.grad.data());
            }
        }
        // style affine: s = A w + b
        Tensor<B> gw = affine_.backward(b, ctx.style, std::move(gs), mode, true);
        b.axpby(gw.size(), T(1), gw.data(), w_beta, dw.data());
        if (!need_dx) return {};
        b.scale_channels(xs, gxs.data(), ctx.style.y.data(), gxs.data());
        return gxs;
    }

    /// The baked weight W''[o,i,k] = W[o,i,k] s_i d_o for ONE style vector w ([1, w_dim]), in the
    /// same layout as the stored weight (already including the equalised-lr scale), on the host.
    std::vector<T> bake_weight(B& b, TensorView<T> w) const {
        SGF_CHECK(!cfg_.baked, ArgumentError, "modconv '{}': already baked", name_);
        SGF_CHECK(w.shape().n == 1 && w.shape().sample_size() == cfg_.w_dim, ShapeError,
                  "modconv '{}': bake needs one style vector [1, {}], got {}", name_, cfg_.w_dim, w.shape().str());
        auto style = affine_.forward(b, w);
        const auto s = to_host_vector<double>(b, style.y);
        auto v = to_host_vector<T>(b, weight_.value);
        const double ws = double(weight_scale());
        // Memory order is [A][Bm][k*k]: [C_out][C_in] for plain layers, [C_in][C_out] for up layers.
        const std::int64_t K = cfg_.k * cfg_.k, A = cfg_.up ? cfg_.c_in : cfg_.c_out, Bm = cfg_.up ? cfg_.c_out : cfg_.c_in;
        auto out_in = [&](std::int64_t a, std::int64_t m) { return cfg_.up ? std::pair{m, a} : std::pair{a, m}; };
        // d_o = 1 / sqrt(sum_i (ws s_i)^2 sum_k V[o,i,k]^2 + eps), accumulated in double in one pass.
        std::vector<double> d(static_cast<std::size_t>(cfg_.c_out), 1.0);
        if (cfg_.demodulate) {
            std::vector<double> q(static_cast<std::size_t>(cfg_.c_out), 0.0);
            for (std::int64_t a = 0; a < A; ++a)
                for (std::int64_t m = 0; m < Bm; ++m) {
                    const T* p = v.data() + (a * Bm + m) * K;
                    double n2 = 0;
                    for (std::int64_t k = 0; k < K; ++k) n2 += double(p[k]) * double(p[k]);
                    const auto [o, i] = out_in(a, m);
                    const double si = ws * s[static_cast<std::size_t>(i)];
                    q[static_cast<std::size_t>(o)] += si * si * n2;
                }
            for (std::size_t o = 0; o < d.size(); ++o) d[o] = 1.0 / std::sqrt(q[o] + kDemodEps);
        }
        // W''[o,i,k] = V[o,i,k] * (ws s_i d_o), the factor formed in double and applied once.
        for (std::int64_t a = 0; a < A; ++a)
            for (std::int64_t m = 0; m < Bm; ++m) {
                const auto [o, i] = out_in(a, m);
                const T f = T(ws * s[static_cast<std::size_t>(i)] * d[static_cast<std::size_t>(o)]);
                T* p = v.data() + (a * Bm + m) * K;
                for (std::int64_t k = 0; k < K; ++k) p[k] *= f;
            }
        return v;
    }

private:
    ConvDesc up_desc(const Shape& x) const {
        // forward conv from [N, C_out, 2H+1, 2W+1] to [N, C_in, H, W]; its backward-data is our
        // transposed convolution, its weight [C_in, C_out, 3, 3] is ours.
        return ConvDesc{x.n, cfg_.c_out, 2 * x.h + 1, 2 * x.w + 1, cfg_.c_in, 3, 2, 0};
    }
    ConvDesc plain_desc(const Shape& x) const {
        return ConvDesc{x.n, cfg_.c_in, x.h, x.w, cfg_.c_out, cfg_.k, 1, cfg_.k / 2};
    }
    static FirDesc up_fir(const Shape& t) { return FirDesc::blur(t, 1, 1, 4.0); }

    Tensor<B> conv(B& b, TensorView<T> xs) const {
        const Shape& s = xs.shape();
        if (!cfg_.up) {
            const ConvDesc d = plain_desc(s);
            Tensor<B> u(b, d.y_shape());
            b.conv2d_forward(d, weight_scale(), xs.data(), weight_.value.data(), T(0), u.data());
            return u;
        }
        const ConvDesc d = up_desc(s);
        Tensor<B> t(b, d.x_shape());
        b.conv2d_backward_data(d, weight_scale(), xs.data(), weight_.value.data(), T(0), t.data());
        const FirDesc f = up_fir(t.shape());
        Tensor<B> u(b, f.y_shape());
        b.fir(f, t.data(), u.data());
        return u;
    }

    /// dL/du -> dL/d(conv input), and the weight gradient from the convolution itself.
    Tensor<B> conv_backward(B& b, const Ctx& ctx, Tensor<B>&& gu, GradMode mode, bool need_dx) {
        const Shape& s = ctx.x.shape();
        const T beta = grad_beta<T>(mode);
        const T* in = cfg_.baked ? ctx.x.data() : ctx.xs.data();
        if (!cfg_.up) {
            const ConvDesc d = plain_desc(s);
            if (mode != GradMode::skip)
                b.conv2d_backward_filter(d, weight_scale(), in, gu.data(), beta, weight_.grad.data());
            if (!need_dx) return {};
            Tensor<B> gxs(b, s);
            b.conv2d_backward_data(d, weight_scale(), gu.data(), weight_.value.data(), T(0), gxs.data());
            return gxs;
        }
        const ConvDesc d = up_desc(s);
        Tensor<B> gt(b, d.x_shape());
        b.fir_backward(up_fir(gt.shape()), gu.data(), gt.data());
        if (mode != GradMode::skip) b.conv2d_backward_filter(d, weight_scale(), gt.data(), in, beta, weight_.grad.data());
        if (!need_dx) return {};
        Tensor<B> gxs(b, s);
        b.conv2d_forward(d, weight_scale(), gt.data(), weight_.value.data(), T(0), gxs.data());
        return gxs;
    }

    std::string name_;
    ModConvConfig cfg_;
    Dense<B> affine_;
    Parameter<B> weight_, noise_strength_, bias_;
};

}  // namespace sgf
