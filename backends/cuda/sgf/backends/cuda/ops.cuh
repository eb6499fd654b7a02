// The ops of the backend contract that sgf implements with its own kernels (everything except
// storage, GEMM and the cuDNN convolutions), written once against four launch primitives that the
// derived class provides (CRTP):
//
//   activate()                                  make the backend's device current
//   each(n, f, what)                            f(i) for i < n
//   segments(count, len, f, fin, what)          fin(s, sum_{j<len} f(s, j)) for s < count
//   reduce(n, f, fin, what)                     fin(sum_{i<n} f(i))          (on the device)
//   reduce_to_host(n, f, what) -> double        the same sum, returned (synchronises)
//   scratch<U>(n)                               a temporary device buffer of n U's (data())
//
// sgf::cuda::Backend launches them as CUDA kernels; tests/cuda/emulated_backend.hpp runs them as
// plain loops on the CPU, so the conformance suite checks every functor's index arithmetic and the
// composition below on machines without a GPU. Argument checks come first and throw the same
// exceptions as the CPU backends, before anything is launched.
#pragma once

#include <sgf/backends/cuda/kernels.cuh>
#include <sgf/core/concepts.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace sgf::cuda::detail {

template <class Derived, class T>
class DeviceOps {
public:
    // -------------------------------------------------------------------------------- elementwise
    void bias_act(const Shape& s, const T* x, const T* bias, T bias_scale, Act act, T gain, T* y) {
        if (s.size() <= 0) return;
        self().activate();
        self().each(s.size(), kernels::BiasAct<T>{x, bias, y, bias_scale, gain, s.c, s.plane(), act == Act::lrelu},
                    "bias_act");
    }
    void bias_act_backward(const Shape& s, const T* y, const T* dy, Act act, T gain, T* dx, T* dbias, T bias_scale,
                           T beta) {
        if (s.size() <= 0) return;
        self().activate();
        self().each(s.size(), kernels::BiasActGrad<T>{y, dy, dx, gain, act == Act::lrelu}, "bias_act_backward");
        if (dbias)
            self().segments(s.c, s.n * s.plane(), kernels::ChannelValue<T>{dx, s.c, s.plane()},
                            kernels::StoreCombine<T>{dbias, double(bias_scale), beta}, "bias_act_backward (dbias)");
    }
    void scale_channels(const Shape& s, const T* x, const T* sc, T* y) {
        if (s.size() <= 0) return;
        self().activate();
        self().each(s.size(), kernels::ScaleChannels<T>{x, sc, y, s.plane()}, "scale_channels");
    }
    void channel_dot(const Shape& s, const T* a, const T* b, T beta, T* out) {
        if (s.n * s.c <= 0) return;
        self().activate();
        self().segments(s.n * s.c, std::max<std::int64_t>(s.plane(), 0), kernels::SegmentProduct<T>{a, b, s.plane()},
                        kernels::StoreCombine<T>{out, 1.0, beta}, "channel_dot");
    }
    void add_noise(const Shape& s, T* y, const T* noise, const T* strength) {
        if (s.size() <= 0) return;
        self().activate();
        self().each(s.size(), kernels::AddNoise<T>{y, noise, strength, s.c, s.plane()}, "add_noise");
    }
    void noise_backward(const Shape& s, const T* dy, const T* noise, T beta, T* ds) {
        self().activate();
        self().reduce(std::max<std::int64_t>(s.size(), 0), kernels::NoiseProduct<T>{dy, noise, s.c, s.plane()},
                      kernels::StoreCombine1<T>{ds, beta}, "noise_backward");
    }
    void axpby(std::int64_t n, T alpha, const T* x, T beta, T* y) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Axpby<T>{x, y, alpha, beta}, "axpby");
    }
    void mul(std::int64_t n, const T* a, const T* b, T* y) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Mul<T>{a, b, y}, "mul");
    }
    void rsqrt_eps(std::int64_t n, const T* x, T eps, T* y) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::RsqrtEps<T>{x, y, eps}, "rsqrt_eps");
    }
    void square(std::int64_t n, const T* x, T* y) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Square<T>{x, y}, "square");
    }
    void clamp(std::int64_t n, const T* x, T lo, T hi, T* y, T* mask) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Clamp<T>{x, y, mask, lo, hi}, "clamp");
    }
    void quantize_u8(std::int64_t n, const T* x, T* y) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::QuantizeU8<T>{x, y}, "quantize_u8");
    }
    void group_sumsq(std::int64_t groups, std::int64_t size, const T* x, T alpha, T* out) {
        if (groups <= 0) return;
        self().activate();
        self().segments(groups, std::max<std::int64_t>(size, 0), kernels::SegmentSquare<T>{x, size},
                        kernels::StoreCombine<T>{out, double(alpha), T(0)}, "group_sumsq");
    }
    void group_scale_add(std::int64_t groups, std::int64_t size, const T* coef, const T* x, T alpha, T* y) {
        if (groups <= 0 || size <= 0) return;
        self().activate();
        self().each(groups * size, kernels::GroupScaleAdd<T>{coef, x, y, alpha, size}, "group_scale_add");
    }

    // --------------------------------------------------------------------------------- reductions
    double sum(std::int64_t n, const T* x) {
        if (n <= 0) return 0.0;
        self().activate();
        return self().reduce_to_host(n, kernels::Load<T>{x}, "sum");
    }
    double dot(std::int64_t n, const T* a, const T* b) {
        if (n <= 0) return 0.0;
        self().activate();
        return self().reduce_to_host(n, kernels::Product<T>{a, b}, "dot");
    }
    void sum_rows(std::int64_t rows, std::int64_t cols, const T* x, T beta, T* out) {
        if (cols <= 0) return;
        self().activate();
        self().segments(cols, std::max<std::int64_t>(rows, 0), kernels::ColumnValue<T>{x, cols},
                        kernels::StoreCombine<T>{out, 1.0, beta}, "sum_rows");
    }
    bool all_finite(std::int64_t n, const T* x) {
        if (n <= 0) return true;
        self().activate();
        return self().reduce_to_host(n, kernels::NonFinite<T>{x}, "all_finite") == 0.0;
    }

    // --------------------------------------------------------------------------------- resampling
    void fir(const FirDesc& f, const T* x, T* y) {
        f.validate("fir");
        self().activate();
        self().each(f.y_shape().size(), kernels::Fir<T>{x, y, fir_geom(f)}, "fir");
    }
    void fir_backward(const FirDesc& f, const T* dy, T* dx) {
        f.validate("fir_backward");
        self().activate();
        self().each(f.x_shape().size(), kernels::FirBackward<T>{dy, dx, fir_geom(f)}, "fir_backward");
    }
    void mbstd(const Shape& s, int group, const T* x, T* y) {
        const auto [G, M] = mbstd_groups(s, group, "mbstd");
        self().activate();
        const std::int64_t F = s.sample_size(), HW = s.plane();
        auto sd = self().template scratch<double>(std::size_t(M * F));
        auto feature = self().template scratch<double>(std::size_t(M));
        self().each(M * F, kernels::MbstdStd<T>{x, sd.data(), G, M, F}, "mbstd (stddev)");
        self().segments(M, F, kernels::SegmentLoadDouble{sd.data(), F},
                        kernels::StoreScaledDouble{feature.data(), 1.0 / double(F)}, "mbstd (feature)");
        self().each(s.n * (s.c + 1) * HW, kernels::MbstdOut<T>{x, feature.data(), y, s.c, HW, M}, "mbstd (output)");
    }
    void mbstd_backward(const Shape& s, int group, const T* x, const T* dy, T* dx) {
        const auto [G, M] = mbstd_groups(s, group, "mbstd_backward");
        self().activate();
        const std::int64_t F = s.sample_size(), HW = s.plane();
        auto gstd = self().template scratch<double>(std::size_t(M));
        self().segments(M, G * HW, kernels::MbstdFeatureGrad<T>{dy, M, s.c, HW},
                        kernels::StoreScaledDouble{gstd.data(), 1.0 / double(F)}, "mbstd_backward (feature gradient)");
        self().each(M * F, kernels::MbstdBackward<T>{x, dy, gstd.data(), dx, G, M, F, HW}, "mbstd_backward");
    }

    // ----------------------------------------------------------------------------- random numbers
    void normal(const RngKey& k, std::int64_t n, T* out) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Normal<T>{k, out}, "normal");
    }
    void uniform(const RngKey& k, std::int64_t n, T* out) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Uniform<T>{k, out}, "uniform");
    }
    void bits(const RngKey& k, std::int64_t n, T* out) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Bits<T>{k, out}, "bits");
    }

    // ------------------------------------------------------------------------------------- losses
    double softplus_loss(std::int64_t n, const T* x, T sign, T grad_scale, T* grad) {
        if (n <= 0) return 0.0;
        self().activate();
        return self().reduce_to_host(n, kernels::SoftplusLoss<T>{x, grad, double(sign), double(grad_scale)},
                                     "softplus_loss");
    }
    double bce_logits_loss(std::int64_t n, const T* logits, const T* targets, T grad_scale, T* grad) {
        if (n <= 0) return 0.0;
        self().activate();
        return self().reduce_to_host(n, kernels::BceLogitsLoss<T>{logits, targets, grad, double(grad_scale)},
                                     "bce_logits_loss");
    }
    double mse_loss(std::int64_t n, const T* a, const T* b, T grad_scale, T* grad) {
        if (n <= 0) return 0.0;
        self().activate();
        return self().reduce_to_host(n, kernels::MseLoss<T>{a, b, grad, double(grad_scale)}, "mse_loss");
    }

    // ---------------------------------------------------------------------------------- optimiser
    void adam_step(std::int64_t n, T* p, const T* g, T* m, T* v, const AdamParams& h, std::int64_t t) {
        SGF_CHECK(t >= 1, ArgumentError, "adam_step: step {} must be >= 1", t);
        if (n <= 0) return;
        self().activate();
        const double c1 = 1.0 - std::pow(h.beta1, double(t)), c2 = 1.0 - std::pow(h.beta2, double(t));
        self().each(
            n, kernels::AdamStep<T>{p, g, m, v, T(h.beta1), T(h.beta2), T(h.lr / c1), T(1.0 / std::sqrt(c2)), T(h.eps)},
            "adam_step");
    }
    void ema(std::int64_t n, T* e, const T* src, T beta) {
        if (n <= 0) return;
        self().activate();
        self().each(n, kernels::Ema<T>{e, src, beta}, "ema");
    }

protected:
    // ------------------------------------------------- direct convolutions (ConvEngine::direct)
    void direct_conv_forward(const ConvDesc& d, T alpha, const T* x, const T* w, T beta, T* y) {
        self().each(d.y_shape().size(), kernels::ConvForwardDirect<T>{x, w, y, alpha, beta, geom(d)},
                    "conv2d_forward (direct)");
    }
    void direct_conv_backward_data(const ConvDesc& d, T alpha, const T* dy, const T* w, T beta, T* dx) {
        self().each(d.x_shape().size(), kernels::ConvBackwardDataDirect<T>{dy, w, dx, alpha, beta, geom(d)},
                    "conv2d_backward_data (direct)");
    }
    void direct_conv_backward_filter(const ConvDesc& d, T alpha, const T* x, const T* dy, T beta, T* dw) {
        self().each(d.w_shape().size(), kernels::ConvBackwardFilterDirect<T>{x, dy, dw, alpha, beta, geom(d)},
                    "conv2d_backward_filter (direct)");
    }

    /// (G, M) of the minibatch-stddev grouping, checked like the reference backend.
    static std::pair<std::int64_t, std::int64_t> mbstd_groups(const Shape& s, int group, const char* who) {
        SGF_CHECK(group >= 1, ArgumentError, "{}: group size {} must be >= 1", who, group);
        SGF_CHECK(s.n >= 1 && s.c >= 1 && s.h >= 1 && s.w >= 1, ShapeError, "{}: invalid input shape {}", who, s.str());
        const std::int64_t G = std::min<std::int64_t>(group, s.n);
        SGF_CHECK(s.n % G == 0, ShapeError, "minibatch stddev: batch {} is not divisible by group size {}", s.n, G);
        return {G, s.n / G};
    }

private:
    Derived& self() { return static_cast<Derived&>(*this); }

    static kernels::ConvGeom geom(const ConvDesc& d) {
        return {d.n, d.c_in, d.h, d.w, d.c_out, d.k, d.stride, d.pad, d.out_h(), d.out_w()};
    }
    static kernels::FirGeom<T> fir_geom(const FirDesc& f) {
        kernels::FirGeom<T> g{};
        g.h = f.h;
        g.w = f.w;
        g.oh = f.out_h();
        g.ow = f.out_w();
        g.up = f.up;
        g.down = f.down;
        g.pad0 = f.pad0;
        for (int i = 0; i < 4; ++i) g.taps[i] = T(f.taps[static_cast<std::size_t>(i)]);
        g.gain = T(f.gain);
        return g;
    }
};

}  // namespace sgf::cuda::detail
