// sgf model files: safetensors with sgf metadata (see docs/model-format.md).
//   kind "meta-model":      G (EMA weights), F and D, weights only: what a model owner keeps
//   kind "baked-generator": one per-user generator, fingerprint folded in; no E, no F, no D
//   kind "checkpoint":      live G, EMA G, F, D, the three Adam states, step and data position
// Tensor names are the parameter names (G.b8.conv0.weight, F.b16.skip.weight, ...); a checkpoint
// prefixes the EMA copy with "ema." and optimiser moments with "opt.<net>.m." / "opt.<net>.v.".
#pragma once

#include <sgf/io/safetensors.hpp>
#include <sgf/nets.hpp>

namespace sgf::io {

inline constexpr const char* kFormatVersion = "1";

template <Backend B>
void put_parameters(B& b, SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, const std::string& prefix = "") {
    for (auto* p : ps) f.put<float>(prefix + p->name, p->dims, to_host_vector<float>(b, p->value));
}

template <Backend B>
void put_tensors(B& b, SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, std::vector<Tensor<B>>& ts,
                 const std::string& prefix) {
    for (std::size_t i = 0; i < ps.size(); ++i) f.put<float>(prefix + ps[i]->name, ps[i]->dims, to_host_vector<float>(b, ts[i]));
}

/// Loads every parameter by name, checking dtype and shape; FormatError names file and tensor.
template <Backend B>
void get_parameters(B& b, const SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, const std::string& prefix = "") {
    for (auto* p : ps) {
        const auto v = f.get<float>(prefix + p->name, &p->dims);
        upload_into(b, std::span<const float>(v), p->value);
    }
}

template <Backend B>
void get_tensors(B& b, const SafetensorsFile& f, const std::vector<Parameter<B>*>& ps, std::vector<Tensor<B>>& ts,
                 const std::string& prefix) {
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const auto v = f.get<float>(prefix + ps[i]->name, &ps[i]->dims);
        upload_into(b, std::span<const float>(v), ts[i]);
    }
}

inline void set_header(SafetensorsFile& f, const std::string& kind, const ModelConfig& cfg) {
    f.metadata["sgf.format_version"] = kFormatVersion;
    f.metadata["sgf.kind"] = kind;
    f.metadata["sgf.config"] = nlohmann::json(cfg).dump();
}

/// Reads and checks kind/version; returns the model config.
inline ModelConfig check_header(const SafetensorsFile& f, std::initializer_list<std::string_view> kinds) {
    const std::string& v = f.meta("sgf.format_version");
    if (v != kFormatVersion)
        SGF_THROW(FormatError, "{}: format version {} is not supported (this sgf reads version {})", f.source, v, kFormatVersion);
    const std::string& kind = f.meta("sgf.kind");
    bool ok = false;
    for (auto k : kinds) ok = ok || kind == k;
    if (!ok) SGF_THROW(FormatError, "{}: holds a '{}', expected {}", f.source, kind, fmt::join(kinds, " or "));
    ModelConfig cfg;
    try {
        cfg = nlohmann::json::parse(f.meta("sgf.config")).get<ModelConfig>();
    } catch (const nlohmann::json::exception& e) {
        SGF_THROW(FormatError, "{}: model config is not valid JSON: {}", f.source, e.what());
    } catch (const Error& e) {
        SGF_THROW(FormatError, "{}: {}", f.source, e.what());
    }
    return cfg;
}

/// The networks of a meta-model file.
template <Backend B>
struct MetaModel {
    ModelConfig config;
    MetaGenerator<B> G;
    ResidualCritic<B> F, D;
};

template <Backend B>
void save_meta_model(B& b, const std::filesystem::path& path, MetaGenerator<B>& G, ResidualCritic<B>& F,
                     ResidualCritic<B>& D, const std::map<std::string, std::string>& extra = {}) {
    SafetensorsFile f;
    set_header(f, "meta-model", G.config());
    for (const auto& [k, v] : extra) f.metadata[k] = v;
    put_parameters(b, f, G.parameters());
    put_parameters(b, f, F.parameters());
    put_parameters(b, f, D.parameters());
    f.save(path);
}

template <Backend B>
MetaModel<B> load_meta_model(B& b, const std::filesystem::path& path) {
    const SafetensorsFile f = SafetensorsFile::load(path);
    const ModelConfig cfg = check_header(f, {"meta-model"});
    MetaModel<B> m{cfg, MetaGenerator<B>(b, cfg, kNoInit), make_decoder(b, cfg, kNoInit), make_discriminator(b, cfg, kNoInit)};
    get_parameters(b, f, m.G.parameters());
    get_parameters(b, f, m.F.parameters());
    get_parameters(b, f, m.D.parameters());
    return m;
}

/// A baked per-user generator: only its own weights (never F, E, D or other users' fingerprints).
template <Backend B>
void save_baked_generator(B& b, const std::filesystem::path& path, MetaGenerator<B>& Gu,
                          const std::map<std::string, std::string>& extra = {}) {
    SGF_CHECK(Gu.baked(), ArgumentError, "save_baked_generator: '{}' would hold a meta generator", path.string());
    SafetensorsFile f;
    set_header(f, "baked-generator", Gu.config());
    for (const auto& [k, v] : extra) f.metadata[k] = v;
    put_parameters(b, f, Gu.parameters());
    f.save(path);
}

template <Backend B>
MetaGenerator<B> load_baked_generator(B& b, const std::filesystem::path& path) {
    const SafetensorsFile f = SafetensorsFile::load(path);
    const ModelConfig cfg = check_header(f, {"baked-generator"});
    MetaGenerator<B> G(b, cfg, kNoInit, true);
    get_parameters(b, f, G.parameters());
    return G;
}

}  // namespace sgf::io
