// sgf::eigen::ThreadPool and one CPU backend shared by several threads. The API review found that
// two threads decoding through one EigenCpu crashed (SIGSEGV) or hung: both jobs used the pool's one
// job slot and the same per-slot oneDNN buffers. Checked here:
//  * parallel_for covers [0, count) in disjoint chunks and rethrows a chunk's exception;
//  * calls from several threads take turns and each gets all of its own chunks;
//  * a parallel_for from inside a chunk of the same pool is a std::logic_error (it would wait for itself);
//  * a decoder run on one backend from three threads at once gives each thread the serial answer.
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/verify/decode.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sgf {
namespace {

TEST(ThreadPool, ChunksCoverTheRangeOnceAndErrorsReachTheCaller) {
    eigen::ThreadPool pool(3);
    for (std::int64_t count : {1, 2, 3, 7, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
        pool.parallel_for(count, [&](std::int64_t b, std::int64_t e, int t) {
            EXPECT_GE(t, 0);
            EXPECT_LT(t, 3);
            for (std::int64_t i = b; i < e; ++i) ++hits[std::size_t(i)];
        });
        for (std::int64_t i = 0; i < count; ++i) EXPECT_EQ(hits[std::size_t(i)].load(), 1) << count << " " << i;
    }
    EXPECT_THROW(pool.parallel_for(10, [](std::int64_t b, std::int64_t, int) {
        if (b > 0) throw std::runtime_error("chunk failed");
    }),
                 std::runtime_error);
    int sum = 0;  // usable after an error
    pool.parallel_for(1, [&](std::int64_t b, std::int64_t e, int) { sum += int(e - b); });
    EXPECT_EQ(sum, 1);
}

TEST(ThreadPool, CallsFromSeveralThreadsTakeTurnsAndNestedCallsAreRefused) {
    eigen::ThreadPool pool(2);
    std::atomic<int> active{0}, overlap{0};
    auto caller = [&](int seed, std::int64_t& total) {
        for (int j = 0; j < 300; ++j) {
            std::atomic<std::int64_t> s{0};
            pool.parallel_for(64 + seed, [&](std::int64_t b, std::int64_t e, int) {
                if (++active > 2) ++overlap;  // more chunks at once than the pool has threads: two jobs overlap
                for (std::int64_t i = b; i < e; ++i) s += i;
                --active;
            });
            total += s.load();
        }
    };
    std::int64_t t1 = 0, t2 = 0, t3 = 0;
    std::thread a(caller, 0, std::ref(t1)), b(caller, 1, std::ref(t2)), c(caller, 2, std::ref(t3));
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(overlap.load(), 0);
    EXPECT_EQ(t1, 300 * (64 * 63 / 2));
    EXPECT_EQ(t2, 300 * (65 * 64 / 2));
    EXPECT_EQ(t3, 300 * (66 * 65 / 2));
    // nested in its own chunk (directly, or through a one-thread pool on the same thread) it would
    // wait for itself: an error
    eigen::ThreadPool other(1);
    for (eigen::ThreadPool* via : {&pool, &other}) {
        try {
            pool.parallel_for(2, [&](std::int64_t, std::int64_t, int) {
                via->parallel_for(3, [&](std::int64_t, std::int64_t, int) {
                    if (via != &pool) pool.parallel_for(1, [](std::int64_t, std::int64_t, int) {});
                });
            });
            ADD_FAILURE() << "a nested loop ran";
        } catch (const std::logic_error& e) {
            EXPECT_NE(std::string(e.what()).find("nested loops are not supported"), std::string::npos) << e.what();
        }
    }
    std::atomic<int> after{0};  // both pools usable afterwards
    pool.parallel_for(4, [&](std::int64_t b, std::int64_t e, int) { after += int(e - b); });
    other.parallel_for(4, [&](std::int64_t b, std::int64_t e, int) { after += int(e - b); });
    EXPECT_EQ(after.load(), 8);
}

TEST(EigenBackend, AThreadCountBelowOneIsRefused) {  // it was one thread, silently (0 meaning "every core" got one)
    for (int t : {0, -1, 5000}) {
        try {
            EigenCpu b(t);
            ADD_FAILURE() << t;
        } catch (const ArgumentError& e) {
            EXPECT_NE(std::string(e.what()).find(fmt::format("threads must be in 1..4096 (std::max(1u, std::thread::hardware_concurrency()) "
                                                             "for one per core), got {}", t)),
                      std::string::npos) << e.what();
        }
    }
    EXPECT_NO_THROW(EigenCpu(2));
}

TEST(EigenBackend, OneBackendSharedByThreadsGivesEachTheSerialResult) {
    EigenCpu cpu(2);
    const ModelConfig cfg = ModelConfig::tiny();
    const auto F = make_decoder(cpu, cfg, 5);
    std::vector<HostTensor<float>> inputs;
    std::vector<std::vector<float>> serial;
    for (int k = 0; k < 3; ++k) {
        HostTensor<float> h(Shape{4, cfg.image_channels, cfg.resolution, cfg.resolution});
        for (std::size_t i = 0; i < h.data.size(); ++i) h.data[i] = float(((i * 37 + std::size_t(k) * 101) % 200) / 100.0 - 1.0);
        inputs.push_back(h);
        auto out = decode_batch(cpu, F, from_host(cpu, h));
        serial.push_back(out[3].logits);
    }
    std::atomic<int> mismatches{0};
    auto worker = [&](int k) {
        for (int rep = 0; rep < 20; ++rep) {
            const auto out = decode_batch(cpu, F, from_host(cpu, inputs[std::size_t(k)]));
            if (out[3].logits != serial[std::size_t(k)]) ++mismatches;
        }
    };
    std::thread a(worker, 0), b(worker, 1), c(worker, 2);
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace sgf
