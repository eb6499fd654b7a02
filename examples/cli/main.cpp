// sgf: the command-line tool. See docs/cli.md for every subcommand, its output and exit codes.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/train/loop.hpp>
#include <sgf/verify/decode.hpp>
#include <sgf/verify/evaluate.hpp>
#include <sgf/backends/eigen.hpp>

#include "eval_command.hpp"  // sgf eval
#include "../train/training_options.hpp"  // sgf train (shared with sgf_train)

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace {

using B = sgf::EigenCpu;
using json = nlohmann::json;
namespace fs = std::filesystem;

// Exit codes (docs/cli.md).
enum Exit : int {
    kOk = 0,               // success; for verify: every image attributed
    kInternal = 1,
    kUsage = 2,            // bad arguments
    kIoError = 3,          // missing or unreadable input
    kFormatError = 4,      // corrupt or malformed input (model, image, registry, fingerprint text)
    kNumeric = 5,          // NaN/Inf during training
    kNotFingerprinted = 10,
    kInconclusive = 11,
};

struct Common {
    bool json = false;
    int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::string backend = "cpu";
};

std::string default_model() {
    if (const char* e = std::getenv("SGF_MODEL")) return e;
    return SGF_DEFAULT_MODEL;
}

B make_backend(const Common& c) {
    if (c.backend == "cuda")
        SGF_THROW(ArgumentError, "--backend cuda: this sgf binary was built without the CUDA backend (see docs/cuda.md)");
    if (c.backend != "cpu") SGF_THROW(ArgumentError, "--backend must be cpu or cuda, got '{}'", c.backend);
    return B(c.threads);
}

void emit(const Common& c, const json& j, const std::string& text) {
    if (c.json) std::cout << j.dump(2) << "\n";
    else std::cout << text;
}

std::vector<float> draw_normal(std::size_t n, std::uint64_t seed, std::uint64_t stream) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = float(sgf::philox::normal(sgf::RngKey{seed, stream, 0}, i));
    return v;
}

std::vector<sgf::io::Image> generate_images(B& b, sgf::MetaGenerator<B>& G, const sgf::Fingerprint* fp, int count,
                                            std::uint64_t seed, int batch = 32) {
    const auto& cfg = G.config();
    std::vector<sgf::io::Image> out;
    for (int done = 0; done < count; done += batch) {
        const int n = std::min(batch, count - done);
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

json attribution_json(const sgf::Attribution& a) {
    return json{{"outcome", sgf::outcome_name(a.outcome)}, {"detected", a.detected},
                {"best_label", a.best_label},             {"best_matching_bits", a.best_matching},
                {"runner_up_label", a.runner_up_label},   {"runner_up_matching_bits", a.runner_up_matching},
                {"margin", a.margin},                     {"threshold_bits", a.threshold},
                {"bits", a.bits},                         {"registry_size", a.registry_size},
                {"log10_p_value", a.log10_p},             {"log10_family_p_value", a.log10_family_p}};
}

std::string seconds(double s) { return fmt::format("{:.2f} s", s); }

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
    json j{{"file", path}, {"kind", kind}, {"tensors", f.size()}, {"parameters", params}, {"metadata", f.metadata}};
    if (!c.json) {
        std::string text = fmt::format("{}\n  kind: {}\n  tensors: {}, parameters: {} ({:.2f} MB as float32)\n", path, kind, f.size(),
                                       params, params * 4 / 1e6);
        for (const auto& [k, v] : f.metadata)
            if (k != "sgf.config" && k != "sgf.train_config") text += fmt::format("  {}: {}\n", k, v);
        if (f.metadata.count("sgf.config")) {
            const auto cfg = json::parse(f.metadata.at("sgf.config"));
            text += fmt::format("  config: {}\n", cfg.dump());
        }
        std::cout << text;
    } else {
        j["tensor_list"] = tensors;
        emit(c, j, "");
    }
    return kOk;
}

// ------------------------------------------------------------------------------------------ issue
int cmd_issue(const Common& c, const std::string& registry, std::vector<std::string> labels, const std::string& metadata, int count,
              const std::string& prefix, int min_distance, int bits) {
    sgf::RegistryOptions opt;
    opt.min_distance = min_distance;
    opt.bits = bits > 0 ? bits : 128;
    sgf::Registry reg(registry, opt);
    if (bits > 0 && reg.bits() != bits)
        SGF_THROW(ArgumentError, "{}: the registry holds {}-bit fingerprints, --bits {} was given", registry, reg.bits(), bits);
    for (int i = 0; i < count; ++i) labels.push_back(fmt::format("{}{:06d}", prefix, reg.size() + i));
    if (labels.empty()) SGF_THROW(ArgumentError, "issue: give --label (repeatable) or --count");
    json arr = json::array();
    std::string text;
    for (const auto& l : labels) {
        const auto e = reg.issue(l, metadata);
        arr.push_back({{"label", e.label}, {"fingerprint", e.fingerprint.hex()}, {"issued_at", e.issued_at}});
        text += fmt::format("{}\t{}\n", e.label, e.fingerprint.hex());
    }
    emit(c, json{{"registry", registry}, {"issued", arr}, {"registry_size", reg.size()}}, text);
    return kOk;
}

// ------------------------------------------------------------------------------------------ instantiate
void check_registry_bits(const sgf::Registry& reg, int model_bits) {
    if (reg.bits() != model_bits)
        SGF_THROW(ArgumentError, "{}: the registry holds {}-bit fingerprints, but the model uses {}-bit fingerprints", reg.path(),
                  reg.bits(), model_bits);
}

sgf::Fingerprint resolve_fingerprint(const std::string& registry, const std::string& label, const std::string& hex, int bits) {
    if (!hex.empty()) {
        try {
            return sgf::Fingerprint::parse(hex, bits);
        } catch (const sgf::ArgumentError& e) {
            SGF_THROW(FormatError, "--fingerprint: {}", e.what());
        }
    }
    if (label.empty() || registry.empty()) SGF_THROW(ArgumentError, "give --fingerprint HEX, or --label with --registry");
    sgf::RegistryOptions ro;
    ro.create = false;
    ro.read_only = true;  // looking a label up never writes to the registry
    ro.bits = bits;
    sgf::Registry reg(registry, ro);
    check_registry_bits(reg, bits);
    const auto e = reg.find(label);
    if (!e) SGF_THROW(ArgumentError, "{}: no entry labelled '{}'", registry, label);
    return e->fingerprint;
}

int cmd_instantiate(const Common& c, const std::string& model, const std::string& registry, const std::string& label,
                    const std::string& hex, const std::string& out) {
    B b = make_backend(c);
    auto m = sgf::io::load_meta_model<B>(b, model);
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
int cmd_generate(const Common& c, const std::string& model, const std::string& hex, int count, const std::string& out,
                 std::uint64_t seed, bool grid) {
    B b = make_backend(c);
    const auto f = sgf::io::SafetensorsFile::load(model);
    const std::string kind = f.meta("sgf.kind");
    fs::create_directories(out);
    std::vector<sgf::io::Image> images;
    if (kind == "baked-generator") {
        auto G = sgf::io::load_baked_generator<B>(b, model);
        images = generate_images(b, G, nullptr, count, seed);
    } else {
        auto m = sgf::io::load_meta_model<B>(b, model);
        if (hex.empty()) SGF_THROW(ArgumentError, "generate: a meta model needs --fingerprint HEX");
        const auto fp = resolve_fingerprint("", "", hex, m.config.fingerprint_bits);
        images = generate_images(b, m.G, &fp, count, seed);
    }
    json files = json::array();
    for (std::size_t i = 0; i < images.size(); ++i) {
        const auto p = fs::path(out) / fmt::format("{:05d}.png", i);
        sgf::io::save_png(p, images[i]);
        files.push_back(p.string());
    }
    if (grid) sgf::io::save_png(fs::path(out) / "grid.png", sgf::io::make_grid(images, std::min<int>(count, 10)));
    emit(c, json{{"files", files}}, fmt::format("wrote {} images to {}\n", images.size(), out));
    return kOk;
}

// ------------------------------------------------------------------------------------------ decode / verify
int file_error_code(const sgf::FileDecode& d) { return d.io_error ? kIoError : kFormatError; }

int cmd_decode(const Common& c, const std::string& model, const std::vector<std::string>& images) {
    B b = make_backend(c);
    auto m = sgf::io::load_meta_model<B>(b, model);
    const auto res = sgf::decode_files(b, m.F, images);
    json arr = json::array();
    std::string text;
    int rc = kOk;
    for (const auto& d : res) {
        if (!d.decoded) {
            arr.push_back({{"image", d.path}, {"error", d.error}});
            text += fmt::format("{}\terror: {}\n", d.path, d.error);
            rc = std::max(rc, file_error_code(d));
            continue;
        }
        arr.push_back({{"image", d.path}, {"fingerprint", d.decoded->fingerprint.hex()}, {"logits", d.decoded->logits}});
        text += fmt::format("{}\t{}\n", d.path, d.decoded->fingerprint.hex());
    }
    emit(c, json{{"results", arr}}, text);
    return rc;
}

int cmd_verify(const Common& c, const std::string& model, const std::string& registry, const std::vector<std::string>& images,
               double alpha, int min_margin) {
    if (!(alpha > 0 && alpha < 1)) SGF_THROW(ArgumentError, "--alpha must be in (0, 1), got {}", alpha);
    B b = make_backend(c);
    auto m = sgf::io::load_meta_model<B>(b, model);
    sgf::RegistryOptions ro;
    ro.create = false;
    ro.read_only = true;  // verification never writes to the registry
    ro.bits = m.config.fingerprint_bits;
    sgf::Registry reg(registry, ro);
    check_registry_bits(reg, m.config.fingerprint_bits);
    const sgf::AttributionRule rule{alpha, min_margin};
    const auto res = sgf::decode_files(b, m.F, images);
    json arr = json::array();
    std::string text;
    int worst = kOk, n_attr = 0, n_none = 0, n_inc = 0, n_err = 0;
    for (const auto& d : res) {
        if (!d.decoded) {
            ++n_err;
            arr.push_back({{"image", d.path}, {"outcome", "error"}, {"error", d.error}});
            text += fmt::format("{}\terror\t{}\n", d.path, d.error);
            worst = std::max(worst, file_error_code(d));
            continue;
        }
        const auto a = reg.attribute(d.decoded->fingerprint, rule);
        json j = attribution_json(a);
        j["image"] = d.path;
        j["fingerprint"] = d.decoded->fingerprint.hex();
        arr.push_back(j);
        text += fmt::format("{}\t{}\t{}\t{}/{} bits (threshold {}), runner-up {} ({} bits), family p = 1e{:.1f}\n", d.path,
                            sgf::outcome_name(a.outcome), a.best_label, a.best_matching, a.bits, a.threshold,
                            a.runner_up_label.empty() ? "-" : a.runner_up_label, a.runner_up_matching, a.log10_family_p);
        if (a.outcome == sgf::Outcome::attributed) ++n_attr;
        else if (a.outcome == sgf::Outcome::not_fingerprinted) ++n_none;
        else ++n_inc;
    }
    int rc = worst;
    if (rc == kOk) rc = n_inc ? kInconclusive : (n_none ? kNotFingerprinted : kOk);
    text += fmt::format("{} images: {} attributed, {} not fingerprinted, {} inconclusive, {} unreadable\n", res.size(), n_attr, n_none,
                        n_inc, n_err);
    emit(c, json{{"results", arr}, {"attributed", n_attr}, {"not_fingerprinted", n_none}, {"inconclusive", n_inc}, {"errors", n_err},
                 {"exit_code", rc}},
         text);
    return rc;
}

// ------------------------------------------------------------------------------------------ demo
int cmd_demo(const Common& c, const std::string& model, int users, int per_user, int n_real, int n_open, const std::string& keep) {
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
    B b = make_backend(c);
    const fs::path dir = keep.empty() ? fs::temp_directory_path() / fmt::format("sgf-demo-{}", ::getpid()) : fs::path(keep);
    fs::create_directories(dir / "users");
    fs::create_directories(dir / "images");
    json stages = json::object();
    auto say = [&](const std::string& s) {
        if (!c.json) std::cout << s << std::flush;
    };
    say(fmt::format("sgf demo: model {}\n  working folder {}\n", model, dir.string()));

    auto t = clock::now();
    auto m = sgf::io::load_meta_model<B>(b, model);
    const auto& cfg = m.config;
    stages["load_model"] = since(t);

    t = clock::now();
    sgf::Registry reg(dir / "registry.db");
    std::vector<sgf::RegistryEntry> issued;
    for (int u = 0; u < users; ++u) issued.push_back(reg.issue(fmt::format("user{:03d}", u), R"({"demo":true})"));
    stages["issue"] = since(t);
    say(fmt::format("  issued {} fingerprints (min distance {}) in {:.2f} s\n", users, reg.min_distance(), since(t)));

    t = clock::now();
    double bake_s = 0;
    std::vector<std::string> gen_files;
    std::vector<std::string> gen_truth;
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
        say(fmt::format("\r  baked and sampled {}/{} users", u + 1, users));
    }
    stages["instantiate_and_generate"] = since(t);
    say(fmt::format("\n  {} baked generators ({:.1f} ms each), {} PNG images in {:.2f} s\n", users, 1e3 * bake_s / users,
                    gen_files.size(), since(t)));

    t = clock::now();
    std::vector<std::string> real_files;
    {
        const auto ds = sgf::io::load_fashion_mnist("test");
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
    const sgf::AttributionRule rule{};
    std::int64_t correct = 0, gen_detected = 0, real_attr = 0, real_detected = 0, open_attr = 0, open_detected = 0, errors = 0;
    double bit_acc = 0;
    for (std::size_t i = 0; i < decoded.size(); ++i) {
        if (!decoded[i].decoded) {
            ++errors;
            continue;
        }
        const auto& fp = decoded[i].decoded->fingerprint;
        const auto a = reg.attribute(fp, rule);
        if (i < gen_files.size()) {
            const auto& truth = issued[i / std::size_t(per_user)].fingerprint;
            bit_acc += double(fp.matching_bits(truth)) / cfg.fingerprint_bits;
            correct += a.outcome == sgf::Outcome::attributed && a.best_label == gen_truth[i];
            gen_detected += a.detected;
        } else if (i < gen_files.size() + real_files.size()) {
            real_attr += a.outcome == sgf::Outcome::attributed;
            real_detected += a.detected;
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
    const double fpr_real = real_files.empty() ? 0 : double(real_detected) / double(real_files.size());
    const int k_star = sgf::stats::bit_threshold(cfg.fingerprint_bits, sgf::stats::bonferroni_alpha(rule.alpha, users));
    json j{{"users", users},
           {"images_per_user", per_user},
           {"bit_accuracy", bit_acc},
           {"attribution_accuracy", correct / std::max(1.0, n_gen)},
           {"detected_generated", gen_detected},
           {"false_attributions_real", real_attr},
           {"false_attributions_open_world", open_attr},
           {"detected_real", real_detected},
           {"detected_open_world", open_detected},
           {"empirical_fpr_real", fpr_real},
           {"theoretical_family_fpr", rule.alpha},
           {"threshold_bits", k_star},
           {"unreadable", errors},
           {"seconds", stages},
           {"folder", dir.string()}};
    if (!c.json) {
        std::cout << fmt::format(
            "\n  | measure | value |\n  |---|---|\n"
            "  | bit accuracy ({} generated images) | {:.4f} |\n"
            "  | attribution accuracy ({} users) | {:.4f} ({} of {}) |\n"
            "  | false attributions, {} real Fashion-MNIST test images | {} |\n"
            "  | false attributions, {} open-world images (unregistered fingerprints) | {} |\n"
            "  | empirical false-positive rate on real images | {:.4f} ({} of {} pass k* = {} bits) |\n"
            "  | theoretical family-wise false-positive rate | {:g} |\n"
            "  | time: issue / bake+generate / decode / attribute | {} / {} / {} / {} |\n",
            gen_files.size(), bit_acc, users, correct / std::max(1.0, n_gen), correct, gen_files.size(), real_files.size(), real_attr,
            open_files.size(), open_attr, fpr_real, real_detected, real_files.size(), k_star, rule.alpha,
            seconds(stages["issue"].get<double>()), seconds(stages["instantiate_and_generate"].get<double>()), seconds(decode_s),
            seconds(attribute_s));
    } else {
        emit(c, j, "");
    }
    if (keep.empty()) fs::remove_all(dir);
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"sgf: scalable fingerprinting of generative models (train, issue, instantiate, generate, decode, verify)"};
    app.require_subcommand(1);
    app.fallthrough();  // --json, --threads, --backend also work after the subcommand
    Common c;
    app.add_flag("--json", c.json, "machine-readable output");
    app.add_option("--threads", c.threads, "CPU threads")->capture_default_str();
    app.add_option("--backend", c.backend, "cpu or cuda")->capture_default_str();

    // train
    auto* train = app.add_subcommand("train", "train a meta generator, decoder and discriminator");
    sgf_examples::TrainingCommand tcmd;
    sgf_examples::add_training_options(*train, tcmd);

    // issue
    auto* issue = app.add_subcommand("issue", "issue fingerprints into a registry");
    std::string registry, metadata, prefix = "user";
    std::vector<std::string> labels;
    int count = 0, min_distance = -1, bits = 0;
    issue->add_option("--registry", registry, "registry file (SQLite)")->required();
    issue->add_option("--label", labels, "label(s) to issue");
    issue->add_option("--count", count, "issue this many with generated labels");
    issue->add_option("--prefix", prefix, "label prefix for --count")->capture_default_str();
    issue->add_option("--metadata", metadata, "free-form metadata (JSON by convention)");
    issue->add_option("--min-distance", min_distance, "minimum Hamming distance (new registries; default bits/4)");
    issue->add_option("--bits", bits, "fingerprint length of a new registry (default 128); must match the model");

    // instantiate
    auto* inst = app.add_subcommand("instantiate", "bake a fingerprint into a standalone generator file");
    std::string model = default_model(), hex, label, out_file;
    inst->add_option("--model", model, "meta-model file")->capture_default_str();
    inst->add_option("--registry", registry, "registry to look --label up in");
    inst->add_option("--label", label, "registry label");
    inst->add_option("--fingerprint", hex, "fingerprint as hex");
    inst->add_option("--out", out_file, "output file")->required();

    // generate
    auto* gen = app.add_subcommand("generate", "generate PNG images from a baked generator or a meta model + fingerprint");
    int n_images = 16;
    std::uint64_t seed = 1;
    bool grid = false;
    std::string out_folder = "sgf-images";
    gen->add_option("--model", model, "baked-generator or meta-model file")->capture_default_str();
    gen->add_option("--fingerprint", hex, "fingerprint (meta models)");
    gen->add_option("--count", n_images, "images")->capture_default_str();
    gen->add_option("--seed", seed, "latent seed")->capture_default_str();
    gen->add_option("--out", out_folder, "output folder")->capture_default_str();
    gen->add_flag("--grid", grid, "also write grid.png");

    // decode
    auto* dec = app.add_subcommand("decode", "decode fingerprint bits and logits from images");
    std::vector<std::string> images;
    dec->add_option("--model", model, "meta-model file (holds the decoder)")->capture_default_str();
    dec->add_option("images", images, "image files")->required();

    // verify
    auto* ver = app.add_subcommand("verify", "decode images and attribute them against a registry");
    double alpha = 1e-6;
    int min_margin = 8;
    ver->add_option("--model", model, "meta-model file (holds the decoder)")->capture_default_str();
    ver->add_option("--registry", registry, "registry file")->required();
    ver->add_option("--alpha", alpha, "family-wise false-positive rate")->capture_default_str();
    ver->add_option("--min-margin", min_margin, "bits between best and runner-up to attribute")->capture_default_str();
    ver->add_option("images", images, "image files")->required();

    // info
    auto* info = app.add_subcommand("info", "what a model file holds");
    std::string info_file;
    info->add_option("file", info_file, "model file")->required();

    // demo
    auto* demo = app.add_subcommand("demo", "end-to-end demo on the embedded default model");
    int users = 100, per_user = 20, n_real = 2000, n_open = 200;
    std::string keep;
    demo->add_option("--model", model, "meta-model file")->capture_default_str();
    demo->add_option("--users", users, "registered users")->capture_default_str();
    demo->add_option("--images", per_user, "images per user")->capture_default_str();
    demo->add_option("--real", n_real, "real test images")->capture_default_str();
    demo->add_option("--open", n_open, "open-world images")->capture_default_str();
    demo->add_option("--keep", keep, "keep the working files in this folder");

    // eval
    auto* eval = app.add_subcommand("eval", "bit accuracy of a meta model; with --out the full evaluation report (docs/evaluation.md)");
    sgf_cli::EvalArgs eval_args;
    eval_args.model = default_model();
    sgf_cli::add_eval_options(*eval, eval_args);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kOk : kUsage;
    }
    try {
        if (*train) {
            B b = make_backend(c);
            tcmd.opt.out_dir = tcmd.out;
            tcmd.opt.progress = !c.json;
            const int rc = sgf::run_training(b, tcmd.model_config(), tcmd.tc, tcmd.opt);
            return rc == 3 ? kNumeric : rc;  // run_training returns 3 when NaN/Inf stops training; 130 when interrupted
        }
        if (*issue) return cmd_issue(c, registry, labels, metadata, count, prefix, min_distance, bits);
        if (*inst) return cmd_instantiate(c, model, registry, label, hex, out_file);
        if (*gen) return cmd_generate(c, model, hex, n_images, out_folder, seed, grid);
        if (*dec) return cmd_decode(c, model, images);
        if (*ver) return cmd_verify(c, model, registry, images, alpha, min_margin);
        if (*info) return cmd_info(c, info_file);
        if (*demo) return cmd_demo(c, model, users, per_user, n_real, n_open, keep);
        if (*eval) {
            B b = make_backend(c);
            return sgf_cli::run_eval(b, c.json, eval_args);
        }
    } catch (const sgf::IoError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return kIoError;
    } catch (const sgf::FormatError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return kFormatError;
    } catch (const sgf::NumericError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return kNumeric;
    } catch (const sgf::ArgumentError& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return kUsage;
    } catch (const std::exception& e) {
        fmt::print(stderr, "internal error: {}\n", e.what());
        return kInternal;
    }
    return kUsage;
}
