// sgf_library_tour: the whole life of a fingerprinted model, written against the library instead of
// the `sgf` tool. It is the source of docs/library.md ("Using sgf as a library"): the regions between
// `// [tour:NAME]` and `// [/tour:NAME]` are quoted there verbatim, and DocTables.LibraryTourAsDocumented
// (tests/cli/test_doc_tables.cpp) fails when a quote and its region differ.
//
//   sgf_library_tour [MODEL [OUTPUT_FOLDER]]
//
// MODEL: a meta-model file (default: the embedded models/fashion-small.safetensors). OUTPUT_FOLDER
// (default: <temp>/sgf-library-tour) receives registry.db, alice.safetensors and the PNG images; a
// second run reuses the registry it finds there.
//
// The steps: load the meta model; issue fingerprints to alice, bob and carol in a registry; bake
// alice's generator; generate 12 images with it; decode them and attribute each to a user; decode two
// images that no generator made. It also serves as a test (ctest: Examples.LibraryTour): it exits 0
// only when most of alice's images are attributed to alice, none to another user, and neither of the
// other two images to anyone. It does not ask for all 12: the default model reads only about 85% of
// the bits of a PNG image back (docs/results.md), so an image of alice's can come out "not
// fingerprinted" (0.9% do in `sgf demo`, among 100 users). The rule holds its false-positive rate at
// alpha: weak decoding leaves images undetected rather than attributed to the wrong user.

// [tour:includes]
#include <sgf/sgf.hpp>               // the whole library: networks, model files, images, registry, decoding
#include <sgf/backends/eigen.hpp>    // sgf::EigenCpu, the CPU backend

#include <fmt/format.h>              // a dependency of sgf: its targets link it

#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

using B = sgf::EigenCpu;
namespace fs = std::filesystem;
// [/tour:includes]

#include "../common/exit_codes.hpp"  // run_with_exit_codes: sgf's exceptions -> "error: ..." and an exit code

namespace {

// [tour:verify]
/// Decodes the fingerprint of each image file with the decoder F and attributes it to a registered
/// user (or to none); prints one line per image.
std::vector<sgf::Attribution> verify(B& cpu, const sgf::ResidualCritic<B>& F, sgf::Registry& registry,
                                     const std::vector<std::string>& files) {
    const sgf::AttributionRule rule{/*alpha=*/1e-6, /*min_margin=*/8, sgf::Score::weighted};  // the defaults, as in `sgf verify`
    std::vector<sgf::Attribution> results;
    // decode_files reads PNG or JPEG of any size, gray or RGB, and fits it to the model (channels,
    // centre crop, resize). A file it cannot read is reported in its result, not thrown.
    for (const sgf::FileDecode& d : sgf::decode_files(cpu, F, files)) {
        d.throw_if_failed();  // IoError (missing, unreadable) or FormatError (not an image, too small), naming the file
        // the logits weigh each bit by the decoder's confidence (the weighted score; Score::bits counts bits)
        const sgf::Attribution a = registry.attribute(d.decoded->fingerprint, d.decoded->logits, rule);
        fmt::print("  {:<13} {:<17} best {:<5} score {:>4}/{} (threshold {}), {:>3}/{} bits, family p = 1e{:.1f}\n",
                   fs::path(d.path).filename().string(), sgf::outcome_name(a.outcome), a.best_label, a.best_score,
                   a.score_total, a.score_threshold, a.best_matching, a.bits, a.log10_family_p);
        results.push_back(a);
    }
    return results;
}
// [/tour:verify]

int tour(const fs::path& model_path, const fs::path& out) {
    // a. Load the meta model: the model owner's private file (G, the decoder F and the discriminator D).
    // [tour:load]
    B cpu(/*threads=*/2);
    sgf::io::MetaModel<B> model = sgf::io::load_meta_model(cpu, model_path);
    const sgf::ModelConfig& cfg = model.config;  // resolution, fingerprint_bits, z_dim, ...
    // [/tour:load]
    fmt::print("a. loaded {}: {}x{} px, {} channel(s), {}-bit fingerprints\n", model_path.string(), cfg.resolution,
               cfg.resolution, cfg.image_channels, cfg.fingerprint_bits);

    // b. Open the registry (created when missing) and issue a fingerprint to each user.
    // [tour:issue]
    sgf::io::ensure_directory(out);
    sgf::RegistryOptions options;
    options.bits = cfg.fingerprint_bits;  // used when the file is created; an existing file keeps its own
    sgf::Registry registry(out / "registry.db", options);
    registry.require_bits(cfg.fingerprint_bits);  // ArgumentError naming the file when it holds another length
    std::vector<sgf::RegistryEntry> users;
    for (const char* label : {"alice", "bob", "carol"}) {
        std::optional<sgf::RegistryEntry> entry = registry.find(label);  // issued by an earlier run?
        // A real issuer leaves out the seed (fingerprints then come from the OS's entropy source);
        // the tour fixes it so that every run, and its test, sees the same fingerprints.
        if (!entry) entry = registry.issue(label, /*metadata=*/R"({"tour":true})", /*seed=*/users.size() + 1);
        users.push_back(*entry);
    }
    // k*: an image is attributed only when it matches a user's fingerprint in at least k* bits, so
    // that an image made by none of the N users passes for one of them with probability <= alpha
    const int k_star = sgf::stats::family_bit_threshold(cfg.fingerprint_bits, /*alpha=*/1e-6, registry.size());
    // [/tour:issue]
    fmt::print("b. registry {} ({} users; the bit count attributes from {} of {} matching bits):\n", registry.path(), registry.size(),
               k_star, cfg.fingerprint_bits);
    for (const auto& u : users) fmt::print("  {:<5} {}\n", u.label, u.fingerprint.hex());

    // c. Bake alice's fingerprint into a generator of her own and save it: the file she receives.
    // [tour:bake]
    const sgf::RegistryEntry& alice = users[0];
    sgf::MetaGenerator<B> baked = sgf::instantiate(cpu, model.G, alice.fingerprint);  // no fingerprint input any more
    sgf::io::save_baked_generator(cpu, out / "alice.safetensors", baked, {{"sgf.label", alice.label}});
    // [/tour:bake]
    fmt::print("c. baked alice's generator into {}\n", (out / "alice.safetensors").string());

    // d. Alice's side: load her generator and publish a few images as PNG files.
    // [tour:generate]
    sgf::MetaGenerator<B> G = sgf::io::load_baked_generator(cpu, out / "alice.safetensors");
    const int n_images = 12;
    sgf::Tensor<B> z(cpu, sgf::Shape{n_images, G.config().z_dim});
    cpu.normal(sgf::RngKey{/*seed=*/2024, /*stream=*/0, /*offset=*/0}, z.size(), z.data());  // latents z ~ N(0, 1)
    const auto ctx = G.forward_baked(cpu, z, /*noise_seed=*/7);  // ctx.image(): [12, C, R, R], about [-1, 1]
    const sgf::HostTensor<float> images = sgf::to_host<float>(cpu, ctx.image());
    std::vector<std::string> files;
    for (int i = 0; i < n_images; ++i) {
        files.push_back((out / fmt::format("alice_{:02d}.png", i)).string());
        sgf::io::save_png(files.back(), sgf::io::to_image(images, i));  // 8-bit, written atomically
    }
    // [/tour:generate]
    fmt::print("d. generated {} images: {}/alice_00.png ... alice_{:02d}.png\n", n_images, out.string(), n_images - 1);

    // e. The model owner finds an image online: whose generator made it?
    fmt::print("e. decoding and attributing alice's images:\n");
    // [tour:attribute]
    const std::vector<sgf::Attribution> found = verify(cpu, model.F, registry, files);
    // [/tour:attribute]

    // f. Images that no generator made, decoded in memory: a noise image (RGB, another size) and a flat gray one.
    fmt::print("f. decoding two images that no generator made:\n");
    // [tour:real]
    std::vector<sgf::io::Image> unseen;  // in memory: decode_images prepares them as decode_files does
    sgf::io::Image noise{/*width=*/48, /*height=*/40, /*channels=*/3, {}};
    std::mt19937 rng(1);
    for (int i = 0; i < 48 * 40 * 3; ++i) noise.pixels.push_back(std::uint8_t(rng() % 256));
    unseen.push_back(noise);
    const int r = cfg.resolution;
    unseen.push_back(sgf::io::Image{r, r, /*channels=*/1, std::vector<std::uint8_t>(std::size_t(r) * r, 128)});
    std::vector<sgf::Attribution> others;
    for (const sgf::Decoded& d : sgf::decode_images(cpu, model.F, unseen)) {
        others.push_back(registry.attribute(d.fingerprint, d.logits, sgf::AttributionRule{/*alpha=*/1e-6, /*min_margin=*/8}));
        fmt::print("  {:<17} best {:<5} {:>3}/{} bits\n", sgf::outcome_name(others.back().outcome),
                   others.back().best_label, others.back().best_matching, others.back().bits);
    }
    // [/tour:real]

    // The test: most of alice's images name alice, none names anyone else, and the other two name nobody.
    int to_alice = 0, to_others = 0, not_attributed = 0;
    for (const sgf::Attribution& a : found) {
        if (a.outcome != sgf::Outcome::attributed) ++not_attributed;
        else if (a.best_label == alice.label) ++to_alice;
        else ++to_others;
    }
    int others_attributed = 0;
    for (const sgf::Attribution& a : others) others_attributed += a.outcome == sgf::Outcome::attributed;
    fmt::print("alice's {} images: {} attributed to alice, {} to another user, {} not attributed; "
               "other images attributed: {} of {}\n",
               n_images, to_alice, to_others, not_attributed, others_attributed, others.size());
    const bool ok = 2 * to_alice > n_images && to_others == 0 && others_attributed == 0;
    fmt::print("{}\n", ok ? "tour: ok" : "tour: FAILED (most of alice's images should name alice, no image anyone else)");
    return ok ? 0 : 1;
}

}  // namespace

// [tour:main]
int main(int argc, char** argv) {
    if (argc > 3) {
        fmt::print(stderr, "usage: {} [MODEL [OUTPUT_FOLDER]]\n", argv[0]);
        return sgf_examples::kUsage;
    }
    // Every failure in sgf is an exception derived from sgf::Error (include/sgf/core/error.hpp):
    // run_with_exit_codes prints "error: <message>" and returns the matching exit code (docs/cli.md).
    return sgf_examples::run_with_exit_codes([&] {
        const fs::path model = argc > 1 ? fs::path(argv[1]) : fs::path(SGF_DEFAULT_MODEL);
        const fs::path out = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "sgf-library-tour";
        return tour(model, out);
    });
}
// [/tour:main]
