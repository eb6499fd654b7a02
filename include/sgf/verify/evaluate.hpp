// Bit accuracy of a meta model (algorithm.md 6): generate images from G with fresh random z and
// random fingerprints, decode them with F, and count matching bits, on the float output, on the
// output clamped to [-1, 1] (the PNG round trip without its 8-bit rounding: which of the two loses
// the bits) and after an 8-bit PNG round trip (encode with stb, decode again). Deterministic from
// the seed.
#pragma once

#include <sgf/verify/decode.hpp>
#include <sgf/train/objective.hpp>

#include <algorithm>
#include <functional>

namespace sgf {

struct BitAccuracyReport {
    std::int64_t images = 0;
    int bits = 0;
    double float_accuracy = 0;     ///< mean over images of the fraction of matching bits, float output
    double clamped_accuracy = 0;   ///< the same on the float output clamped to [-1, 1] (no rounding)
    double png_accuracy = 0;       ///< the same after an 8-bit PNG round trip
    double saturated_pixels = 0;   ///< fraction of output values outside [-1, 1] (lost to the clamp)
    double float_min = 1, png_min = 1;  ///< worst single image
    std::vector<double> per_bit_png;    ///< accuracy of each bit position (PNG), to spot dead bits
    double seconds = 0;
};

/// `progress(done, total)` is called after every batch when set.
template <Backend B>
BitAccuracyReport measure_bit_accuracy(B& b, MetaGenerator<B>& G, const ResidualCritic<B>& F, std::int64_t images,
                                       std::uint64_t seed, std::int64_t batch = 64,
                                       const std::function<void(std::int64_t, std::int64_t)>& progress = {}) {
    const ModelConfig& cfg = G.config();
    SGF_CHECK(!G.baked(), ArgumentError, "measure_bit_accuracy: needs the meta generator (with its fingerprint input)");
    const ModelConfig& fc = F.config();  // the decoder must read what G makes
    SGF_CHECK(fc.fingerprint_bits == cfg.fingerprint_bits && fc.z_dim == cfg.z_dim && fc.resolution == cfg.resolution &&
                  fc.image_channels == cfg.image_channels,
              ArgumentError,
              "measure_bit_accuracy: the decoder reads {} bits and z of {} from {}x{}x{} images, the generator makes {} bits and z of "
              "{} into {}x{}x{} images",
              fc.fingerprint_bits, fc.z_dim, fc.image_channels, fc.resolution, fc.resolution, cfg.fingerprint_bits, cfg.z_dim,
              cfg.image_channels, cfg.resolution, cfg.resolution);
    SGF_CHECK(images > 0 && batch > 0, ArgumentError, "measure_bit_accuracy: images and batch must be positive");
    const auto t0 = std::chrono::steady_clock::now();
    BitAccuracyReport r;
    r.images = images;
    r.bits = cfg.fingerprint_bits;
    r.per_bit_png.assign(std::size_t(cfg.fingerprint_bits), 0.0);
    const std::int64_t nb = cfg.fingerprint_bits;
    for (std::int64_t done = 0, k = 0; done < images; done += batch, ++k) {
        const std::int64_t n = std::min(batch, images - done);
        auto gb = draw_generator_batch(b, cfg, n, seed, std::uint64_t(k));
        auto g = G.forward(b, gb.z, gb.c1, gb.noise1);
        const auto truth = to_host_vector<float>(b, gb.c1);
        const auto dec_float = decode_batch(b, F, g.image());
        // 8-bit PNG round trip of every image
        const auto host = to_host<float>(b, g.image());
        std::vector<float> clamped(host.data.begin(), host.data.end());
        for (float& v : clamped) {
            r.saturated_pixels += v < -1.f || v > 1.f;
            v = std::clamp(v, -1.f, 1.f);
        }
        const auto dec_clamped = decode_batch(b, F, from_host<B, float>(b, host.shape, std::span<const float>(clamped)));
        std::vector<float> buf;
        buf.reserve(std::size_t(host.shape.size()));
        for (std::int64_t i = 0; i < n; ++i) {
            const std::string png = io::encode_png(io::to_image(host, i));
            const io::Image back = io::decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "png round trip");
            const auto t = io::to_tensor(back);
            buf.insert(buf.end(), t.data.begin(), t.data.end());
        }
        const Tensor<B> rt = from_host<B, float>(b, host.shape, std::span<const float>(buf));
        const auto dec_png = decode_batch(b, F, rt);
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t okf = 0, okc = 0, okp = 0;
            for (std::int64_t j = 0; j < nb; ++j) {
                const bool bit = truth[std::size_t(i * nb + j)] > 0.5f;
                okf += dec_float[std::size_t(i)].fingerprint.bit(int(j)) == bit;
                okc += dec_clamped[std::size_t(i)].fingerprint.bit(int(j)) == bit;
                const bool hit = dec_png[std::size_t(i)].fingerprint.bit(int(j)) == bit;
                okp += hit;
                r.per_bit_png[std::size_t(j)] += hit;
            }
            const double af = double(okf) / double(nb), ap = double(okp) / double(nb);
            r.float_accuracy += af;
            r.clamped_accuracy += double(okc) / double(nb);
            r.png_accuracy += ap;
            r.float_min = std::min(r.float_min, af);
            r.png_min = std::min(r.png_min, ap);
        }
        if (progress) progress(std::min(images, done + n), images);
    }
    r.float_accuracy /= double(images);
    r.clamped_accuracy /= double(images);
    r.png_accuracy /= double(images);
    r.saturated_pixels /= double(images) * double(cfg.image_channels) * double(cfg.resolution) * double(cfg.resolution);
    for (auto& v : r.per_bit_png) v /= double(images);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace sgf
