// Decoding fingerprints from images with the decoder F: batches of float images, in-memory 8-bit
// images or image files (any size, gray or RGB: converted to the model's channels, centre-cropped to a square and resized
// with the antialiased filter of io/image.hpp).
#pragma once

#include <sgf/fingerprint.hpp>
#include <sgf/io/image.hpp>
#include <sgf/nets.hpp>

#include <cmath>
#include <concepts>
#include <filesystem>
#include <functional>
#include <optional>
#include <ranges>
#include <string>
#include <vector>

namespace sgf {

struct Decoded {
    Fingerprint fingerprint;
    std::vector<float> logits;  ///< one per bit; bit = logit > 0
    std::vector<float> z_hat;
};

/// Decodes a batch of images [N, C, R, R] in [-1, 1].
template <Backend B>
std::vector<Decoded> decode_batch(B& b, const ResidualCritic<B>& F, const Tensor<B>& images) {
    const ModelConfig& cfg = F.config();
    if (images.shape() == Shape{0, cfg.image_channels, cfg.resolution, cfg.resolution}) return {};  // as decode_images({})
    auto ctx = F.forward(b, images);
    const auto out = to_host_vector<float>(b, ctx.output());
    const std::int64_t N = images.shape().n, S = cfg.decoder_outputs();
    SGF_CHECK(std::int64_t(out.size()) == N * S, ArgumentError,
              "decode: the network gives {} values per image, a decoder gives {} (z_dim + fingerprint bits): not the decoder F?",
              N > 0 ? std::int64_t(out.size()) / N : 0, S);
    std::vector<Decoded> res(static_cast<std::size_t>(N));
    for (std::int64_t n = 0; n < N; ++n) {
        auto& d = res[std::size_t(n)];
        d.z_hat.assign(out.begin() + n * S, out.begin() + n * S + cfg.z_dim);
        d.logits.assign(out.begin() + n * S + cfg.z_dim, out.begin() + (n + 1) * S);
        // a NaN logit reads as bit 0: an image holding NaN would decode to the all-zero code
        for (const float v : d.logits)
            SGF_CHECK(std::isfinite(v), NumericError, "decode: image {} gives a non-finite logit (does it hold NaN or Inf values?)", n);
        d.fingerprint = Fingerprint::from_logits(d.logits);
    }
    return res;
}

/// The smallest side (in pixels, before cropping) of an image that `decode_files` decodes for a
/// model of resolution R: R/4, at least 2 (8 px for `small`, 32 for `paper128`). A smaller image
/// would have to be enlarged more than 4x per side, so it holds under 1/16 of the pixels the decoder
/// reads; it is refused as unusable input instead of being reported as "not fingerprinted".
inline int min_decode_side(int resolution) { return io::min_image_side(resolution); }

/// An image as the decoder reads it: converted to the model's channels, centre-cropped to a square
/// and resized to R x R (io::prepare_for_model), as [1, C, R, R] floats in [-1, 1]. An image with a
/// side under min_decode_side(R) is an error that names it (`name`: its file, or "image 3"): a
/// FormatError of the file, or for an image the caller built in memory (`in_memory`) an ArgumentError.
inline HostTensor<float> image_for_decoder(const io::Image& raw, const ModelConfig& cfg, const std::string& name,
                                           bool in_memory = false) {
    io::detail::check_image(raw, name);  // sizes that do not agree, named
    const int min_side = min_decode_side(cfg.resolution);
    if (raw.width < min_side || raw.height < min_side) {
        const std::string what = fmt::format("{}: image is {}x{}, too small to decode: a {}-px model needs at least {} px per side",
                                             name, raw.width, raw.height, cfg.resolution, min_side);
        if (in_memory) throw ArgumentError(what);
        throw FormatError(what);
    }
    return io::to_tensor(io::prepare_for_model(raw, cfg.image_channels, cfg.resolution));
}

/// Decodes in-memory images of any size, gray or RGB, prepared as decode_files prepares files
/// (image_for_decoder). A bad image (too small, sizes that do not agree) is the caller's mistake: an
/// ArgumentError naming its index.
template <Backend B>
std::vector<Decoded> decode_images(B& b, const ResidualCritic<B>& F, const std::vector<io::Image>& images,
                                   std::int64_t batch = 64) {
    SGF_CHECK(batch >= 1, ArgumentError, "decode_images: batch must be >= 1, got {}", batch);
    const ModelConfig& cfg = F.config();
    std::vector<Decoded> out;
    out.reserve(images.size());
    std::vector<float> buf;
    for (std::size_t first = 0; first < images.size(); first += std::size_t(batch)) {
        const std::size_t n = std::min(images.size() - first, std::size_t(batch));
        buf.clear();
        for (std::size_t i = first; i < first + n; ++i) {
            const auto t = image_for_decoder(images[i], cfg, fmt::format("image {}", i), /*in_memory=*/true);
            buf.insert(buf.end(), t.data.begin(), t.data.end());
        }
        const Tensor<B> t = from_host<B, float>(b, Shape{std::int64_t(n), cfg.image_channels, cfg.resolution, cfg.resolution},
                                                std::span<const float>(buf));
        for (auto& d : decode_batch(b, F, t)) out.push_back(std::move(d));
    }
    return out;
}

/// One image file's result: the decode, or the reason it could not be read (never "no fingerprint").
struct FileDecode {
    std::string path;
    std::optional<Decoded> decoded;
    std::string error;       ///< set when decoded is empty
    bool io_error = false;   ///< missing/unreadable (true) vs malformed content (false)
    bool numeric_error = false;  ///< the decoder gave non-finite logits (NaN/Inf in the image or the decoder)

    /// Nothing when the file was decoded; otherwise its error as the exception it was: IoError
    /// (missing, unreadable), NumericError (non-finite logits) or FormatError (not an image, too
    /// small, ...), naming the file.
    void throw_if_failed() const {
        if (decoded) return;
        if (io_error) throw IoError(error);
        if (numeric_error) throw NumericError(error);
        throw FormatError(error);
    }
};

/// Called with (files handled, files in all) after every decoded batch and once at the end.
using DecodeProgress = std::function<void(std::int64_t, std::int64_t)>;

template <Backend B>
std::vector<FileDecode> decode_files(B& b, const ResidualCritic<B>& F, const std::vector<std::string>& paths,
                                     std::int64_t batch = 64, const io::ImageLimits& limits = {},
                                     const DecodeProgress& progress = {}) {
    SGF_CHECK(batch >= 1, ArgumentError, "decode_files: batch must be >= 1, got {}", batch);
    const ModelConfig& cfg = F.config();
    std::vector<FileDecode> out(paths.size());
    std::vector<std::size_t> pending;
    std::vector<float> buf;
    auto flush = [&] {
        if (pending.empty()) return;
        Tensor<B> t = from_host<B, float>(b, Shape{std::int64_t(pending.size()), cfg.image_channels, cfg.resolution, cfg.resolution},
                                          std::span<const float>(buf));
        try {
            auto dec = decode_batch(b, F, t);
            for (std::size_t i = 0; i < pending.size(); ++i) out[pending[i]].decoded = std::move(dec[i]);
        } catch (const NumericError&) {  // non-finite logits: one file at a time, so that only its entry fails
            const std::size_t S = buf.size() / pending.size();
            for (std::size_t i = 0; i < pending.size(); ++i) {
                const Tensor<B> one = from_host<B, float>(b, Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution},
                                                          std::span<const float>(buf.data() + i * S, S));
                try {
                    out[pending[i]].decoded = std::move(decode_batch(b, F, one)[0]);
                } catch (const NumericError& e) {
                    out[pending[i]].error = fmt::format("{}: {}", paths[pending[i]], e.what());
                    out[pending[i]].numeric_error = true;
                }
            }
        }
        pending.clear();
        buf.clear();
    };
    for (std::size_t i = 0; i < paths.size(); ++i) {
        out[i].path = paths[i];
        try {
            const auto t = image_for_decoder(io::load_image(paths[i], limits), cfg, paths[i]);
            buf.insert(buf.end(), t.data.begin(), t.data.end());
            pending.push_back(i);
        } catch (const IoError& e) {
            out[i].error = e.what();
            out[i].io_error = true;
        } catch (const Error& e) {
            out[i].error = e.what();
        }
        if (static_cast<std::int64_t>(pending.size()) == batch) {
            flush();
            if (progress && i + 1 < paths.size()) progress(std::int64_t(i + 1), std::int64_t(paths.size()));
        }
    }
    flush();
    if (progress) progress(std::int64_t(paths.size()), std::int64_t(paths.size()));
    return out;
}

/// The same for any range of paths (std::vector<std::filesystem::path>, a span of string_views, ...).
/// Not for one path: a std::filesystem::path is itself a range of paths (its components), so one file
/// goes to decode_file, or into a vector.
template <Backend B, std::ranges::input_range Paths>
    requires std::convertible_to<std::ranges::range_reference_t<Paths>, std::filesystem::path> &&
             (!std::same_as<std::remove_cvref_t<Paths>, std::filesystem::path>)
std::vector<FileDecode> decode_files(B& b, const ResidualCritic<B>& F, const Paths& paths, std::int64_t batch = 64,
                                     const io::ImageLimits& limits = {}, const DecodeProgress& progress = {}) {
    std::vector<std::string> names;
    for (auto&& p : paths) names.push_back(std::filesystem::path(p).string());
    return decode_files(b, F, names, batch, limits, progress);
}

/// One image file decoded, or the exception that says why it could not be (IoError: missing or
/// unreadable; FormatError: not a PNG/JPEG, too small, ...), naming the file.
template <Backend B>
Decoded decode_file(B& b, const ResidualCritic<B>& F, const std::filesystem::path& path, const io::ImageLimits& limits = {}) {
    std::vector<FileDecode> r = decode_files(b, F, std::vector<std::string>{path.string()}, 1, limits);
    r[0].throw_if_failed();
    return std::move(*r[0].decoded);
}

}  // namespace sgf
