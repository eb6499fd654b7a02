// Losses as means over all elements, with their gradient scaled by a weight:
//   softplus_mean(x, sign): weight * mean softplus(sign * x)      (logistic GAN losses)
//   bce_logits_mean(l, t):  weight * mean BCEWithLogits(l, t)     (fingerprint bits)
//   mse_mean(a, b):         weight * mean (a - b)^2               (consistency, latent)
// grad is d(value)/d(first argument).
#pragma once

#include <sgf/layers/parameter.hpp>

namespace sgf {

template <Backend B>
struct LossResult {
    double value = 0;
    Tensor<B> grad;
};

template <Backend B>
LossResult<B> softplus_mean(B& b, const Tensor<B>& x, double sign, double weight = 1.0, bool want_grad = true) {
    using T = typename B::Scalar;
    const double n = double(x.size());
    LossResult<B> r;
    if (want_grad) r.grad = Tensor<B>(b, x.shape());
    r.value = weight / n * b.softplus_loss(x.size(), x.data(), T(sign), T(weight / n), want_grad ? r.grad.data() : nullptr);
    return r;
}

template <Backend B>
LossResult<B> bce_logits_mean(B& b, const Tensor<B>& logits, const Tensor<B>& targets, double weight = 1.0,
                              bool want_grad = true) {
    using T = typename B::Scalar;
    check_shape(targets.shape(), logits.shape(), "bce_logits_mean targets");
    const double n = double(logits.size());
    LossResult<B> r;
    if (want_grad) r.grad = Tensor<B>(b, logits.shape());
    r.value = weight / n *
              b.bce_logits_loss(logits.size(), logits.data(), targets.data(), T(weight / n), want_grad ? r.grad.data() : nullptr);
    return r;
}

template <Backend B>
LossResult<B> mse_mean(B& b, const Tensor<B>& a, const Tensor<B>& target, double weight = 1.0, bool want_grad = true) {
    using T = typename B::Scalar;
    check_shape(target.shape(), a.shape(), "mse_mean target");
    const double n = double(a.size());
    LossResult<B> r;
    if (want_grad) r.grad = Tensor<B>(b, a.shape());
    r.value = weight / n * b.mse_loss(a.size(), a.data(), target.data(), T(weight / n), want_grad ? r.grad.data() : nullptr);
    return r;
}

}  // namespace sgf
