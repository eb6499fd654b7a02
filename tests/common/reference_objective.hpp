// The G+F objective of algorithm.md 4 evaluated forward only, with its losses written out by hand
// (latent MSE and fingerprint BCE computed on the host in float64): the function that the gradient
// checks of generator_step_grads differentiate numerically. `decoder_input` maps G's first image to
// what F reads (identity, the decoder-input clamp, immunisation perturbations).
#pragma once

#include <sgf/train/objective.hpp>

#include <algorithm>
#include <cmath>
#include <functional>

namespace sgf::test {

template <Backend B>
double reference_generator_loss(B& b, MetaGenerator<B>& G, ResidualCritic<B>& F, ResidualCritic<B>& D,
                                const GeneratorBatch<B>& gb, const LossWeights& w,
                                const std::function<Tensor<B>(const Tensor<B>&)>& decoder_input = {}) {
    const ModelConfig& cfg = G.config();
    auto g1 = G.forward(b, gb.z, gb.c1, gb.noise1);
    auto g2 = G.forward(b, gb.z, gb.c2, gb.noise2);
    auto d = D.forward(b, g1.image());
    double total = softplus_mean(b, d.output(), -1.0, w.adversarial, false).value;
    total += mse_mean(b, g1.image(), g2.image(), w.consistency, false).value;
    auto f = decoder_input ? F.forward(b, decoder_input(g1.image())) : F.forward(b, g1.image());
    const auto out = to_host_vector<double>(b, f.output());
    const auto z = to_host_vector<double>(b, gb.z), c = to_host_vector<double>(b, gb.c1);
    const std::int64_t N = gb.z.shape().n, s = cfg.z_dim + cfg.fingerprint_bits;
    double lz = 0, lc = 0;
    for (std::int64_t n = 0; n < N; ++n) {
        for (int k = 0; k < cfg.z_dim; ++k) lz += std::pow(out[n * s + k] - z[n * cfg.z_dim + k], 2);
        for (int k = 0; k < cfg.fingerprint_bits; ++k) {
            const double l = out[n * s + cfg.z_dim + k], t = c[n * cfg.fingerprint_bits + k];
            lc += std::max(l, 0.0) - l * t + std::log1p(std::exp(-std::abs(l)));
        }
    }
    return total + w.latent * lz / double(N * cfg.z_dim) + w.fingerprint * lc / double(N * cfg.fingerprint_bits);
}

}  // namespace sgf::test
