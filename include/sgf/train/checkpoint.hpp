// Training checkpoints: everything needed to continue a run bit-identically (all randomness is
// counter-based on (seed, step), so the RNG state is the step counter and the data position).
#pragma once

#include <sgf/io/datasets.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/train/trainer.hpp>

#include <algorithm>
#include <optional>

namespace sgf {

/// The training data a run uses, recorded in its checkpoints (metadata `sgf.dataset`,
/// `sgf.dataset_images`, `sgf.dataset_digest`) so that --resume refuses other data: a smaller data set
/// used to stop with a bare "sampler: invalid state", a larger or different one continued silently on
/// other images.
struct TrainingData {
    std::string name;         ///< "fashion-mnist/train", or the image folder's absolute, canonical path
    std::int64_t images = 0;  ///< the number of images
    std::string digest;       ///< the data set's io::ImageDataset::source_digest; empty: not recorded
};

template <Backend B>
void save_checkpoint(B& b, const std::filesystem::path& path, Trainer<B>& tr, const io::Sampler& sampler,
                     const std::map<std::string, std::string>& extra = {}) {
    io::SafetensorsFile f;
    io::set_header(f, "checkpoint", tr.model_config());
    io::add_extra_metadata(f, extra, path);
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

/// As above, recording `data` (the run's training data) for load_checkpoint to compare on resume.
template <Backend B>
void save_checkpoint(B& b, const std::filesystem::path& path, Trainer<B>& tr, const io::Sampler& sampler,
                     const TrainingData& data, std::map<std::string, std::string> extra = {}) {
    extra["sgf.dataset"] = data.name;
    extra["sgf.dataset_images"] = std::to_string(data.images);
    if (!data.digest.empty()) extra["sgf.dataset_digest"] = data.digest;
    save_checkpoint(b, path, tr, sampler, extra);
}

/// The training data recorded in checkpoint `f`; nullopt for checkpoints written before sgf recorded
/// it, an empty digest for those written before sgf recorded the digest (FormatError when the record
/// is incomplete or malformed).
inline std::optional<TrainingData> recorded_training_data(const io::SafetensorsFile& f) {
    const auto name = f.metadata.find("sgf.dataset");
    const auto images = f.metadata.find("sgf.dataset_images");
    const auto digest = f.metadata.find("sgf.dataset_digest");
    const bool has_digest = digest != f.metadata.end();
    if (name == f.metadata.end() && images == f.metadata.end() && !has_digest) return std::nullopt;
    long long n = -1;
    char tail = 0;
    const auto is_digest = [](const std::string& d) {
        return d.size() == 16 && std::all_of(d.begin(), d.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
    };
    if (name == f.metadata.end() || images == f.metadata.end() ||
        std::sscanf(images->second.c_str(), "%lld%c", &n, &tail) != 1 || n < 0 || (has_digest && !is_digest(digest->second)))
        SGF_THROW(FormatError,
                  "{}: malformed training-data record (sgf.dataset, sgf.dataset_images, sgf.dataset_digest) in the metadata", f.source);
    return TrainingData{name->second, n, has_digest ? digest->second : std::string()};
}

/// ArgumentError (naming the checkpoint, its data and the given data) unless checkpoint `f` was
/// written for `given`: the same name and number of images, and the same digest when both have one.
/// A checkpoint without a record passes (load_checkpoint still refuses a data set too small for its
/// data position).
inline void check_training_data(const io::SafetensorsFile& f, const TrainingData& given) {
    const auto rec = recorded_training_data(f);
    if (rec && (rec->name != given.name || rec->images != given.images))
        SGF_THROW(ArgumentError,
                  "{}: this run was trained on {} ({} images), not on the given {} ({} images): resume with the same --data, "
                  "or start a new run in another --out",
                  f.source, rec->name, rec->images, given.name, given.images);
    if (rec && !rec->digest.empty() && !given.digest.empty() && rec->digest != given.digest)
        SGF_THROW(ArgumentError,
                  "{}: this run was trained on {} ({} images, digest {}), but the given data differ (digest {}): {}; resume with "
                  "the run's data, or start a new run in another --out",
                  f.source, rec->name, rec->images, rec->digest, given.digest,
                  given.name.starts_with("fashion-mnist/")
                      ? "another copy of Fashion-MNIST (SGF_FASHION_MNIST_DIR) or a changed one"
                      : "an image file was changed (even re-saved with the same pixels), replaced or renamed since");
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

/// Loads checkpoint `path` into `tr` and `sampler` (built for the run's configs and data). With
/// `data` (the data the run continues on), a checkpoint that records other training data is refused
/// (ArgumentError, check_training_data) before any weight is read; without a record, a data position
/// beyond the sampler's images is refused the same way.
template <Backend B>
void load_checkpoint(B& b, const std::filesystem::path& path, Trainer<B>& tr, io::Sampler& sampler,
                     const std::optional<TrainingData>& data = std::nullopt) {
    const auto f = io::SafetensorsFile::load(path);
    check_same_model(path.string(), "checkpoint was written for", io::check_header(f, {"checkpoint"}), tr.model_config());
    if (data) check_training_data(f, *data);
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
        std::sscanf(f.meta("sgf.adam_steps").c_str(), "%lld %lld %lld", &ag, &af, &ad) != 3 || step < 0 || ep < 0 || pos < 0)
        SGF_THROW(FormatError, "{}: malformed step/sampler/optimiser counters in the metadata", path.string());
    if (pos > sampler.size())
        SGF_THROW(ArgumentError,
                  "{}: its data position (image {} of epoch {}) lies beyond the {} images of the given data set: the data set "
                  "differs from the one this run was trained on; resume with the same --data",
                  path.string(), pos, ep, sampler.size());
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
