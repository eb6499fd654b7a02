// Deployment-time costs on one CPU thread:
//
//   bake         sgf::instantiate(G, c): E(c) once, W'' for every modulated layer, copy of the rest
//                (the per-user model an issuer ships). Timed alone: G's construction (which
//                allocates and initialises its weights) is outside the timer. Median of --bake-runs.
//   attribution  one decoded fingerprint against N registered ones (default 10^6):
//                matcher   sgf::Matcher::attribute, the in-memory flat popcount scan plus the
//                          decision rule (what Registry::attribute runs after refreshing);
//                registry  sgf::Registry::attribute on an SQLite registry of N rows, which first
//                          runs its incremental refresh (SELECT rows with id > last seen id; none
//                          here) and then the same scan; plus the cost of opening the registry
//                          (loading all N rows), which a fresh process such as `sgf verify` pays
//                          once before its first query.
//                Queries: a random fingerprint (not_fingerprinted) and a registered entry with
//                --flip bits flipped (decoding errors; attributed). Median of --query-runs.
//
//   decode       sgf::decode_batch(F, images): the decoder's forward pass and the bits and logits
//                read from it, what `sgf decode` / `sgf verify` run per batch once the image files
//                are read and resized (PNG reading not timed), per image, for each preset, thread
//                count (--decode-threads) and batch size (--decode-batches). Random weights and
//                random images in [-1, 1]: the cost does not depend on the values. Median of
//                --decode-runs after one warm-up. A line "CONFIG preset {json}" gives the PyTorch
//                peer (torch_decode.py) the same architecture.
//
//   sgf_bench_deployment [--presets small,paper128] [--bake-runs 7] [--entries 1000000]
//                        [--query-runs 21] [--flip 12] [--registry-dir /tmp] [--no-sqlite]
//                        [--sqlite-budget-s 120] [--decode-threads 1,2] [--decode-batches 1,16]
//                        [--decode-runs 3] [--only-bake | --only-attribution | --only-decode]
//
// The SQLite registry is filled with plain INSERTs into the registry's own schema inside one
// transaction (Registry::add checks the minimum distance against every issued code, O(N) per row,
// so issuing 10^6 codes one by one is O(N^2)); it is skipped when filling takes longer than
// --sqlite-budget-s, and the file is deleted at the end.
#include <sgf/sgf.hpp>
#include <sgf/backends/eigen.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include "../common/option_value.hpp"

namespace {

using B = sgf::EigenCpu;
using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
template <class F>
std::vector<double> time_runs(int runs, F&& f) {
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = clock_type::now();
        f();
        ms.push_back(ms_since(t0));
    }
    return ms;
}
std::string stats(const std::vector<double>& v) {
    return fmt::format("median {:.3f} ms  (min {:.3f}, max {:.3f}, {} runs)", median(v), *std::min_element(v.begin(), v.end()),
                       *std::max_element(v.begin(), v.end()), v.size());
}

/// Random fingerprint from a 64-bit generator (fast enough for 10^6 entries).
sgf::Fingerprint random_fp(std::mt19937_64& rng, int bits) {
    sgf::Fingerprint f(bits);
    for (int i = 0; i < bits; i += 64) {
        const std::uint64_t w = rng();
        for (int b = 0; b < 64 && i + b < bits; ++b) f.set_bit(i + b, (w >> b) & 1u);
    }
    return f;
}

void bench_bake(const std::string& preset, int runs) {
    B cpu(1);
    const sgf::ModelConfig mc = sgf::ModelConfig::preset_named(preset);
    const auto t0 = clock_type::now();
    sgf::MetaGenerator<B> G(cpu, mc, 1);
    const double construct_ms = ms_since(t0);
    std::int64_t params = 0;
    for (auto* p : G.parameters()) params += std::int64_t(p->value.size());
    std::mt19937_64 rng(7);
    const auto bits = random_fp(rng, mc.fingerprint_bits).to_floats();
    sgf::Tensor<B> c(cpu, sgf::Shape{1, mc.fingerprint_bits});
    sgf::upload_into(cpu, std::span<const float>(bits), c);
    std::int64_t baked_params = 0;
    {
        auto Gu = sgf::instantiate(cpu, G, c.view());  // warm-up (first-touch of the memory pool)
        for (auto* p : Gu.parameters()) baked_params += std::int64_t(p->value.size());
    }
    const auto ms = time_runs(runs, [&] { auto Gu = sgf::instantiate(cpu, G, c.view()); });
    fmt::print("bake  {:9s} meta G {:>9} params (constructed in {:.0f} ms, not timed), baked G {:>9} params: {}\n", preset,
               params, construct_ms, baked_params, stats(ms));
    // Where the time goes: the parts of instantiate() that can be timed through the public API.
    const auto ms_struct = time_runs(runs, [&] { sgf::MetaGenerator<B> out(cpu, mc, sgf::kNoInit, true); });
    auto embed = G.embedding().forward(cpu, c.view());
    const auto w = embed.w().view();
    auto all_layers = [&](auto&& f) {
        for (std::size_t i = 0; i < G.convs().size(); ++i) {
            if (i > 0) f(G.up_convs()[i - 1]);
            f(G.convs()[i]);
            f(G.torgbs()[i]);
        }
    };
    const auto ms_weights = time_runs(runs, [&] {
        all_layers([&](sgf::ModConv<B>& l) {
            auto v = l.bake_weight(cpu, w);
            (void)v;
        });
    });
    fmt::print("      {:9s} of which: baked-structure allocation + zero fill {:.1f} ms, bake_weight (host, float64) of all "
               "modulated layers {:.1f} ms, rest (E, float64 -> float32 uploads, copies) {:.1f} ms\n",
               preset, median(ms_struct), median(ms_weights), median(ms) - median(ms_struct) - median(ms_weights));
    fmt::print("RESULT bake {} {:.3f}\n", preset, median(ms));
}

void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string msg = err ? err : "?";
        sqlite3_free(err);
        SGF_THROW(IoError, "sqlite: {}: {}", sql, msg);
    }
}

void bench_attribution(std::int64_t entries, int runs, int flip, bool with_sqlite, const std::string& dir, double budget_s) {
    const int bits = 128;
    std::mt19937_64 rng(2024);
    std::vector<sgf::Fingerprint> codes;
    codes.reserve(std::size_t(entries));
    for (std::int64_t i = 0; i < entries; ++i) codes.push_back(random_fp(rng, bits));
    auto label = [](std::int64_t i) { return fmt::format("user-{:07d}", i); };

    // --- in-memory matcher
    auto t0 = clock_type::now();
    sgf::Matcher m(bits);
    m.reserve(std::size_t(entries));
    for (std::int64_t i = 0; i < entries; ++i) m.add(codes[std::size_t(i)], label(i));
    const double build_ms = ms_since(t0);

    const sgf::Fingerprint q_random = random_fp(rng, bits);
    const std::int64_t target = entries * 7 / 9;
    sgf::Fingerprint q_match = codes[std::size_t(target)];
    for (int k = 0; k < flip; ++k) {  // flip `flip` distinct bits
        const int i = (k * 37 + 5) % bits;
        q_match.set_bit(i, !q_match.bit(i));
    }
    sgf::Attribution a_rand, a_match;
    m.attribute(q_random);  // warm the cache lines once
    const auto ms_rand = time_runs(runs, [&] { a_rand = m.attribute(q_random); });
    const auto ms_match = time_runs(runs, [&] { a_match = m.attribute(q_match); });
    fmt::print("attribution, {} entries x {} bits, flat matcher (built in {:.0f} ms):\n", entries, bits, build_ms);
    fmt::print("  random query:  {}  -> {} (best {} of {} bits, k* = {})\n", stats(ms_rand), sgf::outcome_name(a_rand.outcome),
               a_rand.best_matching, bits, a_rand.threshold);
    fmt::print("  matching query ({} bits flipped): {}  -> {} '{}' (best {}, runner-up {})\n", flip, stats(ms_match),
               sgf::outcome_name(a_match.outcome), a_match.best_label, a_match.best_matching, a_match.runner_up_matching);
    fmt::print("RESULT matcher_random {:.3f}\nRESULT matcher_match {:.3f}\n", median(ms_rand), median(ms_match));
    if (a_match.outcome != sgf::Outcome::attributed || a_match.best_index != target)
        SGF_THROW(Error, "attribution benchmark: the matching query was not attributed to entry {}", target);

    // the weighted score (verify's default): logits with the queries' signs and |logit| ~ |N(0, 2)|,
    // so the weights spread over 0..15 as a decoder's do; the null distribution is built per query
    auto logits_of = [&](const sgf::Fingerprint& f) {
        std::normal_distribution<double> g(0.0, 2.0);
        std::vector<float> l(static_cast<std::size_t>(bits));
        for (int i = 0; i < bits; ++i) l[std::size_t(i)] = float(std::fabs(g(rng)) + 0.01) * (f.bit(i) ? 1.f : -1.f);
        return l;
    };
    const auto l_random = logits_of(q_random), l_match = logits_of(q_match);
    const sgf::AttributionRule weighted{};  // Score::weighted
    sgf::Attribution w_rand, w_match;
    const auto wms_rand = time_runs(runs, [&] { w_rand = m.attribute(q_random, l_random, weighted); });
    const auto wms_match = time_runs(runs, [&] { w_match = m.attribute(q_match, l_match, weighted); });
    fmt::print("  weighted score, random query:  {}  -> {} (score {} of {}, threshold {})\n", stats(wms_rand),
               sgf::outcome_name(w_rand.outcome), w_rand.best_score, w_rand.score_total, w_rand.score_threshold);
    fmt::print("  weighted score, matching query: {}  -> {} '{}' (score {} of {}, threshold {})\n", stats(wms_match),
               sgf::outcome_name(w_match.outcome), w_match.best_label, w_match.best_score, w_match.score_total, w_match.score_threshold);
    fmt::print("RESULT matcher_weighted_random {:.3f}\nRESULT matcher_weighted_match {:.3f}\n", median(wms_rand), median(wms_match));
    if (w_match.best_index != target)
        SGF_THROW(Error, "attribution benchmark: the weighted score did not find entry {} for the matching query", target);

    if (!with_sqlite) return;
    // --- SQLite-backed registry
    namespace fs = std::filesystem;
    const fs::path path = fs::path(dir) / fmt::format("sgf_bench_registry_{}.sqlite", ::getpid());
    auto cleanup = [&] {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path.string() + suffix, ec);
    };
    cleanup();
    try {
        { sgf::Registry create(path); }  // schema and metadata, as the registry writes them
        t0 = clock_type::now();
        sqlite3* db = nullptr;
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) SGF_THROW(IoError, "cannot open {}", path.string());
        exec(db, "BEGIN");
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(db, "INSERT INTO fingerprints(label, fingerprint, issued_at, metadata) VALUES(?, ?, ?, '')", -1, &s,
                           nullptr);
        bool over_budget = false;
        for (std::int64_t i = 0; i < entries; ++i) {
            const std::string l = label(i), hex = codes[std::size_t(i)].hex();
            sqlite3_bind_text(s, 1, l.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, hex.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 3, "2024-01-01T00:00:00Z", -1, SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE) SGF_THROW(IoError, "insert failed: {}", sqlite3_errmsg(db));
            sqlite3_reset(s);
            if (i % 50000 == 0 && ms_since(t0) > budget_s * 1000) {
                over_budget = true;
                break;
            }
        }
        sqlite3_finalize(s);
        exec(db, over_budget ? "ROLLBACK" : "COMMIT");
        sqlite3_close(db);
        const double fill_ms = ms_since(t0);
        if (over_budget) {
            fmt::print("registry: filling {} rows took over {:.0f} s; SQLite part skipped\n", entries, budget_s);
            cleanup();
            return;
        }
        const auto file_mb = double(fs::file_size(path)) / 1e6;

        std::vector<double> open_ms;
        for (int i = 0; i < 3; ++i) {
            t0 = clock_type::now();
            sgf::Registry r(path, sgf::RegistryOptions{.bits = bits, .create = false, .read_only = true});
            open_ms.push_back(ms_since(t0));
        }
        sgf::Registry reg(path, sgf::RegistryOptions{.bits = bits, .create = false, .read_only = true});
        if (reg.size() != entries) SGF_THROW(Error, "registry holds {} rows, expected {}", reg.size(), entries);
        sgf::Attribution ra, rm;
        const auto r_rand = time_runs(runs, [&] { ra = reg.attribute(q_random); });
        const auto r_match = time_runs(runs, [&] { rm = reg.attribute(q_match); });
        sgf::Attribution rw;
        const auto r_weighted = time_runs(runs, [&] { rw = reg.attribute(q_match, l_match, weighted); });
        fmt::print("SQLite registry, {} rows ({:.0f} MB, filled in {:.1f} s):\n", entries, file_mb, fill_ms / 1000);
        fmt::print("  open (loads every row into the matcher): {}\n", stats(open_ms));
        fmt::print("  Registry::attribute, random query:   {}  -> {}\n", stats(r_rand), sgf::outcome_name(ra.outcome));
        fmt::print("  Registry::attribute, matching query: {}  -> {} '{}'\n", stats(r_match), sgf::outcome_name(rm.outcome),
                   rm.best_label);
        fmt::print("  Registry::attribute, matching query, weighted score: {}  -> {} '{}'\n", stats(r_weighted),
                   sgf::outcome_name(rw.outcome), rw.best_label);
        fmt::print("RESULT registry_open {:.3f}\nRESULT registry_random {:.3f}\nRESULT registry_match {:.3f}\nRESULT registry_weighted_match {:.3f}\n",
                   median(open_ms), median(r_rand), median(r_match), median(r_weighted));
    } catch (...) {
        cleanup();
        throw;
    }
    cleanup();
}

/// The decoder's cost per image (see the header): F of `preset` on `batch` random images.
void bench_decode(const std::string& preset, const std::vector<int>& threads, const std::vector<int>& batches, int runs) {
    const sgf::ModelConfig mc = sgf::ModelConfig::preset_named(preset);
    fmt::print("CONFIG {} {}\n", preset, nlohmann::json(mc).dump());
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
    for (const int t : threads) {
        B cpu(t);
        const auto F = sgf::make_decoder(cpu, mc, 1);
        for (const int n : batches) {
            const sgf::Shape shape{n, mc.image_channels, mc.resolution, mc.resolution};
            std::vector<float> host(std::size_t(shape.size()));
            for (float& v : host) v = pixel(rng);
            const auto images = sgf::from_host<B, float>(cpu, shape, std::span<const float>(host));
            (void)sgf::decode_batch(cpu, F, images);  // warm-up: allocations, thread pool
            const auto ms = time_runs(runs, [&] {
                const auto d = sgf::decode_batch(cpu, F, images);
                if (d.size() != std::size_t(n)) std::abort();
            });
            fmt::print("decode {:9s} {} thread{}, batch {:3d}: {:8.3f} ms per image ({:.1f} images/s; median of {} runs)\n", preset, t,
                       t == 1 ? " " : "s", n, median(ms) / n, 1000.0 * n / median(ms), runs);
            fmt::print("RESULT decode {} {} {} {:.4f}\n", preset, t, n, median(ms) / n);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> presets{"small", "paper128"};
    int bake_runs = 7, query_runs = 21, flip = 12;
    std::int64_t entries = 1000000;
    bool sqlite = true, bake = true, attribution = true, decode = true;
    std::vector<int> decode_threads{1, 2}, decode_batches{1, 16};
    int decode_runs = 3;
    // "1,2": comma-separated integers in lo..hi, no empty field (also not a trailing one); exit 2 naming the option
    auto int_list = [](const char* option, const std::string& text, int lo, int hi) {
        std::vector<int> out;
        std::size_t start = 0;
        for (;;) {
            const std::size_t comma = std::min(text.find(',', start), text.size());
            const std::string v = text.substr(start, comma - start);
            int x = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
            if (v.empty() || ec != std::errc() || end != v.data() + v.size() || x < lo || x > hi) {
                fmt::print(stderr, "error: {}: '{}' in '{}' is not an integer in {}..{}\n", option, v, text, lo, hi);
                std::exit(2);
            }
            out.push_back(x);
            if (comma == text.size()) return out;
            start = comma + 1;
        }
    };
    std::string dir = std::filesystem::temp_directory_path().string();
    double budget_s = 120;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return sgf_bench::option_value(i, argc, argv); };
        if (a == "--presets") {
            presets.clear();
            std::stringstream ss(next());
            for (std::string p; std::getline(ss, p, ',');) presets.push_back(p);
        } else if (a == "--bake-runs") bake_runs = int(sgf_bench::int_value(i, argc, argv, 1, 1000000));
        else if (a == "--entries") entries = sgf_bench::int_value(i, argc, argv, 1, 100000000);
        else if (a == "--query-runs") query_runs = int(sgf_bench::int_value(i, argc, argv, 1, 1000000));
        else if (a == "--flip") flip = int(sgf_bench::int_value(i, argc, argv, 0, 128));  // of a 128-bit fingerprint
        else if (a == "--registry-dir") dir = next();
        else if (a == "--no-sqlite") sqlite = false;
        else if (a == "--sqlite-budget-s") budget_s = sgf_bench::double_value(i, argc, argv, 0.001, 1e6);
        else if (a == "--only-bake") attribution = decode = false;
        else if (a == "--only-attribution") bake = decode = false;
        else if (a == "--only-decode") bake = attribution = false;
        else if (a == "--decode-threads") decode_threads = int_list("--decode-threads", next(), 1, 1024);
        else if (a == "--decode-batches") decode_batches = int_list("--decode-batches", next(), 1, 4096);
        else if (a == "--decode-runs") decode_runs = int(sgf_bench::int_value(i, argc, argv, 1, 1000000));
        else {
            fmt::print(stderr,
                       "usage: {} [--presets small,paper128] [--bake-runs N] [--entries N] [--query-runs N] [--flip K] "
                       "[--registry-dir DIR] [--no-sqlite] [--sqlite-budget-s S] [--decode-threads 1,2] [--decode-batches 1,16] "
                       "[--decode-runs N] [--only-bake | --only-attribution | --only-decode]\n",
                       argv[0]);
            return 2;
        }
    }
    try {
        if (bake)
            for (const auto& p : presets) bench_bake(p, bake_runs);
        if (attribution) bench_attribution(entries, query_runs, flip, sqlite, dir, budget_s);
        if (decode)
            for (const auto& p : presets) bench_decode(p, decode_threads, decode_batches, decode_runs);
    } catch (const sgf::Error& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    return 0;
}
