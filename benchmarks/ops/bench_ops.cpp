// Operator benchmarks for the CPU backend (Google Benchmark).
//
// Rows (one Google Benchmark entry each, repeated; see rows() below):
//   sgemm/2048/t{1,2}/{start,end}       the roof: C[2048,2048] = A B with Eigen, the columns of C split
//                                       over the threads of sgf's pool (that is how sgf itself
//                                       parallelises: Eigen is built without OpenMP); run first and
//                                       last, the report uses the better of the two
//   conv3x3/{fwd,bwd}/...               plain equalised 3x3 conv, stride 1, pad 1: the backend ops
//                                       conv2d_forward (alpha = 1/sqrt(c_in*9)) and, for bwd,
//                                       conv2d_backward_data + conv2d_backward_filter
//   modconv3x3[_up]/{fwd,bwd}/...       the whole sgf::ModConv layer (affine, modulation, conv,
//                                       demodulation, noise, bias, lrelu) and its full backward
//                                       (dx, dw and every parameter gradient); _up is the x2
//                                       upsampling layer (transposed conv + FIR)
// FLOPs are the convolution's multiply-adds x 2 (x 2 again for bwd = data + filter); the layer's
// elementwise work is not counted. Every row carries its shape as counters so that
// benchmarks/torch_peer.py can run the same shapes with the same iteration/repetition counts.
//
// Each row's setup (backend with its thread pool, tensors, layer) is built once and warmed up by
// one untimed call, then reused by all repetitions of that row.
#include <sgf/backends/eigen.hpp>
#include <sgf/layers.hpp>
#include <sgf/nets/config.hpp>

#include <benchmark/benchmark.h>
#ifdef SGF_BENCH_HAVE_BUILD_INFO
#include <sgf_bench_build_info.hpp>
#endif
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Cpu = sgf::EigenCpu;
using T = float;

enum class Op { sgemm, conv, modconv, modconv_up };
enum class Dir { fwd, bwd };

struct Row {
    Op op = Op::conv;
    Dir dir = Dir::fwd;
    std::string model;  ///< where the shape comes from (paper128.G, paper128.F, small.G, ...)
    std::int64_t c_in = 0, c_out = 0;
    std::int64_t h = 0;  ///< input side (the output is 2h for modconv_up)
    std::int64_t n = 1;
    int threads = 1;
    std::int64_t w_dim = 0;  ///< modconv only
    std::int64_t iters = 1, reps = 3;

    double flops() const {
        if (op == Op::sgemm) return 2.0 * double(c_in) * double(c_in) * double(c_in);
        const double f = 2.0 * double(n) * double(c_in) * double(c_out) * 9.0 * double(h) * double(h);
        return dir == Dir::bwd ? 2.0 * f : f;
    }
    std::string op_name() const {
        switch (op) {
            case Op::sgemm: return "sgemm";
            case Op::conv: return "conv3x3";
            case Op::modconv: return "modconv3x3";
            case Op::modconv_up: return "modconv3x3_up";
        }
        return "?";
    }
    std::string name() const {
        if (op == Op::sgemm) return fmt::format("sgemm/{}/t{}/{}", c_in, threads, model);
        return fmt::format("{}/{}/{}/c{}-{}/h{}/n{}/t{}", op_name(), dir == Dir::fwd ? "fwd" : "bwd", model, c_in, c_out, h,
                           n, threads);
    }
};

// ------------------------------------------------------------------------------------------------
// Per-row state, built on first use and kept while the repetitions of that row run.

struct State {
    virtual ~State() = default;
    virtual void run() = 0;
};

struct SgemmState final : State {
    Cpu cpu;
    std::int64_t s;
    sgf::Tensor<Cpu> a, b, c;
    SgemmState(const Row& r) : cpu(r.threads), s(r.c_in) {
        a = sgf::Tensor<Cpu>(cpu, {s, s});
        b = sgf::Tensor<Cpu>(cpu, {s, s});
        c = sgf::Tensor<Cpu>(cpu, {s, s});
        cpu.normal({1, 1, 0}, a.size(), a.data());
        cpu.normal({1, 2, 0}, b.size(), b.data());
    }
    void run() override {
        // Columns of C (and B) split into one contiguous block per thread, each an Eigen GEMM.
        cpu.thread_pool().parallel_for(cpu.threads(), [&](std::int64_t t0, std::int64_t t1, int) {
            for (std::int64_t t = t0; t < t1; ++t) {
                const std::int64_t c0 = s * t / cpu.threads(), c1 = s * (t + 1) / cpu.threads();
                cpu.gemm(false, false, s, c1 - c0, s, T(1), a.data(), s, b.data() + c0, s, T(0), c.data() + c0, s);
            }
        });
    }
};

struct ConvState final : State {
    Cpu cpu;
    sgf::ConvDesc d;
    T alpha;
    Dir dir;
    sgf::Tensor<Cpu> x, w, y, dy, dx, dw;
    ConvState(const Row& r) : cpu(r.threads), d{r.n, r.c_in, r.h, r.h, r.c_out, 3, 1, 1}, dir(r.dir) {
        alpha = T(1.0 / std::sqrt(double(r.c_in * 9)));
        x = sgf::Tensor<Cpu>(cpu, d.x_shape());
        w = sgf::Tensor<Cpu>(cpu, d.w_shape());
        cpu.normal({1, 1, 0}, x.size(), x.data());
        cpu.normal({1, 2, 0}, w.size(), w.data());
        if (dir == Dir::fwd) {
            y = sgf::Tensor<Cpu>(cpu, d.y_shape());
        } else {
            dy = sgf::Tensor<Cpu>(cpu, d.y_shape());
            dx = sgf::Tensor<Cpu>(cpu, d.x_shape());
            dw = sgf::Tensor<Cpu>(cpu, d.w_shape());
            cpu.normal({1, 3, 0}, dy.size(), dy.data());
        }
    }
    void run() override {
        if (dir == Dir::fwd) {
            cpu.conv2d_forward(d, alpha, x.data(), w.data(), T(0), y.data());
        } else {
            cpu.conv2d_backward_data(d, alpha, dy.data(), w.data(), T(0), dx.data());
            cpu.conv2d_backward_filter(d, alpha, x.data(), dy.data(), T(0), dw.data());
        }
    }
};

struct ModConvState final : State {
    Cpu cpu;
    Dir dir;
    sgf::ModConv<Cpu> layer;
    sgf::Tensor<Cpu> x, wl, dy0, dwl;
    sgf::ModConv<Cpu>::Ctx ctx;
    std::uint64_t step = 0;
    ModConvState(const Row& r) : cpu(r.threads), dir(r.dir) {
        sgf::ModConvConfig cfg;
        cfg.c_in = r.c_in;
        cfg.c_out = r.c_out;
        cfg.k = 3;
        cfg.w_dim = r.w_dim;
        cfg.up = r.op == Op::modconv_up;
        layer = sgf::ModConv<Cpu>(cpu, "bench", cfg, /*seed=*/1);
        x = sgf::Tensor<Cpu>(cpu, {r.n, r.c_in, r.h, r.h});
        wl = sgf::Tensor<Cpu>(cpu, {r.n, r.w_dim});
        cpu.normal({2, 1, 0}, x.size(), x.data());
        cpu.normal({2, 2, 0}, wl.size(), wl.data());
        if (dir == Dir::bwd) {
            ctx = layer.forward(cpu, x, wl, sgf::RngKey{3, 0, 0});
            dy0 = sgf::Tensor<Cpu>(cpu, ctx.y.shape());
            cpu.normal({2, 3, 0}, dy0.size(), dy0.data());
            dwl = sgf::Tensor<Cpu>(cpu, wl.shape());
        }
    }
    void run() override {
        if (dir == Dir::fwd) {
            auto c = layer.forward(cpu, x, wl, sgf::RngKey{3, 0, step++});
            benchmark::DoNotOptimize(c.y.data());
        } else {
            // backward consumes (overwrites) dy, so each call gets a fresh copy (a memcpy of the
            // output tensor, < 1% of the row's time).
            auto dy = dy0.clone(cpu);
            auto dx = layer.backward(cpu, ctx, std::move(dy), sgf::GradMode::overwrite, dwl, T(0));
            benchmark::DoNotOptimize(dx.data());
        }
    }
};

std::unique_ptr<State> make_state(const Row& r) {
    switch (r.op) {
        case Op::sgemm: return std::make_unique<SgemmState>(r);
        case Op::conv: return std::make_unique<ConvState>(r);
        default: return std::make_unique<ModConvState>(r);
    }
}

// One live state: the repetitions of a row run back to back, so a row's setup and warm-up happen once.
std::string g_state_name;
std::unique_ptr<State> g_state;

State& state_for(const Row& r) {
    if (g_state_name != r.name()) {
        g_state.reset();  // free the previous row's memory first
        g_state = make_state(r);
        g_state_name = r.name();
        g_state->run();  // warm-up: first touch of every buffer, memory pool filled
    }
    return *g_state;
}

void run_row(benchmark::State& st, const Row& r) {
    State& s = state_for(r);
    for (auto _ : st) s.run();
    const double f = r.flops();
    st.counters["gflops"] = benchmark::Counter(f * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
    st.counters["flop"] = f;
    st.counters["c_in"] = double(r.c_in);
    st.counters["c_out"] = double(r.c_out);
    st.counters["h"] = double(r.h);
    st.counters["n"] = double(r.n);
    st.counters["threads"] = r.threads;
    st.counters["w_dim"] = double(r.w_dim);
}

// ------------------------------------------------------------------------------------------------
// The row list.

struct Shape3 {
    std::string model;
    std::int64_t c_in, c_out, h;
    std::int64_t w_dim;
};

std::vector<Row> rows() {
    // Shapes from the presets themselves (include/sgf/nets/config.hpp), so they follow the presets:
    //  * plain conv: the decoder F's 3x3 convs (algorithm.md 3.4, conv0 of the residual block at
    //    resolution r: C_r -> C_r at r x r);
    //  * modulated conv: the generator's 3x3 layers (algorithm.md 3.2, conv1 of block r: C_r -> C_r at
    //    r x r) and one up layer (conv0 of block r: C_{r/2} -> C_r, r/2 -> r);
    // paper128 at r = 16, 32, 64, 128 (512, 512, 256, 128 channels), up at r = 32; small at r = 16, 32,
    // up at r = 32; plus the profiling reference shape 128 -> 128 at 16 x 16 ("probe").
    const sgf::ModelConfig paper = sgf::ModelConfig::paper128(), small = sgf::ModelConfig::small();
    std::vector<Shape3> conv_shapes, mod_shapes, up_shapes;
    auto add_model = [&](const sgf::ModelConfig& cfg, const std::string& name, std::vector<int> res, int up_r) {
        for (int r : res) {
            const std::int64_t c = cfg.channels_at(r);
            conv_shapes.push_back({name + ".F", c, c, r, cfg.w_dim});
            mod_shapes.push_back({name + ".G", c, c, r, cfg.w_dim});
        }
        up_shapes.push_back({name + ".G", cfg.channels_at(up_r / 2), cfg.channels_at(up_r), up_r / 2, cfg.w_dim});
    };
    add_model(paper, "paper128", {16, 32, 64, 128}, 32);
    conv_shapes.push_back({"probe", 128, 128, 16, 0});
    add_model(small, "small", {16, 32}, 32);

    std::vector<Row> out;
    // The roof is run first and last (report.py takes the better of the two).
    auto add_roof = [&](const char* when) {
        for (int t : {1, 2}) {
            Row r;
            r.op = Op::sgemm;
            r.model = when;
            r.c_in = r.c_out = 2048;
            r.threads = t;
            r.iters = 2;
            r.reps = 3;
            out.push_back(r);
        }
    };
    add_roof("start");
    auto add = [&](Op op, const Shape3& s) {
        for (Dir dir : {Dir::fwd, Dir::bwd})
            for (std::int64_t n : {1, 16})
                for (int t : {1, 2}) {
                    Row r;
                    r.op = op;
                    r.dir = dir;
                    r.model = s.model;
                    r.c_in = s.c_in;
                    r.c_out = s.c_out;
                    r.h = s.h;
                    r.n = n;
                    r.threads = t;
                    r.w_dim = s.w_dim;
                    // About 0.2 s per repetition at an assumed 80 GFLOP/s per thread (more for tiny rows,
                    // whose per-call overhead is larger); single calls over ~0.5 s get 2 repetitions.
                    const double est = r.flops() / (80e9 * t) * (op == Op::conv ? 1.0 : 1.3);
                    r.iters = std::clamp<std::int64_t>(std::int64_t(std::ceil(0.2 / est)), 1, 2000);
                    r.reps = est > 0.5 ? 2 : 3;
                    out.push_back(r);
                }
    };
    for (const auto& s : conv_shapes) add(Op::conv, s);
    for (const auto& s : mod_shapes) add(Op::modconv, s);
    for (const auto& s : up_shapes) add(Op::modconv_up, s);
    add_roof("end");
    return out;
}

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line, model = "unknown", family, mod;
    while (std::getline(f, line)) {
        auto val = [&] { return line.substr(line.find(':') + 2); };
        if (line.starts_with("model name") && model == "unknown") model = val();
        else if (line.starts_with("cpu family") && family.empty()) family = val();
        else if (line.starts_with("model\t") && mod.empty()) mod = val();
    }
    return fmt::format("{} (family {}, model {})", model, family, mod);
}

std::string isa() {
#if defined(__AVX512F__)
    std::string s = "AVX-512";
#elif defined(__AVX2__)
    std::string s = "AVX2";
#elif defined(__AVX__)
    std::string s = "AVX";
#else
    std::string s = "SSE2";
#endif
#if defined(__FMA__)
    s += "+FMA";
#endif
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    // Allocate and free a 30 MiB block: this raises glibc's dynamic mmap threshold to 30 MiB (and the
    // trim threshold to twice that; the threshold only follows freed blocks up to 32 MiB), the state of
    // any long-running process that has freed a large buffer. Without it, a fresh process returns freed
    // memory to the kernel and faults it in again on every call. benchmarks/torch_peer.py does the same.
    // SGF_BENCH_NO_PRIME=1 skips this (to see the difference).
    if (const char* e = std::getenv("SGF_BENCH_NO_PRIME"); !e || std::string(e) != "1") {
        auto* p = static_cast<volatile char*>(std::malloc(std::size_t(30) << 20));
        if (p) p[0] = 0;
        std::free(const_cast<char*>(p));
    }
    benchmark::Initialize(&argc, argv);
    benchmark::AddCustomContext("sgf_isa", isa());
    benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
    benchmark::AddCustomContext("eigen_version", fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
                                                             EIGEN_MINOR_VERSION));
    benchmark::AddCustomContext("cpu_model", cpu_model());
#ifdef SGF_BENCH_COMPILER
    benchmark::AddCustomContext("compiler", SGF_BENCH_COMPILER);
#endif
    for (const Row& r : rows()) {
        benchmark::RegisterBenchmark(r.name().c_str(), [r](benchmark::State& st) { run_row(st, r); })
            ->Iterations(r.iters)
            ->Repetitions(r.reps)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->DisplayAggregatesOnly(true);
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
