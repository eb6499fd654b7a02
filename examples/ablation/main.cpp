// Fingerprint-learning ablation (docs/training-log.md): a 16-px model (32 channels, fc 128, z 16, w 64)
// trained on Fashion-MNIST 2x2-averaged to 16x16, printing every 500 steps the running bit accuracy
// (exponential mean, 50 steps) and the batch's latent and consistency terms *as weighted in the loss*
// (weight x MSE, the consistency weight also x its warm-up factor). Not built by default:
//   cmake --build build --target sgf_ablation
//   ./build/examples/ablation/sgf_ablation BITS EMBED_LAYERS LR CONSISTENCY_RAMPUP_KIMG STEPS [W_FP [W_ADV]]
// Environment overrides: SGF_ABL_W_LATENT (latent weight, 1), SGF_ABL_W_CONS (consistency weight, 2),
// SGF_ABL_W_DIM (E's width and output size, max(64, BITS)), SGF_ABL_BATCH (16), SGF_ABL_SEED (1), SGF_ABL_R1 (R1 gamma, 0.1), SGF_ABL_EMBED_LR (E's lr multiplier,
// 0.01), SGF_ABL_CH_BASE / SGF_ABL_CH_MAX (channel schedule, 256 / 32), SGF_ABL_F_BETA1,
// SGF_ABL_F_LR, SGF_ABL_G_BETA1 (decoder / generator Adam), SGF_ABL_INPUT_BIAS_STD (G.input bias
// drawn from N(0, std^2) instead of 0), SGF_ABL_EMBED_BALANCED (1: E's first-layer columns, one per bit,
// scaled to their mean norm at the start), SGF_ABL_EVAL (K > 0: after the last step, the held-out
// per-bit accuracy of the live G and F on K batches of 64 fresh z and fingerprints).
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/backends/eigen.hpp>
#include <cstdio>
#include <cstdlib>
#include <sgf/verify/decode.hpp>
#include <algorithm>
#include <cmath>
#include <vector>
using namespace sgf;
using B = EigenCpu;
static int run(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: sgf_ablation BITS EMBED_LAYERS LR CONSISTENCY_RAMPUP_KIMG STEPS [W_FP [W_ADV]]\n");
        return 2;
    }
    int bits = atoi(argv[1]), el = atoi(argv[2]); double lr = atof(argv[3]), ramp = atof(argv[4]); int steps = atoi(argv[5]);
    double wfp = argc > 6 ? atof(argv[6]) : 2.0; double wadv = argc > 7 ? atof(argv[7]) : 1.0;
    B b(1);
    ModelConfig mc = ModelConfig::tiny();
    mc.fingerprint_bits = bits; mc.embed_layers = el; mc.z_dim = 16; mc.w_dim = std::max(64, bits); mc.embed_width = mc.w_dim;
    mc.channel_base = 256; mc.channel_max = 32; mc.fc_width = 128;
    if (const char* e = std::getenv("SGF_ABL_CH_BASE")) mc.channel_base = atoi(e);  // 256
    if (const char* e = std::getenv("SGF_ABL_CH_MAX")) mc.channel_max = atoi(e);    // 32
    if (const char* e = std::getenv("SGF_ABL_W_DIM")) mc.w_dim = mc.embed_width = atoi(e);  // E's width and output
    if (const char* e = std::getenv("SGF_ABL_EMBED_LR")) mc.embed_lr_mult = atof(e);  // E lr multiplier (0.01)
    TrainConfig tc; tc.batch = 16;
    if (const char* e = std::getenv("SGF_ABL_BATCH")) tc.batch = atoi(e);  // batch (16)
    if (const char* e = std::getenv("SGF_ABL_R1")) tc.r1_gamma = atof(e);  // R1 gamma (0.1)
    if (const char* e = std::getenv("SGF_ABL_SEED")) tc.seed = std::strtoull(e, nullptr, 10);  // seed (1)
    tc.adam.lr = lr; tc.consistency_rampup_kimg = ramp; tc.weights.fingerprint = wfp; tc.weights.adversarial = wadv;
    if (const char* e = std::getenv("SGF_ABL_W_LATENT")) tc.weights.latent = atof(e);  // latent weight (1)
    if (const char* e = std::getenv("SGF_ABL_W_CONS")) tc.weights.consistency = atof(e);  // consistency weight (2)
    Trainer<B> tr(b, mc, tc);
    {   // optional decoder / generator optimiser overrides (experiments only)
        AdamParams pf = lazy_regularised(tc.adam, tc.g_reg_interval), pg = pf;
        if (const char* e = std::getenv("SGF_ABL_F_BETA1")) pf.beta1 = atof(e);
        if (const char* e = std::getenv("SGF_ABL_F_LR")) pf.lr = atof(e);
        if (const char* e = std::getenv("SGF_ABL_G_BETA1")) pg.beta1 = atof(e);
        tr.opt_decoder() = Adam<B>(b, tr.decoder().parameters(), pf);
        tr.opt_generator() = Adam<B>(b, tr.generator().parameters(), pg);
    }
    if (const char* e = std::getenv("SGF_ABL_EMBED_BALANCED"); e && atoi(e)) {
        // E's first layer with every bit's column scaled to the columns' mean norm: each bit enters w
        // with the same strength (docs/training-log.md, session 30: per-bit accuracy follows it)
        auto& wt = tr.generator().embedding().layers().front().weight().value;
        HostTensor<float> h = to_host<float>(b, wt);
        const std::int64_t out = h.shape.n, in = h.shape.c;
        std::vector<double> norm(std::size_t(in), 0.0);
        for (std::int64_t o = 0; o < out; ++o)
            for (std::int64_t i = 0; i < in; ++i) norm[std::size_t(i)] += double(h.data[std::size_t(o * in + i)]) * h.data[std::size_t(o * in + i)];
        double mean = 0;
        for (auto& v : norm) mean += (v = std::sqrt(v)) / double(in);
        for (std::int64_t o = 0; o < out; ++o)
            for (std::int64_t i = 0; i < in; ++i) h.data[std::size_t(o * in + i)] *= float(mean / norm[std::size_t(i)]);
        upload_into(b, std::span<const float>(h.data), wt);
    }
    if (const char* e = std::getenv("SGF_ABL_INPUT_BIAS_STD")) {  // G.input bias ~ N(0, std^2): a learned-constant start
        auto& bias = tr.generator().input_layer().bias().value;
        b.normal(RngKey{7, 7, 0}, bias.size(), bias.data());
        b.axpby(bias.size(), 0.0f, bias.data(), float(atof(e)), bias.data());
    }
    auto ds = io::load_fashion_mnist("train");
    io::Sampler sampler(ds.size(), tc.seed);
    double acc = 0.5;
    for (int s = 1; s <= steps; ++s) {
        const int nb = tc.batch;
        auto h = ds.batch(sampler.next(nb));
        HostTensor<float> r(Shape{nb, 1, 16, 16});
        for (int n = 0; n < nb; ++n) for (int y = 0; y < 16; ++y) for (int x = 0; x < 16; ++x)
            r.at(n, 0, y, x) = 0.25f * (h.at(n, 0, 2*y, 2*x) + h.at(n, 0, 2*y+1, 2*x) + h.at(n, 0, 2*y, 2*x+1) + h.at(n, 0, 2*y+1, 2*x+1));
        auto st = tr.step(from_host(b, r));
        acc = 0.98 * acc + 0.02 * st.g.bit_accuracy;
        if (s % 500 == 0) { std::printf("bits %d el %d lr %g ramp %g wfp %g adv %g | step %d acc %.3f lat %.3f cons %.3f\n", bits, el, lr, ramp, wfp, wadv, s, acc, st.g.latent, st.g.consistency); std::fflush(stdout); }
    }
    if (const char* e = std::getenv("SGF_ABL_EVAL"); e && atoi(e) > 0) {
        // held-out per-bit accuracy of the live G and F: atoi(e) batches of 64 fresh z and fingerprints
        std::vector<double> per_bit(std::size_t(bits), 0.0);
        std::int64_t images = 0;
        for (int k = 0; k < atoi(e); ++k) {
            const std::int64_t N = 64;
            Tensor<B> z(b, Shape{N, mc.z_dim});
            b.normal(RngKey{999, std::uint64_t(k), 0}, z.size(), z.data());
            HostTensor<float> ch(Shape{N, bits});
            for (std::int64_t i = 0; i < ch.size(); ++i) ch.data[std::size_t(i)] = philox::uniform(RngKey{998, std::uint64_t(k), 0}, std::uint64_t(i)) < 0.5 ? 1.0f : 0.0f;
            const Tensor<B> c = from_host(b, ch);
            const auto ctx = tr.generator().forward(b, z, c, std::uint64_t(5000 + k));
            const auto dec = decode_batch(b, tr.decoder(), ctx.image());
            for (std::int64_t n = 0; n < N; ++n)
                for (int i = 0; i < bits; ++i) per_bit[std::size_t(i)] += (dec[std::size_t(n)].fingerprint.bit(i) == (ch.data[std::size_t(n * bits + i)] > 0.5f));
            images += N;
        }
        double mean = 0, lo = 1, sq = 0;
        for (auto& v : per_bit) { v /= double(images); mean += v / bits; lo = std::min(lo, v); sq += v * v / bits; }
        std::printf("held-out (%lld images): bit accuracy %.4f, worst bit %.4f, spread (std over bits) %.4f\n", (long long)images, mean, lo,
                    std::sqrt(std::max(0.0, sq - mean * mean)));
    }
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const sgf::Error& e) {  // a bad argument or variable (Trainer validates), missing data
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
