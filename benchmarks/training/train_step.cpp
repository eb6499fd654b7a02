// Times sgf::Trainer<sgf::EigenCpu>::step, one full training iteration (G+F step, D step, lazy R1
// every d_reg_interval steps, EMA of G), for a model preset at a given batch and thread count.
//
//   sgf_bench_train_step [--preset small] [--batch 16] [--threads 1] [--warmup 4] [--steps 32]
//                        [--repeats 3] [--json] [--dump FILE] [--print-config]
//
// After `warmup` steps (step 0 already includes an R1 step), it times `repeats` windows of `steps`
// consecutive steps each; with steps a multiple of the R1 interval (16) every window holds R1 steps
// in their true proportion. Reports the mean ms/iteration of each window, their median, and the mean
// time of plain and of R1 steps. Also prints the parameter counts of G (with E), F and D, to check
// against benchmarks/training/torch_train_step.py.
//
// --dump FILE: after the warm-up steps (so biases and styles are no longer at their initial values),
// writes every parameter of G, F and D plus a fixed input batch (z, c) and the outputs G(z, c)
// (without noise), F(G(z, c)) and D(G(z, c)) to a safetensors file and exits; check_equivalence.py
// loads it into the PyTorch model and compares the outputs. The noise strengths are set to zero first,
// and the file also holds a second fingerprint batch (in.c2), the four G+F loss terms of one
// generator_step_grads call with the reference weights, and the gradient of every G and F parameter
// (grad.<name>), then D's logistic-loss and R1 (gamma 1) parameter gradients on those fakes and a
// fixed "real" batch (grad_d.<name>, grad_r1.<name>), which check_equivalence.py compares with autograd.
// --print-config: prints the preset's ModelConfig as JSON (torch_train_step.py --config reads it, so
// both implementations always build the same shapes) and exits.
#include <sgf/sgf.hpp>
#include <sgf/train/trainer.hpp>
#include <sgf/backends/eigen.hpp>

#include <fmt/ranges.h>

#include "../common/option_value.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <span>
#include <string>
#include <vector>

namespace {

template <class Net>
std::int64_t count_params(Net& net) {
    std::int64_t n = 0;
    for (auto* p : net.parameters()) n += static_cast<std::int64_t>(p->value.size());
    return n;
}

using B = sgf::EigenCpu;

/// Every parameter of `net` (its values, or its gradients with grads = true) as `prefix` + name.
template <class Net>
void put_params(B& b, sgf::io::SafetensorsFile& f, Net& net, const std::string& prefix = "", bool grads = false) {
    for (auto* p : net.parameters())
        f.put(prefix + p->name, p->dims, sgf::to_host_vector<float>(b, grads ? p->grad : p->value));
}
/// A fixed "real" batch in [-1, 1]: sin(freq * i) over the flat index (no data loader involved).
sgf::Tensor<B> wave_batch(B& b, const sgf::Shape& s, double freq) {
    std::vector<float> h(static_cast<std::size_t>(s.size()));
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(std::sin(freq * double(i)));
    return sgf::from_host(b, s, std::span<const float>(h));
}
void put_tensor(B& b, sgf::io::SafetensorsFile& f, const std::string& name, const sgf::Tensor<B>& t) {
    const sgf::Shape& s = t.shape();
    std::vector<std::int64_t> dims{s.n, s.c, s.h, s.w};
    f.put(name, dims, sgf::to_host_vector<float>(b, t));
}

void write_dump(B& b, sgf::Trainer<B>& tr, const std::string& path) {
    const sgf::ModelConfig& mc = tr.model_config();
    const std::int64_t n = 4;
    sgf::io::SafetensorsFile f;
    f.metadata["sgf.model_config"] = nlohmann::json(mc).dump();
    // Noise strengths to zero, so that the G+F gradients below do not depend on noise draws.
    for (auto* p : tr.generator().parameters())
        if (p->name.find("noise_strength") != std::string::npos) b.fill(p->value.data(), p->value.size(), 0.0f);
    put_params(b, f, tr.generator());
    put_params(b, f, tr.decoder());
    put_params(b, f, tr.discriminator());
    auto gb = sgf::draw_generator_batch(b, mc, n, 12345, 0);
    auto g = tr.generator().forward(b, gb.z, gb.c1, std::nullopt);
    auto fo = tr.decoder().forward(b, g.image());
    auto d = tr.discriminator().forward(b, g.image());
    put_tensor(b, f, "in.z", gb.z);
    put_tensor(b, f, "in.c", gb.c1);
    put_tensor(b, f, "out.w", g.w());
    put_tensor(b, f, "out.image", g.image());
    put_tensor(b, f, "out.F", fo.output());
    put_tensor(b, f, "out.D", d.output());
    // One G+F step's gradients with the reference weights (D frozen): img1 = G(z, c), img2 = G(z, c2).
    put_tensor(b, f, "in.c2", gb.c2);
    const sgf::LossWeights w{};
    const auto L = sgf::generator_step_grads(b, tr.generator(), tr.decoder(), tr.discriminator(), gb, w,
                                             sgf::GradMode::overwrite);
    f.put("out.losses", {4}, std::vector<float>{float(L.adversarial), float(L.consistency), float(L.latent), float(L.fingerprint)});
    put_params(b, f, tr.generator(), "grad.", true);
    put_params(b, f, tr.decoder(), "grad.", true);
    // D's logistic loss on those fakes and a "real" batch, and the R1 penalty (gamma 1, scale 1):
    // D's parameter gradients of each (grad_d.<name>, grad_r1.<name>).
    const sgf::Tensor<B> real = wave_batch(b, g.image().shape(), 0.29);
    put_tensor(b, f, "in.real", real);
    const auto LD = sgf::discriminator_grads(b, tr.discriminator(), g.image(), real, sgf::GradMode::overwrite);
    put_params(b, f, tr.discriminator(), "grad_d.", true);
    sgf::R1InFloat64<B> r1_64(b, mc);  // what the trainer uses on this backend
    const double r1 = r1_64(b, tr.discriminator(), real, 1.0, 1.0);
    put_params(b, f, tr.discriminator(), "grad_r1.", true);
    f.put("out.d_losses", {3}, std::vector<float>{float(LD.fake), float(LD.real), float(r1)});
    f.save(path);
}

/// Machine-wide busy and total CPU time (clock ticks, all CPUs) from /proc/stat, and this process's
/// CPU time (s): with them a run reports how much CPU other processes took while it was measured.
struct CpuSample {
    double busy = 0, total = 0, self_s = 0;
};
CpuSample cpu_sample() {
    CpuSample c;
    if (std::FILE* f = std::fopen("/proc/stat", "r")) {
        unsigned long long v[8] = {};
        if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                        &v[7]) == 8) {
            for (auto x : v) c.total += double(x);
            c.busy = c.total - double(v[3]) - double(v[4]);
        }
        std::fclose(f);
    }
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    c.self_s = double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
    return c;
}
/// CPU cores' worth of time that OTHER processes used between two samples taken `wall_s` apart.
double others_cores(const CpuSample& a, const CpuSample& b, double wall_s) {
    const double tick = double(sysconf(_SC_CLK_TCK));
    const double busy_cores = (b.busy - a.busy) / tick / wall_s;
    const double self_cores = (b.self_s - a.self_s) / wall_s;
    return std::max(0.0, busy_cores - self_cores);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    sgf_bench::StepOptions o;
    int threads = 1;
    std::string dump;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (o.parse(a, i, argc, argv)) continue;
        if (a == "--threads") threads = int(sgf_bench::int_value(i, argc, argv, 1, 1024));
        else if (a == "--dump") dump = sgf_bench::option_value(i, argc, argv);
        else {
            fmt::print(stderr, "usage: {} {} [--threads T] [--dump FILE]\n", argv[0], sgf_bench::StepOptions::usage);
            return 2;
        }
    }
    const std::string& preset = o.preset;
    const int batch = o.batch, warmup = o.warmup, steps = o.steps, repeats = o.repeats;
    const bool json = o.json, print_config = o.print_config;
    try {
        const sgf::ModelConfig mc = sgf::ModelConfig::preset_named(preset);
        if (print_config) {
            fmt::print("{}\n", nlohmann::json(mc).dump());
            return 0;
        }
        sgf::EigenCpu cpu(threads);
        sgf::TrainConfig tc;
        tc.batch = batch;
        sgf::Trainer<sgf::EigenCpu> trainer(cpu, mc, tc);

        const std::int64_t pG = count_params(trainer.generator());
        const std::int64_t pF = count_params(trainer.decoder());
        const std::int64_t pD = count_params(trainer.discriminator());

        // A fixed "real" batch in [-1, 1] (the data loader is not part of the iteration).
        const sgf::Tensor<sgf::EigenCpu> real = wave_batch(cpu, sgf::Shape{batch, mc.image_channels, mc.resolution, mc.resolution}, 0.37);

        using clock = std::chrono::steady_clock;
        for (int i = 0; i < warmup; ++i) trainer.step(real);
        if (!dump.empty()) {
            write_dump(cpu, trainer, dump);
            return 0;
        }
        std::vector<double> window_ms, plain_ms, r1_ms;
        const CpuSample c0 = cpu_sample();
        const auto m0 = clock::now();
        for (int r = 0; r < repeats; ++r) {
            const auto w0 = clock::now();
            for (int i = 0; i < steps; ++i) {
                const auto t0 = clock::now();
                const sgf::StepStats st = trainer.step(real);
                const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
                (st.r1 ? r1_ms : plain_ms).push_back(ms);
            }
            window_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - w0).count() / steps);
        }
        const CpuSample c1 = cpu_sample();
        const double others = others_cores(c0, c1, std::chrono::duration<double>(clock::now() - m0).count());
        const double cpu_ms = 1e3 * (c1.self_s - c0.self_s) / double(steps * repeats);
        auto mean = [](const std::vector<double>& v) {
            double s = 0;
            for (double x : v) s += x;
            return v.empty() ? 0.0 : s / double(v.size());
        };
        const double med = median(window_ms);
        if (json) {
            fmt::print("{{\"impl\": \"sgf\", \"preset\": \"{}\", \"batch\": {}, \"threads\": {}, \"params_G\": {}, \"params_F\": {}, "
                       "\"params_D\": {}, \"ms_per_iter\": {:.3f}, \"window_ms\": [{:.3f}], \"plain_step_ms\": {:.3f}, "
                       "\"r1_step_ms\": {:.3f}, \"r1_steps\": {}, \"steps\": {}, \"others_cores\": {:.2f}, \"cpu_ms_per_iter\": {:.3f}}}\n",
                       preset, batch, threads, pG, pF, pD, med, fmt::join(window_ms, ", "), mean(plain_ms), mean(r1_ms),
                       r1_ms.size(), plain_ms.size() + r1_ms.size(), others, cpu_ms);
        } else {
            fmt::print("sgf Trainer<EigenCpu>::step  preset={} batch={} threads={}\n", preset, batch, threads);
            fmt::print("parameters: G (incl. E) {}  F {}  D {}  total {} (+ EMA copy of G)\n", pG, pF, pD, pG + pF + pD);
            fmt::print("windows of {} steps (ms/iter): {:.1f}\n", steps, fmt::join(window_ms, "  "));
            fmt::print("median ms/iter: {:.1f}   plain step {:.1f} ms, R1 step {:.1f} ms ({} of {} steps)\n", med, mean(plain_ms),
                       mean(r1_ms), r1_ms.size(), plain_ms.size() + r1_ms.size());
            fmt::print("CPU time {:.1f} ms/iter (all threads); other processes used {:.2f} CPU cores meanwhile\n", cpu_ms, others);
        }
    } catch (const sgf::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    return 0;
}
