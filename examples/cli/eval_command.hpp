// `sgf eval`: bit accuracy of a meta model (without --out), or the full evaluation report (with --out):
// detection, false positives on real images, attribution (closed/open world), robustness sweeps over
// every image attack, and fidelity (FD-classifier). See docs/cli.md and docs/evaluation.md.
#pragma once

#include <sgf/eval/report.hpp>
#include <sgf/io.hpp>
#include <sgf/verify/evaluate.hpp>

#include "../common/cli_checks.hpp"
#include "diagnostics.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>

namespace sgf_cli {

struct EvalArgs {
    std::string model, immunised, baseline, out, fd_classifier, real_dir;
    std::optional<std::int64_t> images;        ///< default: 10000 without --out, 1000 with --out, 48 with --quick
    std::optional<std::int64_t> users_max;     ///< default: 1000 (100 with --quick)
    std::optional<std::int64_t> fd_steps;      ///< default: 1500 (30 with --quick)
    std::uint64_t seed = 2024;
    double alpha = 1e-6;
    int min_margin = 8;
    std::vector<std::string> attacks;
    bool quick = false, no_fidelity = false;
};

inline void add_eval_options(CLI::App& eval, EvalArgs& a) {
    eval.add_option("--model", a.model, "meta-model file (the original model)")->capture_default_str();
    eval.add_option("--immunised", a.immunised, "a second meta model (e.g. trained with --immunise), evaluated side by side (needs --out)");
    eval.add_option("--baseline", a.baseline,
                    "the same architecture trained with --no-fingerprint: its FD-classifier is the fidelity reference (needs --out)");
    eval.add_option("--images", a.images, "images per measurement (default 10000 without --out, 1000 with --out, 48 with --quick)");
    eval.add_option("--users-max", a.users_max, "largest registry of the attribution study: 1, 10, 100, 1000 ... up to this (default 1000)");
    eval.add_option("--out", a.out, "write the full report (CSV, report.md, plots, example strips) into this folder");
    eval.add_option("--seed", a.seed, "seed of every random draw")->transform(sgf_examples::seed_check())->capture_default_str();
    eval.add_option("--alpha", a.alpha, "false-positive rate of the detection threshold (family-wise for registries)")->capture_default_str();
    eval.add_option("--min-margin", a.min_margin, "bits between best and runner-up to attribute")->capture_default_str();
    eval.add_option("--attacks", a.attacks, "image and model attacks to sweep (default: all registered; docs/evaluation.md lists them)")->delimiter(',');
    eval.add_option("--fd-classifier", a.fd_classifier,
                    "FD classifier file; trained and saved there when missing (default: fd-classifier.safetensors beside --model, "
                    "in --out with --quick or --real-dir)");
    eval.add_option("--real-dir", a.real_dir,
                    "real images from this folder (PNG/JPEG, searched recursively) instead of Fashion-MNIST's test split; "
                    "fidelity needs them in one sub-folder per class (needs --out)");
    eval.add_option("--fd-steps", a.fd_steps, "training steps when the FD classifier has to be trained (default 1500, 30 with --quick)");
    eval.add_flag("--no-fidelity", a.no_fidelity, "skip the FD-classifier measurement");
    eval.add_flag("--quick", a.quick,
                  "small sizes for smoke tests (48 images, 100 users, a 30-step classifier kept in --out, fine-tuning attack at batch 2)");
}

/// For a folder `dir` that may not exist yet (ensure_directory would create it): the nearest existing
/// folder at or above it when that one is not a writable folder, else nothing.
inline std::optional<std::filesystem::path> unwritable_folder_for(std::filesystem::path dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    while (!fs::exists(dir, ec) && dir.has_parent_path() && dir.parent_path() != dir) dir = dir.parent_path();
    if (fs::is_directory(dir, ec) && ::access(dir.c_str(), W_OK | X_OK) == 0) return std::nullopt;
    return dir;
}

/// Checks every value of `sgf eval` before anything is loaded, computed or printed (exit 2), also
/// the ones that only the full report (--out) uses; with --out, an --out that is an existing file and
/// an existing --fd-classifier that is not a model file are refused before the measurements.
inline void validate_eval_args(const EvalArgs& a) {
    namespace fs = std::filesystem;
    SGF_CHECK(a.alpha > 0 && a.alpha < 1, ArgumentError, "--alpha must be in (0, 1), got {}", a.alpha);
    SGF_CHECK(a.min_margin >= 0, ArgumentError, "--min-margin must be >= 0, got {}", a.min_margin);
    if (a.images) SGF_CHECK(*a.images >= (a.out.empty() ? 1 : 2) && *a.images <= 1000000, ArgumentError,
                            "--images must be in {}..1000000, got {}", a.out.empty() ? 1 : 2, *a.images);
    if (a.users_max) SGF_CHECK(*a.users_max >= 1 && *a.users_max <= 1000000, ArgumentError,
                               "--users-max must be in 1..1000000, got {}", *a.users_max);
    if (a.fd_steps) SGF_CHECK(*a.fd_steps >= 1, ArgumentError, "--fd-steps must be at least 1, got {}", *a.fd_steps);
    for (const auto& name : a.attacks) (void)sgf::eval::find_attack(name);  // names the unknown attack
    if (a.out.empty()) return;
    std::error_code ec;
    if (!a.real_dir.empty()) {
        (void)sgf::io::list_image_files(a.real_dir);  // a missing or empty folder: IoError now
        // the report's own PNGs (plots/, examples/) would become real images of the next run
        const auto out = fs::weakly_canonical(fs::absolute(a.out, ec), ec), real = fs::weakly_canonical(fs::absolute(a.real_dir, ec), ec);
        const auto rel = out.lexically_relative(real);
        SGF_CHECK(rel.empty() || *rel.begin() == "..", ArgumentError, "eval --out {} lies inside --real-dir {}: its plots would be read as "
                  "real images; write the report elsewhere", a.out, a.real_dir);
    }
    if (fs::exists(a.out, ec) && !fs::is_directory(a.out, ec))
        SGF_THROW(IoError, "eval --out {}: exists and is not a folder", a.out);
    // the report is written after all the measurements: a folder that cannot take it fails now
    if (const auto dir = unwritable_folder_for(fs::absolute(a.out, ec)))
        SGF_THROW(IoError, "eval --out {}: '{}' is not a writable folder, so the report could not be written", a.out, dir->string());
    if (!a.fd_classifier.empty() && fs::exists(a.fd_classifier, ec))
        (void)sgf::io::SafetensorsFile::load(a.fd_classifier);  // a damaged file: FormatError now, not after the sweeps
}

/// A classifier that has to be trained is saved at `path` after every sweep: a folder that cannot
/// take it must fail now (exit 3), not after minutes of work with no report written. The nearest
/// existing folder above it must be writable (ensure_directory creates the rest).
inline void check_classifier_writable(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(path, ec)) return;  // loaded, not written
    if (const auto dir = unwritable_folder_for(fs::absolute(path, ec).parent_path()))  // "rep/fd.safetensors": from rep up
        SGF_THROW(IoError, "{}: the FD classifier would be trained and saved here, but '{}' is not a writable folder (give "
                           "--fd-classifier FILE in a writable folder, or --no-fidelity)",
                  path.string(), dir->string());
}

/// Bit accuracy only (no --out): float, 8-bit PNG and clamped-only accuracy (docs/cli.md lists the keys).
template <class B>
int run_bit_accuracy(B& b, bool json_out, const EvalArgs& a, std::int64_t images) {
    auto m = sgf::io::load_meta_model<B>(b, a.model);
    bool progress_shown = false;
    auto progress = [&](std::int64_t done, std::int64_t total) {
        if (!json_out && ::isatty(STDOUT_FILENO)) {  // a "\r" progress line only on a terminal, never into a log
            std::cout << fmt::format("\r  decoded {}/{} images", done, total) << std::flush;
            progress_shown = true;
        }
    };
    const auto r = sgf::measure_bit_accuracy(b, m.G, m.F, images, a.seed, 64, progress);
    int weak = 0;
    double worst_bit = 1;
    for (double v : r.per_bit_png) {
        weak += v < 0.9;
        worst_bit = std::min(worst_bit, v);
    }
    nlohmann::json j{{"model", a.model},   {"images", r.images},           {"bits", r.bits},
                     {"seed", a.seed},     {"bit_accuracy_float", r.float_accuracy}, {"bit_accuracy_png", r.png_accuracy},
                     {"bit_accuracy_clamped", r.clamped_accuracy}, {"saturated_pixels", r.saturated_pixels},
                     {"worst_image_float", r.float_min}, {"worst_image_png", r.png_min}, {"worst_bit_png", worst_bit},
                     {"bits_below_0.9_png", weak},       {"per_bit_accuracy_png", r.per_bit_png}, {"seconds", r.seconds}};
    if (json_out) {
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
        if (progress_shown) std::cout << "\n";  // ends the progress line
        std::cout << fmt::format(
            "{}: {} images from the EMA meta generator (random z, random {}-bit fingerprints, seed {})\n"
            "  bit accuracy, float output:      {:.4f} (worst image {:.3f})\n"
            "  bit accuracy, 8-bit PNG round trip: {:.4f} (worst image {:.3f}, worst bit position {:.3f})\n"
            "  bit accuracy, float output clamped to [-1, 1]: {:.4f} ({:.3f} of the pixel values lie outside)\n"
            "  {:.1f} s\n",
            a.model, r.images, r.bits, a.seed, r.float_accuracy, r.float_min, r.png_accuracy, r.png_min, worst_bit,
            r.clamped_accuracy, r.saturated_pixels, r.seconds);
    }
    return 0;
}

/// `sgf eval` without --out: the bit accuracy of a meta model (runs on any backend).
template <class B>
int run_bit_accuracy_command(B& b, bool json_out, const EvalArgs& a) {
    validate_eval_args(a);  // (again when run_eval called it: cheap)
    if (!a.immunised.empty() || !a.baseline.empty() || !a.real_dir.empty())
        SGF_THROW(ArgumentError, "eval: --immunised, --baseline and --real-dir need --out (they are part of the full report)");
    const std::int64_t images = a.images.value_or(a.quick ? 48 : 10000);
    SGF_CHECK(images > 0, ArgumentError, "--images must be positive, got {}", images);
    return run_bit_accuracy(b, json_out, a, images);
}

/// `sgf eval`: without --out the bit accuracy, with --out the full report (CPU backend).
template <class B>
int run_eval(B& b, bool json_out, const EvalArgs& a) {
    namespace fs = std::filesystem;
    validate_eval_args(a);
    if (a.out.empty()) return run_bit_accuracy_command(b, json_out, a);

    sgf::eval::EvalOptions opt;
    opt.images = a.images.value_or(a.quick ? 48 : 1000);
    opt.users_max = a.users_max.value_or(a.quick ? 100 : 1000);
    if (a.quick) opt.finetune_batch = 2;  // the fine-tuning attack's 2 x 200 steps per model
    opt.seed = a.seed;
    if (!(a.alpha > 0 && a.alpha < 1)) SGF_THROW(ArgumentError, "--alpha must be in (0, 1), got {}", a.alpha);
    SGF_CHECK(a.min_margin >= 0, ArgumentError, "--min-margin must be >= 0, got {}", a.min_margin);
    opt.rule = sgf::AttributionRule{a.alpha, a.min_margin};
    opt.attacks = a.attacks;
    opt.fidelity = !a.no_fidelity;
    opt.fd_train.steps = a.fd_steps.value_or(a.quick ? 30 : 1500);
    opt.fd_train.seed = 1;
    if (a.quick) opt.fd_train.eval_images = 1000;
    opt.real_dir = a.real_dir;
    if (!a.fd_classifier.empty()) opt.fd_classifier = a.fd_classifier;
    else if (a.quick || !a.real_dir.empty()) opt.fd_classifier = fs::path(a.out) / "fd-classifier.safetensors";
    else opt.fd_classifier = fs::path(a.model).parent_path() / "fd-classifier.safetensors";
    if (opt.fidelity) check_classifier_writable(opt.fd_classifier);
    auto say = [&](const std::string& s) {
        if (!json_out) std::cout << s << std::flush;
    };
    // printed once evaluate() has checked every input (its first progress report, or its result):
    // an option or file it refuses must fail before anything is printed
    bool header_said = false;
    auto header = [&] {
        if (header_said) return;
        header_said = true;
        say(fmt::format("sgf eval: {} images per measurement, registries up to {} users, seed {}; real images: {}\n", opt.images,
                        opt.users_max, opt.seed, a.real_dir.empty() ? std::string("Fashion-MNIST test split") : a.real_dir));
    };
    std::string last_stage;
    const bool tty = ::isatty(STDOUT_FILENO);
    auto progress = [&](const std::string& stage, std::int64_t done, std::int64_t total) {
        if (json_out) return;
        header();
        if (!tty) {  // into a log or a pipe: each stage once, on a line of its own (no "\r" updates)
            if (stage != last_stage) std::cout << fmt::format("  {}: {}\n", stage, sgf::count_of(total, "step")) << std::flush;
            last_stage = stage;
            return;
        }
        if (stage != last_stage && !last_stage.empty()) std::cout << "\n";
        last_stage = stage;
        std::cout << fmt::format("\r  {}: {}/{}", stage, done, total) << std::flush;
    };

    std::vector<sgf::io::MetaModel<B>> loaded;
    loaded.reserve(2);
    loaded.push_back(sgf::io::load_meta_model<B>(b, a.model));
    std::vector<sgf::eval::EvalModelInput<B>> inputs{{"original", a.model, nullptr}};
    if (!a.immunised.empty()) {
        loaded.push_back(sgf::io::load_meta_model<B>(b, a.immunised));
        inputs.push_back({"immunised", a.immunised, nullptr});
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i].model = &loaded[i];
    // a threshold above the bits: every detection or attribution row would read 0, say why up front
    const int bits = loaded[0].config.fingerprint_bits;
    const int k_one = sgf::stats::bit_threshold(bits, opt.rule.alpha);
    const int k_most = sgf::stats::family_bit_threshold(bits, opt.rule.alpha, opt.users_max);
    std::string warning;
    if (k_one > bits)
        warning = fmt::format("--alpha {} needs {} matching bits of {}: no image can be detected or attributed; use a larger --alpha",
                              opt.rule.alpha, k_one, bits);
    else if (k_most > bits)
        warning = fmt::format("--alpha {} over {} users needs {} matching bits of {}: no image can be attributed in the largest "
                              "registries; use a larger --alpha or a smaller --users-max",
                              opt.rule.alpha, opt.users_max, k_most, bits);
    warn(warning);  // before the measurements: those rows would read 0

    std::optional<sgf::io::MetaModel<B>> base_meta;
    std::optional<sgf::MetaGenerator<B>> base_baked;
    std::optional<sgf::eval::BaselineInput<B>> baseline;
    if (!a.baseline.empty()) {
        const auto f = sgf::io::SafetensorsFile::load(a.baseline);
        if (f.meta("sgf.kind") == "baked-generator") {
            base_baked.emplace(sgf::io::load_baked_generator<B>(b, f));
            baseline = sgf::eval::BaselineInput<B>{a.baseline, &*base_baked};
        } else {
            base_meta.emplace(sgf::io::load_meta_model<B>(b, f));
            baseline = sgf::eval::BaselineInput<B>{a.baseline, &base_meta->G};
        }
    }

    const auto r = sgf::eval::evaluate(b, inputs, opt, baseline, progress);
    header();
    if (!last_stage.empty() && tty) say("\n");
    // an existing classifier file is loaded as it is: --fd-steps applies only to one trained now
    if (r.fidelity.computed && !r.fidelity.classifier_trained_now && r.fidelity.classifier.steps < opt.fd_train.steps)
        warn(fmt::format("{}: this FD classifier was trained for {} steps and is loaded as it is (--fd-steps {} applies to a new "
                         "one); remove the file to train a new one",
                         r.fidelity.classifier_path, r.fidelity.classifier.steps, opt.fd_train.steps));
    const auto files = sgf::eval::write_report(r, a.out);

    const auto& m0 = r.models[0];
    int weak = 0;
    double worst_bit = 1;
    for (double v : m0.clean_png.per_bit) {
        weak += v < 0.9;
        worst_bit = std::min(worst_bit, v);
    }
    nlohmann::json j{{"model", a.model},
                     {"images", opt.images},
                     {"bits", r.bits},
                     {"seed", a.seed},
                     {"bit_accuracy_float", m0.clean_float.bit_accuracy},
                     {"bit_accuracy_png", m0.clean_png.bit_accuracy},
                     {"worst_image_float", m0.clean_float.worst_image},
                     {"worst_image_png", m0.clean_png.worst_image},
                     {"saturated_pixels", m0.saturated_pixels},
                     {"worst_bit_png", worst_bit},
                     {"bits_below_0.9_png", weak},
                     {"per_bit_accuracy_png", m0.clean_png.per_bit},
                     {"seconds", r.total_seconds},
                     {"out", a.out},
                     {"files", files},
                     {"report", sgf::eval::to_json(r)}};
    if (!warning.empty()) j["warning"] = warning;
    if (json_out) {
        std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return 0;
    }
    std::string text;
    for (const auto& m : r.models) {
        text += fmt::format("{} ({}):\n", m.role, m.path);
        text += fmt::format("  bit accuracy, float output:      {:.4f} (worst image {:.3f})\n", m.clean_float.bit_accuracy,
                            m.clean_float.worst_image);
        text += fmt::format("  bit accuracy, 8-bit PNG round trip: {:.4f} (worst image {:.3f})\n", m.clean_png.bit_accuracy,
                            m.clean_png.worst_image);
        text += fmt::format("  TPR at FPR {:g}: bit count {:.4f} (mean -log10 p {:.2f}), weighted score {:.4f} (mean -log10 p {:.2f})\n",
                            opt.rule.alpha, m.clean_png.tpr, m.clean_png.mean_neg_log10_p, m.clean_png.tpr_weighted,
                            m.clean_png.mean_neg_log10_p_weighted);
        text += fmt::format("  real images attributed (registry of {}): {} of {} by the bit count, {} by the weighted score; "
                            "{} pass k* = {} for one fingerprint\n",
                            m.fpr.registry_size, m.fpr.registry_attributed, m.fpr.real_images, m.fpr.registry_attributed_weighted,
                            m.fpr.single_pass, m.fpr.threshold_single);
        for (const auto& at : m.attribution)
            text += fmt::format("  attribution, {:>5} users, {:<15} closed world {:.4f}, open world {:.4f}\n", at.users,
                                at.score == sgf::Score::weighted ? "weighted score:" : "bit count:", at.closed_accuracy, at.open_accuracy);
        if (m.fd) text += fmt::format("  FD-classifier vs real: {:.4f}\n", m.fd->value);
    }
    if (r.fidelity.computed) {
        text += fmt::format("FD-classifier of real test images (floor): {:.4f}", r.fidelity.real_vs_real.value);
        if (r.fidelity.baseline) text += fmt::format("; baseline: {:.4f}", r.fidelity.baseline->value);
        text += fmt::format(" (classifier {}, test accuracy {:.4f})\n", r.fidelity.classifier_path, r.fidelity.classifier.test_accuracy);
    } else if (!r.fidelity.skipped.empty()) {
        text += fmt::format("FD-classifier not computed: {}\n", r.fidelity.skipped);
    }
    text += fmt::format("wrote {} files to {} (report.md, robustness.csv, attribution.csv, summary.json, plots/, examples/) in {:.1f} s\n",
                        files.size(), a.out, r.total_seconds);
    std::cout << text;
    return 0;
}

}  // namespace sgf_cli
