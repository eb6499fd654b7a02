// One config struct for the whole fingerprinted GAN (G with its embedding E, decoder F, and D),
// its presets, and its JSON form (stored in every model file's metadata).
#pragma once

#include <sgf/core/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace sgf {

struct ModelConfig {
    static constexpr int kMaxResolution = 8192;
    static constexpr int kMaxWidth = 1 << 16;  ///< cap of every width / size field

    std::string preset = "custom";
    int resolution = 32;      ///< output side, a power of two >= 8
    int image_channels = 1;   ///< 1 (grayscale) or 3 (RGB)
    int fingerprint_bits = 128;
    int z_dim = 64;
    int w_dim = 128;          ///< width of E's output, fed to every modulated layer
    int embed_layers = 8;     ///< depth of E
    int embed_width = 128;    ///< hidden width of E
    double embed_lr_mult = 0.01;
    int channel_base = 1024;  ///< channels at resolution r: min(channel_base / r, channel_max)
    int channel_max = 128;
    int mbstd_group = 4;
    int fc_width = 512;       ///< width of the dense layer after the 4x4 conv in F and D (paper: 512)

    int channels_at(int r) const { return std::max(1, std::min(channel_base / r, channel_max)); }
    /// Resolutions of the synthesis blocks: 4, 8, ..., resolution.
    std::vector<int> resolutions() const {
        std::vector<int> rs;
        for (int r = 4; r <= resolution; r *= 2) rs.push_back(r);
        return rs;
    }
    int decoder_outputs() const { return z_dim + fingerprint_bits; }

    void validate() const {
        SGF_CHECK(resolution >= 8 && (resolution & (resolution - 1)) == 0, ArgumentError,
                  "model config: resolution must be a power of two >= 8, got {}", resolution);
        SGF_CHECK(resolution <= kMaxResolution, ArgumentError, "model config: resolution must be at most {}, got {}", kMaxResolution,
                  resolution);
        SGF_CHECK(image_channels == 1 || image_channels == 3, ArgumentError,
                  "model config: image_channels must be 1 or 3, got {}", image_channels);
        SGF_CHECK(fingerprint_bits >= 1 && fingerprint_bits <= 4096, ArgumentError,
                  "model config: fingerprint_bits must be in 1..4096, got {}", fingerprint_bits);
        SGF_CHECK(z_dim >= 1 && w_dim >= 1 && embed_layers >= 1 && embed_width >= 1 && channel_base >= 1 &&
                      channel_max >= 1 && mbstd_group >= 1 && fc_width >= 1,
                  ArgumentError, "model config: sizes must be positive");
        // upper bounds keep every size product (weights, z_dim + bits, channels x resolution) far
        // inside int64 and refuse configs no machine could allocate
        SGF_CHECK(z_dim <= kMaxWidth && w_dim <= kMaxWidth && embed_width <= kMaxWidth && channel_max <= kMaxWidth &&
                      fc_width <= kMaxWidth && mbstd_group <= kMaxWidth && embed_layers <= 64 && channel_base <= (1 << 26),
                  ArgumentError,
                  "model config: z_dim, w_dim, embed_width, channel_max, fc_width and mbstd_group must be at most {}, "
                  "embed_layers at most 64, channel_base at most 2^26",
                  kMaxWidth);
        // lr_mult scales the stored weights at run time (1/lr_mult at init): a tiny or infinite one
        // makes E's output constant or NaN, i.e. no fingerprint at all
        SGF_CHECK(std::isfinite(embed_lr_mult) && embed_lr_mult >= 1e-6 && embed_lr_mult <= 1e3, ArgumentError,
                  "model config: embed_lr_mult must be in [1e-6, 1e3], got {}", embed_lr_mult);
    }

    /// For tests: 16 px, 4 bits, a few channels; one training step takes milliseconds and the bits
    /// become decodable within a few hundred steps (fewer bits train much faster: 16 bits at this
    /// size need thousands of steps).
    static ModelConfig tiny() {
        ModelConfig c;
        c.preset = "tiny";
        c.resolution = 16;
        c.fingerprint_bits = 4;
        c.z_dim = 8;
        c.w_dim = 32;
        c.embed_layers = 2;
        c.embed_width = 32;
        c.channel_base = 128;
        c.channel_max = 16;
        c.fc_width = 16;
        return c;
    }
    /// The CPU default: 32 px grayscale (Fashion-MNIST padded), 128 bits, 64 channels up to 16 px
    /// and 32 at 32 px.
    static ModelConfig small() {
        ModelConfig c;
        c.preset = "small";
        c.resolution = 32;
        c.fingerprint_bits = 128;
        c.z_dim = 64;
        // E 2 x 512 and w 512, the paper's 4:1 ratio of w to bits: a square E (128 wide for 128 bits)
        // passes the bits through badly conditioned random maps (condition number of the bit-flip
        // matrix of w about 15,000 at initialisation against 8 here; docs/training-log.md, session 34)
        c.w_dim = 512;
        c.embed_layers = 2;  // the paper's 8 make c -> w far harder to invert on a CPU budget
        c.embed_width = 512;
        c.channel_base = 1024;
        c.channel_max = 64;
        return c;
    }
    /// The paper's 128-px architecture: 512 channels up to 32 px, 256 at 64, 128 at 128; E 8x512.
    static ModelConfig paper128() {
        ModelConfig c;
        c.preset = "paper128";
        c.resolution = 128;
        c.image_channels = 3;
        c.fingerprint_bits = 128;
        c.z_dim = 512;
        c.w_dim = 512;
        c.embed_layers = 8;
        c.embed_width = 512;
        c.channel_base = 16384;
        c.channel_max = 512;
        return c;
    }
    static ModelConfig preset_named(const std::string& name) {
        if (name == "tiny") return tiny();
        if (name == "small") return small();
        if (name == "paper128") return paper128();
        SGF_THROW(ArgumentError, "unknown preset '{}' (known: tiny, small, paper128)", name);
    }
};

inline void to_json(nlohmann::json& j, const ModelConfig& c) {
    j = nlohmann::json{{"preset", c.preset},
                       {"resolution", c.resolution},
                       {"image_channels", c.image_channels},
                       {"fingerprint_bits", c.fingerprint_bits},
                       {"z_dim", c.z_dim},
                       {"w_dim", c.w_dim},
                       {"embed_layers", c.embed_layers},
                       {"embed_width", c.embed_width},
                       {"embed_lr_mult", c.embed_lr_mult},
                       {"channel_base", c.channel_base},
                       {"channel_max", c.channel_max},
                       {"mbstd_group", c.mbstd_group},
                       {"fc_width", c.fc_width}};
}

namespace detail {
/// j[key] as an int: a JSON integer within int's range, else FormatError "<what>: <key> must be an
/// integer in int's range" (get_to(int) would wrap 2^32 + 32 to 32, cut 16.9 to 16 and cast 1e20
/// with undefined behaviour). A missing key throws nlohmann's out_of_range, as j.at does.
inline void get_json_int(const nlohmann::json& j, const char* key, int& out, std::string_view what) {
    const auto& v = j.at(key);
    const bool ok = v.is_number_integer() &&
                    (v.is_number_unsigned() ? v.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<int>::max())
                                            : v.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                                  v.get<std::int64_t>() <= std::numeric_limits<int>::max());
    if (!ok) SGF_THROW(FormatError, "{}: {} must be an integer in int's range, got {}", what, key, v.dump());
    out = v.get<int>();
}
}  // namespace detail

inline void from_json(const nlohmann::json& j, ModelConfig& c) {
    const auto get_int = [&](const char* key, int& out) { detail::get_json_int(j, key, out, "model config"); };
    try {
        j.at("preset").get_to(c.preset);
        get_int("resolution", c.resolution);
        get_int("image_channels", c.image_channels);
        get_int("fingerprint_bits", c.fingerprint_bits);
        get_int("z_dim", c.z_dim);
        get_int("w_dim", c.w_dim);
        get_int("embed_layers", c.embed_layers);
        get_int("embed_width", c.embed_width);
        j.at("embed_lr_mult").get_to(c.embed_lr_mult);
        get_int("channel_base", c.channel_base);
        get_int("channel_max", c.channel_max);
        get_int("mbstd_group", c.mbstd_group);
        get_int("fc_width", c.fc_width);
    } catch (const nlohmann::json::exception& e) {
        SGF_THROW(FormatError, "model config: {}", e.what());
    }
    c.validate();
}

}  // namespace sgf
