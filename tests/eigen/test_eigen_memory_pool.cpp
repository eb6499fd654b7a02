// sgf::eigen::MemoryPool and eigen::Buffer: the caching host allocator behind the CPU backend's
// allocate() (backends/eigen/sgf/backends/eigen.hpp). What its comments promise, checked:
//  * "Caches freed blocks by exact element count": a released block comes back for the next
//    request of the same count, and only for that count;
//  * "blocks are 64-byte aligned" (also for 0 elements, which still get a distinct block);
//  * "a per-backend caching pool": one backend's freed blocks are not handed to another backend;
//  * Buffer: owns n elements, returns them to the pool on destruction and on move-assignment,
//    and may outlive the backend that made it (the pool is shared);
//  * the pool is locked (std::mutex): concurrent acquire/release from many threads never hands
//    one block to two owners at once.
// (The 2 GiB cap on cached bytes is not tested: it would need gigabytes of allocations, and a
// block freed past the cap is indistinguishable from a cached one by address.)
// The GPU counterpart is CudaBackend.CachingAllocatorReusesFreedBlocks (tests/cuda).
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace sgf::eigen {
namespace {

bool aligned64(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

template <class T>
class MemoryPoolTest : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
struct ScalarNames {
    template <class T>
    static std::string GetName(int) {
        return std::is_same_v<T, float> ? "f32" : "f64";
    }
};
TYPED_TEST_SUITE(MemoryPoolTest, Scalars, ScalarNames);

TYPED_TEST(MemoryPoolTest, FreedBlockIsReusedForTheSameCount) {
    using T = TypeParam;
    MemoryPool<T> pool;
    T* p = pool.acquire(100);
    ASSERT_NE(p, nullptr);
    pool.release(p, 100);
    T* q = pool.acquire(100);
    EXPECT_EQ(q, p) << "a released block of 100 elements must serve the next request for 100";
    pool.release(q, 100);
}

TYPED_TEST(MemoryPoolTest, CacheIsKeyedByExactElementCount) {
    using T = TypeParam;
    MemoryPool<T> pool;
    T* p = pool.acquire(100);
    pool.release(p, 100);  // cached under 100
    // other counts, smaller and larger (also ones that round to the same 64-byte size), must not
    // get it: p is still in the cache, so a fresh allocation cannot return its address either
    std::vector<std::pair<T*, std::size_t>> held;
    for (std::size_t n : {std::size_t(99), std::size_t(101), std::size_t(1), std::size_t(1000)}) {
        T* o = pool.acquire(n);
        EXPECT_NE(o, p) << "request for " << n << " elements got the block cached for 100";
        held.emplace_back(o, n);
    }
    EXPECT_EQ(pool.acquire(100), p) << "the block cached for 100 is still there";
    pool.release(p, 100);
    for (auto [o, n] : held) pool.release(o, n);
}

TYPED_TEST(MemoryPoolTest, SeveralFreedBlocksOfOneCountAreAllReused) {
    using T = TypeParam;
    MemoryPool<T> pool;
    std::set<T*> freed;
    std::vector<T*> live;
    for (int i = 0; i < 5; ++i) live.push_back(pool.acquire(64));
    EXPECT_EQ(std::set<T*>(live.begin(), live.end()).size(), 5u) << "live blocks must be distinct";
    for (T* p : live) {
        pool.release(p, 64);
        freed.insert(p);
    }
    std::set<T*> again;
    for (int i = 0; i < 5; ++i) again.insert(pool.acquire(64));
    EXPECT_EQ(again, freed) << "five requests after five releases of the same count reuse exactly those blocks";
    T* extra = pool.acquire(64);  // the cache is empty now: a new block
    EXPECT_EQ(freed.count(extra), 0u);
    for (T* p : again) pool.release(p, 64);
    pool.release(extra, 64);
}

TYPED_TEST(MemoryPoolTest, BlocksAre64ByteAlignedAndWritable) {
    using T = TypeParam;
    MemoryPool<T> pool;
    std::vector<std::pair<T*, std::size_t>> held;
    for (std::size_t n : {0, 1, 2, 3, 15, 16, 17, 63, 64, 65, 1000, 4097, 1 << 20}) {
        T* p = pool.acquire(n);
        ASSERT_NE(p, nullptr) << n;
        EXPECT_TRUE(aligned64(p)) << n << " elements at " << static_cast<const void*>(p);
        for (std::size_t i = 0; i < n; ++i) p[i] = T(i % 251);
        for (std::size_t i = 0; i < n; ++i)
            if (p[i] != T(i % 251)) {
                ADD_FAILURE() << "block of " << n << " elements: element " << i << " did not keep its value";
                break;
            }
        held.emplace_back(p, n);
    }
    for (auto [p, n] : held) pool.release(p, n);
    // reused blocks are as aligned as fresh ones
    for (std::size_t n : {std::size_t(3), std::size_t(1000)}) {
        T* p = pool.acquire(n);
        EXPECT_TRUE(aligned64(p)) << n;
        pool.release(p, n);
    }
}

TYPED_TEST(MemoryPoolTest, ZeroElementRequestsGetDistinctBlocks) {
    using T = TypeParam;
    MemoryPool<T> pool;
    T* a = pool.acquire(0);
    T* b = pool.acquire(0);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a, b);
    pool.release(a, 0);
    EXPECT_EQ(pool.acquire(0), a);
    pool.release(a, 0);
    pool.release(b, 0);
}

// ------------------------------------------------------------------------- through the backend

TYPED_TEST(MemoryPoolTest, BackendBuffersOwnTheirElementsAndReturnThemToThePool) {
    using T = TypeParam;
    Backend<T> be(1);
    T* first = nullptr;
    {
        auto buf = be.allocate(1000);
        EXPECT_EQ(buf.size(), 1000u);
        ASSERT_NE(buf.data(), nullptr);
        EXPECT_TRUE(aligned64(buf.data()));
        be.fill(buf.data(), buf.size(), T(1.5));
        std::vector<T> host(buf.size());
        be.download(buf.data(), host.size(), host.data());
        EXPECT_TRUE(std::all_of(host.begin(), host.end(), [](T v) { return v == T(1.5); }));
        first = buf.data();
    }
    auto again = be.allocate(1000);
    EXPECT_EQ(again.data(), first) << "a destroyed buffer's block is reused by the next allocate of its size";
    auto other = be.allocate(999);
    EXPECT_NE(other.data(), first);
}

TYPED_TEST(MemoryPoolTest, BufferMoveTransfersOwnershipAndMoveAssignReleases) {
    using T = TypeParam;
    Backend<T> be(1);
    typename Backend<T>::Buffer empty;
    EXPECT_EQ(empty.data(), nullptr);
    EXPECT_EQ(empty.size(), 0u);

    auto a = be.allocate(300);
    T* pa = a.data();
    auto b = std::move(a);  // move construction
    EXPECT_EQ(b.data(), pa);
    EXPECT_EQ(b.size(), 300u);
    EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified here
    EXPECT_EQ(a.size(), 0u);

    auto c = be.allocate(500);
    T* pc = c.data();
    c = std::move(b);  // c's 500-element block goes back to the pool
    EXPECT_EQ(c.data(), pa);
    EXPECT_EQ(c.size(), 300u);
    EXPECT_EQ(b.data(), nullptr);  // NOLINT(bugprone-use-after-move)
    auto d = be.allocate(500);
    EXPECT_EQ(d.data(), pc) << "move-assignment must release the overwritten buffer's block to the pool";

    c = std::move(c);  // self-move keeps the block  NOLINT
    EXPECT_EQ(c.data(), pa);
    EXPECT_EQ(c.size(), 300u);
}

TYPED_TEST(MemoryPoolTest, EachBackendHasItsOwnPool) {
    using T = TypeParam;
    Backend<T> one(1), two(1);
    T* p = nullptr;
    {
        auto buf = one.allocate(777);
        p = buf.data();
    }  // cached in one's pool
    auto from_two = two.allocate(777);
    EXPECT_NE(from_two.data(), p) << "another backend's cached block was handed out";
    auto from_one = one.allocate(777);
    EXPECT_EQ(from_one.data(), p);
}

TYPED_TEST(MemoryPoolTest, BuffersMayOutliveTheirBackend) {
    using T = TypeParam;
    typename Backend<T>::Buffer survivor;
    {
        Backend<T> tmp(2);
        survivor = tmp.allocate(64);
        tmp.fill(survivor.data(), 64, T(3));
    }
    ASSERT_NE(survivor.data(), nullptr);
    EXPECT_EQ(survivor.size(), 64u);
    EXPECT_EQ(survivor.data()[63], T(3));
    survivor = typename Backend<T>::Buffer();  // releases into the pool the buffer kept alive
    EXPECT_EQ(survivor.data(), nullptr);
}

// ------------------------------------------------------------------------------- thread safety

TYPED_TEST(MemoryPoolTest, ConcurrentAllocateAndReleaseNeverShareABlock) {
    using T = TypeParam;
    Backend<T> be(1);
    constexpr int kThreads = 8, kRounds = 2000;
    const std::size_t sizes[] = {1, 16, 100, 1000};  // few counts, so threads keep trading blocks
    std::mutex live_mu;
    std::set<const T*> live;
    std::atomic<int> shared{0}, clobbered{0}, reused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            std::set<const T*> seen;
            for (int r = 0; r < kRounds; ++r) {
                const std::size_t n = sizes[(t + r) % 4];
                auto buf = be.allocate(n);
                {
                    std::lock_guard lk(live_mu);
                    if (!live.insert(buf.data()).second) ++shared;  // someone else holds it right now
                }
                if (!seen.insert(buf.data()).second) ++reused;
                const T mark = T(t * 4096 + r % 4096);
                for (std::size_t i = 0; i < n; ++i) buf.data()[i] = mark;
                std::this_thread::yield();
                for (std::size_t i = 0; i < n; ++i)
                    if (buf.data()[i] != mark) {
                        ++clobbered;
                        break;
                    }
                std::lock_guard lk(live_mu);
                live.erase(buf.data());
            }  // buf released here, while other threads allocate
        });
    go = true;
    for (auto& th : threads) th.join();
    EXPECT_EQ(shared.load(), 0) << "a block was handed to two live buffers at once";
    EXPECT_EQ(clobbered.load(), 0) << "a live buffer's contents were overwritten by another thread";
    EXPECT_GT(reused.load(), 0) << "the cache was never hit: the test did not exercise reuse";
    EXPECT_TRUE(live.empty());
}

}  // namespace
}  // namespace sgf::eigen
