// Crash safety: the training program and the registry survive SIGKILL at any moment.
//
// Training: sgf_train (tiny preset, a folder of generated 16 px PNGs, a checkpoint every 3 steps)
// is killed again and again: at random moments, and on inotify events of its checkpoint write (the
// temporary file created, closed, renamed into place). After every kill checkpoint.safetensors
// must load (checksum, every tensor, a Trainer restored from it) and hold a step that is a
// checkpoint step no earlier than the one seen before; training then continues with --resume.
// At the end the run's log.csv (every logged step, duplicates from replayed steps identical) and
// its final checkpoint and model files must equal those of a run that was never interrupted.
//
// Registry: `sgf issue --count N` children are killed at random moments, two at a time; after
// every round the registry must open, pass SQLite's integrity check, hold only complete rows
// (label, 128-bit fingerprint, timestamp, metadata), unique labels and codes at least the minimum
// distance apart, and keep every row an earlier round had committed.
//
// SGF_CRASH_KILLS sets the number of kills per test (default 10; docs/security.md has the 50-kill
// run: SGF_CRASH_KILLS=50 ctest -R Crash). SGF_CRASH_SEED changes the kill schedule.
#include <sgf/sgf.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/io/image.hpp>
#include <sgf/train/checkpoint.hpp>
#include <sgf/backends/eigen.hpp>
#include "file_bytes.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;
using Clock = std::chrono::steady_clock;

int kills_wanted() {
    const char* e = std::getenv("SGF_CRASH_KILLS");
    return e ? std::max(1, std::atoi(e)) : 10;
}
std::uint64_t schedule_seed() {
    const char* e = std::getenv("SGF_CRASH_SEED");
    return e ? std::strtoull(e, nullptr, 10) : 20240611;
}

fs::path fresh_dir(const std::string& name) {
    const fs::path d = fs::path(SGF_TEST_TMPDIR) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

using test::slurp;

/// Starts argv[0] with argv, stdout and stderr appended to `log`.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

/// Waits for pid; returns the exit code, or -signal when it was killed.
int wait_for(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

bool running(pid_t pid) {
    int st = 0;
    return ::waitpid(pid, &st, WNOHANG) == 0;
}

// ---- training ---------------------------------------------------------------------------------

struct TrainRun {
    fs::path data, out;
    int batch = 4, checkpoint_every = 3;
    double kimg = 0.48;  // 120 steps; longer for more kills (each kill costs a few steps of progress)
    std::vector<std::string> argv(bool resume) const {
        std::vector<std::string> a{SGF_TRAIN_PATH, "--preset", "tiny", "--data", data.string(), "--out", out.string(),
                                   "--kimg", fmt::format("{}", kimg), "--batch", std::to_string(batch), "--threads", "1",
                                   "--checkpoint-every", std::to_string(checkpoint_every), "--grid-every", "1000000",
                                   "--seed", "5"};
        if (resume) a.push_back("--resume");
        return a;
    }
    std::int64_t total_steps() const { return static_cast<std::int64_t>(std::ceil(kimg * 1000.0 / batch)); }
};

/// A folder of small training images; each test names its own (ctest -j runs tests at once).
fs::path make_image_folder(const std::string& name) {
    const fs::path d = fresh_dir(name);
    for (int i = 0; i < 24; ++i) {
        io::Image im{16, 16, 1, std::vector<std::uint8_t>(256)};
        for (int y = 0; y < 16; ++y)
            for (int x = 0; x < 16; ++x) im.at(y, x, 0) = std::uint8_t(((x + i) * (y + 3) * 37 + i * 11) & 255);
        io::save_png(d / fmt::format("img{:03d}.png", i), im);
    }
    return d;
}

/// log.csv rows by step, without the wall-clock column; a step logged twice (replayed after a
/// resume) must have been logged identically both times.
std::map<long, std::string> read_log(const fs::path& p) {
    std::map<long, std::string> rows;
    std::istringstream in(slurp(p));
    std::string line;
    bool header = true;
    while (std::getline(in, line)) {
        if (header) {
            EXPECT_EQ(line.rfind("step,kimg,seconds,", 0), 0u) << "log.csv header: " << line;
            header = false;
            continue;
        }
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
        EXPECT_EQ(f.size(), 12u) << "torn or malformed log line: '" << line << "'";
        if (f.size() != 12) continue;
        f.erase(f.begin() + 2);  // seconds
        std::string key;
        for (const auto& x : f) key += x + ",";
        const long step = std::stol(f[0]);
        auto [it, fresh] = rows.emplace(step, key);
        EXPECT_TRUE(fresh || it->second == key) << "step " << step << " replayed with different values:\n  " << it->second
                                                << "\n  " << key;
    }
    return rows;
}

/// Loads a checkpoint completely (what --resume does); returns its step.
std::int64_t load_checkpoint_step(const fs::path& ckpt) {
    B b(1);
    const auto [mc, tc] = read_checkpoint_configs(ckpt);
    Trainer<B> tr(b, mc, tc);
    io::Sampler sampler(24, tc.seed);
    load_checkpoint(b, ckpt, tr, sampler);
    return tr.step_count();
}

std::vector<std::string> temp_files(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().filename().string());
    return out;
}

/// Blocks until the n-th inotify event on `dir` matching (mask, name prefix), the deadline, or
/// the child's exit. Returns true when the event was seen.
bool wait_for_event(int ifd, std::uint32_t mask, const std::string& prefix, int nth, pid_t pid, Clock::time_point deadline) {
    alignas(inotify_event) char buf[4096];
    int seen = 0;
    while (Clock::now() < deadline) {
        pollfd pfd{ifd, POLLIN, 0};
        if (::poll(&pfd, 1, 5) > 0) {
            const ssize_t n = ::read(ifd, buf, sizeof buf);
            for (ssize_t off = 0; off < n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
                off += ssize_t(sizeof(inotify_event) + ev->len);
                if ((ev->mask & mask) && ev->len && std::string(ev->name).rfind(prefix, 0) == 0 && ++seen >= nth) return true;
            }
        } else if (!running(pid)) {
            return false;
        }
    }
    return false;
}

TEST(Crash, TrainingSurvivesSigkillAndResumesExactly) {
    const int kills = kills_wanted();
    std::mt19937_64 rng(schedule_seed());
    TrainRun ref{make_image_folder("crash_data_sigkill"), fresh_dir("crash_train_ref")};
    // a kill lands on average about 10 steps after the last checkpoint (up to 3 checkpoint events of a
    // 3-step interval, or a random moment up to 8 steps in); 25 steps per kill leave a margin
    ref.kimg = double(std::max(120, 25 * kills)) * ref.batch / 1000.0;
    const auto t0 = Clock::now();
    ASSERT_EQ(wait_for(spawn(ref.argv(false), ref.out / "run.log")), 0) << slurp(ref.out / "run.log");
    const double full_run_s = std::chrono::duration<double>(Clock::now() - t0).count();

    TrainRun run = ref;
    run.out = fresh_dir("crash_train_killed");
    const double step_s = full_run_s / double(ref.total_steps());
    std::int64_t last_step = -1;
    int done_kills = 0, attempts = 0, mid_write = 0;
    std::map<std::string, int> by_kind;
    while (done_kills < kills && attempts < 4 * kills) {
        ++attempts;
        const bool resume = fs::exists(run.out / "checkpoint.safetensors");
        const int ifd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        ASSERT_GE(ifd, 0);
        ASSERT_GE(::inotify_add_watch(ifd, run.out.c_str(), IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO), 0);
        const auto temps_before = temp_files(run.out);
        const pid_t pid = spawn(run.argv(resume), run.out / "run.log");
        const int kind = int(rng() % 4);
        const int nth = 1 + int(rng() % 3);
        const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(3 * full_run_s + 5));
        std::string what;
        if (kind == 0) {  // a random moment
            std::uniform_real_distribution<double> u(0.0, std::min(full_run_s, 0.2 + 8 * step_s));
            std::this_thread::sleep_for(std::chrono::duration<double>(u(rng)));
            what = "random";
        } else if (kind == 1) {  // the temporary checkpoint file was just created: mid-write
            if (!wait_for_event(ifd, IN_CREATE, ".checkpoint.safetensors.tmp", nth, pid, deadline)) what = "none";
            else what = "created";
        } else if (kind == 2) {  // written and closed, rename not yet (or just) done
            if (!wait_for_event(ifd, IN_CLOSE_WRITE, ".checkpoint.safetensors.tmp", nth, pid, deadline)) what = "none";
            else what = "closed";
        } else {  // renamed into place, directory not yet synced
            if (!wait_for_event(ifd, IN_MOVED_TO, "checkpoint.safetensors", nth, pid, deadline)) what = "none";
            else what = "renamed";
        }
        ::close(ifd);
        const bool killed = ::kill(pid, SIGKILL) == 0;
        const int rc = wait_for(pid);
        if (rc == 0) break;  // finished before the kill: the run is complete
        ASSERT_EQ(rc, -SIGKILL) << "sgf_train failed on its own:\n" << slurp(run.out / "run.log");
        if (!killed || what == "none") continue;
        ++done_kills;
        ++by_kind[what];
        for (const auto& t : temp_files(run.out))
            if (std::find(temps_before.begin(), temps_before.end(), t) == temps_before.end()) {
                ++mid_write;  // this kill interrupted a write
                break;
            }
        const fs::path ckpt = run.out / "checkpoint.safetensors";
        if (!fs::exists(ckpt)) {
            ASSERT_EQ(last_step, -1) << "the checkpoint disappeared after kill " << done_kills;
            continue;
        }
        std::int64_t step = -1;
        try {
            step = load_checkpoint_step(ckpt);
        } catch (const Error& e) {
            FAIL() << "kill " << done_kills << " (" << what << ") left a checkpoint that does not load: " << e.what();
        }
        EXPECT_TRUE(step % run.checkpoint_every == 0 || step == run.total_steps()) << "checkpoint at step " << step;
        EXPECT_GE(step, last_step) << "kill " << done_kills << " (" << what << ") left an older checkpoint";
        last_step = step;
    }
    EXPECT_EQ(done_kills, kills) << "the runs finished before all kills landed; make the run longer";
    // finish the run
    const bool resume = fs::exists(run.out / "checkpoint.safetensors");
    ASSERT_EQ(wait_for(spawn(run.argv(resume), run.out / "run.log")), 0) << slurp(run.out / "run.log");

    const auto want = read_log(ref.out / "log.csv"), got = read_log(run.out / "log.csv");
    EXPECT_EQ(got.size(), want.size());
    for (const auto& [step, row] : want) {
        auto it = got.find(step);
        ASSERT_NE(it, got.end()) << "step " << step << " missing from the interrupted run's log";
        EXPECT_EQ(it->second, row) << "step " << step << " differs from the uninterrupted run";
    }
    EXPECT_TRUE(slurp(run.out / "checkpoint.safetensors") == slurp(ref.out / "checkpoint.safetensors"))
        << "final checkpoints differ";
    EXPECT_TRUE(slurp(run.out / "model.safetensors") == slurp(ref.out / "model.safetensors")) << "release files differ";
    const auto stale = temp_files(run.out);
    EXPECT_TRUE(stale.empty()) << stale.size() << " temporary files left behind, e.g. " << stale.front();
    std::printf("[ crash    ] %d kills in %d attempts (random %d, tmp created %d, tmp closed %d, renamed %d); %d left a "
                "temporary file; uninterrupted run %.1f s\n",
                done_kills, attempts, by_kind["random"], by_kind["created"], by_kind["closed"], by_kind["renamed"], mid_write,
                full_run_s);
}

// ---- registry ---------------------------------------------------------------------------------

struct Row {
    std::string label, hex, issued_at, metadata;
    bool operator<(const Row& o) const { return label < o.label; }
};

/// Opens the registry the way a reader does and checks every invariant; returns its rows.
std::vector<Row> check_registry(const fs::path& p, const std::string& when) {
    std::vector<Row> rows;
    {
        sqlite3* db = nullptr;
        EXPECT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK) << when;
        sqlite3_stmt* s = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr), SQLITE_OK);
        EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
        EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "ok") << when;
        sqlite3_finalize(s);
        sqlite3_close(db);
    }
    RegistryOptions ro;
    ro.read_only = true;
    try {
        Registry reg(p, ro);
        const auto all = reg.all();
        std::set<std::string> labels, codes;
        static const std::regex label_re("c[0-9]+-[0-9]{6}"), time_re("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");
        for (const auto& e : all) {
            EXPECT_TRUE(std::regex_match(e.label, label_re)) << when << ": half-written label '" << e.label << "'";
            EXPECT_EQ(e.fingerprint.bits(), 128) << when;
            EXPECT_TRUE(std::regex_match(e.issued_at, time_re)) << when << ": issued_at '" << e.issued_at << "'";
            EXPECT_EQ(e.metadata, "{\"crash\":true}") << when << ": metadata of " << e.label;
            EXPECT_TRUE(labels.insert(e.label).second) << when << ": label " << e.label << " twice";
            EXPECT_TRUE(codes.insert(e.fingerprint.hex()).second) << when << ": fingerprint of " << e.label << " twice";
            rows.push_back({e.label, e.fingerprint.hex(), e.issued_at, e.metadata});
        }
        for (std::size_t i = 0; i < all.size(); ++i)
            for (std::size_t j = i + 1; j < all.size(); ++j)
                EXPECT_GE(all[i].fingerprint.hamming(all[j].fingerprint), reg.min_distance()) << when;
    } catch (const Error& e) {
        ADD_FAILURE() << when << ": the registry does not open: " << e.what();
    }
    std::sort(rows.begin(), rows.end());
    return rows;
}

// SIGINT and SIGTERM (Ctrl-C, a scheduler's stop) end training with a checkpoint and exit code 130
// (docs/cli.md); --resume then continues from it to the end.
TEST(Crash, TrainingStopsCleanlyOnSigintAndSigterm) {
    const fs::path data = make_image_folder("crash_data_signal");
    for (const int sig : {SIGINT, SIGTERM}) {
        TrainRun run{data, fresh_dir(fmt::format("crash_train_signal{}", sig))};
        run.kimg = 400;  // far more than the test waits for: only the signal ends it
        run.checkpoint_every = 1000000;
        const pid_t pid = spawn(run.argv(false), run.out / "run.log");
        // wait until steps are being logged (the handler is installed before the first step)
        const auto deadline = Clock::now() + std::chrono::seconds(120);
        const fs::path csv = run.out / "log.csv";
        while (Clock::now() < deadline && running(pid)) {
            std::error_code ec;
            if (fs::exists(csv, ec)) {
                const std::string text = slurp(csv);
                if (std::count(text.begin(), text.end(), '\n') >= 2) break;  // the header and one logged step
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ASSERT_TRUE(running(pid)) << "sgf_train ended before the signal:\n" << slurp(run.out / "run.log");
        ASSERT_EQ(::kill(pid, sig), 0);
        const int rc = wait_for(pid);
        ASSERT_EQ(rc, 130) << "signal " << sig << ":\n" << slurp(run.out / "run.log");
        const fs::path ckpt = run.out / "checkpoint.safetensors";
        ASSERT_TRUE(fs::exists(ckpt)) << slurp(run.out / "run.log");
        const std::int64_t step = load_checkpoint_step(ckpt);
        EXPECT_GE(step, 10);  // at least one logged step (every 10)
        EXPECT_NE(slurp(run.out / "run.log").find("continue with --resume"), std::string::npos);
        // continue to a few steps past the interruption
        run.kimg = double(step + 3) * run.batch / 1000.0;
        ASSERT_EQ(wait_for(spawn(run.argv(true), run.out / "run.log")), 0) << slurp(run.out / "run.log");
        EXPECT_EQ(load_checkpoint_step(ckpt), step + 3);
        EXPECT_TRUE(fs::exists(run.out / "model.safetensors"));
    }
}

TEST(Crash, RegistrySurvivesSigkillDuringIssue) {
    const int kills = kills_wanted();
    std::mt19937_64 rng(schedule_seed() + 1);
    const fs::path dir = fresh_dir("crash_registry");
    const fs::path reg = dir / "registry.db";
    std::vector<Row> before;
    int done_kills = 0, round = 0;
    while (done_kills < kills) {
        ++round;
        std::vector<pid_t> kids;
        for (int k = 0; k < 2; ++k)
            kids.push_back(spawn({SGF_CLI_PATH, "issue", "--registry", reg.string(), "--count", "400", "--prefix",
                                  fmt::format("c{}{}-", round, k), "--metadata", "{\"crash\":true}"},
                                 dir / "issue.log"));
        for (pid_t pid : kids) {
            std::uniform_int_distribution<int> ms(0, 400);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
            const bool killed = ::kill(pid, SIGKILL) == 0;
            const int rc = wait_for(pid);
            if (rc == -SIGKILL && killed) ++done_kills;
            else ASSERT_EQ(rc, 0) << slurp(dir / "issue.log");
        }
        // every issuer of the first rounds may be killed before it created the file (a slow start): nothing
        // was committed, so there is nothing to check yet
        if (before.empty() && !fs::exists(reg)) continue;
        const auto rows = check_registry(reg, fmt::format("after round {} ({} kills)", round, done_kills));
        // nothing committed earlier is lost or changed
        for (const auto& r : before) {
            auto it = std::lower_bound(rows.begin(), rows.end(), r);
            ASSERT_TRUE(it != rows.end() && it->label == r.label) << "row " << r.label << " lost";
            EXPECT_EQ(it->hex, r.hex);
            EXPECT_EQ(it->issued_at, r.issued_at);
        }
        before = rows;
        if (::testing::Test::HasFailure()) break;
    }
    // a writer after all those kills still works
    RegistryOptions opt;
    Registry r(reg, opt);
    const auto n = r.size();
    r.issue("after-the-crashes");
    EXPECT_EQ(r.size(), n + 1);
    std::printf("[ crash    ] %d kills in %d rounds; %zu rows committed before the last round\n", done_kills, round,
                before.size());
}

}  // namespace
}  // namespace sgf
