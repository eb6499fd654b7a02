// One training iteration of algorithm.md 5, over any backend:
//   (1) G+F step on the joint loss (Adam, lazy-regularisation corrected for interval g_reg_interval)
//   (2) D step on fresh fakes and the real batch; EMA update of G
//   (3) every d_reg_interval steps: D's R1 step (lazy, multiplied by the interval), on a float64
//       copy of D when the backend is float32 and has a float64 twin (R1InFloat64, objective.hpp)
// Decoder-only fine-tuning (TrainConfig::decoder_only) replaces all three with one F step on the
// frozen EMA generator's images.
// All randomness comes from the counter-based RNG keyed by (seed, step), so a run resumed from a
// checkpoint at step k continues bit-identically.
#pragma once

#include <sgf/train/objective.hpp>

#include <nlohmann/json.hpp>

#include <cmath>

#include <optional>
#include <span>
#include <type_traits>
#include <variant>

namespace sgf {

struct TrainConfig {
    int batch = 16;
    AdamParams adam{0.002, 0.0, 0.99, 1e-8};
    int g_reg_interval = 4;    ///< G/F lazy correction (the reference's path-length interval)
    int d_reg_interval = 16;   ///< R1 interval (0 disables R1)
    double r1_gamma = 0.1;     ///< small images want a small gamma (the reference: 100 at 128 px)
    double ema_kimg = 10.0;    ///< EMA half-life in thousands of images
    double ema_rampup = 0.05;  ///< half-life <= rampup * images seen (StyleGAN2-ADA), 0 disables
    LossWeights weights{};
    bool fingerprint = true;   ///< false trains the same architecture without the fingerprint losses
    /// Consistency-weight warm-up: the weight grows linearly from 0 to its value over this many
    /// thousand images (0 = the reference's constant weight). While the decoder cannot read any bit
    /// yet, the consistency loss only teaches G to ignore c; the warm-up lets F learn first.
    double consistency_rampup_kimg = 0.0;
    std::uint64_t seed = 1;
    /// Immunised training (train/augment.hpp, docs/robustness.md): random perturbations between G
    /// and F. Off by default; JSON key "immunise" (an object), written only when enabled.
    ImmuniseConfig immunise{};
    /// Decoder-only fine-tuning: G, its EMA and D are frozen; each step trains F alone on images of
    /// the EMA generator (the one that is released) with the latent and fingerprint losses. Every
    /// second image of the batch is rounded to 8 bits first, so F learns to read PNG output too;
    /// with `immunise` on, F then reads the perturbed images (a robust decoder for a finished
    /// generator). Written to JSON only when set.
    bool decoder_only = false;
    /// F reads G's images clamped to [-1, 1], as an image file stores them (clamp_unit_forward,
    /// objective.hpp): G gets no decoder gradient from saturated pixels, so it learns to put the
    /// fingerprint where a saved image keeps it. In decoder-only runs every image is clamped. Off by
    /// default (the paper's objective); JSON key "clamp_decoder_input", written only when on.
    bool clamp_decoder_input = false;
    /// Mirror augmentation of the real images (x-flip; algorithm.md: the only augmentation of reals):
    /// the run samples each epoch from every image and its left-right mirror (ImageDataset::
    /// x_flip_batch). Off by default; JSON key "x_flip", written only when on.
    bool x_flip = false;
};

/// Throws ArgumentError naming the first value a training run cannot use: a batch below 1, a
/// non-finite or non-positive learning rate or eps, Adam betas outside [0, 1), negative intervals,
/// a negative or non-finite R1 gamma, EMA setting, loss weight or warm-up, or (always, so that a
/// checkpoint cannot carry one) a bad immunisation setting.
inline void validate(const TrainConfig& t) {
    const auto nonneg = [](double v) { return std::isfinite(v) && v >= 0; };
    SGF_CHECK(t.batch >= 1 && t.batch <= 65536, ArgumentError, "training: batch must be in 1..65536, got {}", t.batch);
    SGF_CHECK(std::isfinite(t.adam.lr) && t.adam.lr > 0, ArgumentError, "training: learning rate must be finite and > 0, got {}",
              t.adam.lr);
    SGF_CHECK(t.adam.beta1 >= 0 && t.adam.beta1 < 1 && t.adam.beta2 >= 0 && t.adam.beta2 < 1, ArgumentError,
              "training: Adam betas must be in [0, 1), got {} and {}", t.adam.beta1, t.adam.beta2);
    SGF_CHECK(std::isfinite(t.adam.eps) && t.adam.eps > 0, ArgumentError, "training: Adam eps must be finite and > 0, got {}",
              t.adam.eps);
    SGF_CHECK(t.g_reg_interval >= 0 && t.d_reg_interval >= 0, ArgumentError,
              "training: regularisation intervals must be >= 0, got {} (G) and {} (D)", t.g_reg_interval, t.d_reg_interval);
    SGF_CHECK(nonneg(t.r1_gamma), ArgumentError, "training: R1 gamma must be finite and >= 0, got {}", t.r1_gamma);
    SGF_CHECK(nonneg(t.ema_kimg) && nonneg(t.ema_rampup), ArgumentError,
              "training: EMA half-life and ramp-up must be finite and >= 0, got {} and {}", t.ema_kimg, t.ema_rampup);
    const LossWeights& w = t.weights;
    SGF_CHECK(nonneg(w.adversarial) && nonneg(w.consistency) && nonneg(w.latent) && nonneg(w.fingerprint), ArgumentError,
              "training: loss weights must be finite and >= 0, got adversarial {}, consistency {}, latent {}, fingerprint {}",
              w.adversarial, w.consistency, w.latent, w.fingerprint);
    SGF_CHECK(nonneg(t.consistency_rampup_kimg), ArgumentError,
              "training: the consistency warm-up must be finite and >= 0 kimg, got {}", t.consistency_rampup_kimg);
    t.immunise.validate();
    SGF_CHECK(!(t.decoder_only && !t.fingerprint), ArgumentError,
              "training: decoder-only fine-tuning needs the fingerprint losses (drop --no-fingerprint)");
    SGF_CHECK(!(t.clamp_decoder_input && !t.fingerprint), ArgumentError,
              "training: --clamp-decoder-input changes what the decoder reads, and --no-fingerprint trains no decoder");
    SGF_CHECK(!(t.x_flip && t.decoder_only), ArgumentError,
              "training: --x-flip augments the real images, which decoder-only fine-tuning does not read");
}

inline void to_json(nlohmann::json& j, const TrainConfig& t) {
    j = nlohmann::json{{"batch", t.batch},
                       {"lr", t.adam.lr},
                       {"beta1", t.adam.beta1},
                       {"beta2", t.adam.beta2},
                       {"eps", t.adam.eps},
                       {"g_reg_interval", t.g_reg_interval},
                       {"d_reg_interval", t.d_reg_interval},
                       {"r1_gamma", t.r1_gamma},
                       {"ema_kimg", t.ema_kimg},
                       {"ema_rampup", t.ema_rampup},
                       {"w_adversarial", t.weights.adversarial},
                       {"w_consistency", t.weights.consistency},
                       {"w_latent", t.weights.latent},
                       {"w_fingerprint", t.weights.fingerprint},
                       {"fingerprint", t.fingerprint},
                       {"consistency_rampup_kimg", t.consistency_rampup_kimg},
                       {"seed", t.seed}};
    if (t.immunise.enabled) j["immunise"] = t.immunise;
    if (t.decoder_only) j["decoder_only"] = true;
    if (t.clamp_decoder_input) j["clamp_decoder_input"] = true;
    if (t.x_flip) j["x_flip"] = true;
}
inline void from_json(const nlohmann::json& j, TrainConfig& t) {
    // integers checked as in ModelConfig (nlohmann's get_to wrapped "batch": 2^32 + 16 to 16), and
    // the seed must not be negative (-1 was read as 2^64 - 1)
    const auto get_int = [&](const char* key, int& out) { detail::get_json_int(j, key, out, "training config"); };
    try {
        get_int("batch", t.batch);
        j.at("lr").get_to(t.adam.lr);
        j.at("beta1").get_to(t.adam.beta1);
        j.at("beta2").get_to(t.adam.beta2);
        j.at("eps").get_to(t.adam.eps);
        get_int("g_reg_interval", t.g_reg_interval);
        get_int("d_reg_interval", t.d_reg_interval);
        j.at("r1_gamma").get_to(t.r1_gamma);
        j.at("ema_kimg").get_to(t.ema_kimg);
        j.at("ema_rampup").get_to(t.ema_rampup);
        j.at("w_adversarial").get_to(t.weights.adversarial);
        j.at("w_consistency").get_to(t.weights.consistency);
        j.at("w_latent").get_to(t.weights.latent);
        j.at("w_fingerprint").get_to(t.weights.fingerprint);
        j.at("fingerprint").get_to(t.fingerprint);
        t.consistency_rampup_kimg = j.value("consistency_rampup_kimg", 0.0);  // absent in early files
        const auto& seed = j.at("seed");
        if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<std::int64_t>() >= 0))
            SGF_THROW(FormatError, "training config: seed must be an integer in 0..2^64-1, got {}", seed.dump());
        t.seed = seed.get<std::uint64_t>();
        t.immunise = j.value("immunise", ImmuniseConfig{});  // absent in files without immunisation
        t.decoder_only = j.value("decoder_only", false);
        t.clamp_decoder_input = j.value("clamp_decoder_input", false);  // absent in earlier files
        t.x_flip = j.value("x_flip", false);                            // absent in earlier files
    } catch (const nlohmann::json::exception& e) {
        SGF_THROW(FormatError, "training config: {}", e.what());
    }
}

struct StepStats {
    std::int64_t step = 0;  ///< the step just completed (1-based)
    GeneratorLosses g;
    DiscriminatorLosses d;
    bool r1 = false;  ///< whether this step ran the R1 step
};

/// Samples first, first + stride, ... of the batch `x` become what an 8-bit image file stores
/// (from_u8(to_u8(x)), as io::to_image then io::to_tensor), in place on the backend. The other
/// samples are left as they are.
template <Backend B>
void round_to_8_bits(B& b, Tensor<B>& x, std::int64_t first, std::int64_t stride) {
    SGF_CHECK(first >= 0 && stride >= 1, ArgumentError, "round_to_8_bits: first {} / stride {}", first, stride);
    const std::int64_t n = x.shape().n, m = x.shape().sample_size();
    if (stride == 1) {
        if (first < n) b.quantize_u8((n - first) * m, x.data() + first * m, x.data() + first * m);
        return;
    }
    for (std::int64_t i = first; i < n; i += stride) b.quantize_u8(m, x.data() + i * m, x.data() + i * m);
}

template <Backend B>
class Trainer {
public:
    using T = typename B::Scalar;

    Trainer(B& b, const ModelConfig& mc, const TrainConfig& tc)
        : b_(b), mc_(mc), tc_(tc), G_(b, mc, tc.seed), G_ema_(b, mc, tc.seed), F_(make_decoder(b, mc, tc.seed ^ 0xF)),
          D_(make_discriminator(b, mc, tc.seed ^ 0xD)) {
        validate(tc);
        SGF_CHECK(tc.batch % std::min(tc.batch, mc.mbstd_group) == 0, ArgumentError,
                  "training: batch {} must be a multiple of the minibatch-stddev group {}", tc.batch, mc.mbstd_group);
        copy_values(b, G_.parameters(), G_ema_.parameters());
        const AdamParams gf = lazy_regularised(tc.adam, tc.g_reg_interval);
        optG_ = Adam<B>(b, G_.parameters(), gf);
        optF_ = Adam<B>(b, F_.parameters(), gf);
        optD_ = Adam<B>(b, D_.parameters(), lazy_regularised(tc.adam, tc.d_reg_interval));
    }

    const ModelConfig& model_config() const { return mc_; }
    const TrainConfig& train_config() const { return tc_; }
    std::int64_t step_count() const { return step_; }
    void set_step_count(std::int64_t s) { step_ = s; }
    MetaGenerator<B>& generator() { return G_; }
    MetaGenerator<B>& generator_ema() { return G_ema_; }
    ResidualCritic<B>& decoder() { return F_; }
    ResidualCritic<B>& discriminator() { return D_; }
    Adam<B>& opt_generator() { return optG_; }
    Adam<B>& opt_decoder() { return optF_; }
    Adam<B>& opt_discriminator() { return optD_; }

    /// The weights of the G+F objective used at this step (fingerprint losses off for a baseline).
    LossWeights effective_weights() const {
        LossWeights w = tc_.weights;
        if (!tc_.fingerprint) w.consistency = w.latent = w.fingerprint = 0.0;
        if (tc_.consistency_rampup_kimg > 0) {
            const double kimg = double(step_) * double(tc_.batch) / 1000.0;
            w.consistency *= std::min(1.0, kimg / tc_.consistency_rampup_kimg);
        }
        return w;
    }

    /// The immunisation strength at this step (after its ramp-up; 0 when immunisation is off).
    double immunise_strength() const {
        if (!tc_.immunise.enabled) return 0.0;
        return tc_.immunise.strength_at(double(step_) * double(tc_.batch) / 1000.0);
    }

    /// One iteration on a batch of real images [batch, C, R, R] in [-1, 1].
    StepStats step(const Tensor<B>& real) {
        const std::int64_t N = tc_.batch;
        check_shape(real.shape(), Shape{N, mc_.image_channels, mc_.resolution, mc_.resolution}, "training real batch");
        if (tc_.decoder_only) return decoder_step();
        StepStats st;
        const std::uint64_t stream = static_cast<std::uint64_t>(step_) * 8;
        // (1) G + F
        {
            auto gb = draw_generator_batch(b_, mc_, N, tc_.seed, stream + 0);
            std::optional<ImmunisePlan> plan;  // immunised training: F reads perturbed images
            if (tc_.immunise.enabled)
                plan = draw_immunise_plan(tc_.immunise, real.shape(), immunise_strength(), tc_.seed, std::uint64_t(step_));
            st.g = generator_step_grads(b_, G_, F_, D_, gb, effective_weights(), GradMode::overwrite, plan ? &*plan : nullptr,
                                        tc_.clamp_decoder_input);
            optG_.step(b_);
            if (tc_.fingerprint) optF_.step(b_);
        }
        // (2) D on fresh fakes and reals
        {
            auto gb = draw_generator_batch(b_, mc_, N, tc_.seed, stream + 1);
            auto g = G_.forward(b_, gb.z, gb.c1, gb.noise1);
            st.d = discriminator_grads(b_, D_, g.image(), real, GradMode::overwrite);
            optD_.step(b_);
        }
        // (3) lazy R1
        if (tc_.d_reg_interval > 0 && tc_.r1_gamma > 0 && (step_ % tc_.d_reg_interval) == 0) {
            if constexpr (Float64Twin<B>::available) {  // float32: R1 on a float64 copy of D (objective.hpp)
                if (!r1_64_) r1_64_.emplace(b_, mc_);
                st.d.r1 = (*r1_64_)(b_, D_, real, tc_.r1_gamma, double(tc_.d_reg_interval));
            } else {
                st.d.r1 = r1_grads(b_, D_, real, tc_.r1_gamma, double(tc_.d_reg_interval), GradMode::overwrite);
            }
            optD_.step(b_);
            st.r1 = true;
        }
        ++step_;
        // EMA of G
        const double images = double(step_) * double(N);
        double half_life = tc_.ema_kimg * 1000.0;
        if (tc_.ema_rampup > 0) half_life = std::min(half_life, images * tc_.ema_rampup);
        ema_update(b_, G_ema_.parameters(), G_.parameters(), ema_beta(double(N), half_life));
        st.step = step_;
        if (!std::isfinite(st.g.total) || !std::isfinite(st.d.total) || !std::isfinite(st.d.r1))
            SGF_THROW(NumericError,
                      "training diverged at step {}: G+F loss {}, D loss {}, R1 {} (try a lower learning rate or a "
                      "larger r1_gamma; resume from the last checkpoint)",
                      step_, st.g.total, st.d.total, st.d.r1);
        return st;
    }

private:
    /// One decoder-only step (TrainConfig::decoder_only): F alone, on the frozen EMA generator.
    StepStats decoder_step() {
        StepStats st;
        auto gb = draw_generator_batch(b_, mc_, tc_.batch, tc_.seed, static_cast<std::uint64_t>(step_) * 8);
        Tensor<B> img = G_ema_.forward(b_, gb.z, gb.c1, gb.noise1).image().clone(b_);
        round_to_8_bits(b_, img, 1, 2);
        if (tc_.clamp_decoder_input) b_.clamp(img.size(), img.data(), T(-1), T(1), img.data(), nullptr);
        if (tc_.immunise.enabled) {  // a robust decoder for a finished generator: F reads perturbed images
            const ImmunisePlan plan =
                draw_immunise_plan(tc_.immunise, img.shape(), immunise_strength(), tc_.seed, std::uint64_t(step_));
            img = std::move(immunise_forward(b_, img, plan).y);
        }
        LossWeights w = tc_.weights;
        w.adversarial = w.consistency = 0.0;
        st.g = decoder_grads(b_, F_, img, gb, w, GradMode::overwrite);
        optF_.step(b_);
        ++step_;
        st.step = step_;
        if (!std::isfinite(st.g.total))
            SGF_THROW(NumericError, "decoder fine-tuning diverged at step {}: loss {} (try a lower learning rate)", step_,
                      st.g.total);
        return st;
    }

    B& b_;
    ModelConfig mc_;
    TrainConfig tc_;
    MetaGenerator<B> G_, G_ema_;
    ResidualCritic<B> F_, D_;
    Adam<B> optG_, optF_, optD_;
    std::int64_t step_ = 0;
    std::conditional_t<Float64Twin<B>::available, std::optional<R1InFloat64<B>>, std::monostate> r1_64_{};
};

}  // namespace sgf
