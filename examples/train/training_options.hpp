// The training options shared by `sgf_train` and `sgf train` (docs/cli.md), declared once.
#pragma once

#include <sgf/train/checkpoint.hpp>
#include <sgf/train/loop.hpp>

#include "../common/cli_checks.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sgf_examples {

/// An immunisation recipe from the command line: a JSON object whose keys are ImmuniseConfig's
/// (docs/robustness.md); missing keys keep their defaults. Unknown keys, values of the wrong type and
/// values ImmuniseConfig::validate refuses are CLI validation errors (exit 2) that name the problem.
inline sgf::ImmuniseConfig parse_immunise_recipe(const std::string& text) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw CLI::ValidationError("--immunise-recipe", std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw CLI::ValidationError("--immunise-recipe", "must be a JSON object, e.g. '{\"p_crop\": 0.25}'");
    const nlohmann::json known = sgf::ImmuniseConfig{};
    for (auto it = j.begin(); it != j.end(); ++it) {  // (no structured binding: nvcc compiles this header too)
        const std::string& key = it.key();
        const nlohmann::json& value = it.value();
        if (!known.contains(key)) throw CLI::ValidationError("--immunise-recipe", "unknown key '" + key + "'");
        const bool ok = key == "enabled" ? value.is_boolean()
                        : key == "jpeg_quality_min" ? value.is_number_integer()
                                                    : value.is_number();
        if (!ok) throw CLI::ValidationError("--immunise-recipe", "key '" + key + "' has a value of the wrong type: " + value.dump());
        if (key == "enabled" && !value.get<bool>())
            throw CLI::ValidationError("--immunise-recipe", "\"enabled\": false contradicts giving a recipe (which implies --immunise)");
        if (key == "jpeg_quality_min" && (!value.is_number_unsigned() || value.get<std::uint64_t>() > 100))
            throw CLI::ValidationError("--immunise-recipe", "jpeg_quality_min must be 1..100, got " + value.dump());
    }
    sgf::ImmuniseConfig c = j.get<sgf::ImmuniseConfig>();
    try {
        c.validate();
    } catch (const sgf::ArgumentError& e) {
        throw CLI::ValidationError("--immunise-recipe", e.what());
    }
    return c;
}

/// Sizes that replace the preset's (ModelConfig fields of the same meaning); unset ones keep it.
struct ModelOverrides {
    std::optional<int> resolution, image_channels, bits, z_dim, w_dim, embed_layers, embed_width, channel_base,
        channel_max, fc_width;
};

struct TrainingCommand {
    std::string preset = "small";
    std::string out = "sgf-run";
    ModelOverrides sizes;
    sgf::TrainConfig tc;
    sgf::TrainLoopOptions opt;

    /// The preset with the overrides applied, validated (ModelConfig::validate names a bad value).
    /// With --init-from, run_training takes the model from that file; size options are refused.
    /// With --resume the checkpoint's configs are used; a size option that disagrees with the
    /// checkpoint is refused rather than silently ignored (repeating the original command is fine).
    sgf::ModelConfig model_config() const {
        sgf::ModelConfig mc = sgf::ModelConfig::preset_named(preset);
        const auto& o = sizes;
        std::vector<std::pair<const char*, int>> given;
        auto apply = [&](const std::optional<int>& v, int& field, const char* key) {  // key: the JSON name
            if (!v) return;
            field = *v;
            given.emplace_back(key, *v);
        };
        apply(o.resolution, mc.resolution, "resolution");
        apply(o.image_channels, mc.image_channels, "image_channels");
        apply(o.bits, mc.fingerprint_bits, "fingerprint_bits");
        apply(o.z_dim, mc.z_dim, "z_dim");
        apply(o.w_dim, mc.w_dim, "w_dim");
        apply(o.embed_layers, mc.embed_layers, "embed_layers");
        apply(o.embed_width, mc.embed_width, "embed_width");
        apply(o.channel_base, mc.channel_base, "channel_base");
        apply(o.channel_max, mc.channel_max, "channel_max");
        apply(o.fc_width, mc.fc_width, "fc_width");
        if (!opt.init_from.empty() && !given.empty())
            SGF_THROW(ArgumentError, "--init-from takes the model sizes from {}: drop the size options ({} given)",
                      opt.init_from.string(), given.front().first);
        if (!given.empty()) mc.preset = preset + "-custom";
        mc.validate();
        if (opt.resume && !given.empty()) {
            const auto ckpt = opt.out_dir / "checkpoint.safetensors";
            if (!std::filesystem::exists(ckpt)) return mc;  // run_training says there is nothing to resume
            const sgf::ModelConfig saved = sgf::read_checkpoint_configs(ckpt).first;
            const nlohmann::json b = saved;
            for (const auto& [key, value] : given)
                if (b.value(key, value) != value)
                    SGF_THROW(ArgumentError,
                              "--resume continues the model in {}, whose {} is {}, not {}: drop the size options or "
                              "start a new run in another --out folder",
                              ckpt.string(), key, b.value(key, value), value);
        }
        return mc;
    }
};

/// Adds every training option to `app` (the program or the `train` subcommand).
inline void add_training_options(CLI::App& app, TrainingCommand& cmd) {
    auto& tc = cmd.tc;
    auto& opt = cmd.opt;
    app.add_option("--preset", cmd.preset, "model preset: tiny, small, paper128")->capture_default_str();
    auto& o = cmd.sizes;
    const char* sz = "Model sizes (replace the preset's)";
    app.add_option("--resolution", o.resolution, "image side (power of two >= 8)")->group(sz);
    app.add_option("--image-channels", o.image_channels, "1 (grayscale) or 3 (RGB)")->group(sz);
    app.add_option("--bits", o.bits, "fingerprint bits")->group(sz);
    app.add_option("--z-dim", o.z_dim, "size of z")->group(sz);
    app.add_option("--w-dim", o.w_dim, "size of E's output w (the paper: 512 for 128 bits)")->group(sz);
    app.add_option("--embed-layers", o.embed_layers, "depth of the embedding MLP E")->group(sz);
    app.add_option("--embed-width", o.embed_width, "hidden width of E")->group(sz);
    app.add_option("--channel-base", o.channel_base, "channels at resolution r: min(base / r, max)")->group(sz);
    app.add_option("--channel-max", o.channel_max, "channel cap")->group(sz);
    app.add_option("--fc-width", o.fc_width, "width of the dense layer in F and D")->group(sz);
    app.add_option("--data", opt.data, "'fashion-mnist' or a folder of PNG/JPEG images")->capture_default_str();
    app.add_option("--out", cmd.out, "output folder (checkpoint, log.csv, sample grids, model.safetensors)")
        ->capture_default_str();
    app.add_option("--kimg", opt.total_kimg, "train until this many thousand real images")->capture_default_str();
    app.add_option("--batch", tc.batch, "batch size")->capture_default_str();
    app.add_option("--lr", tc.adam.lr, "Adam learning rate (before the lazy-regularisation correction)")
        ->capture_default_str();
    app.add_option("--r1-gamma", tc.r1_gamma, "R1 weight gamma")->capture_default_str();
    app.add_option("--consistency-rampup", tc.consistency_rampup_kimg,
                   "kimg over which the consistency weight grows from 0 to its value (0: constant)")
        ->capture_default_str();
    app.add_option("--w-adversarial", tc.weights.adversarial, "weight of the adversarial loss")
        ->check(sgf_examples::non_negative_check())->capture_default_str();
    app.add_option("--w-consistency", tc.weights.consistency, "weight of the consistency loss")
        ->check(sgf_examples::non_negative_check())->capture_default_str();
    app.add_option("--w-latent", tc.weights.latent, "weight of the latent reconstruction loss")
        ->check(sgf_examples::non_negative_check())->capture_default_str();
    app.add_option("--w-fingerprint", tc.weights.fingerprint, "weight of the fingerprint BCE loss")
        ->check(sgf_examples::non_negative_check())->capture_default_str();
    app.add_option("--seed", tc.seed, "random seed")->transform(sgf_examples::seed_check())->capture_default_str();
    app.add_option("--checkpoint-every", opt.checkpoint_every, "steps between checkpoints")->capture_default_str();
    app.add_option("--grid-every", opt.grid_every, "steps between sample grids")->capture_default_str();
    app.add_flag("--resume", opt.resume, "continue the run in --out from its checkpoint");
    app.add_option("--init-from", opt.init_from,
                   "start a new run from the weights of a release (meta-model) file, e.g. to fine-tune the default "
                   "model; the model sizes come from that file, the optimisers start afresh");  // a missing file: exit 3
    app.add_flag("--no-fingerprint", [&tc](std::int64_t) { tc.fingerprint = false; },
                 "baseline without fingerprint losses");
    app.add_flag("--decoder-only", tc.decoder_only,
                 "fine-tune the decoder F alone on the frozen EMA generator (latent and fingerprint losses; every "
                 "second image rounded to 8 bits; with --immunise F reads perturbed images); G and D are not changed");
    app.add_flag("--clamp-decoder-input", tc.clamp_decoder_input,
                 "F reads G's images clamped to [-1, 1], as a saved image holds them; G gets no decoder gradient "
                 "from saturated pixels (docs/architecture.md)");
    app.add_flag("--x-flip", tc.x_flip,
                 "mirror augmentation: each epoch shows every real image also mirrored left to right (doubles the "
                 "data; the paper's only augmentation of reals)");
    app.add_flag("--immunise", tc.immunise.enabled,
                 "immunised training: random crop/blur/brightness-contrast/noise/JPEG between G and F "
                 "(docs/robustness.md)");
    // Defined before --immunise-strength/--immunise-rampup: CLI11 runs callbacks in definition order,
    // so those two flags, when given, override the recipe's values.
    app.add_option_function<std::string>(
           "--immunise-recipe",
           [&tc](const std::string& text) {
               tc.immunise = parse_immunise_recipe(text);
               tc.immunise.enabled = true;
           },
           "immunisation recipe as a JSON object of the keys of docs/robustness.md, e.g. "
           "'{\"p_crop\": 0.25, \"noise_std\": 0.2}' (missing keys keep their defaults; implies --immunise)");
    app.add_option("--immunise-strength", tc.immunise.strength, "scale of every immunisation range (0: identity)")
        ->capture_default_str();
    app.add_option("--immunise-rampup", tc.immunise.rampup_kimg,
                   "kimg over which the immunisation strength grows from 0")
        ->capture_default_str();
}

}  // namespace sgf_examples
