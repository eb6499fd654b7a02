// Writes an EvalResult (eval/evaluation.hpp) into a folder (docs/evaluation.md):
//   robustness.csv    one row per model x attack x strength
//   attribution.csv   one row per model x registry size
//   summary.json      every number of the report
//   report.md         the tables, with the plots and strips embedded
//   plots/<attack>.png     bit accuracy vs strength, one line per model
//   examples/<attack>.png  example images under the attack at a few strengths
#pragma once

#include <sgf/eval/evaluation.hpp>
#include <sgf/eval/plot.hpp>
#include <sgf/io/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>

namespace sgf::eval {

inline constexpr const char* kRobustnessCsvHeader =
    "model,kind,attack,strength,identity,images,bit_accuracy,worst_image_accuracy,detection_rate,mean_neg_log10_p,"
    "detection_rate_weighted,mean_neg_log10_p_weighted,parameter";
inline constexpr const char* kAttributionCsvHeader =
    "model,score,users,threshold_bits,generated,correct,wrong_user,inconclusive,missed,real,real_attributed,open,open_attributed,"
    "open_detected,closed_accuracy,open_accuracy";

namespace detail {
inline std::string csv_quote(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}
inline std::string num(double v) { return fmt::format("{:.6g}", v); }
inline plot::Rgb model_color(std::size_t i) {
    static const plot::Rgb colors[] = {plot::kBlue, plot::kOrange, plot::kGreen, plot::kRed};
    return colors[i % 4];
}
}  // namespace detail

inline nlohmann::json to_json(const DetectionStats& s, bool per_bit = false) {
    nlohmann::json j{{"images", s.images},
                     {"bit_accuracy", s.bit_accuracy},
                     {"worst_image_accuracy", s.worst_image},
                     {"detection_rate", s.tpr},
                     {"mean_neg_log10_p", s.mean_neg_log10_p},
                     {"detection_rate_weighted", s.tpr_weighted},
                     {"mean_neg_log10_p_weighted", s.mean_neg_log10_p_weighted}};
    if (per_bit) j["per_bit_accuracy"] = s.per_bit;
    return j;
}

inline nlohmann::json to_json(const FrechetDistance& d) {
    return {{"fd_classifier", d.value}, {"mean_term", d.mean_term}, {"trace_term", d.trace_term}};
}

inline nlohmann::json to_json(const EvalResult& r) {
    using nlohmann::json;
    json models = json::array();
    for (const auto& m : r.models) {
        json att = json::array();
        for (const auto& a : m.attribution)
            att.push_back({{"score", score_name(a.score)},
                           {"users", a.users},
                           {"threshold_bits", a.threshold},
                           {"generated", a.generated},
                           {"correct", a.correct},
                           {"wrong_user", a.wrong_user},
                           {"inconclusive", a.inconclusive},
                           {"missed", a.missed},
                           {"real", a.real},
                           {"real_attributed", a.real_attributed},
                           {"open", a.open},
                           {"open_attributed", a.open_attributed},
                           {"open_detected", a.open_detected},
                           {"closed_accuracy", a.closed_accuracy},
                           {"open_accuracy", a.open_accuracy}});
        json sw = json::array();
        for (const auto& s : m.sweeps) {
            json row = to_json(s.stats);
            row["kind"] = s.kind;
            row["attack"] = s.attack;
            row["strength"] = s.strength;
            row["identity"] = s.identity;
            sw.push_back(row);
        }
        const auto& f = m.fpr;
        json mj{{"role", m.role},
                {"path", m.path},
                {"clean_float", to_json(m.clean_float)},
                {"clean_png", to_json(m.clean_png, true)},
                {"saturated_pixels", m.saturated_pixels},
                {"false_positives_real",
                 {{"real_images", f.real_images},
                  {"threshold_single", f.threshold_single},
                  {"single_pass", f.single_pass},
                  {"single_fpr", double(f.single_pass) / double(std::max<std::int64_t>(1, f.real_images))},
                  {"single_mean_matching_bits", f.single_mean_matching},
                  {"comparisons", f.comparisons},
                  {"comparison_pass", f.comparison_pass},
                  {"comparison_fpr", double(f.comparison_pass) / double(std::max<std::int64_t>(1, f.comparisons))},
                  {"registry_size", f.registry_size},
                  {"threshold_registry", f.threshold_registry},
                  {"registry_detected", f.registry_detected},
                  {"registry_attributed", f.registry_attributed},
                  {"registry_fpr", double(f.registry_attributed) / double(std::max<std::int64_t>(1, f.real_images))},
                  {"max_matching_bits", f.max_matching},
                  {"min_log10_p", f.min_log10_p},
                  {"weighted",
                   {{"single_pass", f.single_pass_weighted},
                    {"single_fpr", double(f.single_pass_weighted) / double(std::max<std::int64_t>(1, f.real_images))},
                    {"comparison_pass", f.comparison_pass_weighted},
                    {"comparison_fpr", double(f.comparison_pass_weighted) / double(std::max<std::int64_t>(1, f.comparisons))},
                    {"registry_detected", f.registry_detected_weighted},
                    {"registry_attributed", f.registry_attributed_weighted},
                    {"registry_fpr", double(f.registry_attributed_weighted) / double(std::max<std::int64_t>(1, f.real_images))},
                    {"min_log10_p", f.min_log10_p_weighted}}}}},
                {"attribution", att},
                {"robustness", sw}};
        if (m.fd) mj["fidelity"] = to_json(*m.fd);
        models.push_back(mj);
    }
    json stages = json::object();
    for (const auto& [k, v] : r.seconds) stages[k] = v;
    json j{{"images", r.options.images},
           {"users_max", r.options.users_max},
           {"seed", r.options.seed},
           {"bits", r.bits},
           {"alpha", r.options.rule.alpha},
           {"min_margin", r.options.rule.min_margin},
           {"threshold_bits", r.threshold_single},
           {"model_attack_users", model_attack_users(attack::model_attacks().front().name, r.options)},  // every attack but fine-tuning
           {"finetune_users", model_attack_users(attack::finetune_attack_info().name, r.options)},
           {"finetune_batch", r.options.finetune_batch},
           {"real_images_source", r.real_source},
           {"real_images_available", r.real_available},
           {"models", models},
           {"seconds", stages},
           {"total_seconds", r.total_seconds}};
    const auto& fr = r.fidelity;
    if (fr.computed) {
        json fj{{"metric", "FD-classifier (Frechet distance of fd-classifier fc features; not FID)"},
                {"classifier", fr.classifier_path},
                {"classifier_trained_now", fr.classifier_trained_now},
                {"classifier_test_accuracy", fr.classifier.test_accuracy},
                {"classifier_test_images", fr.classifier.test_images},
                {"classifier_steps", fr.classifier.steps},
                {"classifier_classes", fr.classes},
                {"classifier_dataset", fr.classifier.dataset},
                {"reference", fr.reference},
                {"held_out", fr.held_out},
                {"note", fr.note},
                {"images", fr.images},
                {"real_vs_real", to_json(fr.real_vs_real)}};
        if (fr.baseline) {
            fj["baseline"] = to_json(*fr.baseline);
            fj["baseline_path"] = fr.baseline_path;
            json rel = json::object();
            for (const auto& m : r.models)
                if (m.fd && fr.baseline->value > 0) rel[m.role] = (m.fd->value - fr.baseline->value) / fr.baseline->value;
            fj["relative_difference_vs_baseline"] = rel;
        }
        j["fidelity"] = fj;
    } else if (!fr.skipped.empty()) {
        j["fidelity"] = json{{"skipped", fr.skipped}};
    }
    return j;
}

inline std::string robustness_csv(const EvalResult& r) {
    std::string s = std::string(kRobustnessCsvHeader) + "\n";
    for (const auto& m : r.models)
        for (const auto& w : m.sweeps)
            s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", detail::csv_quote(m.role), w.kind, w.attack,
                             detail::num(w.strength), w.identity ? 1 : 0, w.stats.images, detail::num(w.stats.bit_accuracy),
                             detail::num(w.stats.worst_image), detail::num(w.stats.tpr), detail::num(w.stats.mean_neg_log10_p),
                             detail::num(w.stats.tpr_weighted), detail::num(w.stats.mean_neg_log10_p_weighted),
                             detail::csv_quote(w.parameter));
    return s;
}

inline std::string attribution_csv(const EvalResult& r) {
    std::string s = std::string(kAttributionCsvHeader) + "\n";
    for (const auto& m : r.models)
        for (const auto& a : m.attribution)
            s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", detail::csv_quote(m.role), score_name(a.score), a.users,
                             a.threshold, a.generated,
                             a.correct, a.wrong_user, a.inconclusive, a.missed, a.real, a.real_attributed, a.open, a.open_attributed,
                             a.open_detected, detail::num(a.closed_accuracy), detail::num(a.open_accuracy));
    return s;
}

/// Bit accuracy vs strength of one attack, one line per model.
inline io::Image robustness_plot(const EvalResult& r, const std::string& attack_name) {
    const AttackRef ref = find_attack(attack_name);
    const auto& info = *ref.info;
    plot::PlotSpec spec;
    spec.title = fmt::format("bit accuracy under {}{}", attack_name, ref.kind == "model" ? " (model attack)" : "");
    spec.x_label = info.parameter;  // shortened to fit the axis: drop a trailing parenthesis first
    if (spec.x_label.size() > 55 && spec.x_label.find(" (") != std::string::npos) spec.x_label.resize(spec.x_label.find(" ("));
    if (spec.x_label.size() > 55) spec.x_label = attack_name + " strength";
    spec.y_label = "bit accuracy";
    spec.y_min = 0.4;
    spec.y_max = 1.0;
    for (std::size_t i = 0; i < r.models.size(); ++i) {
        plot::Series s{r.models[i].role, detail::model_color(i), {}, {}};
        for (const auto& w : r.models[i].sweeps)
            if (w.attack == attack_name) {
                s.x.push_back(w.strength);
                s.y.push_back(w.stats.bit_accuracy);
            }
        spec.series.push_back(std::move(s));
    }
    spec.hlines.push_back({"chance (0.5)", 0.5, plot::kGray});
    if (r.bits > 0 && r.threshold_single <= r.bits)
        spec.hlines.push_back({fmt::format("k*/n = {}/{} (FPR {:g})", r.threshold_single, r.bits, r.options.rule.alpha),
                               double(r.threshold_single) / r.bits, plot::kRed});
    return plot::line_plot(spec);
}

inline std::string markdown_report(const EvalResult& r) {
    const auto& o = r.options;
    std::string md;
    auto add = [&](const std::string& s) { md += s; };
    add("# sgf evaluation report\n\n");
    add("Written by `sgf eval` (see docs/evaluation.md for what every number means).\n\n");
    add("| setting | value |\n|---|---|\n");
    for (const auto& m : r.models) add(fmt::format("| model ({}) | `{}` |\n", m.role, m.path));
    if (r.fidelity.baseline) add(fmt::format("| baseline (no fingerprint) | `{}` |\n", r.fidelity.baseline_path));
    add(fmt::format("| images per measurement | {} |\n| fingerprint bits n | {} |\n| seed | {} |\n", o.images, r.bits, o.seed));
    add(fmt::format("| alpha (family-wise FPR) / min margin | {:g} / {} bits |\n", o.rule.alpha, o.rule.min_margin));
    add(fmt::format("| single-fingerprint threshold k*(n, alpha) | {} bits |\n", r.threshold_single));
    add(fmt::format("| total time | {:.1f} s |\n\n", r.total_seconds));

    auto header = [&](const std::string& first) {
        std::string h = "| " + first + " |";
        std::string sep = "|---|";
        for (const auto& m : r.models) {
            h += " " + m.role + " |";
            sep += "---:|";
        }
        add(h + "\n" + sep + "\n");
    };
    auto row = [&](const std::string& name, auto value_of) {
        std::string s = "| " + name + " |";
        for (const auto& m : r.models) s += " " + value_of(m) + " |";
        add(s + "\n");
    };

    add("## Clean detection\n\n");
    header("measure");
    row("bit accuracy, float output", [](const ModelEval& m) { return fmt::format("{:.4f}", m.clean_float.bit_accuracy); });
    row("bit accuracy, 8-bit PNG", [](const ModelEval& m) { return fmt::format("{:.4f}", m.clean_png.bit_accuracy); });
    row("worst image, 8-bit PNG", [](const ModelEval& m) { return fmt::format("{:.4f}", m.clean_png.worst_image); });
    row("pixel values outside [-1, 1] (clamped by the 8-bit PNG)",
        [](const ModelEval& m) { return fmt::format("{:.4f}", m.saturated_pixels); });
    row("mean -log10 p, 8-bit PNG", [](const ModelEval& m) { return fmt::format("{:.2f}", m.clean_png.mean_neg_log10_p); });
    row(fmt::format("TPR at FPR {:g} (>= {} bits), 8-bit PNG", o.rule.alpha, r.threshold_single),
        [](const ModelEval& m) { return fmt::format("{:.4f}", m.clean_png.tpr); });
    row("mean -log10 p, weighted score, 8-bit PNG",
        [](const ModelEval& m) { return fmt::format("{:.2f}", m.clean_png.mean_neg_log10_p_weighted); });
    row(fmt::format("TPR at FPR {:g}, weighted score, 8-bit PNG", o.rule.alpha),
        [](const ModelEval& m) { return fmt::format("{:.4f}", m.clean_png.tpr_weighted); });
    add(fmt::format("\nThe bit count tests the number of bits that match the true fingerprint; the weighted score weighs each "
                    "matching bit by the decoder's confidence, min(round(4 |logit|), 15), and tests the sum against its exact null "
                    "distribution for that image (docs/verification.md, \"The weighted score\"). Both have false-positive rate {:g}.\n\n",
                    o.rule.alpha));

    add("## False positives on real images\n\n");
    add(fmt::format("Real images (no fingerprint) from {}, {} available, decoded like any published image.\n\n", r.real_source,
                    r.real_available));
    header("measure");
    row("real images", [](const ModelEval& m) { return fmt::format("{}", m.fpr.real_images); });
    row(fmt::format("pass k* = {} bits for one fingerprint", r.threshold_single), [](const ModelEval& m) {
        return fmt::format("{} ({:.2g})", m.fpr.single_pass, double(m.fpr.single_pass) / double(std::max<std::int64_t>(1, m.fpr.real_images)));
    });
    row("mean matching bits with that fingerprint", [](const ModelEval& m) { return fmt::format("{:.1f}", m.fpr.single_mean_matching); });
    row("(image, entry) pairs passing k*, every registry entry", [](const ModelEval& m) {
        return fmt::format("{} of {} ({:.2g})", m.fpr.comparison_pass, m.fpr.comparisons,
                           double(m.fpr.comparison_pass) / double(std::max<std::int64_t>(1, m.fpr.comparisons)));
    });
    row("detected against the registry (best >= k*(n, alpha/N))", [](const ModelEval& m) {
        return fmt::format("{} (N = {}, k* = {})", m.fpr.registry_detected, m.fpr.registry_size, m.fpr.threshold_registry);
    });
    row("attributed to a registered user", [](const ModelEval& m) { return fmt::format("{}", m.fpr.registry_attributed); });
    row("most matching bits with any entry", [](const ModelEval& m) {
        return fmt::format("{} (p = {:.2g})", m.fpr.max_matching, std::pow(10.0, m.fpr.min_log10_p));
    });
    auto rate = [](std::int64_t k, std::int64_t n) { return double(k) / double(std::max<std::int64_t>(1, n)); };
    row("weighted score: pass the threshold for one fingerprint", [&](const ModelEval& m) {
        return fmt::format("{} ({:.2g})", m.fpr.single_pass_weighted, rate(m.fpr.single_pass_weighted, m.fpr.real_images));
    });
    row("weighted score: (image, entry) pairs passing it", [&](const ModelEval& m) {
        return fmt::format("{} of {} ({:.2g})", m.fpr.comparison_pass_weighted, m.fpr.comparisons,
                           rate(m.fpr.comparison_pass_weighted, m.fpr.comparisons));
    });
    row("weighted score: detected against the registry",
        [](const ModelEval& m) { return fmt::format("{}", m.fpr.registry_detected_weighted); });
    row("weighted score: attributed to a registered user",
        [](const ModelEval& m) { return fmt::format("{}", m.fpr.registry_attributed_weighted); });
    row("weighted score: smallest p-value with any entry",
        [](const ModelEval& m) { return fmt::format("{:.2g}", std::pow(10.0, m.fpr.min_log10_p_weighted)); });
    add(fmt::format("\nTheoretical rate: alpha = {:g} per image (per comparison for one fingerprint, family-wise for the "
                    "registry).\n\n",
                    o.rule.alpha));

    add("## Attribution\n\n");
    add("Closed world: images of registered users and real images. Open world: additionally images of never-issued "
        "fingerprints, which must not be attributed. Accuracy counts a generated image as correct when it is attributed to "
        "its own user, a real or open-world image when it is not attributed to anyone. Score `weighted` (sgf's default) "
        "weighs each bit by the decoder's confidence; `bits` counts matching bits (the paper's test), and k* is its "
        "threshold.\n\n");
    add("| model | score | users | k* | correct | wrong user | inconclusive | missed | real attributed | open attributed | closed acc. | "
        "open acc. |\n");
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& m : r.models)
        for (const auto& a : m.attribution)
            add(fmt::format("| {} | {} | {} | {} | {}/{} | {} | {} | {} | {}/{} | {}/{} | {:.4f} | {:.4f} |\n", m.role, score_name(a.score),
                            a.users, a.threshold, a.correct, a.generated, a.wrong_user, a.inconclusive, a.missed, a.real_attributed, a.real,
                            a.open_attributed, a.open, a.closed_accuracy, a.open_accuracy));
    add("\n");

    add("## Fidelity (FD-classifier, not FID)\n\n");
    const auto& fr = r.fidelity;
    if (!fr.computed) {
        add(fr.skipped.empty() ? std::string("Not computed (`--no-fidelity`).\n\n") : fmt::format("Not computed: {}.\n\n", fr.skipped));
    } else {
        add(fmt::format("Frechet distance between Gaussian fits of the fc features of the FD classifier `{}` ({}-class "
                        "classifier trained on {}, top-1 test accuracy {:.4f} on {} images, {} training steps{}), {} images per set, "
                        "reference: {}; floor: {}. Lower is closer to the real data. FD-classifier is not FID: "
                        "compare only numbers made with the same classifier file and set size.\n\n",
                        fr.classifier_path, fr.classes, fr.classifier.dataset.empty() ? "unrecorded data" : fr.classifier.dataset,
                        fr.classifier.test_accuracy, fr.classifier.test_images, fr.classifier.steps,
                        fr.classifier_trained_now ? ", trained by this run" : "", fr.images, fr.reference, fr.held_out));
        if (!fr.note.empty()) add(fmt::format("Note: {}.\n\n", fr.note));
        add("| images | FD-classifier | mean term | trace term | vs baseline |\n|---|---:|---:|---:|---:|\n");
        add(fmt::format("| real test images (floor) | {:.4f} | {:.4f} | {:.4f} | |\n", fr.real_vs_real.value, fr.real_vs_real.mean_term,
                        fr.real_vs_real.trace_term));
        if (fr.baseline)
            add(fmt::format("| baseline (no fingerprint) | {:.4f} | {:.4f} | {:.4f} | |\n", fr.baseline->value, fr.baseline->mean_term,
                            fr.baseline->trace_term));
        for (const auto& m : r.models) {
            if (!m.fd) continue;
            std::string rel;
            if (fr.baseline && fr.baseline->value > 0) rel = fmt::format("{:+.1f}%", 100.0 * (m.fd->value - fr.baseline->value) / fr.baseline->value);
            add(fmt::format("| {} | {:.4f} | {:.4f} | {:.4f} | {} |\n", m.role, m.fd->value, m.fd->mean_term, m.fd->trace_term, rel));
        }
        if (!fr.baseline) add("\nNo baseline given (`--baseline MODEL`, trained with `--no-fingerprint`).\n");
        add("\n");
    }

    add("## Robustness\n\n");
    add(fmt::format("Bit accuracy of {} images per model after each attack, and the fraction detected against the true "
                    "fingerprint (TPR) by the bit count and by the weighted score. An image attack is applied to the 8-bit image "
                    "and its result saved in 8 bits; a model attack perturbs the weights of registered users' baked generators, "
                    "whose images are saved in 8 bits (its no-op strength gives those copies' clean numbers); "
                    "the dashed red line is k*/n, below which the mean image is no longer detected by the bit count at FPR {:g}. "
                    "All numbers are in `robustness.csv`.\n\n",
                    o.images, o.rule.alpha));
    std::vector<std::string> names;
    for (const auto& m : r.models)
        for (const auto& w : m.sweeps)
            if (std::find(names.begin(), names.end(), w.attack) == names.end()) names.push_back(w.attack);
    for (const auto& name : names) {
        const AttackRef ref = find_attack(name);
        const std::string batch = name == attack::finetune_attack_info().name ? fmt::format(", batch {}", o.finetune_batch) : "";
        add(ref.kind == "model" ? fmt::format("### {} (model attack)\n\n{}{}; the weights of {} users' baked generators.\n\n", name,
                                              ref.info->parameter, batch,
                                              model_attack_users(name, o))
                                : fmt::format("### {}\n\n{}\n\n", name, ref.info->parameter));
        std::string h = "| strength |", sep = "|---:|";
        for (const auto& m : r.models) {
            h += fmt::format(" {} bit acc. | {} TPR | {} TPR, weighted |", m.role, m.role, m.role);
            sep += "---:|---:|---:|";
        }
        add(h + "\n" + sep + "\n");
        const auto& sweep = ref.info->sweep;
        for (double s : sweep) {
            std::string line = fmt::format("| {:g} |", s);
            for (const auto& m : r.models) {
                const SweepRow* found = nullptr;
                for (const auto& w : m.sweeps)
                    if (w.attack == name && w.strength == s) found = &w;
                line += found ? fmt::format(" {:.4f} | {:.3f} | {:.3f} |", found->stats.bit_accuracy, found->stats.tpr, found->stats.tpr_weighted)
                              : " | | |";
            }
            add(line + "\n");
        }
        add(fmt::format("\n![{} plot](plots/{}.png)\n\n![{} examples](examples/{}.png)\n\n", name, name, name, name));
    }

    add("## Time\n\n| stage | seconds |\n|---|---:|\n");
    for (const auto& [k, v] : r.seconds) add(fmt::format("| {} | {:.1f} |\n", k, v));
    return md;
}

/// Writes every file of the report into `dir` (created if needed); returns the paths written.
/// All or nothing for what can fail: every file is made in memory first, every target is checked
/// (an existing one must be a regular file), the files are written into a staging folder inside
/// `dir`, and only when all of them are on disk do they replace the previous report's files, by
/// renames, which need no space. A failed write leaves an earlier report in `dir` as it was. Besides
/// its own files, the report removes only the plots and example strips of attacks an earlier report
/// had and this one has not (`plots/<attack>.png`, `examples/<attack>.png` for sgf's attack names):
/// other files in `dir`, `plots/` and `examples/` are never touched.
inline std::vector<std::string> write_report(const EvalResult& r, const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::vector<std::pair<fs::path, std::string>> content;  // relative path, bytes
    content.emplace_back("robustness.csv", robustness_csv(r));
    content.emplace_back("attribution.csv", attribution_csv(r));
    content.emplace_back("summary.json", to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    std::vector<std::string> names;
    for (const auto& m : r.models)
        for (const auto& w : m.sweeps)
            if (std::find(names.begin(), names.end(), w.attack) == names.end()) names.push_back(w.attack);
    for (const auto& name : names) content.emplace_back(fs::path("plots") / (name + ".png"), io::encode_png(robustness_plot(r, name)));
    for (const auto& st : r.strips)
        content.emplace_back(fs::path("examples") / (st.attack + ".png"),
                             io::encode_png(plot::image_strip(st.rows, st.column_labels, st.row_labels, 3)));
    content.emplace_back("report.md", markdown_report(r));

    std::error_code ec;
    for (const char* sub : {"plots", "examples"})
        if (fs::exists(dir / sub, ec) && !fs::is_directory(dir / sub, ec))
            SGF_THROW(IoError, "{}: is not a folder, so the report's {} cannot go there; move it away", (dir / sub).string(), sub);
    for (const auto& [rel, bytes] : content)
        if (fs::exists(dir / rel, ec) && !fs::is_regular_file(dir / rel, ec))
            SGF_THROW(IoError, "{}: is not a regular file, so the report cannot replace it; move it away", (dir / rel).string());

    const fs::path staging = dir / ".sgf-report-staging";
    fs::remove_all(staging, ec);  // left by a process that was killed
    try {
        io::ensure_directory(staging / "plots");
        io::ensure_directory(staging / "examples");
        io::ensure_directory(dir / "plots");
        io::ensure_directory(dir / "examples");
        for (const auto& [rel, bytes] : content) io::write_file_atomic(staging / rel, bytes);
        for (const auto& [rel, bytes] : content) {  // files over files in one folder: nothing left to fail but the disk itself
            fs::rename(staging / rel, dir / rel, ec);
            if (ec) SGF_THROW(IoError, "{}: cannot move the new report file into place: {}", (dir / rel).string(), ec.message());
        }
    } catch (...) {
        fs::remove_all(staging, ec);
        throw;
    }
    fs::remove_all(staging, ec);
    for (const auto& name : registered_attack_names())  // a plot or strip of an attack this report has not is removed
        for (const char* sub : {"plots", "examples"}) {
            const fs::path old = dir / sub / (name + ".png");
            if (std::none_of(content.begin(), content.end(), [&](const auto& c) { return c.first == fs::path(sub) / old.filename(); }))
                fs::remove(old, ec);
        }
    std::vector<std::string> files;
    for (const auto& [rel, bytes] : content) files.push_back((dir / rel).string());
    return files;
}

}  // namespace sgf::eval
