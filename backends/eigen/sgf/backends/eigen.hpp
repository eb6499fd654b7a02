// sgf::eigen::Backend<T>: the CPU backend. Convolutions are im2col + Eigen GEMM with threads over
// the batch (or over output channels when the batch is smaller than the thread count), except that
// float32 convolutions with at least 8 input and output channels run on oneDNN when sgf is built
// with it (SGF_HAVE_ONEDNN; eigen/onednn_conv.hpp; SGF_ONEDNN=0 in the environment turns it off at
// run time); everything else is straightforward loops. T = float for training and verification, T = double for the
// float64 gradient checks. Memory comes from a per-backend caching pool, so the many short-lived
// activation tensors of a training step do not hit malloc/mmap every time.
#pragma once

#include <sgf/core/concepts.hpp>
#include <sgf/core/philox.hpp>
#include <sgf/backends/eigen/thread_pool.hpp>
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
#include <sgf/backends/eigen/onednn_conv.hpp>
#endif

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace sgf::eigen {

/// Caches freed blocks by exact element count; blocks are 64-byte aligned.
template <class T>
class MemoryPool {
public:
    ~MemoryPool() {
        for (auto& [n, list] : free_)
            for (T* p : list) std::free(p);
    }
    T* acquire(std::size_t n) {
        {
            std::lock_guard lk(mu_);
            auto it = free_.find(n);
            if (it != free_.end() && !it->second.empty()) {
                T* p = it->second.back();
                it->second.pop_back();
                cached_bytes_ -= n * sizeof(T);
                return p;
            }
        }
        const std::size_t bytes = ((std::max<std::size_t>(n, 1) * sizeof(T) + 63) / 64) * 64;
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void release(T* p, std::size_t n) {
        std::lock_guard lk(mu_);
        if (cached_bytes_ + n * sizeof(T) > kMaxCachedBytes) {
            std::free(p);
            return;
        }
        free_[n].push_back(p);
        cached_bytes_ += n * sizeof(T);
    }

private:
    static constexpr std::size_t kMaxCachedBytes = std::size_t(2) << 30;
    std::mutex mu_;
    std::map<std::size_t, std::vector<T*>> free_;
    std::size_t cached_bytes_ = 0;
};

template <class T>
class Buffer {
public:
    Buffer() = default;
    Buffer(std::shared_ptr<MemoryPool<T>> pool, std::size_t n) : pool_(std::move(pool)), n_(n), p_(pool_->acquire(n)) {}
    Buffer(Buffer&& o) noexcept : pool_(std::move(o.pool_)), n_(std::exchange(o.n_, 0)), p_(std::exchange(o.p_, nullptr)) {}
    Buffer& operator=(Buffer&& o) noexcept {
        if (this != &o) {
            reset();
            pool_ = std::move(o.pool_);
            n_ = std::exchange(o.n_, 0);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~Buffer() { reset(); }
    T* data() noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }

private:
    void reset() {
        if (p_) pool_->release(p_, n_);
        p_ = nullptr;
        n_ = 0;
    }
    std::shared_ptr<MemoryPool<T>> pool_;
    std::size_t n_ = 0;
    T* p_ = nullptr;
};

/// How the CPU backend convolves (see Backend's constructor).
enum class CpuConv { best, im2col };

template <class T>
class Backend {
public:
    using Scalar = T;
    using Buffer = eigen::Buffer<T>;
    using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using MapM = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
    using CMapM = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
    using Vec = Eigen::Array<T, Eigen::Dynamic, 1>;
    using MapV = Eigen::Map<Vec>;
    using CMapV = Eigen::Map<const Vec>;

    /// threads: the pool's size (the calling thread included; 1 by default, 1..4096: pass
    /// std::max(1u, std::thread::hardware_concurrency()) for one per core). conv: CpuConv::best runs float32
    /// convolutions on oneDNN when sgf was built with it and SGF_ONEDNN is not "0" in the
    /// environment; CpuConv::im2col always uses im2col + Eigen GEMM.
    explicit Backend(int threads = 1, CpuConv conv = CpuConv::best)
        : pool_(checked_threads(threads)), mem_(std::make_shared<MemoryPool<T>>()) {
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
        if constexpr (std::is_same_v<T, float>) {
            const char* env = std::getenv("SGF_ONEDNN");
            if (conv == CpuConv::best && !(env && std::string_view(env) == "0"))
                dnn_ = std::make_unique<OneDnnConv>(pool_);
        }
#else
        (void)conv;
#endif
    }

    /// What runs this backend's convolutions: "onednn" (float32 with at least 8 channels in and
    /// out; the others on Eigen) or "im2col" (im2col + Eigen GEMM).
    std::string_view conv_engine() const noexcept {
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
        if (dnn_) return "onednn";
#endif
        return "im2col";
    }

    static constexpr std::string_view name() {
        if constexpr (std::is_same_v<T, float>) return "eigen-f32";
        else return "eigen-f64";
    }
    int threads() const noexcept { return pool_.size(); }
    ThreadPool& thread_pool() noexcept { return pool_; }

    // ---------------------------------------------------------------- storage
    Buffer allocate(std::size_t n) { return Buffer(mem_, n); }
    void upload(const T* host, std::size_t n, T* dst) { std::memcpy(dst, host, n * sizeof(T)); }
    void download(const T* src, std::size_t n, T* host) { std::memcpy(host, src, n * sizeof(T)); }
    void fill(T* dst, std::size_t n, T v) { std::fill(dst, dst + n, v); }
    void copy(const T* src, T* dst, std::size_t n) { std::memmove(dst, src, n * sizeof(T)); }
    void copy2d(std::int64_t rows, std::int64_t cols, const T* src, std::int64_t src_ld, T* dst, std::int64_t dst_ld) {
        check_copy2d(rows, cols, src_ld, dst_ld);
        for (std::int64_t r = 0; r < rows; ++r) std::memmove(dst + r * dst_ld, src + r * src_ld, cols * sizeof(T));
    }
    void synchronize() {}

    // ---------------------------------------------------------------- gemm
    void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A, std::int64_t lda,
              const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
        MapM c(C, M, N, Eigen::OuterStride<>(ldc));
        if (beta == T(0)) c.setZero();
        else if (beta != T(1)) c *= beta;
        if (K == 0 || alpha == T(0)) return;
        CMapM a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));
        CMapM b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
        if (!ta && !tb) c.noalias() += alpha * a * b;
        else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
        else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
        else c.noalias() += alpha * a.transpose() * b.transpose();
    }

    // ---------------------------------------------------------------- convolution
    void conv2d_forward(const ConvDesc& d, T alpha, const T* x, const T* w, T beta, T* y) {
        d.validate("conv2d_forward");
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
        if constexpr (std::is_same_v<T, float>)
            if (on_onednn(d)) return dnn_->forward(d, alpha, x, w, beta, y);
#endif
        const std::int64_t K = d.c_in * d.k * d.k, P = d.out_h() * d.out_w();
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * P;
        CMapM W(w, d.c_out, K, Eigen::OuterStride<>(K));
        auto one = [&](std::int64_t n, std::int64_t o0, std::int64_t o1, std::vector<T>& scratch) {
            const T* cols = im2col(d, x + n * xs, scratch);
            CMapM C(cols, K, P, Eigen::OuterStride<>(P));
            MapM Y(y + n * ys + o0 * P, o1 - o0, P, Eigen::OuterStride<>(P));
            if (beta == T(0)) Y.noalias() = alpha * W.middleRows(o0, o1 - o0) * C;
            else {
                if (beta != T(1)) Y *= beta;
                Y.noalias() += alpha * W.middleRows(o0, o1 - o0) * C;
            }
        };
        if (d.n >= pool_.size()) {
            pool_.parallel_for(d.n, [&](std::int64_t b, std::int64_t e, int) {
                std::vector<T> scratch;
                for (std::int64_t n = b; n < e; ++n) one(n, 0, d.c_out, scratch);
            });
        } else {
            for (std::int64_t n = 0; n < d.n; ++n) {
                std::vector<T> scratch;
                const T* cols = im2col(d, x + n * xs, scratch);
                (void)cols;
                pool_.parallel_for(d.c_out, [&](std::int64_t o0, std::int64_t o1, int) {
                    CMapM C(is_pointwise(d) ? x + n * xs : scratch.data(), K, P, Eigen::OuterStride<>(P));
                    MapM Y(y + n * ys + o0 * P, o1 - o0, P, Eigen::OuterStride<>(P));
                    if (beta == T(0)) Y.noalias() = alpha * W.middleRows(o0, o1 - o0) * C;
                    else {
                        if (beta != T(1)) Y *= beta;
                        Y.noalias() += alpha * W.middleRows(o0, o1 - o0) * C;
                    }
                });
            }
        }
    }

    void conv2d_backward_data(const ConvDesc& d, T alpha, const T* dy, const T* w, T beta, T* dx) {
        d.validate("conv2d_backward_data");
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
        if constexpr (std::is_same_v<T, float>)
            if (on_onednn(d)) return dnn_->backward_data(d, alpha, dy, w, beta, dx);
#endif
        const std::int64_t K = d.c_in * d.k * d.k, P = d.out_h() * d.out_w();
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * P;
        CMapM W(w, d.c_out, K, Eigen::OuterStride<>(K));
        pool_.parallel_for(d.n, [&](std::int64_t b, std::int64_t e, int) {
            std::vector<T> cols;
            for (std::int64_t n = b; n < e; ++n) {
                CMapM DY(dy + n * ys, d.c_out, P, Eigen::OuterStride<>(P));
                if (is_pointwise(d)) {
                    MapM DX(dx + n * xs, d.c_in, P, Eigen::OuterStride<>(P));
                    if (beta == T(0)) DX.noalias() = alpha * W.transpose() * DY;
                    else {
                        if (beta != T(1)) DX *= beta;
                        DX.noalias() += alpha * W.transpose() * DY;
                    }
                } else {
                    cols.resize(static_cast<std::size_t>(K * P));
                    MapM C(cols.data(), K, P, Eigen::OuterStride<>(P));
                    C.noalias() = W.transpose() * DY;
                    col2im(d, cols.data(), alpha, beta, dx + n * xs);
                }
            }
        });
    }

    void conv2d_backward_filter(const ConvDesc& d, T alpha, const T* x, const T* dy, T beta, T* dw) {
        d.validate("conv2d_backward_filter");
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
        if constexpr (std::is_same_v<T, float>)
            if (on_onednn(d)) return dnn_->backward_filter(d, alpha, x, dy, beta, dw);
#endif
        const std::int64_t K = d.c_in * d.k * d.k, P = d.out_h() * d.out_w();
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * P;
        const int parts = static_cast<int>(std::min<std::int64_t>(pool_.size(), d.n));
        std::vector<RowMat> partial(static_cast<std::size_t>(parts));
        pool_.parallel_for(d.n, [&](std::int64_t b, std::int64_t e, int t) {
            RowMat& acc = partial[static_cast<std::size_t>(t)];
            acc.setZero(d.c_out, K);
            std::vector<T> scratch;
            for (std::int64_t n = b; n < e; ++n) {
                const T* cols = im2col(d, x + n * xs, scratch);
                CMapM C(cols, K, P, Eigen::OuterStride<>(P));
                CMapM DY(dy + n * ys, d.c_out, P, Eigen::OuterStride<>(P));
                acc.noalias() += DY * C.transpose();
            }
        });
        MapM DW(dw, d.c_out, K, Eigen::OuterStride<>(K));
        if (beta == T(0)) DW.setZero();
        else if (beta != T(1)) DW *= beta;
        for (auto& p : partial)
            if (p.size()) DW += alpha * p;
    }

    // ---------------------------------------------------------------- elementwise
    void bias_act(const Shape& s, const T* x, const T* bias, T bias_scale, Act act, T gain, T* y) {
        const std::int64_t HW = s.plane();
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c) {
                const T b = bias ? bias[c] * bias_scale : T(0);
                const std::int64_t off = (n * s.c + c) * HW;
                const T* xi = x + off;
                T* yi = y + off;
                if (act == Act::lrelu) {
                    const T neg = T(kLreluSlope) * gain;
                    for (std::int64_t i = 0; i < HW; ++i) {
                        const T t = xi[i] + b;
                        yi[i] = t > T(0) ? t * gain : t * neg;
                    }
                } else {
                    for (std::int64_t i = 0; i < HW; ++i) yi[i] = (xi[i] + b) * gain;
                }
            }
    }

    void bias_act_backward(const Shape& s, const T* y, const T* dy, Act act, T gain, T* dx, T* dbias, T bias_scale,
                           T beta) {
        const std::int64_t HW = s.plane();
        if (dbias) {
            for (std::int64_t c = 0; c < s.c; ++c) dbias[c] = beta == T(0) ? T(0) : dbias[c] * beta;
        }
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c) {
                const std::int64_t off = (n * s.c + c) * HW;
                T acc = 0;
                if (act == Act::lrelu) {
                    const T neg = T(kLreluSlope) * gain;
                    for (std::int64_t i = 0; i < HW; ++i) {
                        const T g = dy[off + i] * (y[off + i] > T(0) ? gain : neg);
                        dx[off + i] = g;
                        acc += g;
                    }
                } else {
                    for (std::int64_t i = 0; i < HW; ++i) {
                        const T g = dy[off + i] * gain;
                        dx[off + i] = g;
                        acc += g;
                    }
                }
                if (dbias) dbias[c] += bias_scale * acc;
            }
    }

    void scale_channels(const Shape& s, const T* x, const T* sc, T* y) {
        const std::int64_t HW = s.plane(), NC = s.n * s.c;
        for (std::int64_t i = 0; i < NC; ++i) MapV(y + i * HW, HW) = CMapV(x + i * HW, HW) * sc[i];
    }
    void channel_dot(const Shape& s, const T* a, const T* b, T beta, T* out) {
        const std::int64_t HW = s.plane(), NC = s.n * s.c;
        for (std::int64_t i = 0; i < NC; ++i) {
            const T v = (CMapV(a + i * HW, HW) * CMapV(b + i * HW, HW)).sum();
            out[i] = beta == T(0) ? v : v + beta * out[i];
        }
    }
    void add_noise(const Shape& s, T* y, const T* noise, const T* strength) {
        const std::int64_t HW = s.plane();
        const T st = strength[0];
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c) MapV(y + (n * s.c + c) * HW, HW) += st * CMapV(noise + n * HW, HW);
    }
    void noise_backward(const Shape& s, const T* dy, const T* noise, T beta, T* ds) {
        const std::int64_t HW = s.plane();
        T acc = 0;
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t c = 0; c < s.c; ++c)
                acc += (CMapV(dy + (n * s.c + c) * HW, HW) * CMapV(noise + n * HW, HW)).sum();
        ds[0] = beta == T(0) ? acc : acc + beta * ds[0];
    }
    void axpby(std::int64_t n, T alpha, const T* x, T beta, T* y) {
        if (beta == T(0)) MapV(y, n) = alpha * CMapV(x, n);
        else MapV(y, n) = alpha * CMapV(x, n) + beta * MapV(y, n);
    }
    void mul(std::int64_t n, const T* a, const T* b, T* y) { MapV(y, n) = CMapV(a, n) * CMapV(b, n); }
    void rsqrt_eps(std::int64_t n, const T* x, T eps, T* y) { MapV(y, n) = (CMapV(x, n) + eps).rsqrt(); }
    void square(std::int64_t n, const T* x, T* y) { MapV(y, n) = CMapV(x, n).square(); }
    void clamp(std::int64_t n, const T* x, T lo, T hi, T* y, T* mask) {
        // NaN stays NaN (as in the reference and CUDA), which cwiseMax/cwiseMin do not promise
        if (mask) MapV(mask, n) = CMapV(x, n).unaryExpr([lo, hi](T v) { return T(v >= lo && v <= hi); });
        MapV(y, n) = CMapV(x, n).unaryExpr([lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });  // y may alias x
    }
    void quantize_u8(std::int64_t n, const T* x, T* y) {
        MapV(y, n) = CMapV(x, n).unaryExpr([](T v) { return T(from_u8(to_u8(float(v)))); });  // y may alias x
    }
    void group_sumsq(std::int64_t groups, std::int64_t size, const T* x, T alpha, T* out) {
        for (std::int64_t g = 0; g < groups; ++g) out[g] = alpha * CMapV(x + g * size, size).square().sum();
    }
    void group_scale_add(std::int64_t groups, std::int64_t size, const T* coef, const T* x, T alpha, T* y) {
        for (std::int64_t g = 0; g < groups; ++g) MapV(y + g * size, size) += (alpha * coef[g]) * CMapV(x + g * size, size);
    }

    // ---------------------------------------------------------------- reductions
    double sum(std::int64_t n, const T* x) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += double(x[i]);
        return acc;
    }
    double dot(std::int64_t n, const T* a, const T* b) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) acc += double(a[i]) * double(b[i]);
        return acc;
    }
    void sum_rows(std::int64_t rows, std::int64_t cols, const T* x, T beta, T* out) {
        MapV o(out, cols);
        if (beta == T(0)) o.setZero();
        else if (beta != T(1)) o *= beta;
        for (std::int64_t r = 0; r < rows; ++r) o += CMapV(x + r * cols, cols);
    }
    bool all_finite(std::int64_t n, const T* x) {
        for (std::int64_t i = 0; i < n; ++i)
            if (!std::isfinite(x[i])) return false;
        return true;
    }

    // ---------------------------------------------------------------- resampling
    // Both passes run on a materialised padded (and zero-stuffed, for up > 1) row so that the inner
    // loops are branch-free: row[px], px = ix*up + pad0, holds x[.., ix]; everything else is zero.
    void fir(const FirDesc& f, const T* x, T* y) {
        f.validate("fir");
        const std::int64_t Hp = f.h * f.up + f.pad0 + f.pad1, Wp = f.w * f.up + f.pad0 + f.pad1;
        const std::int64_t OH = f.out_h(), OW = f.out_w(), dn = f.down;
        T taps[4];
        for (int i = 0; i < 4; ++i) taps[i] = T(f.taps[i]);
        const T gain = T(f.gain);
        pool_.parallel_for(f.n * f.c, [&](std::int64_t b, std::int64_t e, int) {
            std::vector<T> tmp(static_cast<std::size_t>(Hp * OW)), row(static_cast<std::size_t>(Wp));
            for (std::int64_t pl = b; pl < e; ++pl) {
                const T* xp = x + pl * f.h * f.w;
                // horizontal pass: tmp[py, ox] = sum_t taps[t] * padded[py, ox*down + t]
                std::fill(tmp.begin(), tmp.end(), T(0));
                std::fill(row.begin(), row.end(), T(0));
                for (std::int64_t iy = 0; iy < f.h; ++iy) {
                    const T* xr = xp + iy * f.w;
                    for (std::int64_t ix = 0; ix < f.w; ++ix) row[ix * f.up + f.pad0] = xr[ix];
                    T* trow = tmp.data() + (iy * f.up + f.pad0) * OW;
                    const T* r = row.data();
                    for (std::int64_t ox = 0; ox < OW; ++ox) {
                        const T* q = r + ox * dn;
                        trow[ox] = taps[0] * q[0] + taps[1] * q[1] + taps[2] * q[2] + taps[3] * q[3];
                    }
                }
                // vertical pass: y[oy, ox] = gain * sum_t taps[t] * tmp[oy*down + t, ox]
                T* yp = y + pl * OH * OW;
                const T c0 = gain * taps[0], c1 = gain * taps[1], c2 = gain * taps[2], c3 = gain * taps[3];
                for (std::int64_t oy = 0; oy < OH; ++oy) {
                    const T* t0 = tmp.data() + (oy * dn) * OW;
                    const T *t1 = t0 + OW, *t2 = t1 + OW, *t3 = t2 + OW;
                    T* yrow = yp + oy * OW;
                    for (std::int64_t ox = 0; ox < OW; ++ox) yrow[ox] = c0 * t0[ox] + c1 * t1[ox] + c2 * t2[ox] + c3 * t3[ox];
                }
            }
        });
    }

    void fir_backward(const FirDesc& f, const T* dy, T* dx) {
        f.validate("fir_backward");
        const std::int64_t Hp = f.h * f.up + f.pad0 + f.pad1, Wp = f.w * f.up + f.pad0 + f.pad1;
        const std::int64_t OH = f.out_h(), OW = f.out_w(), dn = f.down;
        T taps[4];
        for (int i = 0; i < 4; ++i) taps[i] = T(f.taps[i]);
        const T gain = T(f.gain);
        pool_.parallel_for(f.n * f.c, [&](std::int64_t b, std::int64_t e, int) {
            std::vector<T> tmp(static_cast<std::size_t>(Hp * OW)), row(static_cast<std::size_t>(Wp));
            for (std::int64_t pl = b; pl < e; ++pl) {
                const T* dyp = dy + pl * OH * OW;
                std::fill(tmp.begin(), tmp.end(), T(0));
                // adjoint of the vertical pass
                for (std::int64_t oy = 0; oy < OH; ++oy)
                    for (int t = 0; t < 4; ++t) {
                        T* trow = tmp.data() + (oy * dn + t) * OW;
                        const T c = taps[t] * gain;
                        const T* dyr = dyp + oy * OW;
                        for (std::int64_t ox = 0; ox < OW; ++ox) trow[ox] += c * dyr[ox];
                    }
                // adjoint of the horizontal pass on the data rows, read back at the data columns
                T* dxp = dx + pl * f.h * f.w;
                for (std::int64_t iy = 0; iy < f.h; ++iy) {
                    const T* trow = tmp.data() + (iy * f.up + f.pad0) * OW;
                    std::fill(row.begin(), row.end(), T(0));
                    T* r = row.data();
                    for (int t = 0; t < 4; ++t) {
                        const T c = taps[t];
                        T* q = r + t;
                        for (std::int64_t ox = 0; ox < OW; ++ox) q[ox * dn] += c * trow[ox];
                    }
                    T* dxr = dxp + iy * f.w;
                    for (std::int64_t ix = 0; ix < f.w; ++ix) dxr[ix] = r[ix * f.up + f.pad0];
                }
            }
        });
    }

    void mbstd(const Shape& s, int group, const T* x, T* y) {
        const auto [G, M] = mbstd_groups(s, group);
        const std::int64_t F = s.sample_size(), HW = s.plane();
        std::vector<T> feat(static_cast<std::size_t>(M));
        for (std::int64_t m = 0; m < M; ++m) {
            double acc = 0;
            for (std::int64_t j = 0; j < F; ++j) {
                double mean = 0;
                for (std::int64_t g = 0; g < G; ++g) mean += x[(g * M + m) * F + j];
                mean /= double(G);
                double var = 0;
                for (std::int64_t g = 0; g < G; ++g) {
                    const double dv = x[(g * M + m) * F + j] - mean;
                    var += dv * dv;
                }
                acc += std::sqrt(var / double(G) + 1e-8);
            }
            feat[static_cast<std::size_t>(m)] = T(acc / double(F));
        }
        for (std::int64_t n = 0; n < s.n; ++n) {
            std::memmove(y + n * (F + HW), x + n * F, F * sizeof(T));
            std::fill(y + n * (F + HW) + F, y + (n + 1) * (F + HW), feat[static_cast<std::size_t>(n % M)]);
        }
    }

    void mbstd_backward(const Shape& s, int group, const T* x, const T* dy, T* dx) {
        const auto [G, M] = mbstd_groups(s, group);
        const std::int64_t F = s.sample_size(), HW = s.plane();
        for (std::int64_t n = 0; n < s.n; ++n) std::memmove(dx + n * F, dy + n * (F + HW), F * sizeof(T));
        for (std::int64_t m = 0; m < M; ++m) {
            // d feat[m] = sum over samples n with n % M == m of the sum of their extra channel
            double gfeat = 0;
            for (std::int64_t g = 0; g < G; ++g) {
                const T* e = dy + (g * M + m) * (F + HW) + F;
                for (std::int64_t i = 0; i < HW; ++i) gfeat += e[i];
            }
            const double gstd = gfeat / double(F);
            for (std::int64_t j = 0; j < F; ++j) {
                double mean = 0;
                for (std::int64_t g = 0; g < G; ++g) mean += x[(g * M + m) * F + j];
                mean /= double(G);
                double var = 0;
                for (std::int64_t g = 0; g < G; ++g) {
                    const double dv = x[(g * M + m) * F + j] - mean;
                    var += dv * dv;
                }
                const double sd = std::sqrt(var / double(G) + 1e-8);
                // d sd / d x_g = (x_g - mean) / (G * sd)
                for (std::int64_t g = 0; g < G; ++g) {
                    const std::int64_t idx = (g * M + m) * F + j;
                    dx[idx] += T(gstd * (x[idx] - mean) / (double(G) * sd));
                }
            }
        }
    }

    // ---------------------------------------------------------------- random numbers
    void normal(const RngKey& k, std::int64_t n, T* out) {
        pool_.parallel_for(n, [&](std::int64_t b, std::int64_t e, int) {
            for (std::int64_t i = b; i < e; ++i) out[i] = T(philox::normal(k, std::uint64_t(i)));
        });
    }
    void uniform(const RngKey& k, std::int64_t n, T* out) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = T(philox::uniform(k, std::uint64_t(i)));
    }
    void bits(const RngKey& k, std::int64_t n, T* out) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = T(philox::bit(k, std::uint64_t(i)));
    }

    // ---------------------------------------------------------------- losses
    double softplus_loss(std::int64_t n, const T* x, T sign, T grad_scale, T* grad) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double t = double(sign) * double(x[i]);
            acc += std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t)));
            if (grad) grad[i] = T(double(grad_scale) * double(sign) * sigmoid(t));
        }
        return acc;
    }
    double bce_logits_loss(std::int64_t n, const T* l, const T* target, T grad_scale, T* grad) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double x = l[i], t = target[i];
            acc += std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x)));
            if (grad) grad[i] = T(double(grad_scale) * (sigmoid(x) - t));
        }
        return acc;
    }
    double mse_loss(std::int64_t n, const T* a, const T* b, T grad_scale, T* grad) {
        double acc = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double dlt = double(a[i]) - double(b[i]);
            acc += dlt * dlt;
            if (grad) grad[i] = T(double(grad_scale) * 2.0 * dlt);
        }
        return acc;
    }

    // ---------------------------------------------------------------- optimiser
    void adam_step(std::int64_t n, T* p, const T* g, T* m, T* v, const AdamParams& h, std::int64_t t) {
        const double c1 = 1.0 - std::pow(h.beta1, double(t)), c2 = 1.0 - std::pow(h.beta2, double(t));
        const T b1 = T(h.beta1), b2 = T(h.beta2), step = T(h.lr / c1), rc2 = T(1.0 / std::sqrt(c2)), eps = T(h.eps);
        for (std::int64_t i = 0; i < n; ++i) {
            m[i] = b1 * m[i] + (T(1) - b1) * g[i];
            v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
            p[i] -= step * m[i] / (std::sqrt(v[i]) * rc2 + eps);
        }
    }
    void ema(std::int64_t n, T* e, const T* src, T beta) { MapV(e, n) = beta * MapV(e, n) + (T(1) - beta) * CMapV(src, n); }

private:
    /// 0 or a negative count was silently one thread (a caller meaning "every core" got one).
    static int checked_threads(int threads) {
        SGF_CHECK(threads >= 1 && threads <= 4096, ArgumentError,
                  "EigenCpu: threads must be in 1..4096 (std::max(1u, std::thread::hardware_concurrency()) for one per core), got {}",
                  threads);
        return threads;
    }

    static double sigmoid(double t) { return t >= 0 ? 1.0 / (1.0 + std::exp(-t)) : std::exp(t) / (1.0 + std::exp(t)); }
    static bool is_pointwise(const ConvDesc& d) { return d.k == 1 && d.stride == 1 && d.pad == 0; }
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
    // oneDNN is 2-3x faster than im2col + GEMM on the 3x3 and 1x1 shapes of the presets; with 1-3
    // channels on either side (FromRGB, ToRGB) Eigen is faster (docs/performance.md).
    bool on_onednn(const ConvDesc& d) const { return dnn_ && d.c_in >= 8 && d.c_out >= 8; }
#endif

    static std::pair<std::int64_t, std::int64_t> mbstd_groups(const Shape& s, int group) {
        const std::int64_t G = std::min<std::int64_t>(group, s.n);
        SGF_CHECK(G > 0 && s.n % G == 0, ShapeError, "minibatch stddev: batch {} is not divisible by group size {}", s.n,
                  G);
        return {G, s.n / G};
    }

    /// Unfolds one sample into cols [c_in*k*k, out_h*out_w]; returns x itself for 1x1/stride-1 convs.
    static const T* im2col(const ConvDesc& d, const T* x, std::vector<T>& cols) {
        if (is_pointwise(d)) return x;
        const std::int64_t OH = d.out_h(), OW = d.out_w(), P = OH * OW;
        cols.resize(static_cast<std::size_t>(d.c_in * d.k * d.k * P));
        T* col = cols.data();
        for (std::int64_t c = 0; c < d.c_in; ++c)
            for (std::int64_t ky = 0; ky < d.k; ++ky)
                for (std::int64_t kx = 0; kx < d.k; ++kx) {
                    T* row = col + ((c * d.k + ky) * d.k + kx) * P;
                    for (std::int64_t oy = 0; oy < OH; ++oy) {
                        const std::int64_t iy = oy * d.stride - d.pad + ky;
                        T* r = row + oy * OW;
                        if (iy < 0 || iy >= d.h) {
                            std::fill(r, r + OW, T(0));
                            continue;
                        }
                        const T* xr = x + (c * d.h + iy) * d.w;
                        if (d.stride == 1) {
                            // contiguous run: ix = ox - pad + kx
                            const std::int64_t lo = std::max<std::int64_t>(0, d.pad - kx);
                            const std::int64_t hi = std::min<std::int64_t>(OW, d.w + d.pad - kx);
                            for (std::int64_t ox = 0; ox < lo && ox < OW; ++ox) r[ox] = 0;
                            if (hi > lo) std::memcpy(r + lo, xr + lo - d.pad + kx, (hi - lo) * sizeof(T));
                            for (std::int64_t ox = std::max(hi, lo); ox < OW; ++ox) r[ox] = 0;
                        } else {
                            for (std::int64_t ox = 0; ox < OW; ++ox) {
                                const std::int64_t ix = ox * d.stride - d.pad + kx;
                                r[ox] = (ix >= 0 && ix < d.w) ? xr[ix] : T(0);
                            }
                        }
                    }
                }
        return cols.data();
    }

    /// dx = alpha * fold(cols) + beta * dx for one sample.
    static void col2im(const ConvDesc& d, const T* cols, T alpha, T beta, T* dx) {
        const std::int64_t OH = d.out_h(), OW = d.out_w(), P = OH * OW, xs = d.c_in * d.h * d.w;
        if (beta == T(0)) std::fill(dx, dx + xs, T(0));
        else if (beta != T(1)) MapV(dx, xs) *= beta;
        const std::int64_t S = d.stride;
        for (std::int64_t c = 0; c < d.c_in; ++c)
            for (std::int64_t ky = 0; ky < d.k; ++ky)
                for (std::int64_t kx = 0; kx < d.k; ++kx) {
                    const T* row = cols + ((c * d.k + ky) * d.k + kx) * P;
                    // valid output columns: 0 <= ox*S - pad + kx < w
                    const std::int64_t lo = std::max<std::int64_t>(0, (d.pad - kx + S - 1) / S);
                    const std::int64_t last = d.w - 1 + d.pad - kx;  // largest ox*S allowed
                    const std::int64_t hi = last < 0 ? 0 : std::min<std::int64_t>(OW, last / S + 1);
                    if (hi <= lo) continue;
                    for (std::int64_t oy = 0; oy < OH; ++oy) {
                        const std::int64_t iy = oy * S - d.pad + ky;
                        if (iy < 0 || iy >= d.h) continue;
                        T* xr = dx + (c * d.h + iy) * d.w + (lo * S + kx - d.pad);  // ix of ox = lo
                        const T* r = row + oy * OW + lo;
                        const std::int64_t len = hi - lo;
                        if (S == 1)
                            for (std::int64_t j = 0; j < len; ++j) xr[j] += alpha * r[j];
                        else
                            for (std::int64_t j = 0; j < len; ++j) xr[j * S] += alpha * r[j];
                    }
                }
    }

    ThreadPool pool_;
    std::shared_ptr<MemoryPool<T>> mem_;
#if defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
    std::unique_ptr<OneDnnConv> dnn_;  // float32 only; null when SGF_ONEDNN=0
#endif
};

static_assert(sgf::Backend<eigen::Backend<float>>);
static_assert(sgf::Backend<eigen::Backend<double>>);

}  // namespace sgf::eigen

namespace sgf {
using EigenCpu = eigen::Backend<float>;
using EigenCpu64 = eigen::Backend<double>;

template <>
struct Float64Twin<eigen::Backend<float>> {
    static constexpr bool available = true;
    using type = eigen::Backend<double>;
    static type make(const eigen::Backend<float>& b) { return type(b.threads()); }
};
}  // namespace sgf
