// Central-difference gradient checks in float64 for every backend op that has a backward, on the
// reference backend and on eigen::Backend<double>. Each check differentiates the scalar
// f = <op(inputs), g> (g a fixed random projection; for losses f is the returned sum) with respect
// to every coordinate (or a deterministic sample of them) of every differentiable input and
// compares with what the backward op returns.
#include <sgf/backends/reference.hpp>
#if __has_include(<sgf/backends/eigen.hpp>)
#include <sgf/backends/eigen.hpp>
#define SGF_TEST_HAVE_EIGEN 1
#endif

#include <test_util.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace sgf::test {
namespace {

using Vec = std::vector<double>;

constexpr double kEps = 1e-5;  // central-difference step
constexpr double kTol = 1e-6;  // relative error threshold

struct GradReport {
    double worst = 0;  // worst relative error
    std::size_t index = 0;
    double numeric = 0, analytic = 0;
    std::size_t checked = 0;
};

/// Compares `analytic` with central differences of f around x for up to max_coords coordinates
/// (all of them when there are fewer; otherwise a deterministic sample). The relative error is
/// |num - ana| / max(|num|, |ana|, 1e-2 * max_i |ana_i|): the floor keeps coordinates whose
/// gradient is ~0 from turning round-off into a large relative error.
inline GradReport gradient_error(const std::function<double(const Vec&)>& f, Vec x, const Vec& analytic,
                                 std::size_t max_coords = 160, double eps = kEps) {
    GradReport r;
    if (analytic.size() != x.size()) {
        r.worst = INFINITY;
        return r;
    }
    std::vector<std::size_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    if (idx.size() > max_coords) {
        std::mt19937_64 rng(99 + x.size());
        std::shuffle(idx.begin(), idx.end(), rng);
        idx.resize(max_coords);
    }
    double amax = 0;
    for (double a : analytic) amax = std::max(amax, std::abs(a));
    for (std::size_t i : idx) {
        const double keep = x[i];
        x[i] = keep + eps;
        const double fp = f(x);
        x[i] = keep - eps;
        const double fm = f(x);
        x[i] = keep;
        const double num = (fp - fm) / (2 * eps);
        const double err = std::abs(num - analytic[i]) / std::max({std::abs(num), std::abs(analytic[i]), 1e-2 * amax, 1e-12});
        if (!(err <= r.worst)) r = GradReport{err, i, num, analytic[i], r.checked};
        ++r.checked;
    }
    return r;
}

#define SGF_EXPECT_GRAD(F_, X_, A_, W_)                                                                      \
    do {                                                                                                      \
        const auto& ana_ = (A_);                                                                              \
        const GradReport rep_ = gradient_error((F_), (X_), ana_);                                             \
        EXPECT_LT(rep_.worst, kTol) << (W_) << ": worst relative error " << rep_.worst << " at " << rep_.index \
                                    << " (numeric " << rep_.numeric << ", analytic " << rep_.analytic << ", " \
                                    << rep_.checked << " coordinates checked)";                               \
        if (std::getenv("SGF_GRADCHECK_VERBOSE"))                                                             \
            std::printf("  %-60s worst rel err %.2e over %zu coords\n", std::string(W_).c_str(), rep_.worst,  \
                        rep_.checked);                                                                        \
        double mag_ = 0;                                                                                      \
        for (double a_ : ana_) mag_ = std::max(mag_, std::abs(a_));                                           \
        EXPECT_GT(mag_, 1e-6) << (W_) << ": the analytic gradient is ~0, the check would be vacuous";       \
    } while (0)

// ---------------------------------------------------------------------------------- typed fixture

template <class B>
class OpGradients : public ::testing::Test {
protected:
    B b;

    /// Uploads, runs `op(device pointers...)`, downloads `out_n` values of the output.
    typename B::Buffer dev(const Vec& host) {
        auto buf = b.allocate(std::max<std::size_t>(host.size(), 1));
        if (!host.empty()) b.upload(host.data(), host.size(), buf.data());
        return buf;
    }
    Vec host(typename B::Buffer& buf, std::size_t n) {
        Vec v(n);
        if (n) b.download(buf.data(), n, v.data());
        return v;
    }
    static double dot(const Vec& a, const Vec& c) {
        double s = 0;
        for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * c[i];
        return s;
    }
};

using GradBackends = ::testing::Types<reference::Backend
#ifdef SGF_TEST_HAVE_EIGEN
                                      ,
                                      eigen::Backend<double>
#endif
                                      >;
struct GradNames {
    template <class B>
    static std::string GetName(int) {
        std::string s(B::name());
        std::replace(s.begin(), s.end(), '-', '_');
        return s;
    }
};
TYPED_TEST_SUITE(OpGradients, GradBackends, GradNames);

std::string conv_str(const ConvDesc& d) {
    return "conv n=" + std::to_string(d.n) + " c_in=" + std::to_string(d.c_in) + " " + std::to_string(d.h) + "x" +
           std::to_string(d.w) + " c_out=" + std::to_string(d.c_out) + " k=" + std::to_string(d.k) + " stride=" +
           std::to_string(d.stride) + " pad=" + std::to_string(d.pad);
}

// ------------------------------------------------------------------------------------ convolution

TYPED_TEST(OpGradients, Conv2d) {
    const ConvDesc cases[] = {{2, 3, 5, 5, 4, 3, 1, 1}, {1, 2, 6, 7, 3, 3, 2, 1}, {2, 2, 8, 8, 3, 4, 2, 1},
                              {1, 4, 3, 3, 2, 1, 1, 0}, {3, 1, 4, 5, 2, 3, 1, 2}, {1, 3, 5, 4, 2, 4, 1, 0}};
    int seed = 0;
    for (const ConvDesc& d : cases)
        for (double alpha : {1.0, 0.7}) {
            ++seed;
            const std::size_t nx = static_cast<std::size_t>(d.x_shape().size()),
                              nw = static_cast<std::size_t>(d.w_shape().size()),
                              ny = static_cast<std::size_t>(d.y_shape().size());
            const Vec x = random_normal(nx, 10 + seed), w = random_normal(nw, 20 + seed), g = random_normal(ny, 30 + seed);
            auto f = [&](const Vec& xv, const Vec& wv) {
                auto X = this->dev(xv), W = this->dev(wv), Y = this->dev(Vec(ny, 0.0));
                this->b.conv2d_forward(d, alpha, X.data(), W.data(), 0.0, Y.data());
                return TestFixture::dot(this->host(Y, ny), g);
            };
            auto X = this->dev(x), W = this->dev(w), G = this->dev(g), DX = this->dev(Vec(nx)), DW = this->dev(Vec(nw));
            this->b.conv2d_backward_data(d, alpha, G.data(), W.data(), 0.0, DX.data());
            this->b.conv2d_backward_filter(d, alpha, X.data(), G.data(), 0.0, DW.data());
            const std::string what = conv_str(d) + " alpha=" + std::to_string(alpha);
            SGF_EXPECT_GRAD([&](const Vec& v) { return f(v, w); }, x, this->host(DX, nx), what + " d/dx");
            SGF_EXPECT_GRAD([&](const Vec& v) { return f(x, v); }, w, this->host(DW, nw), what + " d/dw");
        }
}

// -------------------------------------------------------------------------------------------- FIR

TYPED_TEST(OpGradients, Fir) {
    std::vector<FirDesc> cases = {FirDesc::up2({2, 2, 3, 4}), FirDesc::down2({1, 3, 6, 6}),
                                  FirDesc::blur({2, 1, 5, 5}, 1, 2, 2.0), FirDesc::blur({1, 2, 4, 6}, 2, 1, 4.0),
                                  FirDesc{1, 2, 5, 3, 2, 2, 3, 0, 1.5}};
    FirDesc asym{1, 2, 4, 5, 2, 1, 1, 2, 0.5};
    asym.taps = {0.1, 0.2, 0.3, 0.4};
    cases.push_back(asym);
    int seed = 0;
    for (const FirDesc& fd : cases) {
        ++seed;
        const std::size_t nx = static_cast<std::size_t>(fd.x_shape().size()), ny = static_cast<std::size_t>(fd.y_shape().size());
        const Vec x = random_normal(nx, 40 + seed), g = random_normal(ny, 50 + seed);
        auto f = [&](const Vec& xv) {
            auto X = this->dev(xv), Y = this->dev(Vec(ny));
            this->b.fir(fd, X.data(), Y.data());
            return TestFixture::dot(this->host(Y, ny), g);
        };
        auto G = this->dev(g), DX = this->dev(Vec(nx));
        this->b.fir_backward(fd, G.data(), DX.data());
        SGF_EXPECT_GRAD(f, x, this->host(DX, nx),
                        "fir up=" + std::to_string(fd.up) + " down=" + std::to_string(fd.down) + " pad=" +
                            std::to_string(fd.pad0) + "," + std::to_string(fd.pad1) + " d/dx");
    }
}

// ----------------------------------------------------------------------------------- bias + act

TYPED_TEST(OpGradients, BiasAct) {
    const Shape s{2, 3, 4, 5};
    const std::size_t n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.c);
    const double bias_scale = 0.7, gain = kSqrt2;
    for (Act act : {Act::linear, Act::lrelu}) {
        const Vec bias = random_normal(c, 61);
        // pre-activations t with |t| in [0.2, 2]: far from the lrelu kink compared with eps
        Vec t = random_uniform(n, 62, 0.2, 2.0), sign = random_uniform(n, 63, -1.0, 1.0), x(n);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t ch = (i / static_cast<std::size_t>(s.plane())) % c;
            x[i] = (sign[i] < 0 ? -t[i] : t[i]) - bias_scale * bias[ch];
        }
        const Vec g = random_normal(n, 64);
        auto f = [&](const Vec& xv, const Vec& bv) {
            auto X = this->dev(xv), Bb = this->dev(bv), Y = this->dev(Vec(n));
            this->b.bias_act(s, X.data(), Bb.data(), bias_scale, act, gain, Y.data());
            return TestFixture::dot(this->host(Y, n), g);
        };
        auto X = this->dev(x), Bb = this->dev(bias), Y = this->dev(Vec(n)), G = this->dev(g), DX = this->dev(Vec(n)),
             DB = this->dev(Vec(c));
        this->b.bias_act(s, X.data(), Bb.data(), bias_scale, act, gain, Y.data());
        this->b.bias_act_backward(s, Y.data(), G.data(), act, gain, DX.data(), DB.data(), bias_scale, 0.0);
        const std::string what = act == Act::lrelu ? "bias_act lrelu" : "bias_act linear";
        SGF_EXPECT_GRAD([&](const Vec& v) { return f(v, bias); }, x, this->host(DX, n), what + " d/dx");
        SGF_EXPECT_GRAD([&](const Vec& v) { return f(x, v); }, bias, this->host(DB, c), what + " d/dbias");
    }
}

// ------------------------------------------------------------------- scale_channels + channel_dot

TYPED_TEST(OpGradients, ScaleChannelsAndChannelDot) {
    const Shape s{3, 4, 3, 5};
    const std::size_t n = static_cast<std::size_t>(s.size()), nc = static_cast<std::size_t>(s.n * s.c);
    const Vec x = random_normal(n, 71), sc = random_normal(nc, 72), g = random_normal(n, 73);
    auto f = [&](const Vec& xv, const Vec& sv) {
        auto X = this->dev(xv), Sc = this->dev(sv), Y = this->dev(Vec(n));
        this->b.scale_channels(s, X.data(), Sc.data(), Y.data());
        return TestFixture::dot(this->host(Y, n), g);
    };
    auto X = this->dev(x), Sc = this->dev(sc), G = this->dev(g), DS = this->dev(Vec(nc)), DX = this->dev(Vec(n));
    this->b.channel_dot(s, X.data(), G.data(), 0.0, DS.data());      // d/ds = sum_hw x * g
    this->b.scale_channels(s, G.data(), Sc.data(), DX.data());       // d/dx = g * s (self-adjoint)
    SGF_EXPECT_GRAD([&](const Vec& v) { return f(v, sc); }, x, this->host(DX, n), "scale_channels d/dx");
    SGF_EXPECT_GRAD([&](const Vec& v) { return f(x, v); }, sc, this->host(DS, nc), "scale_channels d/ds (channel_dot)");
}

// ------------------------------------------------------------------------ add_noise + backward

TYPED_TEST(OpGradients, AddNoise) {
    const Shape s{2, 3, 4, 4};
    const std::size_t n = static_cast<std::size_t>(s.size()), nn = static_cast<std::size_t>(s.n * s.plane());
    const Vec y0 = random_normal(n, 81), noise = random_normal(nn, 82), g = random_normal(n, 83), strength = {0.3};
    auto f = [&](const Vec& yv, const Vec& st) {
        auto Y = this->dev(yv), N = this->dev(noise), St = this->dev(st);
        this->b.add_noise(s, Y.data(), N.data(), St.data());
        return TestFixture::dot(this->host(Y, n), g);
    };
    auto G = this->dev(g), N = this->dev(noise), DS = this->dev(Vec(1));
    this->b.noise_backward(s, G.data(), N.data(), 0.0, DS.data());
    SGF_EXPECT_GRAD([&](const Vec& v) { return f(y0, v); }, strength, this->host(DS, 1), "add_noise d/dstrength");
    SGF_EXPECT_GRAD([&](const Vec& v) { return f(v, strength); }, y0, g, "add_noise d/dy (identity)");
}

// ------------------------------------------------------------------------------ minibatch stddev

TYPED_TEST(OpGradients, MinibatchStddev) {
    struct Case {
        Shape s;
        int group;
    };
    const Case cases[] = {{{8, 3, 2, 2}, 4}, {{8, 2, 2, 3}, 2}, {{2, 3, 3, 3}, 4}, {{6, 2, 2, 2}, 3}, {{4, 1, 1, 1}, 4}};
    int seed = 0;
    for (const Case& c : cases) {
        ++seed;
        const Shape& s = c.s;
        const std::size_t nx = static_cast<std::size_t>(s.size()), ny = static_cast<std::size_t>(s.n * (s.c + 1) * s.plane());
        const Vec x = random_normal(nx, 90 + seed);
        Vec g = random_normal(ny, 95 + seed);
        // weight the stddev channel more so its (small, 1/F-scaled) contribution is well tested
        for (std::int64_t i = 0; i < s.n; ++i)
            for (std::int64_t j = 0; j < s.plane(); ++j)
                g[static_cast<std::size_t>((i * (s.c + 1) + s.c) * s.plane() + j)] *= 5.0;
        auto f = [&](const Vec& xv) {
            auto X = this->dev(xv), Y = this->dev(Vec(ny));
            this->b.mbstd(s, c.group, X.data(), Y.data());
            return TestFixture::dot(this->host(Y, ny), g);
        };
        auto X = this->dev(x), G = this->dev(g), DX = this->dev(Vec(nx));
        this->b.mbstd_backward(s, c.group, X.data(), G.data(), DX.data());
        const Vec dx = this->host(DX, nx);
        SGF_EXPECT_GRAD(f, x, dx, "mbstd " + s.str() + " group " + std::to_string(c.group) + " d/dx");
        // the stddev part must contribute (dx != the pass-through part of g), or the check is vacuous
        double diff = 0;
        for (std::int64_t i = 0; i < s.n; ++i)
            for (std::int64_t j = 0; j < s.sample_size(); ++j)
                diff = std::max(diff, std::abs(dx[static_cast<std::size_t>(i * s.sample_size() + j)] -
                                               g[static_cast<std::size_t>(i * (s.c + 1) * s.plane() + j)]));
        EXPECT_GT(diff, 1e-4) << "mbstd " << s.str() << ": the stddev feature contributes nothing to dx";
    }
}

// ---------------------------------------------------------------------------------------- losses

TYPED_TEST(OpGradients, Losses) {
    const std::size_t n = 24;
    const Vec x = random_uniform(n, 101, -4.0, 4.0), other = random_normal(n, 102);
    Vec bits = random_uniform(n, 103, 0.0, 1.0), soft = random_uniform(n, 104, 0.0, 1.0);
    for (auto& v : bits) v = v < 0.5 ? 0.0 : 1.0;
    const std::int64_t ni = static_cast<std::int64_t>(n);
    for (double grad_scale : {1.0, 0.25}) {
        const std::string gs = " grad_scale=" + std::to_string(grad_scale);
        // the finite difference is of the returned sum; grad = grad_scale * d loss / dx
        auto check = [&](const std::string& what, auto loss_fn, const Vec& at) {
            auto f = [&](const Vec& v) {
                auto X = this->dev(v);
                return loss_fn(X.data(), 1.0, nullptr);
            };
            auto X = this->dev(at), Gr = this->dev(Vec(n));
            const double value = loss_fn(X.data(), grad_scale, Gr.data());
            EXPECT_NEAR(value, f(at), 1e-12 * (1 + std::abs(value))) << what << ": the value depends on grad";
            Vec grad = this->host(Gr, n);
            for (auto& v : grad) v /= grad_scale;
            SGF_EXPECT_GRAD(f, at, grad, what + gs);
        };
        for (double sign : {1.0, -1.0})
            check("softplus_loss sign=" + std::to_string(sign),
                  [&](double* p, double sc, double* gr) { return this->b.softplus_loss(ni, p, sign, sc, gr); }, x);
        for (const Vec* t : {&bits, &soft}) {
            auto T = this->dev(*t);
            check(std::string("bce_logits_loss ") + (t == &bits ? "hard" : "soft") + " targets",
                  [&](double* p, double sc, double* gr) { return this->b.bce_logits_loss(ni, p, T.data(), sc, gr); }, x);
        }
        auto Other = this->dev(other);
        check("mse_loss d/da", [&](double* p, double sc, double* gr) { return this->b.mse_loss(ni, p, Other.data(), sc, gr); },
              x);
    }
}

// ---------------------------------------------------------------- group_sumsq + group_scale_add

TYPED_TEST(OpGradients, GroupSumsqAdjoint) {
    // d/dx <group_sumsq(x, alpha), c> = 2 alpha c[g] x  ==  group_scale_add(c, x, 2 alpha) into 0
    const std::int64_t groups = 6, size = 9;
    const std::size_t n = static_cast<std::size_t>(groups * size);
    const double alpha = 0.3;
    const Vec x = random_normal(n, 111), coef = random_normal(static_cast<std::size_t>(groups), 112);
    auto f = [&](const Vec& v) {
        auto X = this->dev(v), O = this->dev(Vec(static_cast<std::size_t>(groups)));
        this->b.group_sumsq(groups, size, X.data(), alpha, O.data());
        return TestFixture::dot(this->host(O, static_cast<std::size_t>(groups)), coef);
    };
    auto X = this->dev(x), C = this->dev(coef), DX = this->dev(Vec(n, 0.0));
    this->b.group_scale_add(groups, size, C.data(), X.data(), 2 * alpha, DX.data());
    SGF_EXPECT_GRAD(f, x, this->host(DX, n), "group_sumsq d/dx via group_scale_add");
}

// ---------------------------------------------------------------------- the checker can fail

TEST(GradientChecker, DetectsAWrongGradient) {
    // f(x) = sum sin(x_i) x_{i+1}; a correct gradient passes, small errors are caught
    auto f = [](const Vec& x) {
        double s = 0;
        for (std::size_t i = 0; i + 1 < x.size(); ++i) s += std::sin(x[i]) * x[i + 1];
        return s;
    };
    const Vec x = random_normal(12, 5);
    Vec grad(x.size(), 0.0);
    for (std::size_t i = 0; i + 1 < x.size(); ++i) {
        grad[i] += std::cos(x[i]) * x[i + 1];
        grad[i + 1] += std::sin(x[i]);
    }
    EXPECT_LT(gradient_error(f, x, grad).worst, kTol);
    Vec wrong = grad;
    wrong[5] *= 1.0 + 1e-4;
    EXPECT_GT(gradient_error(f, x, wrong).worst, kTol) << "a 1e-4 relative error in one coordinate went unnoticed";
    Vec flipped = grad;
    std::swap(flipped[2], flipped[3]);
    EXPECT_GT(gradient_error(f, x, flipped).worst, kTol);
}

}  // namespace
}  // namespace sgf::test
