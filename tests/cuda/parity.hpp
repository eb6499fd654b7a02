// CPU-GPU parity (tests/cuda/test_cuda_parity.cu): the same computations written once as templates
// over the backend. parity_cpu.cpp instantiates them for the Eigen CPU backend (compiled by the host
// compiler), the .cu file for the CUDA backend; only plain host vectors cross between the two.
#pragma once

#include <sgf/io/model_file.hpp>
#include <sgf/nets.hpp>
#include <sgf/sgf.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/verify/decode.hpp>

#include "blob_images.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace sgf::parity {

/// The committed default model (models/fashion-small.safetensors).
inline std::string default_model() { return std::string(SGF_SOURCE_DIR) + "/models/fashion-small.safetensors"; }

/// n images of the model's EMA generator for random z and fingerprints (seed), rounded to the 8-bit
/// grid as a PNG round trip would; returns [n, C, R, R] floats.
template <Backend B>
std::vector<float> generate_8bit(B& b, const std::string& model, int n, std::uint64_t seed) {
    auto m = io::load_meta_model(b, model);
    const ModelConfig& cfg = m.config;
    auto gb = draw_generator_batch(b, cfg, n, seed, 0);
    auto ctx = m.G.forward(b, gb.z, gb.c1, seed);
    auto img = to_host_vector<float>(b, ctx.image());
    for (auto& v : img) v = float(std::clamp(std::round((double(v) + 1.0) * 127.5), 0.0, 255.0) / 127.5 - 1.0);
    return img;
}

/// The decoder's fingerprint logits of `images` ([n, C, R, R]), n * bits values.
template <Backend B>
std::vector<float> decode_logits(B& b, const std::string& model, const std::vector<float>& images) {
    auto m = io::load_meta_model(b, model);
    const ModelConfig& cfg = m.config;
    const std::int64_t per = std::int64_t(cfg.image_channels) * cfg.resolution * cfg.resolution;
    const Shape s{std::int64_t(images.size()) / per, cfg.image_channels, cfg.resolution, cfg.resolution};
    const auto dec = decode_batch(b, m.F, from_host(b, s, std::span<const float>(images)));
    std::vector<float> out;
    for (const auto& d : dec) out.insert(out.end(), d.logits.begin(), d.logits.end());
    return out;
}

/// Images of the generator baked with fingerprint `bits` (0/1 floats) for latents drawn from seed,
/// with noise seed `seed`: exercises instantiate() and forward_baked on the backend.
template <Backend B>
std::vector<float> baked_images(B& b, const std::string& model, const std::vector<float>& bits, int n, std::uint64_t seed) {
    auto m = io::load_meta_model(b, model);
    const ModelConfig& cfg = m.config;
    Tensor<B> c = from_host(b, Shape{1, cfg.fingerprint_bits}, std::span<const float>(bits));
    auto Gu = instantiate(b, m.G, c);
    Tensor<B> z(b, Shape{n, cfg.z_dim});
    b.normal(RngKey{seed, 7, 0}, z.size(), z.data());
    auto ctx = Gu.forward_baked(b, z, seed);
    return to_host_vector<float>(b, ctx.image());
}

/// Per step: G+F total, latent, fingerprint terms, D total and R1 of `steps` Trainer steps on the
/// blob images, from the initialisation that the seed in tc gives on every backend.
template <Backend B>
std::vector<double> training_losses(B& b, const ModelConfig& cfg, const TrainConfig& tc, int steps) {
    Trainer<B> tr(b, cfg, tc);
    std::vector<double> out;
    for (int s = 0; s < steps; ++s) {
        const auto st = tr.step(from_host(b, test::blob_images(cfg, int(tc.batch), std::uint64_t(s))));
        out.insert(out.end(), {st.g.total, st.g.latent, st.g.fingerprint, st.d.total, st.d.r1});
    }
    return out;
}

/// The trainer paths the comparison covers: the options that change what a step computes.
enum class TrainPath {
    plain,                ///< the paper's objective
    clamp_decoder_input,  ///< F reads clamp(G(z, c), -1, 1) and G's decoder gradient is masked (backend op clamp)
    decoder_only,         ///< F alone on the frozen EMA generator, every second image rounded to 8 bits (quantize_u8), clamped
    immunised,            ///< crop, blur, brightness/contrast and noise between G and F (JPEG off: host code, and a
                          ///< rounding-level difference of the two backends' images would change its output)
};
inline const char* path_name(TrainPath p) {
    switch (p) {
        case TrainPath::plain: return "plain";
        case TrainPath::clamp_decoder_input: return "clamp_decoder_input";
        case TrainPath::decoder_only: return "decoder_only";
        case TrainPath::immunised: return "immunised";
    }
    return "?";
}

/// The tiny-preset training setup of the comparison (R1 every 3 steps, so 10 steps hold 4 R1 steps).
inline std::pair<ModelConfig, TrainConfig> training_setup(TrainPath path = TrainPath::plain) {
    TrainConfig tc;
    tc.batch = 8;
    tc.seed = 21;
    tc.d_reg_interval = 3;
    if (path == TrainPath::clamp_decoder_input || path == TrainPath::decoder_only) tc.clamp_decoder_input = true;
    if (path == TrainPath::decoder_only) tc.decoder_only = true;
    if (path == TrainPath::immunised) {
        tc.immunise.enabled = true;
        tc.immunise.p_crop = tc.immunise.p_blur = tc.immunise.p_color = tc.immunise.p_noise = 1.0;  // every perturbation, every image
        tc.immunise.p_jpeg = 0.0;
    }
    return {ModelConfig::tiny(), tc};
}

// The CPU side, compiled by the host compiler in parity_cpu.cpp (Eigen CPU backend, float32).
std::vector<float> cpu_generate_8bit(int n, std::uint64_t seed);
std::vector<float> cpu_decode_logits(const std::vector<float>& images);
std::vector<float> cpu_baked_images(const std::vector<float>& bits, int n, std::uint64_t seed);
std::vector<double> cpu_training_losses(int steps, TrainPath path);

}  // namespace sgf::parity
