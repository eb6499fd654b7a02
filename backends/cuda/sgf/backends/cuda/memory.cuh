// Device memory for the CUDA backend: a caching allocator (one per backend) and the owning
// Buffer<T> that the backend contract hands out.
//
// Why a cache: a training step creates and drops hundreds of activation and gradient tensors;
// cudaMalloc/cudaFree cost tens of microseconds each and cudaFree synchronises the whole device.
// The allocator keeps freed blocks in size classes and hands them out again.
//
// Stream safety: a backend issues all its work on ONE stream, so a block released on the host
// while kernels that use it are still queued can be handed to the next allocation right away:
// whatever the new owner enqueues runs after the old kernels on the same stream. Buffers of one
// backend must therefore only be used by ops of that backend (or after synchronize()).
#pragma once

#include <sgf/backends/cuda/error.cuh>

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sgf::cuda {

/// Counters of a DeviceAllocator (bytes are block sizes after rounding).
struct AllocatorStats {
    std::size_t in_use_bytes = 0;    // handed out and not yet released
    std::size_t cached_bytes = 0;    // released, kept for reuse
    std::size_t peak_in_use_bytes = 0;
    std::size_t device_allocations = 0;  // cudaMalloc calls
    std::size_t cache_hits = 0;          // acquisitions served from the cache
};

/// Caching device allocator. Requests are rounded up to size classes (512 B steps up to 1 MiB,
/// then 2 MiB steps); a request is served by a cached block of its class or of a class at most
/// 1/8 larger. When cudaMalloc fails, the cache is returned to the driver and the call retried.
class DeviceAllocator {
public:
    explicit DeviceAllocator(int device) : device_(device) {}
    DeviceAllocator(const DeviceAllocator&) = delete;
    DeviceAllocator& operator=(const DeviceAllocator&) = delete;
    ~DeviceAllocator() {
        int prev = -1;
        cudaGetDevice(&prev);
        if (prev != device_) cudaSetDevice(device_);
        for (auto& [bytes, list] : free_)
            for (void* p : list) cudaFree(p);
        if (prev >= 0 && prev != device_) cudaSetDevice(prev);
        cudaGetLastError();
    }

    static std::size_t round_up(std::size_t bytes) {
        constexpr std::size_t small = 512, big = std::size_t(2) << 20, limit = std::size_t(1) << 20;
        if (bytes == 0) bytes = 1;
        if (bytes <= limit) return (bytes + small - 1) / small * small;
        return (bytes + big - 1) / big * big;
    }

    /// A block of at least `bytes`; `capacity` receives its real size (pass it back to release()).
    void* acquire(std::size_t bytes, std::size_t& capacity) {
        if (bytes > (std::size_t(1) << 60))
            throw BackendError(fmt::format("device allocation of {} bytes is impossibly large", bytes));
        const std::size_t want = round_up(bytes);
        {
            std::lock_guard lk(mu_);
            auto it = free_.lower_bound(want);
            if (it != free_.end() && it->first <= want + want / 8) {
                void* p = it->second.back();
                capacity = it->first;
                it->second.pop_back();
                if (it->second.empty()) free_.erase(it);
                stats_.cached_bytes -= capacity;
                note_in_use(capacity);
                ++stats_.cache_hits;
                return p;
            }
        }
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, want);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            empty_cache();
            e = cudaMalloc(&p, want);
        }
        if (e != cudaSuccess)
            detail::throw_cuda(e, fmt::format("cudaMalloc({} bytes)", want).c_str(), std::source_location::current());
        std::lock_guard lk(mu_);
        ++stats_.device_allocations;
        capacity = want;
        note_in_use(want);
        return p;
    }

    void release(void* p, std::size_t capacity) noexcept {
        if (!p) return;
        try {
            std::lock_guard lk(mu_);
            free_[capacity].push_back(p);
            stats_.in_use_bytes -= capacity;
            stats_.cached_bytes += capacity;
        } catch (...) {  // out of host memory for the free list: give the block back instead
            cudaFree(p);
        }
    }

    /// Returns every cached block to the driver (synchronises the device, as cudaFree does).
    void empty_cache() noexcept {
        std::lock_guard lk(mu_);
        for (auto& [bytes, list] : free_)
            for (void* p : list) cudaFree(p);
        free_.clear();
        stats_.cached_bytes = 0;
        cudaGetLastError();
    }

    AllocatorStats stats() const {
        std::lock_guard lk(mu_);
        return stats_;
    }
    int device() const noexcept { return device_; }

private:
    void note_in_use(std::size_t bytes) {
        stats_.in_use_bytes += bytes;
        stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    }

    int device_;
    mutable std::mutex mu_;
    std::map<std::size_t, std::vector<void*>> free_;
    AllocatorStats stats_;
};

/// The backend's owning buffer: n elements of T in device memory from a DeviceAllocator. The
/// allocator is shared, so a buffer may outlive the backend that made it.
template <class T>
class Buffer {
public:
    Buffer() = default;
    Buffer(std::shared_ptr<DeviceAllocator> alloc, std::size_t n) : alloc_(std::move(alloc)), n_(n) {
        if (n_ > (std::size_t(1) << 60) / sizeof(T))
            throw BackendError(fmt::format("device allocation of {} elements is impossibly large", n_));
        if (n_) p_ = static_cast<T*>(alloc_->acquire(n_ * sizeof(T), capacity_));
    }
    Buffer(Buffer&& o) noexcept
        : alloc_(std::move(o.alloc_)),
          n_(std::exchange(o.n_, 0)),
          capacity_(std::exchange(o.capacity_, 0)),
          p_(std::exchange(o.p_, nullptr)) {}
    Buffer& operator=(Buffer&& o) noexcept {
        if (this != &o) {
            reset();
            alloc_ = std::move(o.alloc_);
            n_ = std::exchange(o.n_, 0);
            capacity_ = std::exchange(o.capacity_, 0);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { reset(); }

    T* data() noexcept { return p_; }
    const T* data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    std::size_t capacity_bytes() const noexcept { return capacity_; }

private:
    void reset() noexcept {
        if (p_) alloc_->release(p_, capacity_);
        p_ = nullptr;
        n_ = capacity_ = 0;
    }
    std::shared_ptr<DeviceAllocator> alloc_;
    std::size_t n_ = 0, capacity_ = 0;
    T* p_ = nullptr;
};

/// Plain owning device memory straight from cudaMalloc (no cache, no backend needed).
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n) : n_(n) {
        if (n) SGF_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            if (p_) cudaFree(p_);
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    ~DeviceBuffer() {
        if (p_) cudaFree(p_);
    }
    T* data() noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

}  // namespace sgf::cuda
