// Adam with StyleGAN2's lazy-regularisation correction, and the parameter EMA.
#pragma once

#include <sgf/layers/parameter.hpp>

#include <cmath>

namespace sgf {

/// Lazy regularisation (StyleGAN2): when a regulariser runs every k steps, the optimiser's
/// hyper-parameters are rescaled by c = k / (k + 1): lr * c, beta1^c, beta2^c.
inline AdamParams lazy_regularised(AdamParams p, int interval) {
    if (interval <= 0) return p;
    const double c = double(interval) / double(interval + 1);
    p.lr *= c;
    p.beta1 = std::pow(p.beta1, c);
    p.beta2 = std::pow(p.beta2, c);
    return p;
}

/// EMA decay per step for a half-life given in images: beta = 0.5^(batch / half_life_images).
inline double ema_beta(double batch, double half_life_images) {
    return half_life_images > 0 ? std::pow(0.5, batch / half_life_images) : 0.0;
}

template <Backend B>
class Adam {
public:
    using T = typename B::Scalar;
    Adam() = default;
    Adam(B& b, std::vector<Parameter<B>*> params, AdamParams hp) : params_(std::move(params)), hp_(hp) {
        for (auto* p : params_) {
            m_.emplace_back(b, p->value.shape(), T(0));
            v_.emplace_back(b, p->value.shape(), T(0));
        }
    }
    const AdamParams& hyper() const { return hp_; }
    void set_hyper(const AdamParams& hp) { hp_ = hp; }
    std::int64_t steps() const { return t_; }
    void set_steps(std::int64_t t) { t_ = t; }
    std::vector<Tensor<B>>& first_moments() { return m_; }
    std::vector<Tensor<B>>& second_moments() { return v_; }
    const std::vector<Parameter<B>*>& parameters() const { return params_; }

    /// One step on every parameter's accumulated gradient.
    void step(B& b) {
        ++t_;
        for (std::size_t i = 0; i < params_.size(); ++i) {
            auto* p = params_[i];
            b.adam_step(p->value.size(), p->value.data(), p->grad.data(), m_[i].data(), v_[i].data(), hp_, t_);
        }
    }

private:
    std::vector<Parameter<B>*> params_;
    AdamParams hp_;
    std::vector<Tensor<B>> m_, v_;
    std::int64_t t_ = 0;
};

/// ema <- beta * ema + (1 - beta) * live, parameter by parameter (same order and shapes).
template <Backend B>
void ema_update(B& b, const std::vector<Parameter<B>*>& ema, const std::vector<Parameter<B>*>& live, double beta) {
    SGF_CHECK(ema.size() == live.size(), ArgumentError, "ema_update: {} EMA parameters vs {} live ones", ema.size(),
              live.size());
    for (std::size_t i = 0; i < ema.size(); ++i) {
        check_shape(ema[i]->value.shape(), live[i]->value.shape(), "ema_update '" + live[i]->name + "'");
        b.ema(ema[i]->value.size(), ema[i]->value.data(), live[i]->value.data(), typename B::Scalar(beta));
    }
}

}  // namespace sgf
