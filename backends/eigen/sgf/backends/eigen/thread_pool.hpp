// A small persistent thread pool for the CPU backend: parallel_for over [0, count) with the
// calling thread taking part. Work is split into contiguous chunks, one per thread.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
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
        const int used = static_cast<int>(std::min<std::int64_t>(threads_, count));
        if (used == 1) {
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
    void run_chunk(int t) {
        const std::int64_t begin = count_ * t / used_, end = count_ * (t + 1) / used_;
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
