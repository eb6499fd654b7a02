// Training checkpoints: everything needed to continue a run bit-identically (all randomness is
// counter-based on (seed, step), so the RNG state is the step counter and the data position).
#pragma once

#include <sgf/io/datasets.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/train/trainer.hpp>

namespace sgf {

template <Backend B>
void save_checkpoint(B& b, const std::filesystem::path& path, Trainer<B>& tr, const io::Sampler& sampler,
                     const std::map<std::string, std::string>& extra = {}) {
    io::SafetensorsFile f;
    io::set_header(f, "checkpoint", tr.model_config());
    for (const auto& [k, v] : extra) f.metadata[k] = v;
    f.metadata["sgf.train_config"] = nlohmann::json(tr.train_config()).dump();
    f.metadata["sgf.step"] = std::to_string(tr.step_count());
    f.metadata["sgf.sampler"] = fmt::format("{} {}", sampler.epoch(), sampler.position());
    f.metadata["sgf.adam_steps"] = fmt::format("{} {} {}", tr.opt_generator().steps(), tr.opt_decoder().steps(),
                                               tr.opt_discriminator().steps());
    io::put_parameters(b, f, tr.generator().parameters());
    io::put_parameters(b, f, tr.generator_ema().parameters(), "ema.");
    io::put_parameters(b, f, tr.decoder().parameters());
    io::put_parameters(b, f, tr.discriminator().parameters());
    auto put_opt = [&](Adam<B>& opt, const std::string& net) {
        io::put_tensors(b, f, opt.parameters(), opt.first_moments(), "opt." + net + ".m.");
        io::put_tensors(b, f, opt.parameters(), opt.second_moments(), "opt." + net + ".v.");
    };
    put_opt(tr.opt_generator(), "G");
    put_opt(tr.opt_decoder(), "F");
    put_opt(tr.opt_discriminator(), "D");
    f.save(path);
}

/// Reads the train config stored in a checkpoint (to build a Trainer before load_checkpoint).
inline std::pair<ModelConfig, TrainConfig> read_checkpoint_configs(const std::filesystem::path& path) {
    const auto f = io::SafetensorsFile::load(path);
    const ModelConfig mc = io::check_header(f, {"checkpoint"});
    TrainConfig tc;
    try {
        tc = nlohmann::json::parse(f.meta("sgf.train_config")).get<TrainConfig>();
    } catch (const nlohmann::json::exception& e) {
        SGF_THROW(FormatError, "{}: training config is not valid JSON: {}", path.string(), e.what());
    }
    return {mc, tc};
}

/// Refuses a file whose model config (`kind` names what it is, for the message) is not the trainer's.
inline void check_same_model(const std::string& source, const char* kind, const ModelConfig& in_file,
                             const ModelConfig& trainer) {
    const nlohmann::json a = in_file, b = trainer;
    if (a != b) SGF_THROW(FormatError, "{}: {} model config {}, not {}", source, kind, a.dump(), b.dump());
}

template <Backend B>
void load_checkpoint(B& b, const std::filesystem::path& path, Trainer<B>& tr, io::Sampler& sampler) {
    const auto f = io::SafetensorsFile::load(path);
    check_same_model(path.string(), "checkpoint was written for", io::check_header(f, {"checkpoint"}), tr.model_config());
    io::get_parameters(b, f, tr.generator().parameters());
    io::get_parameters(b, f, tr.generator_ema().parameters(), "ema.");
    io::get_parameters(b, f, tr.decoder().parameters());
    io::get_parameters(b, f, tr.discriminator().parameters());
    auto get_opt = [&](Adam<B>& opt, const std::string& net) {
        io::get_tensors(b, f, opt.parameters(), opt.first_moments(), "opt." + net + ".m.");
        io::get_tensors(b, f, opt.parameters(), opt.second_moments(), "opt." + net + ".v.");
    };
    get_opt(tr.opt_generator(), "G");
    get_opt(tr.opt_decoder(), "F");
    get_opt(tr.opt_discriminator(), "D");
    long long step = 0, ep = 0, pos = 0, ag = 0, af = 0, ad = 0;
    if (std::sscanf(f.meta("sgf.step").c_str(), "%lld", &step) != 1 ||
        std::sscanf(f.meta("sgf.sampler").c_str(), "%lld %lld", &ep, &pos) != 2 ||
        std::sscanf(f.meta("sgf.adam_steps").c_str(), "%lld %lld %lld", &ag, &af, &ad) != 3 || step < 0)
        SGF_THROW(FormatError, "{}: malformed step/sampler/optimiser counters in the metadata", path.string());
    tr.set_step_count(step);
    tr.opt_generator().set_steps(ag);
    tr.opt_decoder().set_steps(af);
    tr.opt_discriminator().set_steps(ad);
    sampler.restore(ep, pos);
}

/// Starts a new run from the weights of a release (meta-model) file, e.g. to fine-tune the default
/// model with other loss weights or on another backend: the file's EMA generator becomes both the
/// trained generator and its EMA, F and D are the file's; the optimisers start with zero moments and
/// the step counter at 0 (a release file holds no optimiser state; --resume continues a run exactly).
/// `f` is the loaded file (read_release_config's check passed on it).
template <Backend B>
void load_release_weights(B& b, const io::SafetensorsFile& f, Trainer<B>& tr) {
    check_same_model(f.source, "the file holds", io::check_header(f, {"meta-model"}), tr.model_config());
    io::get_parameters(b, f, tr.generator().parameters());
    io::get_parameters(b, f, tr.generator_ema().parameters());
    io::get_parameters(b, f, tr.decoder().parameters());
    io::get_parameters(b, f, tr.discriminator().parameters());
}

/// The model config of a release (meta-model) file, checked as load_meta_model checks it.
inline ModelConfig read_release_config(const io::SafetensorsFile& f) { return io::check_header(f, {"meta-model"}); }

}  // namespace sgf
