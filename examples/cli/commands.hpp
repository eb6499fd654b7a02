// The subcommands of `sgf` that run networks (train, instantiate, generate, decode, verify, demo,
// eval's bit accuracy), written once as templates over the backend. main.cpp parses the command line
// into a Request and runs it on the CPU backend, or hands it to run_on_cuda (cuda_commands.cu, built
// when nvcc is found) for --backend cuda. Every file a run writes has the same format on both
// backends, so a model trained on one loads on the other.
#pragma once

#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/train/loop.hpp>
#include <sgf/verify/decode.hpp>
#include <sgf/verify/evaluate.hpp>

#include "diagnostics.hpp"               // warn
#include "eval_command.hpp"               // sgf eval
#include "../common/exit_codes.hpp"       // exit codes (shared with sgf_train)
#include "../train/training_options.hpp"  // sgf train (shared with sgf_train)

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <thread>

namespace sgf_cli {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Exit codes (docs/cli.md), shared with sgf_train and sgf_train_cuda.
using sgf_examples::Exit;
using sgf_examples::kOk, sgf_examples::kInternal, sgf_examples::kUsage, sgf_examples::kIoError,
    sgf_examples::kFormatError, sgf_examples::kNumeric, sgf_examples::kBackend, sgf_examples::kNotFingerprinted,
    sgf_examples::kInconclusive;

struct Common {
    bool json = false;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::string backend = "cpu";
};

using sgf::terminal_safe;  // include/sgf/core/text.hpp: control characters as \xNN in every text output

/// Writes a command's result on stdout: `j` with --json, else `text`. Bytes that are not UTF-8 (a
/// file name from a Latin-1 file system, a label of a registry written by other software) are
/// replaced by U+FFFD in the JSON rather than failing after the work is done. A result that cannot
/// be written (stdout a full disk, a closed pipe) is an IoError (exit 3), not a silent success.
inline void emit(const Common& c, const json& j, const std::string& text) {
    if (c.json) std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    else std::cout << text;
    std::cout.flush();
    if (!std::cout) SGF_THROW(IoError, "standard output: cannot write the result (disk full or output closed?)");
}

/// A progress line on stderr for `what` over many files ("\rdecoding 640/10000 images"), only when
/// stderr is a terminal and the output is not --json, and only for more than one batch of files. The
/// line is ended when the work is done, and by the destructor when an error stops it earlier (so an
/// error message starts on a line of its own).
class FileProgress {
public:
    FileProgress(const Common& c, const char* what, std::size_t files)
        : what_(what), enabled_(!c.json && files > 64 && ::isatty(STDERR_FILENO)) {}
    FileProgress(const FileProgress&) = delete;
    FileProgress& operator=(const FileProgress&) = delete;
    ~FileProgress() {
        if (open_) std::fputc('\n', stderr);
    }
    sgf::DecodeProgress callback() {
        if (!enabled_) return {};
        return [this](std::int64_t done, std::int64_t total) {
            std::fprintf(stderr, "\r%s %lld/%lld images", what_, static_cast<long long>(done), static_cast<long long>(total));
            open_ = done != total;
            if (!open_) std::fputc('\n', stderr);
            std::fflush(stderr);
        };
    }

private:
    const char* what_;
    bool enabled_, open_ = false;
};

inline std::vector<float> draw_normal(std::size_t n, std::uint64_t seed, std::uint64_t stream) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = float(sgf::philox::normal(sgf::RngKey{seed, stream, 0}, i));
    return v;
}

template <class B>
std::vector<sgf::io::Image> generate_images(B& b, sgf::MetaGenerator<B>& G, const sgf::Fingerprint* fp, int count,
                                            std::uint64_t seed, int first = 0, int batch = 32) {
    const auto& cfg = G.config();
    std::vector<sgf::io::Image> out;
    // images first .. first + count - 1 of the sequence; a batch's draws depend on its first index,
    // so `first` must be a multiple of `batch` for a part to equal the same images made in one call
    const std::int64_t end = std::int64_t(first) + count;
    for (std::int64_t done = first; done < end; done += batch) {
        const int n = int(std::min<std::int64_t>(batch, end - done));
        auto zv = draw_normal(std::size_t(n) * cfg.z_dim, seed, 1000 + std::uint64_t(done));
        auto z = sgf::from_host<B, float>(b, sgf::Shape{n, cfg.z_dim}, std::span<const float>(zv));
        sgf::HostTensor<float> img;
        if (G.baked()) {
            img = sgf::to_host<float>(b, G.forward_baked(b, z, seed ^ (0x9e37u + std::uint64_t(done))).image());
        } else {
            const auto bits = fp->to_floats();
            std::vector<float> c;
            for (int i = 0; i < n; ++i) c.insert(c.end(), bits.begin(), bits.end());
            auto ct = sgf::from_host<B, float>(b, sgf::Shape{n, cfg.fingerprint_bits}, std::span<const float>(c));
            img = sgf::to_host<float>(b, G.forward(b, z, ct, seed ^ (0x9e37u + std::uint64_t(done))).image());
        }
        for (int i = 0; i < n; ++i) out.push_back(sgf::io::to_image(img, i));
    }
    return out;
}

inline json attribution_json(const sgf::Attribution& a) {
    return json{{"outcome", sgf::outcome_name(a.outcome)}, {"detected", a.detected},
                {"best_label", a.best_label},             {"best_matching_bits", a.best_matching},
                {"runner_up_label", a.runner_up_label},   {"runner_up_matching_bits", a.runner_up_matching},
                {"margin", a.margin},                     {"threshold_bits", a.threshold},
                {"bits", a.bits},                         {"registry_size", a.registry_size},
                {"log10_p_value", a.log10_p},             {"log10_family_p_value", a.log10_family_p},
                {"score", sgf::score_name(a.score)},      {"best_score", a.best_score},
                {"runner_up_score", a.runner_up_score},   {"score_total", a.score_total},
                {"score_threshold", a.score_threshold}};
}

/// The score verify and demo use for a model of `bits` bits: `requested`, except that fingerprints
/// longer than the weighted score's limit are scored by their bits, with a warning on stderr.
inline sgf::Score score_for(sgf::Score requested, int bits) {
    const sgf::Score used = sgf::effective_score(requested, bits);
    if (used != requested)
        warn(fmt::format("{}-bit fingerprints are scored by their bits: the weighted score's exact null distribution is computed for "
                         "up to {} bits",
                         bits, sgf::stats::WeightedNull::kMaxBits));
    return used;
}

/// One line of verify's text output: the outcome, the best match's bits and, with the weighted
/// score, its score against the image's own threshold.
inline std::string evidence_text(sgf::Score score, std::int64_t value, std::int64_t total, std::int64_t threshold, int matching, int bits) {
    return score == sgf::Score::weighted ? fmt::format("score {}/{} (threshold {}), {}/{} bits", value, total, threshold, matching, bits)
                                         : fmt::format("{}/{} bits (threshold {})", matching, bits, threshold);
}
inline std::string attribution_text(const sgf::Attribution& a) {
    const std::string evidence = evidence_text(a.score, a.best_score, a.score_total, a.score_threshold, a.best_matching, a.bits);
    return fmt::format("{}\t{}\t{}, runner-up {} ({} bits), family p = 1e{:.1f}", sgf::outcome_name(a.outcome), terminal_safe(a.best_label),
                       evidence, a.runner_up_label.empty() ? "-" : terminal_safe(a.runner_up_label), a.runner_up_matching, a.log10_family_p);
}

inline std::string seconds(double s) { return fmt::format("{:.2f} s", s); }

// ------------------------------------------------------------------------------------------ instantiate
/// issue and registry import create a registry when missing: --bits (0: not given) and --min-distance
/// (-1: not given) must then be the values of an existing one.
inline void check_requested_registry(const sgf::Registry& reg, const std::string& path, int bits, int min_distance) {
    if (bits > 0 && reg.bits() != bits)
        SGF_THROW(ArgumentError, "{}: the registry holds {}-bit fingerprints, --bits {} was given", path, reg.bits(), bits);
    if (min_distance >= 0 && reg.min_distance() != min_distance)
        SGF_THROW(ArgumentError, "{}: the registry's minimum distance is {} (set when it was created); --min-distance {} was given",
                  path, reg.min_distance(), min_distance);
}

/// What a registry path held before issue or import opened it: nothing, an empty file (which opening
/// turns into a registry), or a file with content.
enum class PriorFile { missing, empty, nonempty };
inline PriorFile prior_file(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return PriorFile::missing;
    return fs::is_regular_file(path, ec) && fs::file_size(path, ec) == 0 && !ec ? PriorFile::empty : PriorFile::nonempty;
}

/// After a failed (or empty) issue or import: a registry this command created, and nobody has added to
/// since, is closed and removed with its WAL files; an empty file it turned into a registry is empty again.
inline void remove_if_created_and_empty(std::optional<sgf::Registry>& reg, PriorFile prior, const std::string& path) {
    if (prior == PriorFile::nonempty || !reg || reg->size() != 0) return;
    reg.reset();
    std::error_code ec;
    for (const char* suffix : {"-wal", "-shm"}) fs::remove(path + suffix, ec);
    if (prior == PriorFile::missing) fs::remove(path, ec);
    else fs::resize_file(path, 0, ec);
}

inline sgf::Fingerprint resolve_fingerprint(const std::string& registry, const std::string& label, const std::string& hex, int bits) {
    if (!hex.empty()) {
        try {
            return sgf::Fingerprint::parse(hex, bits);
        } catch (const sgf::ArgumentError& e) {
            SGF_THROW(FormatError, "--fingerprint: {}", e.what());
        }
    }
    if (label.empty() || registry.empty()) SGF_THROW(ArgumentError, "give --fingerprint HEX, or --label with --registry");
    sgf::Registry reg(registry, sgf::RegistryOptions::existing_read_only(bits));
    reg.require_bits(bits);
    const auto e = reg.find(label);
    if (!e) SGF_THROW(ArgumentError, "{}: no entry labelled '{}'", registry, label);
    return e->fingerprint;
}

/// `instantiate --out` writes a new file or replaces a baked generator (`export-decoder --out`: a
/// decoder); neither replaces one of the command's inputs or any other existing file (a registry, a
/// meta model, an image).
inline void check_replaceable_output(const std::string& out, const std::vector<std::string>& inputs,
                                     const std::string& replaceable_kind = "baked-generator") {
    std::error_code ec;
    if (!fs::exists(out, ec)) return;
    for (const auto& in : inputs)
        if (!in.empty() && fs::exists(in, ec) && fs::equivalent(out, in, ec))
            SGF_THROW(ArgumentError, "--out {} is also an input of this command ({}); choose another output file", out, in);
    if (fs::is_directory(out, ec)) SGF_THROW(ArgumentError, "--out {}: is a folder; give a file name", out);
    if (!fs::is_regular_file(out, ec))  // a FIFO or device: never read it (it could block) nor replace it
        SGF_THROW(ArgumentError, "--out {}: exists and is not a regular file; refusing to replace it", out);
    std::string kind;
    try {
        kind = sgf::io::SafetensorsFile::load(out).meta("sgf.kind");
    } catch (const sgf::Error&) {
        kind.clear();
    }
    if (kind != replaceable_kind)
        SGF_THROW(ArgumentError, "--out {}: the file exists and is not a {}; refusing to replace it (remove it first, or "
                                 "choose another name)",
                  out, replaceable_kind == "baked-generator" ? "baked generator" : replaceable_kind + " file");
}

// ------------------------------------------------------------------------------------------ export-decoder, export-generator
/// Writes one part of a meta model in a file of its own: `kind` "decoder" (F alone: a verifier needs
/// nothing else, and without E and G it cannot bake a generator for a registered code) or
/// "meta-generator" (E and G alone: what the service that bakes users' copies needs, without F or D).
/// docs/verification.md, "Threat model".
template <class B>
int cmd_export_part(B& b, const Common& c, const std::string& model, const std::string& out, const std::string& kind) {
    const bool decoder = kind == "decoder";
    const std::string command = decoder ? "export-decoder" : "export-generator";
    check_replaceable_output(out, {model}, kind);
    const auto f = sgf::io::SafetensorsFile::load(model);
    const std::string held = f.meta("sgf.kind");
    if (held == kind) SGF_THROW(FormatError, "{}: {} holds a '{}' already; give the meta model", command, model, kind);
    if (held != "meta-model") SGF_THROW(FormatError, "{}: {} holds a '{}', expected a meta-model", command, model, held);
    const std::map<std::string, std::string> extra{{"sgf.meta_model_checksum", f.meta("sgf.checksum")}};
    int bits = 0;
    if (decoder) {
        const auto m = sgf::io::load_decoder<B>(b, f);
        sgf::io::save_decoder(b, out, m.F, extra);
        bits = m.config.fingerprint_bits;
    } else {
        const auto m = sgf::io::load_meta_generator<B>(b, f);
        sgf::io::save_meta_generator(b, out, m.G, extra);
        bits = m.config.fingerprint_bits;
    }
    emit(c, json{{"out", out}, {"model", model}, {"bits", bits}},
         decoder ? fmt::format("wrote {} (the decoder of {}: decode and verify read it; it cannot make images)\n", out, model)
                 : fmt::format("wrote {} (the meta generator of {}: instantiate and generate read it; it holds no decoder)\n",
                               out, model));
    return kOk;
}

template <class B>
int cmd_instantiate(B& b, const Common& c, const std::string& model, const std::string& registry, const std::string& label,
                    const std::string& hex, const std::string& out) {
    check_replaceable_output(out, {model, registry});
    auto m = sgf::io::load_meta_generator<B>(b, model);  // a meta model or a meta-generator file
    const auto fp = resolve_fingerprint(registry, label, hex, m.config.fingerprint_bits);
    const auto bits = fp.to_floats();
    const auto t0 = std::chrono::steady_clock::now();
    auto ct = sgf::from_host<B, float>(b, sgf::Shape{1, m.config.fingerprint_bits}, std::span<const float>(bits));
    auto Gu = sgf::instantiate(b, m.G, ct);
    const double bake = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sgf::io::save_baked_generator(b, out, Gu, {{"sgf.label", label}});
    emit(c, json{{"out", out}, {"label", label}, {"bake_seconds", bake}},
         fmt::format("wrote {} (baked in {:.1f} ms; holds only this user's generator)\n", out, bake * 1e3));
    return kOk;
}

// ------------------------------------------------------------------------------------------ generate
template <class B>
int cmd_generate(B& b, const Common& c, const std::string& model, const std::string& hex, int count, const std::string& out,
                 std::uint64_t seed, bool grid) {
    // DIR/00000.png ... and DIR/grid.png, named when needed (a list of up to 2^31 paths would itself fill memory)
    auto image_path = [&](std::int64_t i) { return fs::path(out) / fmt::format("{:05d}.png", i); };
    const fs::path grid_path = fs::path(out) / "grid.png";
    std::error_code ec;
    auto taken = [&](const fs::path& p) {  // never replace files already there (an earlier run's images); before any work
        if (fs::exists(fs::symlink_status(p, ec)))
            SGF_THROW(ArgumentError, "generate --out {}: {} exists; generate writes into a new folder or one without its file names",
                      out, p.string());
    };
    for (std::int64_t i = 0; i < count; ++i) taken(image_path(i));
    if (grid) taken(grid_path);
    const auto f = sgf::io::SafetensorsFile::load(model);
    const std::string kind = f.meta("sgf.kind");
    std::optional<sgf::io::GeneratorModel<B>> meta;
    std::optional<sgf::MetaGenerator<B>> baked;
    std::optional<sgf::Fingerprint> fp;
    if (kind == "baked-generator") {
        if (!hex.empty())
            SGF_THROW(ArgumentError, "generate: {} is a baked generator (its fingerprint is built in); drop --fingerprint", model);
        baked.emplace(sgf::io::load_baked_generator<B>(b, f));
    } else {
        if (kind != "meta-model" && kind != "meta-generator")  // load_meta_generator would not name baked generators
            SGF_THROW(FormatError, "{}: holds a '{}', expected a meta-model or meta-generator (with --fingerprint) or a "
                                        "baked-generator (sgf instantiate makes one)", model, kind);
        meta.emplace(sgf::io::load_meta_generator<B>(b, f));
        if (hex.empty()) SGF_THROW(ArgumentError, "generate: a meta model needs --fingerprint HEX");
        fp = resolve_fingerprint("", "", hex, meta->config.fingerprint_bits);
    }
    sgf::MetaGenerator<B>& G = baked ? *baked : meta->G;
    // the grid (make_grid, pad 2): up to 10 columns, fewer when 10 would be wider than a PNG can be
    const std::int64_t cell = std::int64_t(G.config().resolution) + 2, max_cols = std::max<std::int64_t>(1, 65533 / cell);
    const int grid_cols = int(std::min<std::int64_t>({count, 10, max_cols}));
    if (grid && (std::int64_t(count) + grid_cols - 1) / grid_cols * cell + 2 > 65535)
        SGF_THROW(ArgumentError, "generate --grid: {} images of {} px make a grid taller than 65535 px; --grid takes at most {} images",
                  count, G.config().resolution, (65533 / cell) * grid_cols);
    fs::path out_abs = fs::absolute(out, ec).lexically_normal();
    if (!out_abs.has_filename()) out_abs = out_abs.parent_path();  // "a/b/" -> "a/b"
    fs::path first_new;  // the outermost folder this command creates (out or one of its parents), if any
    for (fs::path p = out_abs; !fs::exists(p, ec) && p != p.parent_path(); p = p.parent_path()) first_new = p;
    sgf::io::ensure_directory(out);  // only once the inputs are known to be good
    std::int64_t written = 0;
    bool grid_written = false;
    std::vector<sgf::io::Image> kept;  // for the grid
    try {
        constexpr int kPart = 1024;  // images made and written at a time (a multiple of generate_images' batch)
        for (std::int64_t first = 0; first < count; first += kPart) {
            auto part = generate_images(b, G, fp ? &*fp : nullptr, int(std::min<std::int64_t>(kPart, count - first)), seed, int(first));
            for (auto& im : part) {
                sgf::io::save_png(image_path(written), im);
                ++written;
                if (grid) kept.push_back(std::move(im));
            }
        }
        if (grid) {
            sgf::io::save_png(grid_path, sgf::io::make_grid(kept, grid_cols));
            grid_written = true;
        }
    } catch (...) {  // all or nothing, whatever stopped it: remove what this command wrote
        for (std::int64_t i = 0; i < written; ++i) fs::remove(image_path(i), ec);
        if (grid_written) fs::remove(grid_path, ec);
        if (!first_new.empty())  // the folders it made, innermost first, each only when empty
            for (fs::path p = out_abs;; p = p.parent_path()) {
                fs::remove(p, ec);
                if (p == first_new || p == p.parent_path()) break;
            }
        throw;
    }
    json files = json::array();
    if (c.json) {
        for (std::int64_t i = 0; i < count; ++i) files.push_back(image_path(i).string());
        if (grid) files.push_back(grid_path.string());
    }
    emit(c, json{{"files", files}}, fmt::format("wrote {}{} to {}\n", sgf::count_of(count, "image"), grid ? " and grid.png" : "", out));
    return kOk;
}

// ------------------------------------------------------------------------------------------ decode / verify
inline int file_error_code(const sgf::FileDecode& d) { return d.io_error ? kIoError : kFormatError; }

/// verify's entry for an image it could not decode: outcome "error" in JSON, `path<TAB>error<TAB>msg`
/// in text, and the worst exit code so far raised to the file's.
inline void add_unreadable(const sgf::FileDecode& d, json& arr, std::string& text, int& worst) {
    arr.push_back({{"image", d.path}, {"outcome", "error"}, {"error", d.error}});
    text += fmt::format("{}\terror\t{}\n", terminal_safe(d.path), terminal_safe(d.error));
    worst = std::max(worst, file_error_code(d));
}

template <class B>
int cmd_decode(B& b, const Common& c, const std::string& model, const std::vector<std::string>& images) {
    auto m = sgf::io::load_decoder<B>(b, model);  // a meta model or a decoder file
    FileProgress progress(c, "decoding", images.size());
    const auto res = sgf::decode_files(b, m.F, images, 64, {}, progress.callback());
    json arr = json::array();
    std::string text;
    int rc = kOk;
    for (const auto& d : res) {
        if (!d.decoded) {
            arr.push_back({{"image", d.path}, {"error", d.error}});
            text += fmt::format("{}\terror\t{}\n", terminal_safe(d.path), terminal_safe(d.error));
            rc = std::max(rc, file_error_code(d));
            continue;
        }
        arr.push_back({{"image", d.path}, {"fingerprint", d.decoded->fingerprint.hex()}, {"logits", d.decoded->logits}});
        text += fmt::format("{}\t{}\n", terminal_safe(d.path), d.decoded->fingerprint.hex());
    }
    emit(c, json{{"results", arr}}, text);
    return rc;
}

/// The decoder of a verify run, with the SHA-256 of the bytes it was loaded from (hashed as they are
/// read: the digest names exactly what decoded the images, even if the file is replaced meanwhile).
template <class B>
struct HashedDecoder {
    sgf::io::DecoderModel<B> model;
    std::string sha256;
};
template <class B>
HashedDecoder<B> load_hashed_decoder(B& b, const std::string& path) {
    sgf::Sha256 h;
    const auto file = sgf::io::SafetensorsFile::load(path, {}, &h);
    return {sgf::io::load_decoder<B>(b, file), h.hex()};
}

/// What a verify decision rests on, for a record that can be defended later: the rule (`rule`: alpha,
/// the bit threshold, and min_margin or the claimed label), the registry (path, bits, and the size of
/// the snapshot every image was attributed against), the decoder file by the SHA-256 of the bytes that
/// were loaded, and sgf's version.
inline json decision_record(json rule, const std::string& registry, int bits, const std::string& model, const std::string& sha256) {
    rule.update({{"registry", registry}, {"bits", bits}, {"decoder", model}, {"decoder_sha256", sha256}, {"sgf_version", sgf::kVersion}});
    return rule;
}

template <class B>
int cmd_verify(B& b, const Common& c, const std::string& model, const std::string& registry, const std::vector<std::string>& images,
               double alpha, int min_margin, sgf::Score score, bool outcome_only = false) {
    if (!(alpha > 0 && alpha < 1)) SGF_THROW(ArgumentError, "--alpha must be in (0, 1), got {}", alpha);
    auto [m, decoder_sha256] = load_hashed_decoder(b, model);  // a meta model or a decoder file
    sgf::Registry reg(registry, sgf::RegistryOptions::existing_read_only(m.config.fingerprint_bits));
    reg.require_bits(m.config.fingerprint_bits);
    const sgf::Matcher snapshot = reg.matcher();  // every image against the same entries, as the record says
    score = score_for(score, snapshot.bits());
    const sgf::AttributionRule rule{alpha, min_margin, score};
    std::string capacity = sgf::attribution_capacity_problem(snapshot.bits(), alpha, snapshot.size());
    if (!capacity.empty()) capacity += ". Use a larger --alpha, or a model (and registry) with more bits";
    warn(capacity.empty() ? capacity : fmt::format("{}: {}", registry, capacity));  // before decoding: every outcome below would be "not fingerprinted"
    FileProgress progress(c, "decoding", images.size());
    const auto res = sgf::decode_files(b, m.F, images, 64, {}, progress.callback());
    json arr = json::array();
    std::string text;
    int worst = kOk, n_attr = 0, n_none = 0, n_inc = 0, n_err = 0;
    for (const auto& d : res) {
        if (!d.decoded) {
            ++n_err;
            add_unreadable(d, arr, text, worst);
            continue;
        }
        const auto a = snapshot.attribute(d.decoded->fingerprint, d.decoded->logits, rule, registry);
        if (a.outcome == sgf::Outcome::attributed) ++n_attr;
        else if (a.outcome == sgf::Outcome::not_fingerprinted) ++n_none;
        else ++n_inc;
        if (outcome_only) {  // a public service's answer: no bits, logits, p-values or nearest labels (verification.md)
            const bool attributed = a.outcome == sgf::Outcome::attributed;
            json j{{"image", d.path}, {"outcome", sgf::outcome_name(a.outcome)}};
            if (attributed) j["label"] = a.best_label;
            arr.push_back(j);
            text += fmt::format("{}\t{}\t{}\n", terminal_safe(d.path), sgf::outcome_name(a.outcome),
                                attributed ? terminal_safe(a.best_label) : "-");
            continue;
        }
        json j = attribution_json(a);
        j["image"] = d.path;
        j["fingerprint"] = d.decoded->fingerprint.hex();
        arr.push_back(j);
        text += fmt::format("{}\t{}\n", terminal_safe(d.path), attribution_text(a));
    }
    int rc = worst;
    if (rc == kOk) rc = n_inc ? kInconclusive : (n_none ? kNotFingerprinted : kOk);
    text += fmt::format("{}: {} attributed, {} not fingerprinted, {} inconclusive, {} unreadable\n",
                        sgf::count_of(std::int64_t(res.size()), "image"), n_attr, n_none,
                        n_inc, n_err);
    json out{{"results", arr}, {"attributed", n_attr}, {"not_fingerprinted", n_none}, {"inconclusive", n_inc}, {"errors", n_err},
             {"exit_code", rc}};
    if (!outcome_only) {
        if (!capacity.empty()) out["warning"] = capacity;  // (it names the registry's size)
        if (c.json)
            out["decision"] = decision_record(
                {{"alpha", alpha},
                 {"min_margin", min_margin},
                 {"score", sgf::score_name(score)},
                 {"threshold_bits", sgf::stats::family_bit_threshold(snapshot.bits(), alpha, snapshot.size())},
                 {"registry_size", snapshot.size()}},
                registry, snapshot.bits(), model, decoder_sha256);
    }
    emit(c, out, text);
    return rc;
}

/// verify --label L: the one claim "L's generator made this image", tested against L's fingerprint
/// alone at level alpha (one comparison, so no Bonferroni: k* = bit_threshold(bits, alpha)). An image
/// that L's copy did not make matches L's random code in Bin(bits, 1/2) bits, so it "matches" with
/// probability at most alpha; a "no_match" is no evidence for L (the image may still be another
/// user's: verify without --label names the best match in the whole registry).
template <class B>
int cmd_verify_claim(B& b, const Common& c, const std::string& model, const std::string& registry, const std::string& label,
                     const std::vector<std::string>& images, double alpha, sgf::Score score, bool outcome_only) {
    if (!(alpha > 0 && alpha < 1)) SGF_THROW(ArgumentError, "--alpha must be in (0, 1), got {}", alpha);
    auto [m, decoder_sha256] = load_hashed_decoder(b, model);
    sgf::Registry reg(registry, sgf::RegistryOptions::existing_read_only(m.config.fingerprint_bits));
    reg.require_bits(m.config.fingerprint_bits);
    const auto entry = reg.find(label);
    if (!entry) SGF_THROW(ArgumentError, "{}: no fingerprint is issued under the label '{}'", registry, terminal_safe(label));
    const int bits = reg.bits(), k = sgf::stats::bit_threshold(bits, alpha);
    score = score_for(score, bits);
    const std::string capacity =
        k > bits ? fmt::format("--alpha {} needs {} matching bits of {}: no image can match; use a larger --alpha", alpha, k, bits)
                 : std::string();
    warn(capacity);  // before decoding: every outcome below would be "no_match"
    FileProgress progress(c, "decoding", images.size());
    const auto res = sgf::decode_files(b, m.F, images, 64, {}, progress.callback());
    json arr = json::array();
    std::string text;
    int worst = kOk, n_match = 0, n_no = 0, n_err = 0;
    for (const auto& d : res) {
        if (!d.decoded) {
            ++n_err;
            add_unreadable(d, arr, text, worst);
            continue;
        }
        const auto t = sgf::test_claim(entry->fingerprint, d.decoded->fingerprint, d.decoded->logits, alpha, score, registry);
        const bool match = t.match;
        ++(match ? n_match : n_no);
        const char* outcome = match ? "matches" : "no_match";
        json j{{"image", d.path}, {"label", entry->label}, {"outcome", outcome}};
        if (outcome_only) {
            text += fmt::format("{}\t{}\t{}\n", terminal_safe(d.path), outcome, terminal_safe(entry->label));
        } else {
            j.update({{"matching_bits", t.matching_bits}, {"threshold_bits", k}, {"bits", bits}, {"log10_p_value", t.log10_p},
                      {"score", sgf::score_name(score)}, {"score_value", t.score_value}, {"score_total", t.score_total},
                      {"score_threshold", t.score_threshold}});
            const std::string evidence = evidence_text(t.score, t.score_value, t.score_total, t.score_threshold, t.matching_bits, bits);
            text += fmt::format("{}\t{}\t{}\t{}, p = 1e{:.1f}\n", terminal_safe(d.path), outcome, terminal_safe(entry->label), evidence, t.log10_p);
        }
        arr.push_back(j);
    }
    int rc = worst;
    if (rc == kOk && n_no) rc = kNotFingerprinted;
    text += fmt::format("{}: {} match {}, {} do not, {} unreadable\n", sgf::count_of(std::int64_t(res.size()), "image"), n_match, terminal_safe(entry->label), n_no, n_err);
    json out{{"results", arr}, {"label", entry->label}, {"matches", n_match}, {"no_match", n_no}, {"errors", n_err}, {"exit_code", rc}};
    if (!capacity.empty()) out["warning"] = capacity;
    if (c.json && !outcome_only)
        out["decision"] = decision_record({{"alpha", alpha}, {"threshold_bits", k}, {"score", sgf::score_name(score)}, {"claim", entry->label}},
                                          registry, bits, model,
                                          decoder_sha256);
    emit(c, out, text);
    return rc;
}

// ------------------------------------------------------------------------------------------ demo
template <class B>
int cmd_demo(B& b, const Common& c, const std::string& model, int users, int per_user, int n_real, int n_open, const std::string& keep,
             const std::string& real_dir, sgf::Score score = sgf::Score::weighted) {
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
    // the demo keeps one user's images, and all the verify results, in memory: sizes a demo is for
    constexpr std::int64_t kMaxDemoImages = 1000000;
    SGF_CHECK(users <= kMaxDemoImages && std::int64_t(users) * per_user <= kMaxDemoImages && n_open <= kMaxDemoImages, ArgumentError,
              "demo: --users {} x --images {} = {} generated images and --open {}; the demo makes at most {} of each (use issue, "
              "instantiate, generate and verify for more)",
              users, per_user, std::int64_t(users) * per_user, n_open, kMaxDemoImages);
    json stages = json::object();
    auto t = clock::now();
    auto m = sgf::io::load_meta_model<B>(b, model);  // before anything is written or printed
    const auto& cfg = m.config;
    stages["load_model"] = since(t);
    std::string capacity = sgf::attribution_capacity_problem(cfg.fingerprint_bits, sgf::AttributionRule{}.alpha, users);
    if (!capacity.empty()) capacity += ". Use fewer --users, or a model with more bits";
    warn(capacity);

    if (!keep.empty()) {  // a fresh registry and image folders: refuse to write into someone's files
        std::error_code ec;
        if (fs::exists(keep, ec) && !(fs::is_directory(keep, ec) && fs::is_empty(keep, ec)))
            SGF_THROW(ArgumentError, "demo --keep {}: exists and is not an empty folder; demo writes registry.db, users/ and "
                                     "images/ into a new or empty folder", keep);
    }
    std::optional<sgf::io::ImageDataset> real_ds;  // read before anything is written, too
    std::vector<std::string> real_files;            // --real-dir: its first n_real images (sorted), decoded where they are
    if (n_real > 0 && real_dir.empty()) real_ds = sgf::io::load_fashion_mnist("test");
    if (!real_dir.empty())  // checked also with --real 0: a wrong folder is a mistake either way
        for (const auto& p : sgf::io::list_image_files(real_dir))
            if (real_files.size() < std::size_t(n_real)) real_files.push_back(p.string());

    // a fresh temporary folder (mkdtemp), removed when the demo returns or fails (not when a signal
    // kills it); a --keep folder stays
    fs::path dir = keep;
    if (keep.empty()) {
        std::error_code ec;
        const fs::path base = fs::temp_directory_path(ec);
        if (ec) SGF_THROW(IoError, "demo: no temporary folder (TMPDIR): {}", ec.message());
        std::string tmpl = (base / "sgf-demo-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) SGF_THROW(IoError, "{}: cannot create a temporary folder: {}", tmpl, std::strerror(errno));
        dir = tmpl;
    }
    struct RemoveOnExit {
        fs::path dir;
        ~RemoveOnExit() {
            std::error_code ec;
            if (!dir.empty()) fs::remove_all(dir, ec);
        }
    } cleanup{keep.empty() ? dir : fs::path()};
    sgf::io::ensure_directory(dir / "users");
    sgf::io::ensure_directory(dir / "images");
    auto say = [&](const std::string& s) {
        if (!c.json) std::cout << s << std::flush;
    };
    say(fmt::format("sgf demo: model {}\n  working folder {}\n", model, dir.string()));

    t = clock::now();
    sgf::RegistryOptions ro;
    ro.bits = cfg.fingerprint_bits;  // the model's length (a 128-bit registry made demo fail on other models)
    sgf::Registry reg(dir / "registry.db", ro);
    std::vector<sgf::RegistryEntry> issued;
    for (int u = 0; u < users; ++u) issued.push_back(reg.issue(fmt::format("user{:03d}", u), R"({"demo":true})"));
    stages["issue"] = since(t);
    say(fmt::format("  issued {} (min distance {}) in {:.2f} s\n", sgf::count_of(users, "fingerprint"), reg.min_distance(), since(t)));

    t = clock::now();
    double bake_s = 0;
    std::vector<std::string> gen_files;
    std::vector<std::string> gen_truth;
    const bool progress_line = ::isatty(STDOUT_FILENO);  // a "\r" line for a terminal; into a file or pipe only the summary
    for (int u = 0; u < users; ++u) {
        const auto bits = issued[u].fingerprint.to_floats();
        auto ct = sgf::from_host<B, float>(b, sgf::Shape{1, cfg.fingerprint_bits}, std::span<const float>(bits));
        const auto tb = clock::now();
        auto Gu = sgf::instantiate(b, m.G, ct);
        bake_s += since(tb);
        sgf::io::save_baked_generator(b, dir / "users" / (issued[u].label + ".safetensors"), Gu, {{"sgf.label", issued[u].label}});
        const auto imgs = generate_images(b, Gu, nullptr, per_user, 1000 + u);
        for (int j = 0; j < per_user; ++j) {
            const auto p = dir / "images" / fmt::format("{}_{:02d}.png", issued[u].label, j);
            sgf::io::save_png(p, imgs[j]);
            gen_files.push_back(p.string());
            gen_truth.push_back(issued[u].label);
        }
        if (progress_line) say(fmt::format("\r  baked and sampled {}/{} users", u + 1, users));
    }
    stages["instantiate_and_generate"] = since(t);
    say(fmt::format("{}  {} ({:.1f} ms each), {} in {:.2f} s\n", progress_line ? "\n" : "", sgf::count_of(users, "baked generator"),
                    1e3 * bake_s / users, sgf::count_of(std::int64_t(gen_files.size()), "PNG image"), since(t)));

    t = clock::now();
    if (real_ds) {
        const auto& ds = *real_ds;
        std::vector<std::int64_t> idx(std::size_t(std::min<std::int64_t>(n_real, ds.size())));
        for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = std::int64_t(i);
        const auto batch = ds.batch(idx);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            const auto p = dir / "images" / fmt::format("real_{:05d}.png", i);
            sgf::io::save_png(p, sgf::io::to_image(batch, std::int64_t(i)));
            real_files.push_back(p.string());
        }
    }
    std::vector<std::string> open_files;
    for (int i = 0; i < n_open; ++i) {
        const auto fp = sgf::Fingerprint::from_seed(cfg.fingerprint_bits, 0xC0FFEEull + std::uint64_t(i));
        const auto img = generate_images(b, m.G, &fp, 1, 5000 + i);
        const auto p = dir / "images" / fmt::format("unregistered_{:04d}.png", i);
        sgf::io::save_png(p, img[0]);
        open_files.push_back(p.string());
    }
    stages["prepare_real_and_open_world"] = since(t);

    t = clock::now();
    std::vector<std::string> all = gen_files;
    all.insert(all.end(), real_files.begin(), real_files.end());
    all.insert(all.end(), open_files.begin(), open_files.end());
    const auto decoded = sgf::decode_files(b, m.F, all);
    const double decode_s = since(t);
    t = clock::now();
    score = score_for(score, cfg.fingerprint_bits);
    const sgf::AttributionRule rule{.score = score};
    std::int64_t correct = 0, gen_detected = 0, real_attr = 0, real_detected = 0, real_decoded = 0, open_attr = 0, open_detected = 0,
                 errors = 0;
    double bit_acc = 0;
    for (std::size_t i = 0; i < decoded.size(); ++i) {
        if (!decoded[i].decoded) {
            ++errors;
            continue;
        }
        const auto& fp = decoded[i].decoded->fingerprint;
        const auto a = reg.attribute(fp, decoded[i].decoded->logits, rule);
        if (i < gen_files.size()) {
            const auto& truth = issued[i / std::size_t(per_user)].fingerprint;
            bit_acc += double(fp.matching_bits(truth)) / cfg.fingerprint_bits;
            correct += a.outcome == sgf::Outcome::attributed && a.best_label == gen_truth[i];
            gen_detected += a.detected;
        } else if (i < gen_files.size() + real_files.size()) {
            real_attr += a.outcome == sgf::Outcome::attributed;
            real_detected += a.detected;
            ++real_decoded;
        } else {
            open_attr += a.outcome == sgf::Outcome::attributed;
            open_detected += a.detected;
        }
    }
    const double attribute_s = since(t);
    stages["decode"] = decode_s;
    stages["attribute"] = attribute_s;
    const double n_gen = double(gen_files.size());
    bit_acc /= std::max(1.0, n_gen);
    // over the real images actually decoded (unreadable ones are counted under "unreadable")
    // (no real image decoded, e.g. --real 0: no rate, JSON null, rather than a measured 0)
    const double fpr_real = real_decoded == 0 ? 0 : double(real_detected) / double(real_decoded);
    const int k_star = sgf::stats::family_bit_threshold(cfg.fingerprint_bits, rule.alpha, users);
    json j{{"users", users},
           {"images_per_user", per_user},
           {"bit_accuracy", bit_acc},
           {"attribution_accuracy", correct / std::max(1.0, n_gen)},
           {"detected_generated", gen_detected},
           {"false_attributions_real", real_attr},
           {"false_attributions_open_world", open_attr},
           {"detected_real", real_detected},
           {"detected_open_world", open_detected},
           {"empirical_fpr_real", real_decoded == 0 ? json(nullptr) : json(fpr_real)},
           {"theoretical_family_fpr", rule.alpha},
           {"threshold_bits", k_star},
           {"score", sgf::score_name(score)},
           {"unreadable", errors},
           {"real_images_source", real_dir.empty() ? std::string("fashion-mnist/test") : real_dir},
           {"seconds", stages},
           {"folder", keep.empty() ? json(nullptr) : json(dir.string())}};  // the temporary folder is gone by then
    if (!capacity.empty()) j["warning"] = capacity;
    if (!c.json) {
        std::cout << fmt::format(
            "\n  | measure | value |\n  |---|---|\n"
            "  | bit accuracy ({}) | {:.4f} |\n"
            "  | attribution accuracy ({}) | {:.4f} ({} of {}) |\n"
            "  | false attributions, {} | {} |\n"
            "  | false attributions, {} (unregistered fingerprints) | {} |\n"
            "  | empirical false-positive rate on real images | {} ({} of {} pass {}) |\n"
            "  | theoretical family-wise false-positive rate | {:g} |\n"
            "  | time: issue / bake+generate / decode / attribute | {} / {} / {} / {} |\n",
            sgf::count_of(std::int64_t(gen_files.size()), "generated image"), bit_acc, sgf::count_of(users, "user"),
            correct / std::max(1.0, n_gen), correct, gen_files.size(),
            real_dir.empty() ? sgf::count_of(std::int64_t(real_files.size()), "real Fashion-MNIST test image")
                             : sgf::count_of(std::int64_t(real_files.size()), "real image") + " from " + real_dir,
            real_attr, sgf::count_of(std::int64_t(open_files.size()), "open-world image"), open_attr,
            real_decoded == 0 ? std::string("none measured") : fmt::format("{:.4f}", fpr_real), real_detected, real_decoded,
            score == sgf::Score::bits ? fmt::format("k* = {} bits", k_star)
                                      : std::string("the weighted-score threshold"),
            rule.alpha,
            seconds(stages["issue"].get<double>()), seconds(stages["instantiate_and_generate"].get<double>()), seconds(decode_s),
            seconds(attribute_s));
    } else {
        emit(c, j, "");
    }
    return kOk;  // cleanup removes the temporary folder
}


/// A parsed command line of a subcommand that runs networks.
struct Request {
    enum class Command { train, instantiate, generate, decode, verify, demo, eval } command = Command::demo;
    Common c;
    std::string model, registry, label, hex, out_file, out_folder = "sgf-images", keep;
    std::vector<std::string> images;
    std::string files_from;  ///< decode/verify: more image paths, one per line ("-": standard input)
    std::string claimed;     ///< verify --label: test this one entry only
    bool outcome_only = false;
    std::string score = "weighted";  ///< verify, demo: bits | weighted (sgf::parse_score)
    int n_images = 16, users = 100, per_user = 20, n_real = 2000, n_open = 200, min_margin = 8;
    std::string real_dir;  ///< demo --real-dir
    double alpha = 1e-6;
    std::uint64_t seed = 1;
    bool grid = false;
    sgf_examples::TrainingCommand train;
    EvalArgs eval;
};

/// decode and verify: the positional image paths, then those of --files-from (one per line; CR
/// before the newline and empty lines are dropped; "-" reads standard input). At least one in all.
inline void gather_image_paths(Request& r) {
    if (!r.files_from.empty()) {
        std::string text;
        if (r.files_from == "-") {
            text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
            if (std::cin.bad()) SGF_THROW(IoError, "--files-from -: cannot read standard input");
        } else {
            const auto bytes = sgf::io::read_file(r.files_from);
            text.assign(bytes.begin(), bytes.end());
        }
        std::size_t pos = 0;
        int line_no = 0;
        while (pos < text.size()) {
            std::size_t end = text.find('\n', pos);
            if (end == std::string::npos) end = text.size();
            std::string line = text.substr(pos, end - pos);
            ++line_no;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.find('\0') != std::string::npos)  // a file opened by this name would be the part before the NUL
                SGF_THROW(ArgumentError, "--files-from {}: line {} holds a NUL byte, which no file name can contain",
                          r.files_from == "-" ? "-" : r.files_from, line_no);
            if (!line.empty()) r.images.push_back(std::move(line));
            pos = end + 1;
        }
    }
    // a folder stands for every PNG/JPEG under it (recursively, sorted); an empty one is an error
    std::vector<std::string> expanded;
    for (auto& p : r.images) {
        std::error_code ec;
        if (!fs::is_directory(p, ec)) {
            expanded.push_back(std::move(p));
            continue;
        }
        for (const auto& f : sgf::io::list_image_files(p)) expanded.push_back(f.string());
    }
    r.images = std::move(expanded);
    if (r.images.empty())
        SGF_THROW(ArgumentError, "give image files{}", r.files_from.empty() ? " (or --files-from LIST)" : fmt::format(": {} names none", r.files_from == "-" ? "standard input" : r.files_from));
}

/// Runs `r` on backend `b`. Eval with --out (the full report) is the CPU backend's (run_eval): the
/// caller handles it before dispatching here.
template <class B>
int run_request(B& b, Request& r) {
    using C = Request::Command;
    switch (r.command) {
        case C::train: {
            r.train.opt.out_dir = r.train.out;
            r.train.opt.progress = !r.c.json;
            return sgf::run_training(b, r.train.model_config(), r.train.tc, r.train.opt);  // 0, or 130 when interrupted
        }
        case C::instantiate: return cmd_instantiate(b, r.c, r.model, r.registry, r.label, r.hex, r.out_file);
        case C::generate: return cmd_generate(b, r.c, r.model, r.hex, r.n_images, r.out_folder, r.seed, r.grid);
        case C::decode: gather_image_paths(r); return cmd_decode(b, r.c, r.model, r.images);
        case C::verify:
            gather_image_paths(r);
            if (!r.claimed.empty())
                return cmd_verify_claim(b, r.c, r.model, r.registry, r.claimed, r.images, r.alpha, sgf::parse_score(r.score), r.outcome_only);
            return cmd_verify(b, r.c, r.model, r.registry, r.images, r.alpha, r.min_margin, sgf::parse_score(r.score), r.outcome_only);
        case C::demo:
            return cmd_demo(b, r.c, r.model, r.users, r.per_user, r.n_real, r.n_open, r.keep, r.real_dir, sgf::parse_score(r.score));
        case C::eval: {
            SGF_CHECK(r.eval.out.empty(), ArgumentError, "eval --out runs on the CPU backend");
            return run_bit_accuracy_command(b, r.c.json, r.eval);
        }
    }
    return kUsage;
}

/// --backend cuda. In `sgf-cuda` (cuda_commands.cu): constructs the CUDA backend (device 0, fast mode)
/// and runs `r` on it. In the CPU binary `sgf` (cuda_dispatch.cpp): runs the same command line in the
/// `sgf-cuda` beside it, or says that there is none.
int run_on_cuda(Request& r);

/// Records main's arguments (cuda_dispatch.cpp passes them on; a no-op in sgf-cuda).
void remember_command_line(int argc, char** argv);

}  // namespace sgf_cli
