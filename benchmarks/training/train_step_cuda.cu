// The GPU counterpart of train_step.cpp: times sgf::Trainer<CudaGpu>::step (one full training
// iteration: G+F step, D step, lazy R1 on a float64 copy of D every d_reg_interval steps, EMA of G)
// and the decoder's throughput, on the CUDA backend. Compare with
//   python3 torch_train_step.py --device cuda --config "$(sgf_bench_train_step_cuda --preset P --print-config)"
// which run_cuda.sh does in the same run.
//
//   sgf_bench_train_step_cuda [--preset small] [--batch 16] [--warmup 6] [--steps 32] [--repeats 3]
//                             [--checking] [--decode-batches 1,256] [--conv-roof] [--json] [--print-config]
//
// Every timed window ends with a device synchronise. --decode-batches times F's forward pass (the
// decoding of images already on the GPU) at each batch size and reports images/s. --conv-roof times
// the backend's SGEMM (cuBLAS, 8192^3) and, at --batch, the 3x3 convolution of every resolution of the
// preset's decoder/discriminator trunk (C_r -> C_r, r x r, the dominant shapes) forward, backward-data
// and backward-filter (cuDNN), and reports TFLOP/s and the fraction of the SGEMM rate.
#include <sgf/backends/cuda.cuh>
#include <sgf/sgf.hpp>
#include <sgf/train/trainer.hpp>

#include <fmt/ranges.h>

#include "../common/option_value.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace {

using B = sgf::CudaGpu;
using clock_type = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

sgf::Tensor<B> wave_batch(B& b, const sgf::Shape& s, double freq) {
    std::vector<float> h(static_cast<std::size_t>(s.size()));
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = float(std::sin(freq * double(i)));
    return sgf::from_host(b, s, std::span<const float>(h));
}

}  // namespace

int main(int argc, char** argv) {
    sgf_bench::StepOptions o;
    o.warmup = 6;
    std::string decode_list;
    bool checking = false, conv_roof = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (o.parse(a, i, argc, argv)) continue;
        if (a == "--checking") checking = true;
        else if (a == "--decode-batches") decode_list = sgf_bench::option_value(i, argc, argv);
        else if (a == "--conv-roof") conv_roof = true;
        else {
            fmt::print(stderr, "usage: {} {} [--checking] [--decode-batches 1,256] [--conv-roof]\n", argv[0],
                       sgf_bench::StepOptions::usage);
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
        if (!sgf::cuda::gpu_available()) {
            fmt::print(stderr, "no CUDA GPU: {}\n", sgf::cuda::no_gpu_reason());
            return 2;
        }
        B gpu(sgf::cuda::Options{.mode = checking ? sgf::cuda::Mode::checking : sgf::cuda::Mode::fast});
        const char* mode = checking ? "checking" : "fast";
        if (conv_roof) {
            // seconds per call of f, after warm-up, over at least 0.5 s
            auto time_it = [&](auto&& f) {
                for (int i = 0; i < 3; ++i) f();
                gpu.synchronize();
                int iters = 0;
                double sec = 0;
                const auto t0 = clock_type::now();
                do {
                    f();
                    gpu.synchronize();
                    ++iters;
                    sec = std::chrono::duration<double>(clock_type::now() - t0).count();
                } while (sec < 0.5 || iters < 5);
                return sec / iters;
            };
            auto buffer = [&](std::int64_t n) {
                sgf::Tensor<B> t(gpu, sgf::Shape{n, 1});
                gpu.normal(sgf::RngKey{3, 4, 0}, n, t.data());
                return t;
            };
            const std::int64_t G = 8192;
            auto A = buffer(G * G), Bm = buffer(G * G), C = buffer(G * G);
            const double gemm_s = time_it([&] { gpu.gemm(false, false, G, G, G, 1.0f, A.data(), G, Bm.data(), G, 0.0f, C.data(), G); });
            const double roof = 2.0 * double(G) * G * G / gemm_s / 1e12;
            fmt::print("{{\"impl\": \"sgf\", \"what\": \"sgemm\", \"mode\": \"{}\", \"n\": {}, \"tflops\": {:.1f}}}\n", mode, G, roof);
            for (int r = mc.resolution; r >= 4; r /= 2) {
                const int ch = mc.channels_at(r);
                const sgf::ConvDesc d{batch, ch, r, r, ch, 3, 1, 1};
                auto x = buffer(d.x_shape().size()), w = buffer(d.w_shape().size()), y = buffer(d.y_shape().size());
                const double f = time_it([&] { gpu.conv2d_forward(d, 1.0f, x.data(), w.data(), 0.0f, y.data()); });
                const double bd = time_it([&] { gpu.conv2d_backward_data(d, 1.0f, y.data(), w.data(), 0.0f, x.data()); });
                const double bf = time_it([&] { gpu.conv2d_backward_filter(d, 1.0f, x.data(), y.data(), 0.0f, w.data()); });
                for (auto [what, sec] : {std::pair{"forward", f}, std::pair{"backward_data", bd}, std::pair{"backward_filter", bf}}) {
                    const double tf = d.flops() / sec / 1e12;
                    fmt::print("{{\"impl\": \"sgf\", \"what\": \"conv_{}\", \"mode\": \"{}\", \"n\": {}, \"c\": {}, \"hw\": {}, "
                               "\"ms\": {:.4f}, \"tflops\": {:.2f}, \"fraction_of_sgemm\": {:.3f}}}\n",
                               what, mode, batch, ch, r, 1e3 * sec, tf, tf / roof);
                }
            }
            return 0;
        }
        if (!decode_list.empty()) {  // decoder throughput
            auto F = sgf::make_decoder(gpu, mc, 2);
            std::stringstream ss(decode_list);
            std::string item;
            while (std::getline(ss, item, ',')) {
                const int n = int(sgf_bench::int_text(item, "--decode-batches", 1, 1 << 16));
                const auto x = wave_batch(gpu, sgf::Shape{n, mc.image_channels, mc.resolution, mc.resolution}, 0.37);
                for (int i = 0; i < 3; ++i) (void)F.forward(gpu, x);
                gpu.synchronize();
                int iters = 0;
                const auto t0 = clock_type::now();
                double sec = 0;
                do {
                    (void)F.forward(gpu, x);
                    gpu.synchronize();
                    ++iters;
                    sec = std::chrono::duration<double>(clock_type::now() - t0).count();
                } while (sec < 1.0 || iters < 5);
                const double ms = 1e3 * sec / iters;
                if (json)
                    fmt::print("{{\"impl\": \"sgf\", \"what\": \"decode\", \"preset\": \"{}\", \"batch\": {}, \"mode\": \"{}\", "
                               "\"ms_per_batch\": {:.4f}, \"images_per_s\": {:.1f}}}\n",
                               preset, n, mode, ms, 1e3 * n / ms);
                else
                    fmt::print("sgf decoder F ({}) batch {:4d}: {:.3f} ms/batch, {:.0f} images/s ({} mode)\n", preset, n, ms,
                               1e3 * n / ms, mode);
            }
            return 0;
        }
        sgf::TrainConfig tc;
        tc.batch = batch;
        sgf::Trainer<B> trainer(gpu, mc, tc);
        const auto real = wave_batch(gpu, sgf::Shape{batch, mc.image_channels, mc.resolution, mc.resolution}, 0.37);
        for (int i = 0; i < warmup; ++i) trainer.step(real);
        gpu.synchronize();
        std::vector<double> window_ms, plain_ms, r1_ms;
        for (int r = 0; r < repeats; ++r) {
            const auto w0 = clock_type::now();
            for (int i = 0; i < steps; ++i) {
                const auto t0 = clock_type::now();
                const sgf::StepStats st = trainer.step(real);
                gpu.synchronize();
                (st.r1 ? r1_ms : plain_ms).push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
            }
            window_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - w0).count() / steps);
        }
        auto mean = [](const std::vector<double>& v) {
            double s = 0;
            for (double x : v) s += x;
            return v.empty() ? 0.0 : s / double(v.size());
        };
        const double med = median(window_ms);
        if (json)
            fmt::print("{{\"impl\": \"sgf\", \"what\": \"train_step\", \"preset\": \"{}\", \"batch\": {}, \"mode\": \"{}\", "
                       "\"device\": \"{}\", \"ms_per_iter\": {:.3f}, \"window_ms\": [{:.3f}], \"plain_step_ms\": {:.3f}, "
                       "\"r1_step_ms\": {:.3f}, \"r1_steps\": {}, \"steps\": {}, \"peak_mib\": {:.1f}}}\n",
                       preset, batch, mode, gpu.device_name(), med, fmt::join(window_ms, ", "), mean(plain_ms), mean(r1_ms),
                       r1_ms.size(), plain_ms.size() + r1_ms.size(),
                       double(gpu.allocator_stats().peak_in_use_bytes) / double(1 << 20));
        else
            fmt::print("sgf Trainer<CudaGpu>::step preset={} batch={} {} mode on {}: median {:.2f} ms/iter (windows {:.2f}), "
                       "plain step {:.2f} ms, R1 step {:.2f} ms, {:.0f} images/s\n",
                       preset, batch, mode, gpu.device_name(), med, fmt::join(window_ms, " "), mean(plain_ms), mean(r1_ms),
                       1e3 * batch / med);
    } catch (const sgf::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    return 0;
}
