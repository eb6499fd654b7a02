// Float32 convolutions of the CPU backend through oneDNN (Debian's libdnnl, built with OpenMP),
// used by sgf::eigen::Backend<float> when sgf is configured with SGF_WITH_ONEDNN (the default when
// libdnnl-dev is installed). The backend contract is unchanged: NCHW activations, OIHW weights,
//   forward:         y  = alpha * conv(x, w)              + beta * y
//   backward data:   dx = alpha * conv^T(dy, w)            + beta * dx
//   backward filter: dw = alpha * sum_n corr(x_n, dy_n)    + beta * dw
//
// Threads: the batch is split over sgf's own thread pool, and every chunk runs oneDNN on one thread
// (OpenMP team size 1). No OpenMP team is ever formed: an OpenMP barrier spins and waits for every
// member, so on a machine where another process holds a core (a build, a second test) each parallel
// region would stall on the preempted thread (measured: a training step 4x slower next to a compile).
// Each pool slot has its own primitives, buffers and user-managed scratchpad, so the chunks share
// nothing but the (read-only) weights. Batches smaller than the pool run on the calling thread.
//
// Layouts: oneDNN picks its own blocked layouts (format_tag::any) and the user's tensors are
// reordered in and out. alpha rides on the weight reorder (forward, backward data) or the
// diff-weights reorder (backward filter), beta on the output reorder's sum post-op. Everything is
// cached per (chunk shape, pool slot): after the first training step no primitive is created again.
#pragma once

#include <sgf/backends/eigen/thread_pool.hpp>
#include <sgf/core/descriptors.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

extern "C" void omp_set_num_threads(int);  // libgomp: oneDNN's CPU runtime here is OpenMP

namespace sgf::eigen {

class OneDnnConv {
public:
    explicit OneDnnConv(ThreadPool& pool) : pool_(pool), eng_(dnnl::engine::kind::cpu, 0) {
        for (int t = 0; t < pool_.size(); ++t) streams_.emplace_back(eng_);
    }

    void forward(const ConvDesc& d, float alpha, const float* x, const float* w, float beta, float* y) {
        const std::lock_guard op(op_mu_);  // the slots' buffers are this op's until it returns
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * d.out_h() * d.out_w();
        chunks(d, [&](Slot& s, std::int64_t n0) {
            if (!s.fwd) s.fwd = std::make_unique<dnnl::convolution_forward>(s.fwd_pd);
            auto src = input(s, 0, s.fwd_pd.src_desc(), s.x_md, x + n0 * xs);
            auto wei = scaled(s, 1, s.fwd_pd.weights_desc(), s.w_md, w, alpha);
            auto dst = output(s, 2, s.fwd_pd.dst_desc(), s.y_md, y + n0 * ys, beta);
            run(s, *s.fwd, s.fwd_pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
            finish(s, 2, dst, s.y_md, y + n0 * ys, 1.0f, beta);
        });
    }

    void backward_data(const ConvDesc& d, float alpha, const float* dy, const float* w, float beta, float* dx) {
        const std::lock_guard op(op_mu_);
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * d.out_h() * d.out_w();
        chunks(d, [&](Slot& s, std::int64_t n0) {
            if (!s.bwd_data) {
                s.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
                    dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, any(s.x_md),
                                                          any(s.w_md), any(s.y_md), s.strides, s.pad, s.pad),
                    user_scratchpad(), eng_, s.fwd_pd);
                s.bwd_data = std::make_unique<dnnl::convolution_backward_data>(s.bwd_data_pd);
            }
            auto& pd = s.bwd_data_pd;
            auto ddst = input(s, 3, pd.diff_dst_desc(), s.y_md, dy + n0 * ys);
            auto wei = scaled(s, 4, pd.weights_desc(), s.w_md, w, alpha);
            auto dsrc = output(s, 5, pd.diff_src_desc(), s.x_md, dx + n0 * xs, beta);
            run(s, *s.bwd_data, pd, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DIFF_SRC, dsrc}});
            finish(s, 5, dsrc, s.x_md, dx + n0 * xs, 1.0f, beta);
        });
    }

    void backward_filter(const ConvDesc& d, float alpha, const float* x, const float* dy, float beta, float* dw) {
        const std::lock_guard op(op_mu_);  // held through the reduction below, which reads the slots after the job
        const std::int64_t xs = d.c_in * d.h * d.w, ys = d.c_out * d.out_h() * d.out_w();
        const std::int64_t nw = d.c_out * d.c_in * d.k * d.k;
        std::vector<Slot*> used(static_cast<std::size_t>(pool_.size()), nullptr);
        chunks(d, [&](Slot& s, std::int64_t n0) {
            if (!s.bwd_w) {
                s.bwd_w_pd = dnnl::convolution_backward_weights::primitive_desc(
                    dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(s.x_md),
                                                             any(s.w_md), any(s.y_md), s.strides, s.pad, s.pad),
                    user_scratchpad(), eng_, s.fwd_pd);
                s.bwd_w = std::make_unique<dnnl::convolution_backward_weights>(s.bwd_w_pd);
                s.dwei = dnnl::memory(s.bwd_w_pd.diff_weights_desc(), eng_);
                s.dwei_plain = dnnl::memory(s.w_md, eng_);
            }
            auto& pd = s.bwd_w_pd;
            auto src = input(s, 6, pd.src_desc(), s.x_md, x + n0 * xs);
            auto ddst = input(s, 7, pd.diff_dst_desc(), s.y_md, dy + n0 * ys);
            run(s, *s.bwd_w, pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, s.dwei}});
            reorder(s, 8, s.dwei, s.dwei_plain, alpha, 0.0f);  // this chunk's alpha * dw, OIHW
            used[static_cast<std::size_t>(s.slot)] = &s;
        });
        // dw = beta * dw + the chunks' partial sums (never 0 * dw: dw may hold NaN when beta is 0)
        bool first = true;
        for (Slot* s : used) {
            if (!s) continue;
            const float* p = static_cast<const float*>(s->dwei_plain.get_data_handle());
            if (first && beta == 0.0f)
                for (std::int64_t i = 0; i < nw; ++i) dw[i] = p[i];
            else if (first)
                for (std::int64_t i = 0; i < nw; ++i) dw[i] = beta * dw[i] + p[i];
            else
                for (std::int64_t i = 0; i < nw; ++i) dw[i] += p[i];
            first = false;
        }
    }

private:
    using dims = dnnl::memory::dims;
    using tag = dnnl::memory::format_tag;
    static constexpr auto f32 = dnnl::memory::data_type::f32;

    // Everything one pool slot needs for one chunk shape.
    struct Slot {
        int slot = 0;
        dnnl::memory::desc x_md, w_md, y_md;  // the user's NCHW / OIHW layouts (chunk batch)
        dims strides, pad;
        dnnl::convolution_forward::primitive_desc fwd_pd;
        dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
        dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
        std::unique_ptr<dnnl::convolution_forward> fwd;
        std::unique_ptr<dnnl::convolution_backward_data> bwd_data;
        std::unique_ptr<dnnl::convolution_backward_weights> bwd_w;
        dnnl::memory dwei, dwei_plain;                          // backward filter: oneDNN's layout, OIHW
        std::map<int, dnnl::memory> buffers;                    // by role: inputs/outputs in oneDNN's layouts
        std::map<std::tuple<int, float, float>, std::pair<dnnl::reorder::primitive_desc, dnnl::reorder>>
            reorders;                                           // by (role, scale, beta)
        std::map<const void*, dnnl::memory> scratch;            // by primitive (user scratchpad mode)
    };
    using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t, int>;

    static dnnl::memory::desc any(const dnnl::memory::desc& md) { return {md.dims(), f32, tag::any}; }
    static dnnl::primitive_attr user_scratchpad() {
        dnnl::primitive_attr a;
        a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        return a;
    }

    // Splits the batch over the pool (one chunk per thread, as ThreadPool::parallel_for does) and
    // calls fn(slot state, first sample) on each chunk's thread.
    template <class Fn>
    void chunks(const ConvDesc& d, Fn&& fn) {
        pool_.parallel_for(d.n, [&](std::int64_t b, std::int64_t e, int t) {
            omp_set_num_threads(1);
            ConvDesc c = d;
            c.n = e - b;
            fn(slot(c, t), b);
        });
    }

    Slot& slot(const ConvDesc& d, int t) {
        const Key key{d.n, d.c_in, d.h, d.w, d.c_out, d.k, d.stride, d.pad, t};
        std::lock_guard lk(mu_);
        auto it = cache_.find(key);
        if (it != cache_.end()) return *it->second;
        auto s = std::make_unique<Slot>();
        s->slot = t;
        s->x_md = {{d.n, d.c_in, d.h, d.w}, f32, tag::nchw};
        s->w_md = {{d.c_out, d.c_in, d.k, d.k}, f32, tag::oihw};
        s->y_md = {{d.n, d.c_out, d.out_h(), d.out_w()}, f32, tag::nchw};
        s->strides = {d.stride, d.stride};
        s->pad = {d.pad, d.pad};
        s->fwd_pd = dnnl::convolution_forward::primitive_desc(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            any(s->x_md), any(s->w_md), any(s->y_md), s->strides, s->pad, s->pad),
            user_scratchpad(), eng_);
        return *cache_.emplace(key, std::move(s)).first->second;
    }

    void run(Slot& s, dnnl::primitive& p, const dnnl::primitive_desc_base& pd,
             std::unordered_map<int, dnnl::memory> args) {
        const dnnl::memory::desc sd = pd.scratchpad_desc();
        if (sd.get_size() > 0) {
            auto it = s.scratch.find(&p);
            if (it == s.scratch.end()) it = s.scratch.emplace(&p, dnnl::memory(sd, eng_)).first;
            args.emplace(DNNL_ARG_SCRATCHPAD, it->second);
        }
        dnnl::stream& strm = streams_[static_cast<std::size_t>(s.slot)];
        p.execute(strm, args);
        strm.wait();
    }

    void reorder(Slot& s, int role, const dnnl::memory& from, const dnnl::memory& to, float scale, float beta) {
        const auto key = std::make_tuple(role, scale, beta);
        auto it = s.reorders.find(key);
        if (it == s.reorders.end()) {
            dnnl::primitive_attr attr = user_scratchpad();
            if (scale != 1.0f) attr.set_output_scales(0, {scale});
            if (beta != 0.0f) {  // never a sum with scale 0: 0 * (uninitialised NaN) would be NaN
                dnnl::post_ops po;
                po.append_sum(beta);
                attr.set_post_ops(po);
            }
            dnnl::reorder::primitive_desc pd(eng_, from.get_desc(), eng_, to.get_desc(), attr);
            dnnl::reorder r(pd);
            it = s.reorders.emplace(key, std::make_pair(std::move(pd), std::move(r))).first;
        }
        run(s, it->second.second, it->second.first, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
    }

    dnnl::memory& buffer(Slot& s, int role, const dnnl::memory::desc& md) {
        auto it = s.buffers.find(role);
        if (it == s.buffers.end()) it = s.buffers.emplace(role, dnnl::memory(md, eng_)).first;
        return it->second;
    }

    // An input in oneDNN's layout: the user's buffer itself when the layouts agree, else a reordered copy.
    dnnl::memory input(Slot& s, int role, const dnnl::memory::desc& want, const dnnl::memory::desc& user,
                       const float* p) {
        dnnl::memory u(user, eng_, const_cast<float*>(p));
        if (want == user) return u;
        dnnl::memory& buf = buffer(s, role, want);
        reorder(s, role, u, buf, 1.0f, 0.0f);
        return buf;
    }

    // Weights in oneDNN's layout, times alpha.
    dnnl::memory scaled(Slot& s, int role, const dnnl::memory::desc& want, const dnnl::memory::desc& user,
                        const float* p, float alpha) {
        dnnl::memory u(user, eng_, const_cast<float*>(p));
        if (alpha == 1.0f && want == user) return u;
        dnnl::memory& buf = buffer(s, role, want);
        reorder(s, role, u, buf, alpha, 0.0f);
        return buf;
    }

    // Where a primitive writes its output: straight into the user's buffer when the layouts agree and
    // nothing is accumulated, else an internal buffer that finish() reorders out.
    dnnl::memory output(Slot& s, int role, const dnnl::memory::desc& want, const dnnl::memory::desc& user, float* p,
                        float beta) {
        if (want == user && beta == 0.0f) return dnnl::memory(user, eng_, p);
        return buffer(s, role, want);
    }

    void finish(Slot& s, int role, const dnnl::memory& out, const dnnl::memory::desc& user, float* p, float scale,
                float beta) {
        if (out.get_data_handle() == p) return;  // written in place
        dnnl::memory u(user, eng_, p);
        reorder(s, role, out, u, scale, beta);
    }

    ThreadPool& pool_;
    dnnl::engine eng_;
    std::vector<dnnl::stream> streams_;  // one per pool slot
    std::mutex mu_;                      // guards cache_ (the Slot objects themselves are per thread)
    std::mutex op_mu_;                   // one op at a time when threads share the backend (slots are reused by shape)
    std::map<Key, std::unique_ptr<Slot>> cache_;
};

}  // namespace sgf::eigen
