// The training program's loop, shared by examples/train and `sgf train`: progress line, CSV log,
// sample grids, periodic checkpoints and one on Ctrl-C, exact --resume, a warning when the bits
// are still at chance, a clear stop on NaN/Inf, and the release (meta-model) file at the end.
#pragma once

#include <sgf/core/text.hpp>
#include <sgf/io/atomic_file.hpp>
#include <sgf/io/image.hpp>
#include <sgf/train/checkpoint.hpp>

#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace sgf {

struct TrainLoopOptions {
    std::filesystem::path out_dir = "sgf-run";
    std::string data = "fashion-mnist";      ///< "fashion-mnist" or a folder of images
    double total_kimg = 100;                 ///< stop after this many thousand real images
    std::int64_t checkpoint_every = 500;     ///< steps
    std::int64_t grid_every = 500;           ///< steps
    std::int64_t log_every = 10;             ///< steps (CSV)
    double stuck_kimg = 50;                  ///< warn if bit accuracy is still near 0.5 after this
    bool resume = false;
    std::filesystem::path init_from;         ///< start from a release file's weights (new run)
    bool progress = true;
    /// How the progress line is written: 0 rewrites one line in place every step ("\r", for a
    /// terminal); > 0 writes a whole line at most every that many seconds (for logs); < 0 picks
    /// 0 when stdout is a terminal and 30 otherwise.
    double progress_line_seconds = -1;
};

/// Throws ArgumentError unless the run's length and intervals are usable: total_kimg finite and >= 0,
/// checkpoint, grid and log intervals >= 1 step, stuck_kimg finite and >= 0.
inline void validate(const TrainLoopOptions& o) {
    // at most 1e9 kimg (10^12 images): the step count must fit an int64 at batch 1
    SGF_CHECK(std::isfinite(o.total_kimg) && o.total_kimg >= 0 && o.total_kimg <= 1e9, ArgumentError,
              "training: --kimg must be finite and in 0..1e9, got {}", o.total_kimg);
    SGF_CHECK(o.checkpoint_every >= 1, ArgumentError, "training: --checkpoint-every must be >= 1 step, got {}", o.checkpoint_every);
    SGF_CHECK(o.grid_every >= 1, ArgumentError, "training: --grid-every must be >= 1 step, got {}", o.grid_every);
    SGF_CHECK(o.log_every >= 1, ArgumentError, "training: log_every must be >= 1 step, got {}", o.log_every);
    SGF_CHECK(std::isfinite(o.stuck_kimg) && o.stuck_kimg >= 0, ArgumentError, "training: stuck_kimg must be finite and >= 0, got {}",
              o.stuck_kimg);
    SGF_CHECK(!(o.resume && !o.init_from.empty()), ArgumentError,
              "--init-from starts a new run from a release file and --resume continues one from its checkpoint: give one of them");
}

inline std::atomic<bool>& interrupt_flag() {
    static std::atomic<bool> flag{false};
    return flag;
}
inline void install_interrupt_handler() {
    std::signal(SIGINT, [](int) { interrupt_flag() = true; });
    std::signal(SIGTERM, [](int) { interrupt_flag() = true; });
}

/// Watches the running bit accuracy for the "decoder is not reading the fingerprint" warning. The
/// average starts from the first step this process trains (not from 0.5), and the warning needs
/// `min_steps` steps of this process: a resumed run is judged on its own steps, not on a prior.
class StuckBitsWatch {
public:
    explicit StuckBitsWatch(double stuck_kimg, std::int64_t min_steps = 100) : stuck_kimg_(stuck_kimg), min_steps_(min_steps) {}
    /// Feeds one step's bit accuracy; true exactly once, when the warning is due.
    bool update(double bit_accuracy, double kimg) {
        avg_ = steps_ == 0 ? bit_accuracy : 0.98 * avg_ + 0.02 * bit_accuracy;
        ++steps_;
        if (warned_ || steps_ < min_steps_ || kimg < stuck_kimg_ || avg_ >= 0.55) return false;
        return warned_ = true;
    }
    double average() const { return avg_; }

private:
    double stuck_kimg_;
    std::int64_t min_steps_;
    double avg_ = 0.5;
    std::int64_t steps_ = 0;
    bool warned_ = false;
};

/// The stuck-bits warning: chance is 0.5, and a 128-bit run can take a few hundred kimg to leave it
/// (the default models' CPU run, runs/small-s10 in docs/training-log.md, read 0.525 at 96 kimg and
/// 0.557 at 279, then climbed), so the text says so and names the flags of that run's recipe that
/// this run does not use.
inline std::string stuck_bits_warning(double average, double kimg, const TrainConfig& tc) {
    std::vector<std::string> flags;
    if (tc.weights.latent != 0.125) flags.push_back("--w-latent 0.125");
    if (tc.weights.fingerprint != 20) flags.push_back("--w-fingerprint 20");
    if (tc.consistency_rampup_kimg != 30) flags.push_back("--consistency-rampup 30");
    std::string text = fmt::format(
        "warning: bit accuracy is still {:.3f} after {:.0f} kimg (chance: 0.5). The default models' recipe read 0.525 at 96 kimg "
        "and 0.557 at 279 kimg before it climbed (docs/training-log.md), so this may be early",
        average, kimg);
    if (flags.empty()) return text + "; it is that recipe already: keep training, or see docs/training-log.md";
    return text + fmt::format("; if it stays near 0.5, train with that recipe's {} ({})", flags.size() == 1 ? "flag" : "flags",
                              fmt::join(flags, " "));
}

/// Sample grid: row r uses fingerprint r, column j uses latent z_j (same z down a column), so
/// fidelity is read along rows and consistency across them.
template <Backend B>
io::Image sample_grid(B& b, MetaGenerator<B>& G, int rows, int cols, std::uint64_t seed) {
    const ModelConfig& cfg = G.config();
    Tensor<B> z(b, Shape{cols, cfg.z_dim});
    b.normal(RngKey{seed, 101, 0}, z.size(), z.data());
    std::vector<io::Image> tiles;
    for (int r = 0; r < rows; ++r) {
        Tensor<B> c1(b, Shape{1, cfg.fingerprint_bits});
        b.bits(RngKey{seed, 102, std::uint64_t(r) * cfg.fingerprint_bits}, c1.size(), c1.data());
        Tensor<B> c(b, Shape{cols, cfg.fingerprint_bits});
        for (int j = 0; j < cols; ++j) b.copy(c1.data(), c.data() + j * cfg.fingerprint_bits, cfg.fingerprint_bits);
        auto ctx = G.forward(b, z, c, seed);
        const auto h = to_host<float>(b, ctx.image());
        for (int j = 0; j < cols; ++j) tiles.push_back(io::to_image(h, j));
    }
    return io::make_grid(tiles, cols, 2, 0);
}

inline io::ImageDataset load_training_data(const std::string& data, const ModelConfig& cfg);

/// The first line of log.csv.
inline constexpr std::string_view kTrainingLogHeader =
    "step,kimg,seconds,g_total,adversarial,consistency,latent,fingerprint,bit_accuracy,d_fake,d_real,r1\n";

/// `images` / 1000 written exactly, with three decimals ("0.008", "100.000").
inline std::string exact_kimg(std::int64_t images) { return fmt::format("{}.{:03d}", images / 1000, images % 1000); }

/// Whether `name` is a sample grid's file name, samples-NNNNNNN.png (the step in 7 or more digits).
inline bool is_sample_grid_name(std::string_view name) {
    constexpr std::string_view head = "samples-", tail = ".png";
    if (name.size() < head.size() + 7 + tail.size() || !name.starts_with(head) || !name.ends_with(tail)) return false;
    return std::all_of(name.begin() + head.size(), name.end() - tail.size(), [](char c) { return c >= '0' && c <= '9'; });
}

/// ArgumentError (naming the file) when folder `out` already holds a training run that a new run
/// (neither --resume nor a fresh folder) would overwrite: its checkpoint.safetensors, its release
/// file model.safetensors, a log.csv with more than its header line, or a sample grid
/// samples-NNNNNNN.png (the new run's grids would replace some and mix with the rest). A log.csv
/// holding at most the header (a run killed before its first checkpoint and its first logged step)
/// records nothing and is started over.
inline void refuse_to_overwrite_a_run(const std::filesystem::path& out) {
    namespace fs = std::filesystem;
    const auto present = [](const fs::path& p) {
        std::error_code ec;
        const auto t = fs::symlink_status(p, ec).type();  // a dangling link counts: writing would follow it
        return t != fs::file_type::not_found && t != fs::file_type::none;
    };
    const fs::path ckpt = out / "checkpoint.safetensors";
    if (present(ckpt))
        SGF_THROW(ArgumentError,
                  "{}: --out {} already holds a training run, which a new run would overwrite: continue it with --resume, "
                  "or choose another --out",
                  ckpt.string(), out.string());
    const auto refuse = [&](const fs::path& file) {
        SGF_THROW(ArgumentError,
                  "{}: --out {} already holds a training run, which a new run would overwrite (and no checkpoint to continue "
                  "it with --resume): choose another --out, or move the run's files away",
                  file.string(), out.string());
    };
    if (present(out / "model.safetensors")) refuse(out / "model.safetensors");
    const fs::path log = out / "log.csv";
    if (present(log)) {
        std::error_code ec;
        if (!fs::is_regular_file(log, ec)) refuse(log);
        std::ifstream in(log, std::ios::binary);
        std::string head(kTrainingLogHeader.size() + 1, '\0');
        in.read(head.data(), std::streamsize(head.size()));
        if (!in.good() && !in.eof()) refuse(log);  // unreadable: do not guess what it holds
        head.resize(std::size_t(in.gcount()));
        if (kTrainingLogHeader.substr(0, head.size()) != head) refuse(log);  // a logged step, or not sgf's log
    }
    std::error_code ec;
    if (!fs::is_directory(out, ec)) return;  // not there yet, or not a folder (refused when it is made)
    std::vector<std::string> grids;
    fs::directory_iterator it(out, ec);
    for (const fs::directory_iterator end; !ec && it != end; it.increment(ec))
        if (is_sample_grid_name(it->path().filename().string())) grids.push_back(it->path().filename().string());
    if (ec)  // unreadable: do not guess what it holds
        SGF_THROW(IoError, "{}: cannot list the --out folder to check that it holds no earlier run: {}", out.string(), ec.message());
    if (!grids.empty()) refuse(out / *std::min_element(grids.begin(), grids.end()));
}

/// What run_training records in its checkpoints about `ds`, loaded from `data` (the --data
/// argument): Fashion-MNIST by its name, a folder by its absolute canonical path (so `imgs`,
/// `./imgs/` and `$PWD/imgs` are the same data), with the number of images and their source digest.
inline TrainingData training_data_record(const std::string& data, const io::ImageDataset& ds) {
    namespace fs = std::filesystem;
    if (data == "fashion-mnist") return {ds.name, ds.size(), ds.source_digest};
    std::error_code ec;
    fs::path p = fs::canonical(data, ec);
    if (ec) p = fs::absolute(fs::path(data)).lexically_normal();
    return {p.string(), ds.size(), ds.source_digest};
}

/// ArgumentError when `out` is `data` or inside it: the run's sample grids (PNG) would become training
/// images of its next start, and a resumed run would find more images than its checkpoint recorded.
inline void refuse_out_inside_data(const std::filesystem::path& out, const std::string& data) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (data == "fashion-mnist" || !fs::is_directory(data, ec)) return;
    std::error_code ec_o;
    const fs::path d = fs::weakly_canonical(data, ec), o = fs::weakly_canonical(out, ec_o);
    if (ec || ec_o || d.empty()) return;
    const auto [end_d, end_o] = std::mismatch(d.begin(), d.end(), o.begin(), o.end());
    if (end_d == d.end())
        SGF_THROW(ArgumentError, "--out {} is inside --data {}: the run's sample grids would become training images; choose an "
                                 "--out outside the data folder",
                  out.string(), data);
}

/// On --resume: keeps log.csv's header and its complete rows up to `step` (written atomically when
/// anything is dropped).
inline void trim_training_log(const std::filesystem::path& log, std::int64_t step) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_regular_file(log, ec) || fs::file_size(log, ec) == 0) return;
    const auto bytes = io::read_file(log);
    const std::string text(bytes.begin(), bytes.end());
    std::string kept;
    std::size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
        const std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) break;  // a line cut short: dropped
        const std::string_view line(text.data() + pos, end - pos);
        std::int64_t row_step = 0;
        const auto [p, err] = std::from_chars(line.data(), line.data() + line.size(), row_step);
        const bool a_row = err == std::errc() && p != line.data() && p != line.data() + line.size() && *p == ',';
        const bool keep = a_row ? row_step <= step : first;  // the header, or a row of a step the checkpoint holds
        if (keep) kept.append(line).push_back('\n');
        first = false;
        pos = end + 1;
    }
    if (kept.size() != text.size()) io::write_file_atomic(log, kept);
}

/// The training program behind `sgf train`, `sgf_train` and `sgf_train_cuda` (docs/cli.md): reads the
/// data, starts, resumes (opt.resume) or initialises (opt.init_from) the run, trains until
/// opt.total_kimg, writing checkpoints, log.csv, sample grids and at the end the release file.
/// Returns 0 when done and 130 when SIGINT/SIGTERM stopped it after writing a checkpoint. Throws
/// sgf's errors: ArgumentError for unusable options, IoError/FormatError for unreadable or malformed
/// data and checkpoints, NumericError when NaN/Inf stops training (the last checkpoint is kept).
template <Backend B>
int run_training(B& b, const ModelConfig& mc_in, const TrainConfig& tc_in, const TrainLoopOptions& opt) {
    namespace fs = std::filesystem;
    using clock = std::chrono::steady_clock;
    const fs::path ckpt = opt.out_dir / "checkpoint.safetensors";
    ModelConfig mc = mc_in;
    TrainConfig tc = tc_in;
    validate(opt);
    validate(tc);  // before any file is read: a bad option is the user's error, whatever the inputs hold
    refuse_out_inside_data(opt.out_dir, opt.data);
    if (!opt.resume) refuse_to_overwrite_a_run(opt.out_dir);  // before anything is read or written
    if (opt.resume) {
        if (!fs::exists(ckpt)) SGF_THROW(IoError, "{}: no checkpoint to resume from", ckpt.string());
        std::tie(mc, tc) = read_checkpoint_configs(ckpt);
        SGF_CHECK(!tc_in.decoder_only || tc.decoder_only, ArgumentError,
                  "{} continues a joint training run, not a decoder-only one: start decoder-only fine-tuning from its "
                  "release file (--init-from {} --decoder-only --out <new folder>)",
                  ckpt.string(), (opt.out_dir / "model.safetensors").string());
        SGF_CHECK(!tc_in.clamp_decoder_input || tc.clamp_decoder_input, ArgumentError,
                  "{} continues a run without --clamp-decoder-input: start a clamped run from its release file "
                  "(--init-from {} --clamp-decoder-input --out <new folder>)",
                  ckpt.string(), (opt.out_dir / "model.safetensors").string());
        // a resumed run keeps its checkpoint's objective: a mode given now that it does not have is refused,
        // not silently ignored
        SGF_CHECK(tc_in.fingerprint || !tc.fingerprint, ArgumentError,
                  "{} continues a fingerprinted run; --no-fingerprint can only start a new one (another --out)", ckpt.string());
        SGF_CHECK(!tc_in.x_flip || tc.x_flip, ArgumentError,
                  "{} continues a run without --x-flip: start a mirrored run from its release file (--init-from {} "
                  "--x-flip --out <new folder>)",
                  ckpt.string(), (opt.out_dir / "model.safetensors").string());
        SGF_CHECK(!tc_in.immunise.enabled || tc.immunise.enabled, ArgumentError,
                  "{} continues a run without --immunise: start an immunised run from its release file (--init-from {} "
                  "--immunise --out <new folder>)",
                  ckpt.string(), (opt.out_dir / "model.safetensors").string());
    }
    std::optional<io::SafetensorsFile> init_file;  // read once: its config here, its weights below
    if (!opt.init_from.empty()) {
        init_file = io::SafetensorsFile::load(opt.init_from);
        mc = read_release_config(*init_file);
    }
    const io::ImageDataset ds = load_training_data(opt.data, mc);
    const TrainingData data = training_data_record(opt.data, ds);
    // every checkpoint records it in its JSON header: refuse now, not at the first checkpoint
    SGF_CHECK(is_valid_utf8(data.name), ArgumentError,
              "--data {}: the folder's path is not valid UTF-8, which a checkpoint cannot record; rename the folder", printable(data.name));
    Trainer<B> tr(b, mc, tc);  // checks the configs
    io::Sampler sampler(tc.x_flip ? 2 * ds.size() : ds.size(), tc.seed);  // x-flip: index N + i is image i mirrored
    if (opt.resume) {
        load_checkpoint(b, ckpt, tr, sampler, data);  // refuses a checkpoint of other data
        fmt::print("resumed from {} at step {} ({} kimg)\n", ckpt.string(), tr.step_count(),
                   tr.step_count() * tc.batch / 1000.0);
    }
    if (!opt.init_from.empty()) {
        load_release_weights(b, *init_file, tr);
        fmt::print("weights from {} (optimiser moments start at zero)\n", opt.init_from.string());
    }
    io::ensure_directory(opt.out_dir);  // only once the inputs and options are known to be good
    const auto total_steps = static_cast<std::int64_t>(std::ceil(opt.total_kimg * 1000.0 / tc.batch));
    const fs::path csv_path = opt.out_dir / "log.csv";
    std::error_code csv_ec;
    if (fs::exists(csv_path, csv_ec) && !fs::is_regular_file(csv_path, csv_ec))
        SGF_THROW(IoError, "{}: the training log is not a regular file (a folder?)", csv_path.string());
    // an empty log (killed before its header reached the disk) gets the header on resume; a resumed
    // log loses the rows after the checkpoint's step (a run killed after its last checkpoint) and a
    // last line cut short (a full disk), so that every step appears once
    if (opt.resume) trim_training_log(csv_path, tr.step_count());
    const bool new_csv = !opt.resume || !fs::exists(csv_path) || fs::file_size(csv_path) == 0;
    std::ofstream csv(csv_path, new_csv ? std::ios::trunc : std::ios::app);
    if (!csv) SGF_THROW(IoError, "{}: cannot open the training log for writing", csv_path.string());
    auto check_log = [&] {
        if (!csv)
            SGF_THROW(IoError, "{}: cannot write the training log (disk full?); the last checkpoint is kept, --resume continues",
                      csv_path.string());
    };
    if (new_csv) csv << kTrainingLogHeader << std::flush;  // before any checkpoint can exist: a resumed run appends to this file
    check_log();
    fmt::print("training preset '{}' ({}x{}x{}, {} bits) on {} ({} images), batch {}, {} steps, output in {}\n",
               mc.preset, mc.image_channels, mc.resolution, mc.resolution, mc.fingerprint_bits, ds.name, ds.size(), tc.batch,
               total_steps, opt.out_dir.string());
    install_interrupt_handler();
    const auto t0 = clock::now();
    const std::int64_t start_step = tr.step_count();
    double g_avg = 0, d_avg = 0;
    StuckBitsWatch stuck(opt.stuck_kimg);
    const double line_seconds =
        opt.progress_line_seconds >= 0 ? opt.progress_line_seconds : (::isatty(STDOUT_FILENO) ? 0.0 : 30.0);
    double last_line = -1e300;  // seconds of the last whole progress line
    // what ends a "\r" progress line before other output (nothing when lines are whole)
    const std::string line_end = opt.progress && line_seconds == 0 ? "\n" : "";
    auto checkpoint = [&] { save_checkpoint(b, ckpt, tr, sampler, data); };
    while (tr.step_count() < total_steps) {
        if (interrupt_flag()) {
            checkpoint();
            fmt::print("{}interrupted: checkpoint written to {} at step {}; continue with --resume\n", line_end, ckpt.string(),
                       tr.step_count());
            return 130;
        }
        const auto indices = sampler.next(tc.batch);
        const auto real = from_host(b, tc.x_flip ? ds.x_flip_batch(indices) : ds.batch(indices));
        StepStats st;
        try {
            st = tr.step(real);
        } catch (const NumericError&) {
            if (!line_end.empty()) {  // end the progress line before the caller reports the error
                fmt::print("{}", line_end);
                std::fflush(stdout);
            }
            throw;
        }
        g_avg = st.step == start_step + 1 ? st.g.total : 0.98 * g_avg + 0.02 * st.g.total;
        d_avg = st.step == start_step + 1 ? st.d.total : 0.98 * d_avg + 0.02 * st.d.total;
        const double secs = std::chrono::duration<double>(clock::now() - t0).count();
        const double kimg = double(st.step) * tc.batch / 1000.0;
        const bool last = st.step == total_steps;
        if (st.step % opt.log_every == 0 || last)
            csv << fmt::format("{},{:.3f},{:.1f},{:.5f},{:.5f},{:.5f},{:.5f},{:.5f},{:.4f},{:.5f},{:.5f},{:.5f}\n", st.step,
                               kimg, secs, st.g.total, st.g.adversarial, st.g.consistency, st.g.latent, st.g.fingerprint,
                               st.g.bit_accuracy, st.d.fake, st.d.real, st.d.r1)
                << std::flush;
        check_log();
        const bool stuck_now = stuck.update(st.g.bit_accuracy, kimg) && tc.fingerprint;
        if (opt.progress && (line_seconds == 0 || last || stuck_now || secs - last_line >= line_seconds)) {
            const double ips = double(st.step - start_step) * tc.batch / std::max(secs, 1e-9);
            const double eta = double(total_steps - st.step) * tc.batch / std::max(ips, 1e-9);
            fmt::print("{}step {}/{} {:5.1f}% | {:.1f} img/s | ETA {:02d}:{:02d}:{:02d} | G+F {:.3f} D {:.3f} | bits {:.3f}{}",
                       line_seconds == 0 ? "\r" : "", st.step, total_steps, 100.0 * st.step / total_steps, ips,
                       int(eta / 3600), int(eta / 60) % 60, int(eta) % 60, g_avg, d_avg, stuck.average(),
                       line_seconds == 0 ? " " : "\n");
            std::fflush(stdout);
            last_line = secs;
        }
        if (stuck_now) {  // on stderr, as every other warning; the progress line on stdout ends first
            fmt::print("{}", line_end);
            std::fflush(stdout);
            fmt::print(stderr, "{}\n", stuck_bits_warning(stuck.average(), kimg, tc));
        }
        if (st.step % opt.grid_every == 0 || last)
            io::save_png(opt.out_dir / fmt::format("samples-{:07d}.png", st.step), sample_grid(b, tr.generator_ema(), 6, 8, 7));
        if (st.step % opt.checkpoint_every == 0) checkpoint();
    }
    checkpoint();
    const fs::path release = opt.out_dir / "model.safetensors";
    std::map<std::string, std::string> release_metadata{{"sgf.train_config", nlohmann::json(tc).dump()},
                                                        {"sgf.trained_kimg", exact_kimg(tr.step_count() * tc.batch)},
                                                        {"sgf.dataset", ds.name}};
    if (!data.digest.empty()) release_metadata["sgf.dataset_digest"] = data.digest;
    io::save_meta_model(b, release, tr.generator_ema(), tr.decoder(), tr.discriminator(), release_metadata);
    fmt::print("{}done: {} in {:.0f} s; release file {}\n", line_end, count_of(tr.step_count(), "step"),
               std::chrono::duration<double>(clock::now() - t0).count(), release.string());
    return 0;
}

/// Fashion-MNIST (padded to 32x32) or a folder of PNG/JPEG images (centre-cropped and resized).
inline io::ImageDataset load_training_data(const std::string& data, const ModelConfig& cfg) {
    namespace fs = std::filesystem;
    if (data == "fashion-mnist") {
        auto ds = io::load_fashion_mnist("train");
        SGF_CHECK(cfg.resolution == 32 && cfg.image_channels == 1, ArgumentError,
                  "fashion-mnist is 1x32x32; the model is {}x{}x{} (use --data <folder> for other data)", cfg.image_channels,
                  cfg.resolution, cfg.resolution);
        return ds;
    }
    if (!fs::is_directory(data)) SGF_THROW(IoError, "{}: not a directory of images (or 'fashion-mnist')", data);
    return io::load_image_folder(data, cfg.image_channels, cfg.resolution);  // named `data`
}

}  // namespace sgf
