// Model perturbations for the robustness evaluation (algorithm.md section 7): perturbing the
// weights of a per-user (baked) generator, as a model thief might, before generating images.
//
// Every attack downloads each selected parameter to the host (backend download), changes it in
// double precision, and uploads the result (cast to the backend's scalar) in place. Unselected
// parameters, and every parameter when the strength is the attack's identity, are not touched, so
// the generator's output stays bit-identical.
//
// | name             | strength: effect                                            | identity | default tensors | sweep    |
// |------------------|-------------------------------------------------------------|----------|-----------------|----------|
// | weight_noise     | sigma: w += sigma std(w) N(0, 1), std per tensor             | 0        | weights         | 0 .. 0.3 |
// | weight_noise_abs | sigma: w += sigma N(0, 1)                                    | 0        | weights         | 0 .. 0.3 |
// | round            | digits d: w = round(w 10^d) / 10^d; |change| <= 10^-d / 2     | none     | all             | 5 .. 0   |
// | quantize         | bits b: per-tensor symmetric, s = max|w| / (2^(b-1) - 1),    | none     | weights         | 8 .. 2   |
// |                  | w = s round(w / s); |change| <= s / 2                         |          |                 |          |
// | prune            | fraction p: zero the round(p n) entries of smallest |w| of  | 0        | conv weights    | 0 .. 0.9 |
// |                  | each tensor (n = its size; ties: lower index first)          |          |                 |          |
//
// Tensors: "weights" are the parameters named "*.weight" (dense and conv weights; biases and
// noise strengths excluded), "conv weights" those of rank 4, "all" every parameter; ModelAttack::
// params overrides the default. In a baked generator the conv weights hold the real (modulated,
// demodulated, equalised-lr scaled) values, while the input dense layer stores its weight before
// the run-time equalised-lr scale 1 / sqrt(z_dim): absolute noise and rounding act on stored values,
// which is why the relative noise (scale-free) is the default noise attack.
// Randomness: weight noise of parameter `name` draws from Philox with
// RngKey{seed, name_hash("attack.weight_noise") ^ name_hash(name), 0}, so it depends only on (seed,
// name), not on the parameter order or the backend. Rounding, quantisation and pruning do not use
// the seed.
// Float backends: the result is rounded to the backend's scalar after the double computation, so
// the documented error bounds hold up to one float rounding (relative 2^-24) on top.
#pragma once

#include <sgf/layers/parameter.hpp>
#include <sgf/nets/generator.hpp>
#include <sgf/robustness/image_attacks.hpp>  // AttackInfo

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string>
#include <vector>

namespace sgf::attack {

enum class ParamSet { automatic, weights, conv_weights, all };

struct ModelAttack {
    std::string name;
    double strength = 0;
    ParamSet params = ParamSet::automatic;  ///< automatic: the attack's default (table above)
    std::string label() const { return fmt::format("{}@{}", name, strength); }
};

/// What an attack did to one tensor.
struct TensorChange {
    std::string name;
    std::int64_t size = 0;
    double max_abs_change = 0;
    double rms_change = 0;
    std::int64_t zeroed = 0;  ///< entries that were non-zero before and are zero after
    double step = 0;          ///< rounding step 10^-d or quantisation scale; 0 for the other attacks
};

struct ModelAttackReport {
    std::string attack;
    std::vector<TensorChange> tensors;  ///< the selected tensors, in parameter order
};

inline const std::vector<AttackInfo>& model_attacks() {
    static const std::vector<AttackInfo> list{
        {"weight_noise", "std of additive Gaussian weight noise, relative to each tensor's std", 0.0, 0, 1e6,
         {0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3}},
        {"weight_noise_abs", "absolute std of additive Gaussian weight noise (stored units)", 0.0, 0, 1e6,
         {0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3}},
        {"round", "decimal digits d kept (round to 10^-d)", std::nullopt, -6, 15, {5, 4, 3, 2, 1, 0}},
        {"quantize", "bits of per-tensor symmetric quantisation", std::nullopt, 2, 16, {8, 6, 5, 4, 3, 2}},
        {"prune", "fraction of each conv weight zeroed (smallest magnitudes)", 0.0, 0, 1, {0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9}},
    };
    return list;
}

inline const AttackInfo& model_attack_info(std::string_view name) {
    for (const auto& a : model_attacks())
        if (a.name == name) return a;
    std::string known;
    for (const auto& a : model_attacks()) known += (known.empty() ? "" : ", ") + a.name;
    SGF_THROW(ArgumentError, "unknown model attack '{}' (known: {})", name, known);
}

// ---- host kernels (one tensor's values) ----------------------------------------------------------

/// w += sigma * scale * N(0, 1), scale = std(w) (population, of the values before the change) when
/// `relative`, else 1. A constant tensor gets no relative noise.
inline void add_weight_noise(std::span<double> w, double sigma, bool relative, const RngKey& key) {
    double scale = 1;
    if (relative) {
        const double n = double(w.size());
        const double mean = std::accumulate(w.begin(), w.end(), 0.0) / n;
        double var = 0;
        for (double v : w) var += (v - mean) * (v - mean);
        scale = std::sqrt(var / n);
    }
    for (std::size_t i = 0; i < w.size(); ++i) w[i] += sigma * scale * philox::normal(key, i);
}

/// Rounds to multiples of 10^-digits (half away from zero); returns the step 10^-digits.
/// |change| <= step / 2.
inline double round_values(std::span<double> w, int digits) {
    SGF_CHECK(digits >= -300 && digits <= 300, ArgumentError, "attack round: digits must be in -300..300, got {}", digits);
    const double f = std::pow(10.0, double(digits));
    for (double& v : w) v = std::round(v * f) / f;
    return 1.0 / f;
}

/// Per-tensor symmetric quantisation to signed `bits`-bit integers q in [-(2^(b-1) - 1), 2^(b-1) - 1]
/// with scale = max|w| / (2^(b-1) - 1), then dequantised: w = scale q. Returns the scale (0 for an
/// all-zero tensor, which is left as is). |change| <= scale / 2.
inline double quantize_symmetric(std::span<double> w, int bits) {
    SGF_CHECK(bits >= 2 && bits <= 32, ArgumentError, "attack quantize: bits must be in 2..32, got {}", bits);
    double amax = 0;
    for (double v : w) amax = std::max(amax, std::abs(v));
    if (amax == 0) return 0;
    const double qmax = std::ldexp(1.0, bits - 1) - 1, scale = amax / qmax;
    for (double& v : w) v = scale * std::clamp(std::round(v / scale), -qmax, qmax);
    return scale;
}

/// Magnitude pruning: sets the round(fraction * n) entries of smallest |w| to zero (ties broken by
/// the lower index, so the choice is deterministic). Returns how many entries were set.
inline std::int64_t prune_smallest(std::span<double> w, double fraction) {
    SGF_CHECK(std::isfinite(fraction) && fraction >= 0 && fraction <= 1, ArgumentError, "attack prune: fraction must be in [0, 1], got {}",
              fraction);
    const std::size_t n = w.size();
    const std::size_t k = std::min<std::size_t>(n, std::size_t(std::llround(fraction * double(n))));
    if (k == 0) return 0;
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    auto less = [&](std::size_t a, std::size_t b) {
        const double ma = std::abs(w[a]), mb = std::abs(w[b]);
        return ma < mb || (ma == mb && a < b);
    };
    if (k < n) std::nth_element(idx.begin(), idx.begin() + std::ptrdiff_t(k), idx.end(), less);
    for (std::size_t i = 0; i < k; ++i) w[idx[i]] = 0;
    return std::int64_t(k);
}

// ---- applying to parameters -------------------------------------------------------------------

namespace detail {
inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
inline ParamSet default_params(std::string_view attack) {
    if (attack == "round") return ParamSet::all;
    if (attack == "prune") return ParamSet::conv_weights;
    return ParamSet::weights;
}
template <Backend B>
bool selected(const Parameter<B>& p, ParamSet set) {
    switch (set) {
        case ParamSet::all: return true;
        case ParamSet::conv_weights: return ends_with(p.name, ".weight") && p.dims.size() == 4;
        default: return ends_with(p.name, ".weight");
    }
}
inline int integral(const ModelAttack& a) {
    const double r = std::round(a.strength);
    SGF_CHECK(std::abs(a.strength - r) < 1e-9, ArgumentError, "model attack {}: strength must be an integer, got {}", a.name,
              a.strength);
    return int(r);
}
}  // namespace detail

/// The ParamSet a ModelAttack selects (its own, or the attack's default).
inline ParamSet selected_params(const ModelAttack& a) {
    return a.params == ParamSet::automatic ? detail::default_params(a.name) : a.params;
}

/// True when the attack leaves every parameter unchanged (strength equals the identity).
inline bool is_identity(const ModelAttack& a) {
    const auto& info = model_attack_info(a.name);
    return info.identity && a.strength == *info.identity;
}

/// Applies a model attack in place to `params` (see the file comment for each attack).
template <Backend B>
ModelAttackReport apply(B& b, const std::vector<Parameter<B>*>& params, const ModelAttack& a, std::uint64_t seed) {
    using T = typename B::Scalar;
    const AttackInfo& info = model_attack_info(a.name);
    SGF_CHECK(std::isfinite(a.strength) && a.strength >= info.min && a.strength <= info.max, ArgumentError,
              "model attack {}: strength {} outside [{}, {}]", a.name, a.strength, info.min, info.max);
    const int as_int = (a.name == "round" || a.name == "quantize") ? detail::integral(a) : 0;
    const ParamSet set = selected_params(a);
    const bool identity = is_identity(a);
    ModelAttackReport rep{a.label(), {}};
    for (Parameter<B>* p : params) {
        if (!detail::selected(*p, set)) continue;
        TensorChange ch{p->name, std::int64_t(p->value.size()), 0, 0, 0, 0};
        if (identity || p->value.size() == 0) {
            rep.tensors.push_back(std::move(ch));
            continue;
        }
        const std::vector<double> before = to_host_vector<double>(b, p->value);
        std::vector<double> w = before;
        if (a.name == "weight_noise" || a.name == "weight_noise_abs")
            add_weight_noise(w, a.strength, a.name == "weight_noise",
                             RngKey{seed, name_hash("attack.weight_noise") ^ name_hash(p->name), 0});
        else if (a.name == "round")
            ch.step = round_values(w, as_int);
        else if (a.name == "quantize")
            ch.step = quantize_symmetric(w, as_int);
        else if (a.name == "prune")
            prune_smallest(w, a.strength);
        else
            SGF_THROW(ArgumentError, "model attack '{}' is registered but not implemented", a.name);
        std::vector<T> out(w.begin(), w.end());  // rounded to the backend's scalar
        double sq = 0;
        for (std::size_t i = 0; i < w.size(); ++i) {
            const double d = double(out[i]) - before[i];
            ch.max_abs_change = std::max(ch.max_abs_change, std::abs(d));
            sq += d * d;
            if (before[i] != 0 && out[i] == T(0)) ++ch.zeroed;
        }
        ch.rms_change = std::sqrt(sq / double(w.size()));
        upload_into(b, std::span<const T>(out), p->value);
        rep.tensors.push_back(std::move(ch));
    }
    return rep;
}

/// Applies a model attack in place to a generator's parameters (meant for a baked per-user copy
/// made by sgf::instantiate; a meta generator works too, its embedding and affines included).
template <Backend B>
ModelAttackReport apply(B& b, MetaGenerator<B>& G, const ModelAttack& a, std::uint64_t seed) {
    return apply(b, G.parameters(), a, seed);
}

}  // namespace sgf::attack
