// A small persistent thread pool for the CPU backend: parallel_for over [0, count) with the
// calling thread taking part. Work is split into contiguous chunks, one per thread. Calls from
// several threads (one backend object shared by them) take turns: chunk t of a job owns the
// per-slot state of index t (oneDNN primitives and buffers), so two jobs must not overlap. A
// parallel_for from inside a chunk of the same pool (directly, or through another pool's chunk on the
// same thread) would wait for itself: it throws std::logic_error instead (sgf never nests its loops).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sgf::eigen {

class ThreadPool {
public:
    explicit ThreadPool(int threads) : threads_(std::max(1, threads)) {
        for (int t = 1; t < threads_; ++t) workers_.emplace_back([this, t] { worker(t); });
    }
    ~ThreadPool() {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) w.join();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const noexcept { return threads_; }

    /// Calls fn(begin, end, thread_index) on disjoint chunks covering [0, count).
    void parallel_for(std::int64_t count, const std::function<void(std::int64_t, std::int64_t, int)>& fn) {
        if (count <= 0) return;
        if (std::find(running().begin(), running().end(), this) != running().end())
            throw std::logic_error("ThreadPool::parallel_for called from inside one of its own chunks (nested loops are not supported)");
        std::lock_guard job_lock(job_mu_);  // one job at a time (see the top of the file)
        const int used = static_cast<int>(std::min<std::int64_t>(threads_, count));
        if (used == 1) {
            const InChunk mark(this);
            fn(0, count, 0);
            return;
        }
        std::unique_lock lk(mu_);
        job_ = &fn;
        count_ = count;
        used_ = used;
        pending_ = used - 1;
        error_ = nullptr;
        ++generation_;
        lk.unlock();
        cv_.notify_all();
        run_chunk(0);
        lk.lock();
        done_cv_.wait(lk, [&] { return pending_ == 0; });
        job_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

private:
    /// The pools whose chunks the calling thread is running, outermost first.
    static std::vector<const ThreadPool*>& running() {
        thread_local std::vector<const ThreadPool*> pools;
        return pools;
    }
    struct InChunk {  // marks the calling thread as running a chunk of `pool` for its lifetime
        explicit InChunk(const ThreadPool* pool) { running().push_back(pool); }
        ~InChunk() { running().pop_back(); }
        InChunk(const InChunk&) = delete;
        InChunk& operator=(const InChunk&) = delete;
    };

    void run_chunk(int t) {
        const std::int64_t begin = count_ * t / used_, end = count_ * (t + 1) / used_;
        const InChunk mark(this);
        try {
            if (begin < end) (*job_)(begin, end, t);
        } catch (...) {
            std::lock_guard lk(mu_);
            if (!error_) error_ = std::current_exception();
        }
    }
    void worker(int t) {
        std::uint64_t seen = 0;
        for (;;) {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (t >= used_) continue;
            lk.unlock();
            run_chunk(t);
            lk.lock();
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }

    int threads_;
    std::vector<std::thread> workers_;
    std::mutex job_mu_;  ///< held for a whole parallel_for
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    const std::function<void(std::int64_t, std::int64_t, int)>* job_ = nullptr;
    std::int64_t count_ = 0;
    int used_ = 0, pending_ = 0;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace sgf::eigen
