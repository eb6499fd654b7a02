// The fine-tuning model attack (algorithm.md 7, "short fine-tuning"): someone holding a user's baked
// generator and real images trains the copy further with the adversarial loss alone, hoping that the
// fingerprint, which nothing in that loss keeps, washes out while the images stay good.
//
// The attack copies the model owner's discriminator D as its starting critic (a stronger start than
// a thief would have: D is never released) and alternates, for every step t = 0, 1, ...:
//   D step: real batch x (drawn without replacement per epoch, io::Sampler(seed)), fakes G(z_d);
//           D minimises softplus(D(G(z_d))) + softplus(-D(x))   (no R1: the run is short);
//   G step: G minimises softplus(-D(G(z_g)))                    (non-saturating, D frozen);
// both with Adam (betas 0 / 0.99) on every parameter of the baked copy (its modulated-and-
// demodulated conv weights, input layer, biases, noise strengths) and of the critic. The critic's lr
// is 2e-4, a tenth of training's; the copy's is 1e-5, because its conv weights hold their real values
// (training steps the equalised-lr weights, which the run-time scale 1/sqrt(fan in), about 0.02-0.04
// here, shrinks; the input layer alone keeps its stored units). At 1e-5 the images of the default
// model stay as good as the copy's own over the eval sweep's 200 steps; at 2e-4 they fell apart
// within 25 (measured in session 33 while choosing the rate). z_d and z_g are N(0, I) from Philox RngKey{seed, kFinetuneStream + 2t (+1 for z_g), 0},
// and each forward's noise seed is the first two words of Philox RngKey{seed, same stream, 1 << 40}.
// Everything is deterministic from the seed.
#pragma once

#include <sgf/io/datasets.hpp>
#include <sgf/layers/optim.hpp>
#include <sgf/robustness/image_attacks.hpp>  // AttackInfo
#include <sgf/train/objective.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sgf::attack {

/// The registered fine-tuning attack: its strength is the number of steps.
inline const AttackInfo& finetune_attack_info() {
    static const AttackInfo info{"finetune", "steps of adversarial-only fine-tuning of the baked copy (Adam lr 1e-5)", 0.0, 0, 1e6,
                                 {0, 25, 50, 100, 200}, true};
    return info;
}

struct FinetuneOptions {
    std::int64_t batch = 16;
    AdamParams adam_critic{0.0002, 0.0, 0.99, 1e-8};     ///< the critic's (its weights are stored with the equalised-lr scale)
    AdamParams adam_generator{0.00001, 0.0, 0.99, 1e-8};  ///< the copy's (its weights hold their real values)
    std::uint64_t seed = 0;
    bool train_critic = true;  ///< false: no D steps, the copy of the owner's D stays as it is
};

struct FinetuneLosses {
    double generator = 0;      ///< mean softplus(-D(G(z))) over the steps run
    double discriminator = 0;  ///< mean D loss (fake + real) over the steps run
};

inline constexpr std::uint64_t kFinetuneStream = 0x46540000ull;

/// A fine-tuning run on one baked generator, continued in chunks (run(k) adds k steps), so that one
/// run can be measured after 25, 50, 100 ... steps. G is changed in place (it must outlive the run
/// and stay where it is, as must `real`); D is copied. Not movable: hold it where it is made, or
/// through a pointer.
template <Backend B>
class AdversarialFinetune {
public:
    using T = typename B::Scalar;
    /// `real`: images [N, C, R, R] in [-1, 1] of G's shape (at least one).
    AdversarialFinetune(B& b, MetaGenerator<B>& G, const ResidualCritic<B>& D, const HostTensor<float>& real, FinetuneOptions o)
        : G_(&G), real_(&real), o_(o) {
        const ModelConfig& cfg = G.config();
        SGF_CHECK(G.baked(), ArgumentError, "fine-tuning attack: the generator must be a baked per-user copy (see instantiate)");
        SGF_CHECK(o.batch >= 1, ArgumentError, "fine-tuning attack: batch must be positive, got {}", o.batch);
        SGF_CHECK(std::isfinite(o.adam_critic.lr) && o.adam_critic.lr > 0 && std::isfinite(o.adam_generator.lr) && o.adam_generator.lr > 0,
                  ArgumentError, "fine-tuning attack: learning rates must be positive, got {} and {}", o.adam_critic.lr,
                  o.adam_generator.lr);
        SGF_CHECK(real.shape.n >= 1 && real.shape.c == cfg.image_channels && real.shape.h == cfg.resolution && real.shape.w == cfg.resolution,
                  ShapeError, "fine-tuning attack: real images {} do not fit the generator's [N, {}, {}, {}]", real.shape.str(),
                  cfg.image_channels, cfg.resolution, cfg.resolution);
        D_ = make_discriminator(b, D.config(), 0);
        const auto from = D.parameters();
        const auto to = D_.parameters();
        // a decoder F passed by mistake has the same layers but a wider output: compare every tensor
        bool same = from.size() == to.size();
        for (std::size_t i = 0; same && i < from.size(); ++i) same = from[i]->name == to[i]->name && from[i]->value.shape() == to[i]->value.shape();
        SGF_CHECK(same, ArgumentError, "fine-tuning attack: the critic must be the model's discriminator D (its tensors are not D's)");
        for (std::size_t i = 0; i < from.size(); ++i) b.copy(from[i]->value.data(), to[i]->value.data(), from[i]->value.size());
        optG_ = Adam<B>(b, G.parameters(), o.adam_generator);
        optD_ = Adam<B>(b, D_.parameters(), o.adam_critic);
        sampler_ = io::Sampler(real.shape.n, o.seed);
    }

    // the optimisers hold pointers to the critic's parameters, which live in this object
    AdversarialFinetune(const AdversarialFinetune&) = delete;
    AdversarialFinetune& operator=(const AdversarialFinetune&) = delete;
    AdversarialFinetune(AdversarialFinetune&&) = delete;
    AdversarialFinetune& operator=(AdversarialFinetune&&) = delete;

    std::int64_t steps_done() const { return t_; }
    const ResidualCritic<B>& critic() const { return D_; }

    /// Runs `steps` more steps; returns the mean losses of those steps (0 when none).
    FinetuneLosses run(B& b, std::int64_t steps) {
        SGF_CHECK(steps >= 0, ArgumentError, "fine-tuning attack: {} steps", steps);
        FinetuneLosses L;
        for (std::int64_t k = 0; k < steps; ++k, ++t_) {
            const ModelConfig& cfg = G_->config();
            // D step
            if (o_.train_critic) {
                auto [z, noise] = draw(b, cfg, kFinetuneStream + 2 * std::uint64_t(t_));
                auto fake = G_->forward_baked(b, z.view(), noise);
                const Tensor<B> real = real_batch(b);
                const auto d = discriminator_grads(b, D_, fake.image(), real, GradMode::overwrite);
                optD_.step(b);
                L.discriminator += d.total;
            }
            // G step
            {
                auto [z, noise] = draw(b, cfg, kFinetuneStream + 2 * std::uint64_t(t_) + 1);
                auto g = G_->forward_baked(b, z.view(), noise);
                auto dctx = D_.forward(b, g.image().view());
                auto adv = softplus_mean(b, dctx.output(), -1.0, 1.0, true);
                L.generator += adv.value;
                Tensor<B> dimg = D_.backward(b, dctx, std::move(adv.grad), GradMode::skip, true);
                G_->backward(b, g, std::move(dimg), GradMode::overwrite);
                optG_.step(b);
            }
        }
        if (steps > 0) {
            L.generator /= double(steps);
            L.discriminator /= double(steps);
        }
        return L;
    }

private:
    std::pair<Tensor<B>, std::uint64_t> draw(B& b, const ModelConfig& cfg, std::uint64_t stream) const {
        Tensor<B> z(b, Shape{o_.batch, cfg.z_dim});
        b.normal(RngKey{o_.seed, stream, 0}, z.size(), z.data());
        const philox::U32x4 r = philox::draw(RngKey{o_.seed, stream, 1ull << 40}, 0);
        return {std::move(z), (std::uint64_t(r.v[1]) << 32) | r.v[0]};
    }
    Tensor<B> real_batch(B& b) {
        const auto idx = sampler_.next(o_.batch);
        const std::int64_t S = real_->shape.sample_size();
        std::vector<float> x(std::size_t(o_.batch * S));
        for (std::size_t i = 0; i < idx.size(); ++i)
            std::copy_n(real_->data.begin() + idx[i] * S, S, x.begin() + std::ptrdiff_t(i) * S);
        return from_host<B, float>(b, Shape{o_.batch, real_->shape.c, real_->shape.h, real_->shape.w}, std::span<const float>(x));
    }

    MetaGenerator<B>* G_;
    const HostTensor<float>* real_;
    FinetuneOptions o_;
    ResidualCritic<B> D_;
    Adam<B> optG_, optD_;
    io::Sampler sampler_;
    std::int64_t t_ = 0;
};

}  // namespace sgf::attack
