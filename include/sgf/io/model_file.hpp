// sgf model files: safetensors with sgf metadata (see docs/model-format.md).
//   kind "meta-model":      G (EMA weights), F and D, weights only: what a model owner keeps
//   kind "baked-generator": one per-user generator, fingerprint folded in; no E, no F, no D
//   kind "checkpoint":      live G, EMA G, F, D, the three Adam states, step and data position
//   kind "decoder":         F alone: what a verifier needs, without the power to bake (E, G) or train (D)
//   kind "meta-generator":  E and G (EMA weights) alone: what a baking service needs, without F or D
// Tensor names are the parameter names (G.b8.conv0.weight, F.b16.skip.weight, ...); a checkpoint
// prefixes the EMA copy with "ema." and optimiser moments with "opt.<net>.m." / "opt.<net>.v.".
#pragma once

#include <sgf/io/safetensors.hpp>
#include <sgf/nets.hpp>

#include <cmath>
#include <cstring>
#include <map>

namespace sgf::io {

inline constexpr const char* kFormatVersion = "1";

template <Backend B, class P>
    requires std::same_as<std::remove_const_t<P>, Parameter<B>>  // writers take const networks
void put_parameters(B& b, SafetensorsFile& f, const std::vector<P*>& ps, const std::string& prefix = "") {
    for (auto* p : ps) {
        // put() replaces a tensor of the same name: a network given twice would silently lose another's
        SGF_CHECK(!f.tensors().contains(prefix + p->name), ArgumentError, "model file: two parameters named '{}' (one network given twice?)",
                  prefix + p->name);
        f.put<float>(prefix + p->name, p->dims, to_host_vector<float>(b, p->value));
    }
}

template <Backend B>
void put_tensors(B& b, SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, std::vector<Tensor<B>>& ts,
                 const std::string& prefix) {
    for (std::size_t i = 0; i < ps.size(); ++i) f.put<float>(prefix + ps[i]->name, ps[i]->dims, to_host_vector<float>(b, ts[i]));
}

/// The float32 values of tensor `name`, checked for dtype and shape and refused (FormatError naming
/// file and tensor) when one of them is NaN or Inf: no network sgf writes holds one (training stops
/// on NaN/Inf), and a loaded one would make every output NaN, which decodes as an all-zero
/// fingerprint that reads as "not fingerprinted" instead of as a broken file.
inline std::vector<float> get_finite(const SafetensorsFile& f, const std::string& name,
                                     const std::vector<std::int64_t>* expected_shape) {
    std::vector<float> v = f.get<float>(name, expected_shape);
    for (const float x : v)
        if (!std::isfinite(x)) SGF_THROW(FormatError, "{}: tensor '{}' holds NaN or Inf", f.source, name);
    return v;
}

/// Loads every parameter by name, checking dtype, shape and that every value is finite;
/// FormatError names file and tensor.
template <Backend B>
void get_parameters(B& b, const SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, const std::string& prefix = "") {
    for (auto* p : ps) {
        const auto v = get_finite(f, prefix + p->name, &p->dims);
        upload_into(b, std::span<const float>(v), p->value);
    }
}

/// As get_parameters, into `ts` (e.g. optimiser moments) under `prefix` + the parameter names.
template <Backend B>
void get_tensors(B& b, const SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, std::vector<Tensor<B>>& ts,
                 const std::string& prefix) {
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const auto v = get_finite(f, prefix + ps[i]->name, &ps[i]->dims);
        upload_into(b, std::span<const float>(v), ts[i]);
    }
}

inline void set_header(SafetensorsFile& f, const std::string& kind, const ModelConfig& cfg) {
    f.metadata["sgf.format_version"] = kFormatVersion;
    f.metadata["sgf.kind"] = kind;
    f.metadata["sgf.config"] = nlohmann::json(cfg).dump();
    // sgf.checksum covers the tensor data only; this covers the config, which decides how every
    // weight is used (an edited embed_lr_mult loads without complaint and decodes nothing)
    const std::string& text = f.metadata["sgf.config"];
    f.metadata["sgf.config_checksum"] = crc32_hex(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

/// FormatError when the file records a config checksum that its `sgf.config` does not have. A file
/// without one (written by sgf before session 25, or by another tool) is accepted.
inline void check_config_checksum(const SafetensorsFile& f) {
    const auto it = f.metadata.find("sgf.config_checksum");
    if (it == f.metadata.end()) return;
    const std::string& text = f.meta("sgf.config");
    const std::string actual = crc32_hex(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    if (it->second != actual)
        SGF_THROW(FormatError, "{}: the model config does not match its checksum (sgf.config_checksum {}, the config has {}): the "
                               "header was edited or is corrupt",
                  f.source, printable(it->second, 40), actual);
}

/// Adds a caller's metadata to a file being saved; ArgumentError (naming the file) for the keys sgf
/// writes and its loaders read (format version, kind, config, checksum): `{"sgf.kind", ...}` in
/// `extra` replaced the real header and wrote a file its own loader refused.
inline void add_extra_metadata(SafetensorsFile& f, const std::map<std::string, std::string>& extra, const std::filesystem::path& path) {
    for (const auto& [k, v] : extra) {
        SGF_CHECK(k != "sgf.format_version" && k != "sgf.kind" && k != "sgf.config" && k != "sgf.checksum" && k != "sgf.config_checksum",
                  ArgumentError,
                  "{}: metadata key '{}' is written by sgf itself; it cannot be given as extra metadata", path.string(), k);
        f.metadata[k] = v;
    }
}

/// NumericError (naming file and tensor) when a float tensor about to be saved holds NaN or Inf:
/// the loaders refuse such a file (get_finite), so it is not written and nothing is replaced.
inline void check_finite_before_saving(const SafetensorsFile& f, const std::filesystem::path& path) {
    for (const auto& [name, t] : f.tensors()) {
        if (t.dtype != "F32") continue;
        for (std::size_t i = 0; i + 4 <= t.bytes.size(); i += 4) {
            float v;
            std::memcpy(&v, t.bytes.data() + i, 4);
            if (!std::isfinite(v))
                SGF_THROW(NumericError, "{}: not written: tensor '{}' holds NaN or Inf (element {}), which no loader accepts",
                          path.string(), name, i / 4);
        }
    }
}

/// Limits on what an sgf model file may ask for, checked before any network is built
/// (docs/security.md). The container limits (header size, tensor count, file size) are separate.
struct ModelFileLimits {
    int max_resolution = 1024;  ///< generated images are resolution^2 pixels per channel and sample
};

/// A lower bound on the number of float weights a file of `kind` holds for config `cfg`: the
/// weight matrices and kernels of every layer (biases and scalars left out, so at least half of
/// all parameters). Computed in double: hostile configs overflow 64-bit integers.
inline double min_weight_count(const ModelConfig& cfg, std::string_view kind) {
    const double wd = cfg.w_dim, img = cfg.image_channels;
    auto ch = [&](int r) { return double(cfg.channels_at(r)); };
    auto generator = [&](bool baked) {
        double n = 0, in = cfg.fingerprint_bits;
        if (!baked)
            for (int i = 0; i < cfg.embed_layers; ++i) {
                const double out = i + 1 == cfg.embed_layers ? wd : double(cfg.embed_width);
                n += in * out;
                in = out;
            }
        n += double(cfg.z_dim) * ch(4) * 16;
        double prev = ch(4);
        for (int r : cfg.resolutions()) {
            const double c = ch(r), affine = baked ? 0.0 : wd;
            if (r > 4) n += prev * c * 9 + affine * prev;
            n += c * c * 9 + affine * c;  // conv
            n += c * img + affine * c;    // torgb
            prev = c;
        }
        return n;
    };
    auto critic = [&](double outputs, bool mbstd) {
        double n = img * ch(cfg.resolution);
        for (int r = cfg.resolution; r > 4; r /= 2) n += ch(r) * ch(r) * 9 + ch(r) * ch(r / 2) * 10;
        n += (ch(4) + (mbstd ? 1 : 0)) * ch(4) * 9 + ch(4) * 16 * cfg.fc_width + double(cfg.fc_width) * outputs;
        return n;
    };
    const double G = generator(false), F = critic(cfg.decoder_outputs(), false), D = critic(1, true);
    if (kind == "baked-generator") return generator(true);
    if (kind == "fd-classifier") return critic(2, false);  // a critic with at least 2 class outputs
    if (kind == "checkpoint") return 4 * G + 3 * (F + D);  // G, EMA G, F, D and Adam's two moments of each
    if (kind == "decoder") return F;
    if (kind == "meta-generator") return G;
    return G + F + D;
}

/// FormatError unless `f` holds at least the tensor bytes the networks of `cfg` (a file of `kind`)
/// need: a small file with a huge config would otherwise make the loader allocate without bound
/// before any tensor is checked.
inline void check_weight_bound(const SafetensorsFile& f, const ModelConfig& cfg, std::string_view kind) {
    double held = 0;
    for (const auto& [name, t] : f.tensors()) held += double(t.bytes.size());
    const double need = min_weight_count(cfg, kind);
    if (need * sizeof(float) > held)
        SGF_THROW(FormatError, "{}: the model config needs at least {:.0f} weights ({:.0f} bytes), but the file holds {:.0f} bytes "
                               "of tensor data; corrupt or hostile config",
                  f.source, need, need * sizeof(float), held);
}

/// Reads and checks kind/version, the tensor-data checksum and the config (limits, and enough
/// weights in the file for the networks it describes); returns the model config.
inline ModelConfig check_header(const SafetensorsFile& f, std::initializer_list<std::string_view> kinds,
                                const ModelFileLimits& lim = {}) {
    const std::string& v = f.meta("sgf.format_version");
    if (v != kFormatVersion)
        SGF_THROW(FormatError, "{}: format version {} is not supported (this sgf reads version {})", f.source, v, kFormatVersion);
    const std::string& kind = f.meta("sgf.kind");
    bool ok = false;
    for (auto k : kinds) ok = ok || kind == k;
    if (!ok) SGF_THROW(FormatError, "{}: holds a '{}', expected {}", f.source, kind, fmt::join(kinds, " or "));
    // parse() verified the checksum when present; an sgf model file must carry one
    (void)f.meta("sgf.checksum");
    check_config_checksum(f);
    ModelConfig cfg;
    try {
        cfg = nlohmann::json::parse(f.meta("sgf.config")).get<ModelConfig>();
    } catch (const nlohmann::json::exception& e) {
        SGF_THROW(FormatError, "{}: model config is not valid JSON: {}", f.source, e.what());
    } catch (const Error& e) {
        SGF_THROW(FormatError, "{}: {}", f.source, e.what());
    }
    if (cfg.resolution > lim.max_resolution)
        SGF_THROW(FormatError, "{}: model resolution {} is above the limit of {} (ModelFileLimits::max_resolution)", f.source,
                  cfg.resolution, lim.max_resolution);
    check_weight_bound(f, cfg, kind);
    return cfg;
}

/// The networks of a meta-model file.
template <Backend B>
struct MetaModel {
    ModelConfig config;
    MetaGenerator<B> G;
    ResidualCritic<B> F, D;
};

/// Writes a model file of `kind`: the header for `cfg`, the caller's extra metadata, then each
/// network's parameters in the order given; refused before anything is written when a weight is not
/// finite, and written atomically (temp file + rename). The save_* functions below check what they
/// are given and then call this.
template <Backend B, class... Parameters>
void write_model_file(B& b, const std::filesystem::path& path, const std::string& kind, const ModelConfig& cfg,
                      const std::map<std::string, std::string>& extra, const Parameters&... networks) {
    SafetensorsFile f;
    set_header(f, kind, cfg);
    add_extra_metadata(f, extra, path);
    (put_parameters(b, f, networks), ...);
    check_finite_before_saving(f, path);
    f.save(path);
}

template <Backend B>
void save_meta_model(B& b, const std::filesystem::path& path, const MetaGenerator<B>& G, const ResidualCritic<B>& F,
                     const ResidualCritic<B>& D, const std::map<std::string, std::string>& extra = {}) {
    G.check_not_empty("save_meta_model");
    F.check_not_empty("save_meta_model");
    D.check_not_empty("save_meta_model");
    SGF_CHECK(!G.baked(), ArgumentError, "save_meta_model: '{}' would hold a baked generator (save_baked_generator writes those)",
              path.string());
    SGF_CHECK(F.name_prefix() == "F" && D.name_prefix() == "D", ArgumentError,
              "save_meta_model: '{}': expected the decoder F and the discriminator D, got networks named '{}' and '{}'", path.string(),
              F.name_prefix(), D.name_prefix());
    const nlohmann::json cfg = G.config();
    SGF_CHECK(nlohmann::json(F.config()) == cfg && nlohmann::json(D.config()) == cfg, ArgumentError,
              "save_meta_model: '{}': the decoder and discriminator must have the generator's config ({}), got F {} and D {}",
              path.string(), cfg.dump(), nlohmann::json(F.config()).dump(), nlohmann::json(D.config()).dump());
    write_model_file(b, path, "meta-model", G.config(), extra, G.parameters(), F.parameters(), D.parameters());
}

/// From a file already read (e.g. to look at its `sgf.kind` first without reading it twice).
template <Backend B>
MetaModel<B> load_meta_model(B& b, const SafetensorsFile& f, const ModelFileLimits& lim = {}) {
    const ModelConfig cfg = check_header(f, {"meta-model"}, lim);
    MetaModel<B> m{cfg, MetaGenerator<B>(b, cfg, kNoInit), make_decoder(b, cfg, kNoInit), make_discriminator(b, cfg, kNoInit)};
    get_parameters(b, f, m.G.parameters());
    get_parameters(b, f, m.F.parameters());
    get_parameters(b, f, m.D.parameters());
    return m;
}
template <Backend B>
MetaModel<B> load_meta_model(B& b, const std::filesystem::path& path, const ModelFileLimits& lim = {}) {
    return load_meta_model(b, SafetensorsFile::load(path), lim);
}

/// The decoder F of a meta model with its config: decode and verify need nothing else.
template <Backend B>
struct DecoderModel {
    ModelConfig config;
    ResidualCritic<B> F;
};

/// Writes F alone (kind "decoder"): hand this to a verifier instead of the meta model, whose E and G
/// could bake a generator for any registered code (docs/verification.md, "Threat model").
template <Backend B>
void save_decoder(B& b, const std::filesystem::path& path, const ResidualCritic<B>& F, const std::map<std::string, std::string>& extra = {}) {
    F.check_not_empty("save_decoder");
    SGF_CHECK(F.outputs() == F.config().decoder_outputs(), ArgumentError,
              "save_decoder: '{}': the network has {} outputs, a decoder of this config has {}", path.string(), F.outputs(),
              F.config().decoder_outputs());
    write_model_file(b, path, "decoder", F.config(), extra, F.parameters());
}

/// F from a "decoder" file or a "meta-model" file (whose G and D are not loaded).
template <Backend B>
DecoderModel<B> load_decoder(B& b, const SafetensorsFile& f, const ModelFileLimits& lim = {}) {
    const ModelConfig cfg = check_header(f, {"meta-model", "decoder"}, lim);
    DecoderModel<B> m{cfg, make_decoder(b, cfg, kNoInit)};
    get_parameters(b, f, m.F.parameters());
    return m;
}
template <Backend B>
DecoderModel<B> load_decoder(B& b, const std::filesystem::path& path, const ModelFileLimits& lim = {}) {
    return load_decoder(b, SafetensorsFile::load(path), lim);
}

/// The meta generator (E and G) of a meta model with its config: baking and generating need nothing else.
template <Backend B>
struct GeneratorModel {
    ModelConfig config;
    MetaGenerator<B> G;
};

/// Writes E and G alone (kind "meta-generator"): hand this to the service that bakes each user's copy
/// instead of the meta model, whose decoder F would let it read or strip fingerprints and whose D
/// could train on (docs/verification.md, "Threat model").
template <Backend B>
void save_meta_generator(B& b, const std::filesystem::path& path, const MetaGenerator<B>& G,
                         const std::map<std::string, std::string>& extra = {}) {
    G.check_not_empty("save_meta_generator");
    SGF_CHECK(!G.baked(), ArgumentError, "save_meta_generator: '{}' would hold a baked generator (save_baked_generator writes those)",
              path.string());
    write_model_file(b, path, "meta-generator", G.config(), extra, G.parameters());
}

/// E and G from a "meta-generator" file or a "meta-model" file (whose F and D are not loaded).
template <Backend B>
GeneratorModel<B> load_meta_generator(B& b, const SafetensorsFile& f, const ModelFileLimits& lim = {}) {
    const ModelConfig cfg = check_header(f, {"meta-model", "meta-generator"}, lim);
    GeneratorModel<B> m{cfg, MetaGenerator<B>(b, cfg, kNoInit)};
    get_parameters(b, f, m.G.parameters());
    return m;
}
template <Backend B>
GeneratorModel<B> load_meta_generator(B& b, const std::filesystem::path& path, const ModelFileLimits& lim = {}) {
    return load_meta_generator(b, SafetensorsFile::load(path), lim);
}

/// A baked per-user generator: only its own weights (never F, E, D or other users' fingerprints).
template <Backend B>
void save_baked_generator(B& b, const std::filesystem::path& path, const MetaGenerator<B>& Gu,
                          const std::map<std::string, std::string>& extra = {}) {
    Gu.check_not_empty("save_baked_generator");
    SGF_CHECK(Gu.baked(), ArgumentError, "save_baked_generator: '{}' would hold a meta generator", path.string());
    write_model_file(b, path, "baked-generator", Gu.config(), extra, Gu.parameters());
}

template <Backend B>
MetaGenerator<B> load_baked_generator(B& b, const SafetensorsFile& f, const ModelFileLimits& lim = {}) {
    const ModelConfig cfg = check_header(f, {"baked-generator"}, lim);
    MetaGenerator<B> G(b, cfg, kNoInit, true);
    get_parameters(b, f, G.parameters());
    return G;
}
template <Backend B>
MetaGenerator<B> load_baked_generator(B& b, const std::filesystem::path& path, const ModelFileLimits& lim = {}) {
    return load_baked_generator(b, SafetensorsFile::load(path), lim);
}

}  // namespace sgf::io
