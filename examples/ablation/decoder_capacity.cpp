// Decoder-capacity experiment (docs/training-log.md, "Session 29"): is the default model's bit accuracy
// limited by its decoder F (32 channels at 32 px) or by what the frozen generator writes into its images?
// Trains a decoder of a chosen width on the frozen EMA generator of a meta-model file (8-bit rounded,
// clamped images, as decoder-only training does) and prints, every 250 steps, the running bit
// accuracy and the accuracy on a fixed held-out set of 1,024 images. Not built by default:
//   cmake --build build --target sgf_decoder_capacity
//   ./build/examples/ablation/sgf_decoder_capacity MODEL CH_BASE CH_MAX FC_WIDTH STEPS LR BATCH fresh|model [THREADS [OUT]]
// OUT: the decoder is written there (a decoder file, atomically) every 1,000 steps and at the end; decode
// and verify read it when its widths are the model's.
// "model" starts from the file's own F (the widths must then be the file's); "fresh" from a new F;
// "noise" only measures the file's own F on images made with the generator's noise scaled by 1, 0.5, 0.25, 0.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/backends/eigen.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
using namespace sgf;
using B = EigenCpu;

// images of G for draw stream `stream`, as a PNG would store them
static Tensor<B> generated(B& b, const MetaGenerator<B>& G, const GeneratorBatch<B>& gb) {
    Tensor<B> img = G.forward(b, gb.z, gb.c1, gb.noise1).image().clone(b);
    round_to_8_bits(b, img, 0, 1);
    b.clamp(img.size(), img.data(), -1.0f, 1.0f, img.data(), nullptr);
    return img;
}

// the held-out set: 8 batches of 128 from streams no training step uses
static std::vector<GeneratorBatch<B>> held_out_batches(B& b, const ModelConfig& cfg) {
    std::vector<GeneratorBatch<B>> held;
    for (int i = 0; i < 8; ++i) held.push_back(draw_generator_batch(b, cfg, 128, 777, 1'000'000'000ull + i));
    return held;
}

static int run(int argc, char** argv) {
    if (argc < 9) {
        std::fprintf(stderr, "usage: sgf_decoder_capacity MODEL CH_BASE CH_MAX FC_WIDTH STEPS LR BATCH fresh|model [THREADS [OUT]]\n");
        return 2;
    }
    const std::string model = argv[1], init = argv[8];
    const int ch_base = std::atoi(argv[2]), ch_max = std::atoi(argv[3]), fc = std::atoi(argv[4]), steps = std::atoi(argv[5]);
    const double lr = std::atof(argv[6]);
    const int batch = std::atoi(argv[7]), threads = argc > 9 ? std::atoi(argv[9]) : 1;
    const std::string out = argc > 10 ? argv[10] : "";
    B b(threads);
    auto m = io::load_meta_model(b, model);
    ModelConfig fc_cfg = m.config;
    fc_cfg.channel_base = ch_base;
    fc_cfg.channel_max = ch_max;
    fc_cfg.fc_width = fc;
    const bool same = ch_base == m.config.channel_base && ch_max == m.config.channel_max && fc == m.config.fc_width;
    if (init == "model" && !same) {
        std::fprintf(stderr, "'model' needs the file's widths (%d %d %d)\n", m.config.channel_base, m.config.channel_max,
                     m.config.fc_width);
        return 2;
    }
    if (init == "noise") {  // the file's own F on images made with the per-layer noise scaled by k
        std::vector<Parameter<B>*> strengths;
        for (auto* p : m.G.parameters())
            if (p->name.find("noise_strength") != std::string::npos) strengths.push_back(p);
        std::vector<float> orig;
        for (auto* p : strengths) orig.push_back(to_host_vector<float>(b, p->value)[0]);
        std::string list;
        for (std::size_t i = 0; i < strengths.size(); ++i) list += fmt::format(" {}={:.4f}", strengths[i]->name, orig[i]);
        std::printf("noise strengths (stored):%s\n", list.c_str());
        for (double k : {1.0, 0.5, 0.25, 0.0}) {
            for (std::size_t i = 0; i < strengths.size(); ++i) {
                const float v = float(orig[i] * k);
                b.fill(strengths[i]->value.data(), 1, v);
            }
            double acc = 0;
            for (const auto& gb : held_out_batches(b, m.config))
                acc += bit_accuracy(b, m.F.forward(b, generated(b, m.G, gb)).output(), m.config.z_dim, gb.c1);
            std::printf("noise x %.2f: bit accuracy %.4f (1,024 images, 8-bit, clamped)\n", k, acc / 8);
            std::fflush(stdout);
        }
        return 0;
    }
    ResidualCritic<B> F = init == "model" ? std::move(m.F) : make_decoder(b, fc_cfg, 12345);
    std::int64_t nparams = 0;
    for (auto* p : F.parameters()) nparams += p->value.size();
    Adam<B> opt(b, F.parameters(), AdamParams{lr, 0.0, 0.99, 1e-8});
    LossWeights w;
    w.adversarial = w.consistency = 0;
    w.latent = 0.125;
    w.fingerprint = 20;
    const std::vector<GeneratorBatch<B>> held = held_out_batches(b, m.config);
    std::vector<Tensor<B>> held_img;  // made once: G is frozen
    for (const auto& gb : held) held_img.push_back(generated(b, m.G, gb));
    auto held_accuracy = [&] {
        double acc = 0;
        for (int i = 0; i < 8; ++i) {
            auto ctx = F.forward(b, held_img[i]);
            acc += bit_accuracy(b, ctx.output(), m.config.z_dim, held[i].c1);
        }
        return acc / 8;
    };
    std::printf("decoder %s: channels at 32/16/8/4 px %d/%d/%d/%d, fc %d, %lld parameters; lr %g, batch %d, %d threads\n",
                init.c_str(), fc_cfg.channels_at(32), fc_cfg.channels_at(16), fc_cfg.channels_at(8), fc_cfg.channels_at(4), fc,
                static_cast<long long>(nparams), lr, batch, threads);
    std::printf("step 0: held-out bit accuracy %.4f\n", held_accuracy());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    double run_acc = 0.5;
    for (int s = 1; s <= steps; ++s) {
        auto gb = draw_generator_batch(b, m.config, batch, 1, std::uint64_t(s) * 8);
        Tensor<B> img = generated(b, m.G, gb);
        const GeneratorLosses L = decoder_grads(b, F, img, gb, w, GradMode::overwrite);
        opt.step(b);
        run_acc = 0.98 * run_acc + 0.02 * L.bit_accuracy;
        if (s % 250 == 0 || s == steps) {
            const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::printf("step %d (%.0f s, %.0f img/s): running bit accuracy %.4f, held-out %.4f, latent %.3f\n", s, sec,
                        s * double(batch) / sec, run_acc, held_accuracy(), L.latent / w.latent);
            std::fflush(stdout);
        }
        if (!out.empty() && (s % 1000 == 0 || s == steps))
            io::save_decoder(b, out, F, {{"sgf.decoder_capacity_step", std::to_string(s)}});
    }
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
