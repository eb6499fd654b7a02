// The training objective of algorithm.md 4, as functions that compute losses AND write parameter
// gradients with hand-written backward passes:
//   generator_step_grads: G and F minimise  w_adv L_adv + w_const L_const + w_z L_z + w_c L_c
//                         (D's gradients are not touched: D runs backward in GradMode::skip)
//   discriminator_grads:  D minimises softplus(D(G(z,c))) + softplus(-D(x_real))
//   r1_grads:             D's lazy R1 penalty (gamma/2) ||grad_x sum D(x_real)||^2 (mean over the
//                         batch), whose parameter gradient is a Hessian-vector product computed by a
//                         central difference of first-order gradients (algorithm.md 4):
//                           grad_theta P = gamma/N * [grad_theta S(x + e g) - grad_theta S(x - e g)] / (2e)
//                         with S = sum_n D(x_n) and g = grad_x S(x).
//   R1InFloat64:          the same on a float64 copy of D, for float32 backends that have a
//                         float64 twin (the trainer uses it: float32 differences are not accurate).
#pragma once

#include <sgf/nets.hpp>
#include <sgf/train/augment.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <vector>

namespace sgf {

struct LossWeights {
    double adversarial = 1.0;
    double consistency = 2.0;
    double latent = 1.0;
    double fingerprint = 2.0;
};

/// The random inputs of one G+F evaluation: same z, two fingerprints, independent noise.
template <Backend B>
struct GeneratorBatch {
    Tensor<B> z, c1, c2;
    std::uint64_t noise1 = 0, noise2 = 0;
};

/// Draws a GeneratorBatch from the counter-based RNG: everything depends only on (seed, stream).
template <Backend B>
GeneratorBatch<B> draw_generator_batch(B& b, const ModelConfig& cfg, std::int64_t n, std::uint64_t seed,
                                       std::uint64_t stream) {
    GeneratorBatch<B> gb{Tensor<B>(b, Shape{n, cfg.z_dim}), Tensor<B>(b, Shape{n, cfg.fingerprint_bits}),
                         Tensor<B>(b, Shape{n, cfg.fingerprint_bits}), 0, 0};
    b.normal(RngKey{seed, stream, 0}, gb.z.size(), gb.z.data());
    b.bits(RngKey{seed, stream, 1ull << 40}, gb.c1.size(), gb.c1.data());
    b.bits(RngKey{seed, stream, 2ull << 40}, gb.c2.size(), gb.c2.data());
    const philox::U32x4 r = philox::draw(RngKey{seed, stream, 3ull << 40}, 0);
    gb.noise1 = (std::uint64_t(r.v[1]) << 32) | r.v[0];
    gb.noise2 = (std::uint64_t(r.v[3]) << 32) | r.v[2];
    return gb;
}

struct GeneratorLosses {
    double adversarial = 0, consistency = 0, latent = 0, fingerprint = 0, total = 0;
    double bit_accuracy = 0;  ///< fraction of fingerprint bits F decodes correctly from img1
};

/// Fraction of matching bits between logits (> 0 -> 1) and 0/1 targets.
template <Backend B>
double bit_accuracy(B& b, const Tensor<B>& logits_and_z, std::int64_t z_dim, const Tensor<B>& bits) {
    const auto out = to_host_vector<double>(b, logits_and_z);
    const auto c = to_host_vector<double>(b, bits);
    const std::int64_t N = bits.shape().n, n = bits.shape().sample_size(), stride = logits_and_z.shape().sample_size();
    std::int64_t ok = 0;
    for (std::int64_t i = 0; i < N; ++i)
        for (std::int64_t k = 0; k < n; ++k) ok += ((out[i * stride + z_dim + k] > 0) == (c[i * n + k] > 0.5));
    return double(ok) / double(N * n);
}

/// F's part of the objective on images `img` made from gb.z and gb.c1: z_hat = out[:, :z_dim] against
/// z (latent MSE), logits = out[:, z_dim:] against c1 (BCE). Writes the gradients of
/// w_latent L_z + w_fp L_c into F's parameter gradients per `mode` and, when `dimg` is given, the
/// gradient with respect to `img` into *dimg. Fills latent, fingerprint, bit_accuracy and total.
template <Backend B>
GeneratorLosses decoder_grads(B& b, ResidualCritic<B>& F, const Tensor<B>& img, const GeneratorBatch<B>& gb,
                              const LossWeights& w, GradMode mode, Tensor<B>* dimg = nullptr) {
    const ModelConfig& cfg = F.config();
    const std::int64_t N = gb.z.shape().n;
    auto fctx = F.forward(b, img);
    const Tensor<B>& out = fctx.output();
    const std::int64_t stride = out.shape().sample_size();
    Tensor<B> zhat(b, gb.z.shape()), logits(b, gb.c1.shape());
    b.copy2d(N, cfg.z_dim, out.data(), stride, zhat.data(), cfg.z_dim);
    b.copy2d(N, cfg.fingerprint_bits, out.data() + cfg.z_dim, stride, logits.data(), cfg.fingerprint_bits);
    auto lz = mse_mean(b, zhat, gb.z, w.latent, true);
    auto lc = bce_logits_mean(b, logits, gb.c1, w.fingerprint, true);
    GeneratorLosses L;
    L.latent = lz.value;
    L.fingerprint = lc.value;
    L.total = L.latent + L.fingerprint;
    L.bit_accuracy = bit_accuracy(b, out, cfg.z_dim, gb.c1);
    Tensor<B> dout(b, out.shape());
    b.copy2d(N, cfg.z_dim, lz.grad.data(), cfg.z_dim, dout.data(), stride);
    b.copy2d(N, cfg.fingerprint_bits, lc.grad.data(), cfg.fingerprint_bits, dout.data() + cfg.z_dim, stride);
    Tensor<B> d = F.backward(b, fctx, std::move(dout), mode, dimg != nullptr);
    if (dimg) *dimg = std::move(d);
    return L;
}

/// F's view of what an image file can hold: y = clamp(x, -1, 1) ([-1, 1] is the range that 0..255
/// maps to; the 8-bit rounding itself costs the default model 0.002 of its bit accuracy, the clamp
/// 0.035, docs/training-log.md, session 20). The backward pass multiplies dL/dy by the clamp's derivative,
/// the mask 1{-1 <= x <= 1}, so G gets no gradient from a pixel that saturates: whatever G writes
/// below -1 is stored as -1 and is lost to the decoder. One backend op (B::clamp), on the device.
template <Backend B>
struct ClampCtx {
    Tensor<B> y, mask;
    const Tensor<B>& output() const { return y; }
};

template <Backend B>
ClampCtx<B> clamp_unit_forward(B& b, const Tensor<B>& x) {
    using T = typename B::Scalar;
    ClampCtx<B> c{Tensor<B>(b, x.shape()), Tensor<B>(b, x.shape())};
    b.clamp(x.size(), x.data(), T(-1), T(1), c.y.data(), c.mask.data());
    return c;
}

/// dL/dx = dL/dy * mask (in place on dy).
template <Backend B>
Tensor<B> clamp_unit_backward(B& b, const ClampCtx<B>& ctx, Tensor<B>&& dy) {
    check_shape(dy.shape(), ctx.mask.shape(), "clamp backward dy");
    b.mul(dy.size(), dy.data(), ctx.mask.data(), dy.data());
    return std::move(dy);
}

/// Computes the G+F losses on one GeneratorBatch and writes the gradients of the weighted total into
/// G's and F's parameter gradients (`mode`: overwrite or accumulate). D's gradients are untouched.
/// `immunise` (optional, train/augment.hpp): F reads img1 perturbed by this plan and its gradient
/// flows back through the perturbations' adjoints; D and the consistency loss still see the clean
/// images. L.latent, L.fingerprint and L.bit_accuracy are then measured on the images F reads
/// (perturbed and/or clamped).
/// `clamp_decoder_input`: F reads clamp(img1, -1, 1) (clamp_unit_forward; before any perturbation,
/// as an image is first saved and then attacked); D and the consistency loss still see img1.
template <Backend B>
GeneratorLosses generator_step_grads(B& b, MetaGenerator<B>& G, ResidualCritic<B>& F, ResidualCritic<B>& D,
                                     const GeneratorBatch<B>& gb, const LossWeights& w, GradMode mode,
                                     const ImmunisePlan* immunise = nullptr, bool clamp_decoder_input = false) {
    using T = typename B::Scalar;
    SGF_CHECK(mode != GradMode::skip, ArgumentError, "generator_step_grads: mode must be overwrite or accumulate");
    auto g1 = G.forward(b, gb.z, gb.c1, gb.noise1);
    auto g2 = G.forward(b, gb.z, gb.c2, gb.noise2);
    const Tensor<B>& img1 = g1.image();
    const Tensor<B>& img2 = g2.image();

    GeneratorLosses L;
    // adversarial: softplus(-D(img1)); D's parameters are frozen (skip), only dL/dimg1 flows.
    Tensor<B> dimg1;
    {
        auto dctx = D.forward(b, img1);
        auto adv = softplus_mean(b, dctx.output(), -1.0, w.adversarial, true);
        L.adversarial = adv.value;
        dimg1 = D.backward(b, dctx, std::move(adv.grad), GradMode::skip, true);
    }
    // consistency: mean (img1 - img2)^2; gradient +g on img1, -g on img2
    auto cons = mse_mean(b, img1, img2, w.consistency, true);
    L.consistency = cons.value;
    b.axpby(dimg1.size(), T(1), cons.grad.data(), T(1), dimg1.data());
    // decoder: reads img1 (clamped to [-1, 1], then perturbed, when asked)
    {
        std::optional<ClampCtx<B>> clamped;
        if (clamp_decoder_input) clamped.emplace(clamp_unit_forward(b, img1));
        const Tensor<B>& fin = clamped ? clamped->output() : img1;
        std::optional<ImmuniseCtx<B>> pert;
        if (immunise) pert.emplace(immunise_forward(b, fin, *immunise));
        Tensor<B> dimg_f;
        const GeneratorLosses lf = decoder_grads(b, F, pert ? pert->output() : fin, gb, w, mode, &dimg_f);
        L.latent = lf.latent;
        L.fingerprint = lf.fingerprint;
        L.bit_accuracy = lf.bit_accuracy;
        if (pert) dimg_f = immunise_backward(b, *pert, std::move(dimg_f));
        if (clamped) dimg_f = clamp_unit_backward(b, *clamped, std::move(dimg_f));
        b.axpby(dimg1.size(), T(1), dimg_f.data(), T(1), dimg1.data());
    }
    G.backward(b, g1, std::move(dimg1), mode);
    b.axpby(cons.grad.size(), T(0), cons.grad.data(), T(-1), cons.grad.data());
    G.backward(b, g2, std::move(cons.grad), GradMode::accumulate);  // img2's path adds to img1's
    L.total = L.adversarial + L.consistency + L.latent + L.fingerprint;
    return L;
}

struct DiscriminatorLosses {
    double fake = 0, real = 0, total = 0;
    double r1 = 0;  ///< the penalty value (gamma/2) mean_n ||grad||^2, when computed
};

/// D's logistic loss on fakes (already generated images) and reals; writes D's gradients.
template <Backend B>
DiscriminatorLosses discriminator_grads(B& b, ResidualCritic<B>& D, const Tensor<B>& fake, const Tensor<B>& real,
                                        GradMode mode) {
    DiscriminatorLosses L;
    {
        auto ctx = D.forward(b, fake);
        auto l = softplus_mean(b, ctx.output(), +1.0, 1.0, true);
        L.fake = l.value;
        D.backward(b, ctx, std::move(l.grad), mode, false);
    }
    {
        auto ctx = D.forward(b, real);
        auto l = softplus_mean(b, ctx.output(), -1.0, 1.0, true);
        L.real = l.value;
        D.backward(b, ctx, std::move(l.grad), GradMode::accumulate, false);
    }
    L.total = L.fake + L.real;
    return L;
}

/// g = grad_x sum_n D(x_n), without touching D's parameter gradients.
template <Backend B>
Tensor<B> input_gradient(B& b, ResidualCritic<B>& D, const Tensor<B>& x) {
    auto ctx = D.forward(b, x);
    Tensor<B> ones(b, ctx.output().shape(), typename B::Scalar(1));
    return D.backward(b, ctx, std::move(ones), GradMode::skip, true);
}

/// R1 penalty value P = (gamma/2) * mean_n sum_pixels g^2 and the gradient scale * dP/dtheta written
/// into D's parameter gradients per `mode` (scale = the lazy interval, e.g. 16).
template <Backend B>
double r1_grads(B& b, ResidualCritic<B>& D, const Tensor<B>& real, double gamma, double scale, GradMode mode) {
    using T = typename B::Scalar;
    const std::int64_t N = real.shape().n;
    Tensor<B> g = input_gradient(b, D, real);
    const double sq = b.dot(g.size(), g.data(), g.data());
    const double penalty = 0.5 * gamma * sq / double(N);
    if (mode == GradMode::skip) return penalty;
    // Step: every pixel moves by about `step` (eps * rms(g)). D is piecewise linear (lrelu), so its
    // input gradient is piecewise constant; the difference quotient is exact inside one linear
    // region and picks up the kinks it crosses, whose number grows with the step. float64 uses a
    // step small enough to cross none; float32 needs a larger one to stay above rounding noise,
    // which makes its R1 gradient the gradient of a slightly smoothed penalty (docs/architecture.md).
    const double gnorm = std::sqrt(sq / double(g.size()));
    const double step = std::is_same_v<T, float> ? 1e-2 : 1e-7;
    const double eps = step / std::max(gnorm, 1e-30);
    const double coef = scale * gamma / double(N) / (2.0 * eps);
    for (int side = 0; side < 2; ++side) {
        const double sign = side == 0 ? 1.0 : -1.0;
        Tensor<B> xe = real.clone(b);
        b.axpby(xe.size(), T(sign * eps), g.data(), T(1), xe.data());
        auto ctx = D.forward(b, xe);
        Tensor<B> dout(b, ctx.output().shape(), T(sign * coef));
        D.backward(b, ctx, std::move(dout), side == 0 ? mode : GradMode::accumulate, false);
    }
    return penalty;
}

/// R1 for a float32 backend computed on a float64 copy of D (Float64Twin), written back as D's
/// float32 gradients (overwrite). In float32 no step of r1_grads' central difference is accurate for
/// a piecewise-linear D: steps large enough to stay above rounding cross lrelu kinks, and each
/// crossing adds a jump divided by the step. Measured on the `small` preset against autograd's double
/// backward in float64 (benchmarks/training/check_equivalence.py): float32 at step 1e-2 has cosine
/// 0.03-0.56 with the exact gradient per tensor and biases 100x too large, while float64 at step
/// 1e-7 agrees to 6e-8. The copy costs a D-sized upload per R1 step (every 16 steps).
template <Backend B>
class R1InFloat64 {
public:
    using Twin = typename Float64Twin<B>::type;
    R1InFloat64(B& b, const ModelConfig& cfg) : b64_(Float64Twin<B>::make(b)), D64_(make_discriminator(b64_, cfg, kNoInit)) {}

    /// Same contract as r1_grads(b, D, real, gamma, scale, GradMode::overwrite).
    double operator()(B& b, ResidualCritic<B>& D, const Tensor<B>& real, double gamma, double scale) {
        const auto ps = D.parameters();
        const auto qs = D64_.parameters();
        SGF_CHECK(ps.size() == qs.size(), ArgumentError, "R1InFloat64: D has {} parameter tensors, its copy {}",
                  ps.size(), qs.size());
        for (std::size_t i = 0; i < ps.size(); ++i) copy_across(b, ps[i]->value, b64_, qs[i]->value);
        Tensor<Twin> real64(b64_, real.shape());
        copy_across(b, real, b64_, real64);
        const double penalty = r1_grads(b64_, D64_, real64, gamma, scale, GradMode::overwrite);
        for (std::size_t i = 0; i < ps.size(); ++i) copy_across(b64_, qs[i]->grad, b, ps[i]->grad);
        return penalty;
    }

private:
    Twin b64_;
    ResidualCritic<Twin> D64_;
};

}  // namespace sgf
