// sgf: the command-line tool. See docs/cli.md for every subcommand, its output and exit codes.
// The subcommands that run networks live in commands.hpp (templates over the backend). This file is
// built twice: into `sgf` with cuda_dispatch.cpp (--backend cuda runs sgf-cuda) and into `sgf-cuda`
// with cuda_commands.cu (--backend cuda runs on the GPU).
#include "commands.hpp"
#include "registry_command.hpp"

#include <sgf/backends/eigen.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <limits>
#include <map>
#include <string_view>

namespace {

using namespace sgf_cli;
using sgf_examples::run_with_exit_codes;

/// $SGF_MODEL; else, for an installed sgf, <prefix>/<datadir>/sgf/fashion-small.safetensors with
/// <prefix> the folder above <bindir> holding this executable (cmake --install puts the model there);
/// else the source tree's models/fashion-small.safetensors (a build tree). A missing file is named by
/// the loader.
std::string default_model() {
    namespace fs = std::filesystem;
    if (const char* e = std::getenv("SGF_MODEL"); e && *e) return e;  // set but empty: as if unset
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && !fs::path(SGF_INSTALL_BINDIR).is_relative()) ec = std::make_error_code(std::errc::not_supported);
    if (!ec) {  // (an absolute CMAKE_INSTALL_BINDIR: no prefix to climb to; the source tree's path)
        fs::path prefix = exe.parent_path();
        const fs::path bindir(SGF_INSTALL_BINDIR);  // "bin", or deeper: one level up per component
        for (auto it = bindir.begin(); it != bindir.end(); ++it) prefix = prefix.parent_path();
        const fs::path installed = prefix / SGF_MODEL_INSTALL_DIR / "fashion-small.safetensors";
        if (fs::is_regular_file(installed, ec)) return installed.string();
    }
    return SGF_DEFAULT_MODEL;
}

// ------------------------------------------------------------------------------------------ info
int cmd_info(const Common& c, const std::string& path) {
    const auto f = sgf::io::SafetensorsFile::load(path);
    std::size_t params = 0;
    json tensors = json::object();
    for (const auto& [name, t] : f.tensors()) {
        params += std::size_t(t.numel());
        tensors[name] = {{"dtype", t.dtype}, {"shape", t.shape}};
    }
    const std::string kind = f.metadata.count("sgf.kind") ? f.metadata.at("sgf.kind") : "(not an sgf file)";
    // the two JSON entries must parse, in text and JSON output alike
    std::map<std::string, json> parsed;
    for (const char* k : {"sgf.config", "sgf.train_config"}) {
        if (!f.metadata.count(k)) continue;
        try {
            parsed[k] = json::parse(f.metadata.at(k));
        } catch (const json::exception& e) {
            SGF_THROW(FormatError, "{}: metadata '{}' is not valid JSON: {}", path, k, e.what());
        }
    }
    json j{{"file", path}, {"kind", kind}, {"tensors", f.size()}, {"parameters", params}, {"metadata", f.metadata}};
    if (!c.json) {
        std::string text = fmt::format("{}\n  kind: {}\n  tensors: {}, parameters: {} ({:.2f} MB as float32)\n", path, kind, f.size(),
                                       params, params * 4 / 1e6);
        for (const auto& [k, v] : f.metadata) {
            // metadata is the file's: control characters (escape sequences, CR) are shown as \xNN,
            // so that a file cannot clear the screen or print lines that look like ours
            if (parsed.count(k))
                text += fmt::format("  {}: {}\n", k == "sgf.config" ? "config" : "train_config",
                                    terminal_safe(parsed.at(k).dump(-1, ' ', false, json::error_handler_t::replace)));
            else text += fmt::format("  {}: {}\n", terminal_safe(k), terminal_safe(v));
        }
        emit(c, j, text);
    } else {
        j["tensor_list"] = tensors;
        emit(c, j, "");
    }
    return kOk;
}

// ------------------------------------------------------------------------------------------ issue
// All labels are issued in one transaction: on any error (a label already issued, a repeated label,
// a full registry) nothing is issued. A new registry is created only once the arguments are valid.
int cmd_issue(const Common& c, const std::string& registry, const std::vector<std::string>& labels, const std::string& metadata,
              int count, const std::string& prefix, int min_distance, int bits) {
    if (labels.empty() && count == 0) SGF_THROW(ArgumentError, "issue: give --label (repeatable) or --count N (N >= 1)");
    for (std::size_t i = 0; i < labels.size(); ++i) {
        sgf::Registry::check_entry(labels[i], metadata, registry);
        for (std::size_t j = 0; j < i; ++j)
            if (labels[i] == labels[j]) SGF_THROW(ArgumentError, "issue: label '{}' is given twice", labels[i]);
    }
    if (count > 0) sgf::Registry::check_entry(sgf::Registry::numbered_label(prefix, 0), metadata, registry);  // the generated labels
    sgf::Registry::check_request_size(std::int64_t(count) + std::int64_t(labels.size()), registry);
    sgf::RegistryOptions opt;
    opt.min_distance = min_distance;
    opt.bits = bits > 0 ? bits : 128;
    const PriorFile prior = prior_file(registry);
    std::optional<sgf::Registry> created;  // so that a failed first issue can close it and remove it
    created.emplace(registry, opt);
    sgf::Registry& reg = *created;
    check_requested_registry(reg, registry, bits, min_distance);
    // The fingerprints are printed inside the transaction, before it commits: when they cannot be
    // written (a full disk, a closed pipe), emit throws and nothing is issued, so a retry can issue
    // the same labels. A failed commit after a successful print is an error too: on any non-zero exit
    // nothing was issued, whatever was printed.
    auto print = [&](const std::vector<sgf::RegistryEntry>& issued) {
        json arr = json::array();
        std::string text;
        for (const auto& e : issued) {
            arr.push_back({{"label", e.label}, {"fingerprint", e.fingerprint.hex()}, {"issued_at", e.issued_at}});
            text += fmt::format("{}\t{}\n", e.label, e.fingerprint.hex());
        }
        const std::int64_t size = reg.size();
        json out{{"registry", registry}, {"issued", arr}, {"registry_size", size}};
        // issuing works, but a registry this large is useless for verification at the default alpha
        std::string capacity = sgf::attribution_capacity_problem(reg.bits(), sgf::AttributionRule{}.alpha, size);
        if (!capacity.empty()) capacity += ". Issue into a registry with more --bits, for a model with that many";
        if (!capacity.empty()) {
            warn(fmt::format("{} (at sgf verify's default alpha): {}", registry, capacity));
            out["warning"] = capacity;
        }
        emit(c, out, text);
    };
    try {
        reg.issue_all({labels, prefix, count, metadata}, print);
    } catch (const sgf::Error&) {
        remove_if_created_and_empty(created, prior, registry);  // nothing was issued
        throw;
    }
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    // A closed pipe on stdout (`sgf verify ... | head -1`) makes a write fail with EPIPE, which emit
    // reports as exit 3, instead of killing the process with SIGPIPE (status 141, no message).
    std::signal(SIGPIPE, SIG_IGN);
    CLI::App app{"sgf: scalable fingerprinting of generative models (docs/cli.md)"};
    app.require_subcommand(1);
    app.fallthrough();  // --json, --threads, --backend also work after the subcommand
    Request req;
    Common& c = req.c;
    // with --json anywhere on the line (it may come after --version, which stops the parse), as JSON
    const bool json_anywhere = std::any_of(argv + 1, argv + argc, [](const char* a) { return std::string_view(a) == "--json"; });
    app.set_version_flag(
        "--version",
        [json_anywhere] {
            return json_anywhere ? nlohmann::json{{"name", "sgf"}, {"version", sgf::kVersion}}.dump() : fmt::format("sgf {}", sgf::kVersion);
        },
        "print the version and exit");
    app.add_flag("--json", c.json, "machine-readable output");
    app.add_option("--threads", c.threads, "CPU threads")->check(CLI::Range(1, 1024))->capture_default_str();
    app.add_option("--backend", c.backend, "cpu or cuda")->capture_default_str();

    // train
    auto* train = app.add_subcommand("train", "train a meta generator, decoder and discriminator");
    sgf_examples::add_training_options(*train, req.train);

    // issue
    auto* issue = app.add_subcommand("issue", "issue fingerprints into a registry");
    std::string& registry = req.registry;
    std::string metadata, prefix = "user";
    std::vector<std::string> labels;
    int count = 0, min_distance = -1, bits = 0;
    issue->add_option("--registry", registry, "registry file (SQLite)")->required();
    issue->add_option("--label", labels, "label(s) to issue");
    issue->add_option("--count", count, "issue this many with generated labels <prefix><number>")->check(CLI::Range(1, std::numeric_limits<int>::max()));
    issue->add_option("--prefix", prefix, "label prefix for --count")->capture_default_str();
    issue->add_option("--metadata", metadata, "free-form metadata (JSON by convention)");
    issue->add_option("--min-distance", min_distance, "minimum Hamming distance (new registries; default bits/4)")
        ->check(CLI::Range(0, 65536));
    issue->add_option("--bits", bits, "fingerprint length of a new registry (default 128); must match the model")
        ->check(CLI::Range(1, 65536));

    // registry list|lookup|export|import
    auto* registry_cmd = app.add_subcommand("registry", "list, look up, export or import the fingerprints of a registry");
    RegistryArgs registry_args;
    add_registry_options(*registry_cmd, registry_args);

    // instantiate
    auto* inst = app.add_subcommand("instantiate", "bake a fingerprint into a standalone generator file");
    req.model = default_model();
    std::string &model = req.model, &hex = req.hex, &label = req.label, &out_file = req.out_file;
    inst->add_option("--model", model, "meta-model or meta-generator file (sgf export-generator)")->capture_default_str();
    auto* inst_registry = inst->add_option("--registry", registry, "registry to look --label up in");
    auto* inst_label = inst->add_option("--label", label, "registry label");
    inst->add_option("--fingerprint", hex, "fingerprint as hex (instead of --registry and --label)")
        ->excludes(inst_registry)
        ->excludes(inst_label);
    inst->add_option("--out", out_file, "output file (a new file, or a baked generator to replace)")->required();

    // generate
    auto* gen = app.add_subcommand("generate", "generate PNG images from a baked generator or a meta model + fingerprint");
    int& n_images = req.n_images;
    std::uint64_t& seed = req.seed;
    bool& grid = req.grid;
    std::string& out_folder = req.out_folder;
    gen->add_option("--model", model, "baked-generator, meta-model or meta-generator file")->capture_default_str();
    gen->add_option("--fingerprint", hex, "fingerprint (meta models)");
    gen->add_option("--count", n_images, "images")->check(CLI::Range(1, std::numeric_limits<int>::max()))->capture_default_str();
    gen->add_option("--seed", seed, "latent seed")->transform(sgf_examples::seed_check())->capture_default_str();
    gen->add_option("--out", out_folder, "output folder")->capture_default_str();
    gen->add_flag("--grid", grid, "also write grid.png");

    // decode
    auto* dec = app.add_subcommand("decode", "decode fingerprint bits and logits from images");
    std::vector<std::string>& images = req.images;
    dec->add_option("--model", model, "meta-model or decoder file (sgf export-decoder)")->capture_default_str();
    dec->add_option("images", images, "image files (a folder: every PNG/JPEG under it)");
    dec->add_option("--files-from", req.files_from, "also the image files named in this file, one per line (- reads standard input)");

    // verify
    auto* ver = app.add_subcommand("verify", "decode images and attribute them against a registry");
    double& alpha = req.alpha;
    int& min_margin = req.min_margin;
    ver->add_option("--model", model, "meta-model or decoder file (sgf export-decoder)")->capture_default_str();
    ver->add_option("--registry", registry, "registry file")->required();
    ver->add_option("--alpha", alpha, "family-wise false-positive rate (per image with --label)")->capture_default_str();
    auto* ver_label = ver->add_option("--label", req.claimed, "test the claim 'LABEL's copy made it' against that one fingerprint (alpha per image, no Bonferroni)")
                          ->check(CLI::Validator([](std::string& v) { return v.empty() ? std::string("a label is never empty") : std::string(); },
                                                 "LABEL", "non-empty"));
    ver->add_option("--min-margin", min_margin, "bits between best and runner-up to attribute (not with --label)")
        ->check(CLI::Range(0, std::numeric_limits<int>::max()))
        ->excludes(ver_label)
        ->capture_default_str();
    const auto score_check = CLI::IsMember({"bits", "weighted"});
    ver->add_option("--score", req.score,
                    "weighted: matching bits weighted by the decoder's confidence in each (exact p-values, more images pass at the same "
                    "false-positive rate); bits: the paper's count of matching bits (docs/verification.md)")
        ->check(score_check)
        ->capture_default_str();
    ver->add_flag("--outcome-only", req.outcome_only,
                  "print only each image's outcome and, when attributed, the label: no bits, p-values or runner-up (public services)");
    ver->add_option("images", images, "image files (a folder: every PNG/JPEG under it)");
    ver->add_option("--files-from", req.files_from, "also the image files named in this file, one per line (- reads standard input)");

    // export-decoder, export-generator: one part of the meta model
    auto add_export = [&](const char* name, const char* what, const char* kind) {
        auto* sub = app.add_subcommand(name, what);
        sub->add_option("--model", model, "meta-model file")->capture_default_str();
        sub->add_option("--out", out_file, fmt::format("output file (a new file, or a {} file to replace)", kind))->required();
        return sub;
    };
    auto* exp_dec = add_export("export-decoder", "write the decoder alone: all a verifier needs (decode, verify)", "decoder");
    auto* exp_gen = add_export("export-generator", "write the meta generator alone: all a baking service needs (instantiate, generate)",
                               "meta-generator");

    // info
    auto* info = app.add_subcommand("info", "what a model file holds");
    std::string info_file;
    info->add_option("file", info_file, "model file")->required();

    // demo
    auto* demo = app.add_subcommand("demo", "end-to-end demo on the default model file (or --model)");
    int &users = req.users, &per_user = req.per_user, &n_real = req.n_real, &n_open = req.n_open;
    std::string& keep = req.keep;
    demo->add_option("--model", model, "meta-model file")->capture_default_str();
    demo->add_option("--users", users, "registered users")->check(CLI::Range(1, std::numeric_limits<int>::max()))->capture_default_str();
    demo->add_option("--images", per_user, "images per user")->check(CLI::Range(1, std::numeric_limits<int>::max()))->capture_default_str();
    demo->add_option("--real", n_real, "real test images")->check(CLI::Range(0, std::numeric_limits<int>::max()))->capture_default_str();
    demo->add_option("--open", n_open, "open-world images")->check(CLI::Range(0, std::numeric_limits<int>::max()))->capture_default_str();
    demo->add_option("--keep", keep, "keep the working files in this folder");
    demo->add_option("--score", req.score, "bits | weighted: how verification scores a match (as verify --score)")
        ->check(score_check)
        ->capture_default_str();
    demo->add_option("--real-dir", req.real_dir,
                     "real images from this folder (PNG/JPEG, searched recursively; the first --real in path order) instead of "
                     "Fashion-MNIST's test split");

    // eval
    auto* eval = app.add_subcommand("eval", "bit accuracy of a meta model; with --out the full evaluation report (docs/evaluation.md)");
    req.eval.model = default_model();
    sgf_cli::add_eval_options(*eval, req.eval);

    remember_command_line(argc, argv);
    // what a parse error says about the first word CLI11 could not place (none: no subcommand given)
    auto unknown_word = [](const std::vector<std::string>& rest) -> std::string {
        if (rest.empty()) return "name one of its subcommands";
        return fmt::format("unknown {} '{}'", rest.front().rfind('-', 0) == 0 ? "option" : "subcommand", rest.front());
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (app.get_subcommands().empty() && dynamic_cast<const CLI::RequiredError*>(&e)) {
            // no subcommand (`sgf`, `sgf --json`, `sgf frobnicate`): the list of subcommands rather than
            // CLI11's one line, which does not name an unknown word
            const auto rest = app.remaining();
            fmt::print(stderr, "error: sgf: {}\n\n", unknown_word(rest));
            fmt::print(stderr, "{}\nName a subcommand, e.g. `sgf demo` (the end-to-end demo) or `sgf <subcommand> --help`.\n",
                       app.help());
            return kUsage;
        }
        if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e) == 0 ? kOk : kUsage;  // --help
        // the subcommand the error belongs to (`sgf registry export`), so the message says where to look
        std::string where = "sgf";
        const CLI::App* cur = &app;
        while (!cur->get_subcommands().empty()) {
            cur = cur->get_subcommands().front();
            where += " " + cur->get_name();
        }
        if (cur->get_require_subcommand_min() > 0 && cur->get_subcommands().empty() &&
            dynamic_cast<const CLI::RequiredError*>(&e)) {  // `sgf registry` or `sgf registry frobnicate`
            fmt::print(stderr, "error: {}: {}\n\n", where, unknown_word(app.remaining(true)));  // wherever CLI11 left it
            fmt::print(stderr, "{}", cur->help(where.substr(0, where.rfind(' '))));
            return kUsage;
        }
        if (dynamic_cast<const CLI::ExtrasError*>(&e)) {  // CLI11: "The following argument was not expected: b"
            // CLI11 2.1 hands a subcommand's extras back to its parent (the subcommand keeps only a "--"
            // marker), in no dependable order: name the one that comes first on the command line, i.e.
            // the first word w of argv whose occurrences from there on are all extras
            std::vector<std::string> extra;
            for (auto& w : app.remaining(true))
                if (w != "--") extra.push_back(w);
            for (int k = 1; k < argc; ++k) {
                const std::string w = argv[k];
                const auto in_extra = std::count(extra.begin(), extra.end(), w);
                if (in_extra > 0 && std::count(argv + k, argv + argc, w) <= in_extra) {
                    const auto it = std::find(extra.begin(), extra.end(), w);
                    std::rotate(extra.begin(), it, it + 1);
                    break;
                }
            }
            if (!extra.empty()) {
                std::vector<std::string> positionals;
                for (const CLI::Option* o : cur->get_options())
                    if (o->get_positional()) positionals.push_back(o->get_name(true));
                const std::string more = extra.size() > 1 ? fmt::format(" (and {} more)", extra.size() - 1) : "";
                const std::string& w = extra.front();
                if (w.size() > 1 && w[0] == '-' && !(std::isdigit(static_cast<unsigned char>(w[1])) || w[1] == '.'))  // not "-5"
                    fmt::print(stderr, "error: {}: unknown option '{}'{}\n", where, extra.front(), more);
                else
                    fmt::print(stderr, "error: {}: unexpected argument '{}'{}: it takes {}{}\n", where, extra.front(), more,
                               positionals.empty() ? std::string("no arguments besides its options")
                                                   : fmt::format("{} besides its options: {}", sgf::count_of(std::int64_t(positionals.size()), "argument"),
                                                                 fmt::join(positionals, ", ")),
                               where.rfind("sgf registry ", 0) == 0 && positionals.size() > 1 ? " (one fewer with --registry)" : "");
                fmt::print(stderr, "Run `{} --help` for its options.\n", where);
                return kUsage;
            }
        }
        // the global options are in `sgf --help`, not in the subcommand's
        const std::string what = e.what();
        const bool global = what.rfind("--threads", 0) == 0 || what.rfind("--backend", 0) == 0 || what.rfind("--json", 0) == 0;
        fmt::print(stderr, "error: {}: {}\nRun `{} --help` for its options.\n", where, what, global ? "sgf" : where);
        return kUsage;
    }
    const int rc = run_with_exit_codes([&]() -> int {
        if (c.backend != "cpu" && c.backend != "cuda")
            SGF_THROW(ArgumentError, "--backend must be cpu or cuda, got '{}'", c.backend);
        if (*issue) return cmd_issue(c, registry, labels, metadata, count, prefix, min_distance, bits);
        if (*info) return cmd_info(c, info_file);
        if (*registry_cmd) return run_registry(c, registry_args);
        if (*exp_dec || *exp_gen) {  // copies weights: the CPU backend, whatever --backend says
            sgf::EigenCpu cpu(1);
            return cmd_export_part(cpu, c, model, out_file, *exp_dec ? "decoder" : "meta-generator");
        }
        using C = Request::Command;
        req.command = *train ? C::train : *inst ? C::instantiate : *gen ? C::generate : *dec ? C::decode
                    : *ver ? C::verify : *demo ? C::demo : C::eval;
        if (c.backend == "cuda") {
            if (req.command == C::eval && !req.eval.out.empty())
                SGF_THROW(ArgumentError, "eval --out (the full report) runs on the CPU backend; drop --backend cuda");
            return run_on_cuda(req);
        }
        sgf::EigenCpu b(c.threads);
        if (req.command == C::eval) return run_eval(b, c.json, req.eval);
        return run_request(b, req);
    });
    // Every command's stdout, also what eval, demo and train print as they go: output that could not be
    // written (a closed pipe, a full disk) is exit 3, never a silent success.
    std::cout.flush();
    const bool lost = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
    if (lost && (rc == kOk || rc == kNotFingerprinted || rc == kInconclusive)) {
        fmt::print(stderr, "error: standard output: cannot write the result (disk full or output closed?)\n");
        return kIoError;
    }
    return rc;
}
