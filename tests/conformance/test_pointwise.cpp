// Conformance, part 2: elementwise and per-channel ops, reductions, minibatch stddev, random
// numbers, losses, Adam and EMA on every backend of backend_list.hpp against the reference; and
// the beta contract (overwrite replaces, accumulate adds) on each backend by itself.
#include "harness.hpp"

#include <sgf/core/philox.hpp>

#include <limits>

#include <cmath>
#include <cstring>

namespace sgf::test {
namespace {

template <class Traits>
class PointwiseOps : public Conformance<Traits> {};
TYPED_TEST_SUITE(PointwiseOps, ConformanceBackends, BackendNames);

std::string shape_str(const Shape& s) { return s.str(); }

const Shape kShapes[] = {{1, 1, 1, 1}, {2, 3, 4, 5}, {5, 17, 3, 3}, {3, 8, 16, 16}, {4, 13, 1, 1}, {1, 2, 7, 1}};

// ------------------------------------------------------------------------------------ bias + act

TYPED_TEST(PointwiseOps, BiasAct) {
    int seed = 0;
    for (const Shape& s : kShapes)
        for (Act act : {Act::linear, Act::lrelu})
            for (bool with_bias : {false, true}) {
                ++seed;
                const std::size_t n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.c);
                const auto x = this->rnd(n, 100 + seed), bias = this->rnd(c, 200 + seed);
                const double bs = this->r(0.7), gain = this->r(kSqrt2);
                const std::string what = "bias_act " + shape_str(s) + (act == Act::lrelu ? " lrelu" : " linear") +
                                         (with_bias ? " bias" : " no-bias");
                this->compare(what, this->tol(), [&](auto& b, auto& a) {
                    using S = SGF_SCALAR_OF(b);
                    b.bias_act(s, a.input(x, "x"), with_bias ? a.input(bias, "bias") : nullptr, S(bs), act, S(gain),
                               a.output_nan(n, "y"));
                });
                this->compare(what + " in place", this->tol(), [&](auto& b, auto& a) {
                    using S = SGF_SCALAR_OF(b);
                    auto* y = a.output(x, "x=y");
                    b.bias_act(s, y, with_bias ? a.input(bias, "bias") : nullptr, S(bs), act, S(gain), y);
                });
            }
}

TYPED_TEST(PointwiseOps, BiasActBackward) {
    int seed = 0;
    for (const Shape& s : kShapes)
        for (Act act : {Act::linear, Act::lrelu})
            for (int mode = 0; mode < 3; ++mode) {  // 0: no dbias, 1: dbias overwrite, 2: dbias accumulate
                ++seed;
                const std::size_t n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.c);
                const auto y = this->rnd(n, 300 + seed), dy = this->rnd(n, 400 + seed), db0 = this->rnd(c, 500 + seed);
                const double bs = this->r(0.3), gain = this->r(kSqrt2), beta = mode == 2 ? 1.0 : 0.0;
                const std::string what = "bias_act_backward " + shape_str(s) + (act == Act::lrelu ? " lrelu" : " linear") +
                                         " dbias mode " + std::to_string(mode);
                this->compare(what, this->tol(), [&](auto& b, auto& a) {
                    using S = SGF_SCALAR_OF(b);
                    S* dbias = mode == 0 ? nullptr : mode == 1 ? a.output_nan(c, "dbias") : a.output(db0, "dbias");
                    b.bias_act_backward(s, a.input(y, "y"), a.input(dy, "dy"), act, S(gain), a.output_nan(n, "dx"),
                                        dbias, S(bs), S(beta));
                });
                this->compare(what + " dx aliases dy", this->tol(), [&](auto& b, auto& a) {
                    using S = SGF_SCALAR_OF(b);
                    S* d = a.output(dy, "dy=dx");
                    S* dbias = mode == 0 ? nullptr : mode == 1 ? a.output_nan(c, "dbias") : a.output(db0, "dbias");
                    b.bias_act_backward(s, a.input(y, "y"), d, act, S(gain), d, dbias, S(bs), S(beta));
                });
            }
}

// ------------------------------------------------------------------------------ per-channel ops

TYPED_TEST(PointwiseOps, ScaleChannelsChannelDotNoise) {
    int seed = 0;
    for (const Shape& s : kShapes) {
        ++seed;
        const std::size_t n = static_cast<std::size_t>(s.size()), nc = static_cast<std::size_t>(s.n * s.c),
                          nn = static_cast<std::size_t>(s.n * s.plane());
        const auto x = this->rnd(n, 10 + seed), x2 = this->rnd(n, 20 + seed), sc = this->rnd(nc, 30 + seed),
                   out0 = this->rnd(nc, 40 + seed), noise = this->rnd(nn, 50 + seed), st = this->rnd(1, 60 + seed),
                   ds0 = this->rnd(1, 70 + seed);
        const std::string ss = " " + shape_str(s);
        this->compare("scale_channels" + ss, this->tol(), [&](auto& b, auto& a) {
            b.scale_channels(s, a.input(x, "x"), a.input(sc, "s"), a.output_nan(n, "y"));
        });
        this->compare("scale_channels in place" + ss, this->tol(), [&](auto& b, auto& a) {
            auto* y = a.output(x, "x=y");
            b.scale_channels(s, y, a.input(sc, "s"), y);
        });
        for (double beta : {0.0, 1.0, 0.5}) {
            const std::string bstr = " beta=" + std::to_string(beta);
            this->compare("channel_dot" + ss + bstr, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                b.channel_dot(s, a.input(x, "a"), a.input(x2, "b"), S(beta),
                              beta == 0.0 ? a.output_nan(nc, "out") : a.output(out0, "out"));
            });
            this->compare("noise_backward" + ss + bstr, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                b.noise_backward(s, a.input(x, "dy"), a.input(noise, "noise"), S(beta),
                                 beta == 0.0 ? a.output_nan(1, "ds") : a.output(ds0, "ds"));
            });
        }
        this->compare("add_noise" + ss, this->tol(), [&](auto& b, auto& a) {
            b.add_noise(s, a.output(x, "y"), a.input(noise, "noise"), a.input(st, "strength"));
        });
    }
}

// ------------------------------------------------------------------------------ flat elementwise

TYPED_TEST(PointwiseOps, FlatElementwise) {
    for (std::int64_t n : {1, 7, 64, 1000, 4099}) {
        const std::size_t un = static_cast<std::size_t>(n);
        const auto x = this->rnd(un, 1 + n), y0 = this->rnd(un, 2 + n), pos = this->rndu(un, 3 + n, 0.05, 4.0);
        const std::string ns = " n=" + std::to_string(n);
        for (auto [alpha, beta] : {std::pair{1.0, 0.0}, {0.37, 0.0}, {1.0, 1.0}, {-1.3, 0.6}, {0.0, 1.0}}) {
            const double al = this->r(alpha), be = this->r(beta);
            this->compare("axpby" + ns + " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta), this->tol(),
                          [&](auto& b, auto& a) {
                              using S = SGF_SCALAR_OF(b);
                              b.axpby(n, S(al), a.input(x, "x"), S(be), be == 0.0 ? a.output_nan(un, "y") : a.output(y0, "y"));
                          });
        }
        this->compare("mul" + ns, this->tol(),
                      [&](auto& b, auto& a) { b.mul(n, a.input(x, "a"), a.input(y0, "b"), a.output_nan(un, "y")); });
        this->compare("rsqrt_eps" + ns, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.rsqrt_eps(n, a.input(pos, "x"), S(1e-8), a.output_nan(un, "y"));
        });
        this->compare("rsqrt_eps big eps" + ns, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.rsqrt_eps(n, a.input(pos, "x"), S(0.5), a.output_nan(un, "y"));
        });
        this->compare("square" + ns, this->tol(),
                      [&](auto& b, auto& a) { b.square(n, a.input(x, "x"), a.output_nan(un, "y")); });
        // clamp: inputs on both sides of the bounds and exactly on them (the mask includes the bounds)
        auto xc = this->rnd(un, 4 + n, 1.5);
        for (std::size_t i = 0; i < un; i += 5) xc[i] = (i % 10 == 0) ? 1.0 : -1.0;
        for (auto [lo, hi] : {std::pair{-1.0, 1.0}, {-0.3, 0.8}, {0.5, 0.5}}) {
            const std::string bounds = ns + " [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
            this->compare("clamp" + bounds, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                b.clamp(n, a.input(xc, "x"), S(this->r(lo)), S(this->r(hi)), a.output_nan(un, "y"), a.output_nan(un, "mask"));
            });
            this->compare("clamp in place, no mask" + bounds, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                auto* y = a.output(xc, "x=y");
                b.clamp(n, y, S(this->r(lo)), S(this->r(hi)), y, nullptr);
            });
            // the mask must come from x before y overwrites it
            this->compare("clamp in place, with mask" + bounds, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                auto* y = a.output(xc, "x=y");
                b.clamp(n, y, S(this->r(lo)), S(this->r(hi)), y, a.output_nan(un, "mask"));
            });
        }
        // quantize_u8: inputs beyond [-1, 1] and exactly on an 8-bit level (mid-points between levels
        // are not exact in binary and would test float rounding of the input, not the op)
        auto xq = this->rnd(un, 5 + n, 1.3);
        for (std::size_t i = 0; i < un; i += 7) xq[i] = double(from_u8(std::uint8_t((i * 37) % 256)));
        this->compare("quantize_u8" + ns, this->tol(),
                      [&](auto& b, auto& a) { b.quantize_u8(n, a.input(xq, "x"), a.output_nan(un, "y")); });
        this->compare("quantize_u8 in place" + ns, this->tol(), [&](auto& b, auto& a) {
            auto* y = a.output(xq, "x=y");
            b.quantize_u8(n, y, y);
        });
        this->compare("ema" + ns, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.ema(n, a.output(y0, "ema"), a.input(x, "src"), S(this->r(0.999)));
        });
        this->compare("ema beta 0.5" + ns, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.ema(n, a.output(y0, "ema"), a.input(x, "src"), S(0.5));
        });
    }
    struct G {
        std::int64_t groups, size;
    };
    for (const G& g : {G{1, 1}, G{37, 9}, G{5, 1}, G{128, 16}, G{3, 250}}) {
        const std::size_t n = static_cast<std::size_t>(g.groups * g.size), ng = static_cast<std::size_t>(g.groups);
        const auto x = this->rnd(n, 5 + n), coef = this->rnd(ng, 6 + ng), y0 = this->rnd(n, 7 + n);
        const double alpha = this->r(0.3);
        const std::string gs = " groups=" + std::to_string(g.groups) + " size=" + std::to_string(g.size);
        this->compare("group_sumsq" + gs, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.group_sumsq(g.groups, g.size, a.input(x, "x"), S(alpha), a.output_nan(ng, "out"));
        });
        this->compare("group_scale_add" + gs, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.group_scale_add(g.groups, g.size, a.input(coef, "coef"), a.input(x, "x"), S(alpha), a.output(y0, "y"));
        });
    }
}

// ------------------------------------------------------------------------------------ reductions

TYPED_TEST(PointwiseOps, Reductions) {
    for (std::int64_t n : {1, 7, 1000, 10007}) {
        const std::size_t un = static_cast<std::size_t>(n);
        const auto x = this->rnd(un, 31 + n), y = this->rnd(un, 32 + n);
        const std::string ns = " n=" + std::to_string(n);
        this->compare("sum" + ns, this->tol(), [&](auto& b, auto& a) { a.scalar(b.sum(n, a.input(x, "x"))); });
        this->compare("dot" + ns, this->tol(),
                      [&](auto& b, auto& a) { a.scalar(b.dot(n, a.input(x, "a"), a.input(y, "b"))); });
    }
    struct RC {
        std::int64_t rows, cols;
    };
    for (const RC& rc : {RC{1, 1}, RC{1, 9}, RC{16, 1}, RC{7, 33}, RC{128, 65}}) {
        const std::size_t n = static_cast<std::size_t>(rc.rows * rc.cols), nc = static_cast<std::size_t>(rc.cols);
        const auto x = this->rnd(n, 41 + n), o0 = this->rnd(nc, 42 + nc);
        for (double beta : {0.0, 1.0, 0.5})
            this->compare("sum_rows rows=" + std::to_string(rc.rows) + " cols=" + std::to_string(rc.cols) +
                              " beta=" + std::to_string(beta),
                          this->tol(), [&](auto& b, auto& a) {
                              using S = SGF_SCALAR_OF(b);
                              b.sum_rows(rc.rows, rc.cols, a.input(x, "x"), S(beta),
                                         beta == 0.0 ? a.output_nan(nc, "out") : a.output(o0, "out"));
                          });
    }
}

TYPED_TEST(PointwiseOps, AllFinite) {
    const double inf = std::numeric_limits<double>::infinity();
    for (std::size_t n : {std::size_t(1), std::size_t(8), std::size_t(1000)}) {
        const auto x = this->rnd(n, 77 + n);
        {
            Arena<typename TestFixture::B> a(this->be());
            EXPECT_TRUE(this->be().all_finite(static_cast<std::int64_t>(n), a.input(x, "x"))) << "n=" << n;
            // the NaN guard tail right after the data must not be looked at
            a.results("all_finite");
        }
        for (double bad : {kNaN, inf, -inf})
            for (std::size_t pos : {std::size_t(0), n / 2, n - 1}) {
                auto xb = x;
                xb[pos] = bad;
                Arena<typename TestFixture::B> a(this->be());
                EXPECT_FALSE(this->be().all_finite(static_cast<std::int64_t>(n), a.input(xb, "x")))
                    << "n=" << n << " value " << bad << " at " << pos << " not detected";
                a.results("all_finite");
            }
    }
}

// clamp on non-finite input (compare() rejects non-finite values, so checked directly): NaN stays
// NaN with mask 0, +-Inf clamp to the bounds with mask 0
TYPED_TEST(PointwiseOps, ClampNonFinite) {
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<double> x{kNaN, inf, -inf, 0.5, -1.0, 1.0, 3.0};
    Arena<typename TestFixture::B> a(this->be());
    using S = typename TestFixture::T;
    const S* in = a.input(x, "x");
    S* y_out = a.output_nan(x.size(), "y");  // declared in this order: results() returns y, then mask
    S* mask_out = a.output_nan(x.size(), "mask");
    this->be().clamp(std::int64_t(x.size()), in, S(-1), S(1), y_out, mask_out);
    const auto r = a.results("clamp non-finite");
    const auto &y = r[0], &mask = r[1];
    EXPECT_TRUE(std::isnan(y[0]));
    const std::vector<double> want_y{1.0, -1.0, 0.5, -1.0, 1.0, 1.0}, want_mask{0, 0, 0, 1, 1, 1, 0};
    for (std::size_t i = 1; i < x.size(); ++i) EXPECT_EQ(y[i], want_y[i - 1]) << "x = " << x[i];
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(mask[i], want_mask[i]) << "x = " << x[i];
}

// quantize_u8 against the image writer itself (to_u8 then from_u8, core/shape.hpp) on values around
// every level boundary, the ends of the range and non-finite input (NaN and -inf -> -1, +inf -> 1)
TYPED_TEST(PointwiseOps, QuantizeU8MatchesTheImageWriter) {
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> x{kNaN, inf, -inf, -1.0, 1.0, -1.2, 1.2, 0.0, 1e30, -1e30};
    for (int u = 0; u < 255; ++u) {  // just below, on and just above the mid-point between levels u and u + 1
        const float mid = (float(u) + 0.5f) / 127.5f - 1.0f;
        for (float m : {std::nextafter(mid, -2.0f), mid, std::nextafter(mid, 2.0f)}) x.push_back(double(m));
    }
    Arena<typename TestFixture::B> a(this->be());
    using S = typename TestFixture::T;
    const S* in = a.input(x, "x");
    S* y_out = a.output_nan(x.size(), "y");
    this->be().quantize_u8(std::int64_t(x.size()), in, y_out);
    const auto y = a.results("quantize_u8 boundaries")[0];
    int levels_changed = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double want = double(from_u8(to_u8(float(x[i]))));
        EXPECT_EQ(y[i], want) << "x = " << x[i];
        if (i >= 10 && y[i] != y[i - 1]) ++levels_changed;
    }
    EXPECT_EQ(y[0], -1.0) << "NaN";
    EXPECT_EQ(y[1], 1.0) << "+inf";
    EXPECT_EQ(y[2], -1.0) << "-inf";
    EXPECT_GE(levels_changed, 250) << "the probes must cross the level boundaries";
}

// ------------------------------------------------------------------------------ minibatch stddev

struct MbstdCase {
    Shape s;
    int group;
};
const MbstdCase kMbstd[] = {
    {{8, 3, 4, 4}, 4}, {{8, 3, 4, 4}, 2}, {{2, 5, 4, 4}, 4},  // N=2 < group: G = 2
    {{4, 2, 3, 5}, 4}, {{6, 1, 2, 2}, 3}, {{1, 3, 2, 2}, 4},  // G = 1: zero variance
    {{3, 2, 2, 2}, 4}, {{8, 16, 4, 4}, 4}, {{16, 7, 1, 1}, 4}};

TYPED_TEST(PointwiseOps, MinibatchStddev) {
    int seed = 0;
    for (const MbstdCase& c : kMbstd) {
        ++seed;
        const Shape& s = c.s;
        const std::size_t nx = static_cast<std::size_t>(s.size()), ny = static_cast<std::size_t>(s.n * (s.c + 1) * s.plane());
        const auto x = this->rnd(nx, 900 + seed), dy = this->rnd(ny, 950 + seed);
        const std::string what = " " + shape_str(s) + " group=" + std::to_string(c.group);
        this->compare("mbstd" + what, this->tol(),
                      [&](auto& b, auto& a) { b.mbstd(s, c.group, a.input(x, "x"), a.output_nan(ny, "y")); });
        this->compare("mbstd_backward" + what, this->tol(), [&](auto& b, auto& a) {
            b.mbstd_backward(s, c.group, a.input(x, "x"), a.input(dy, "dy"), a.output_nan(nx, "dx"));
        });
        // the stddev path alone (dy zero on the pass-through channels), so that a small error in it
        // is not hidden under the much larger pass-through part
        auto dy_feat = dy;
        for (std::int64_t i = 0; i < s.n; ++i)
            for (std::int64_t j = 0; j < s.sample_size(); ++j) dy_feat[static_cast<std::size_t>(i * (s.c + 1) * s.plane() + j)] = 0.0;
        this->compare("mbstd_backward stddev path" + what, this->tol(), [&](auto& b, auto& a) {
            b.mbstd_backward(s, c.group, a.input(x, "x"), a.input(dy_feat, "dy"), a.output_nan(nx, "dx"));
        });
    }
}

TYPED_TEST(PointwiseOps, MinibatchStddevSemantics) {
    // Hand-computed: N=4, group 2 -> G=2, M=2; column m holds samples m and m+2 (n = g*M + m).
    const Shape s{4, 1, 1, 2};
    const std::vector<double> x = {0, 1, 10, 20, 2, 1, 10, 24};  // sample n = x[2n..2n+1]
    Arena<typename TestFixture::B> a(this->be());
    this->be().mbstd(s, 2, a.input(x), a.output_nan(16));
    const auto y = a.results("mbstd by hand")[0];
    // column 0: samples 0, 2 -> elementwise (0,2): std 1, (1,1): std 0
    // column 1: samples 1, 3 -> (10,10): std 0, (20,24): std 2       (std = sqrt(var + 1e-8))
    const double f0 = (std::sqrt(1 + 1e-8) + std::sqrt(1e-8)) / 2, f1 = (std::sqrt(1e-8) + std::sqrt(4 + 1e-8)) / 2;
    const std::vector<double> want = {0, 1, f0, f0, 10, 20, f1, f1, 2, 1, f0, f0, 10, 24, f1, f1};
    ASSERT_EQ(y.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6 * (1 + std::abs(want[i]))) << "y[" << i << "]";
}

TYPED_TEST(PointwiseOps, MinibatchStddevRejectsIndivisibleBatch) {
    auto& b = this->be();
    auto x = b.allocate(1024), y = b.allocate(1024);
    EXPECT_THROW(b.mbstd({6, 2, 2, 2}, 4, x.data(), y.data()), sgf::ShapeError);
    EXPECT_THROW(b.mbstd({5, 2, 2, 2}, 2, x.data(), y.data()), sgf::ShapeError);
    EXPECT_THROW(b.mbstd_backward({6, 2, 2, 2}, 4, x.data(), y.data(), x.data()), sgf::ShapeError);
}

// -------------------------------------------------------------------------------- random numbers

const RngKey kKeys[] = {
    {0, 0, 0},
    {0xDEADBEEFCAFEF00DULL, 7, 123},
    {42, (1ULL << 33) + 5, (1ULL << 32) - 3},  // counter crosses the 32-bit boundary inside the draw
    {1, 2, 3},
};

TYPED_TEST(PointwiseOps, RandomIsBitIdenticalToPhilox) {
    using T = typename TestFixture::T;
    // A backend whose normal() rests on math functions that are not correctly rounded (CUDA's
    // double log/cos) declares how many units in the last place its normals may be off; uniform and
    // bits stay bit-exact everywhere.
    constexpr double normal_ulps = [] {
        if constexpr (requires { TypeParam::rng_normal_ulps; }) return double(TypeParam::rng_normal_ulps);
        else return 0.0;
    }();
    auto matches = [&](int j, double got, double want) {
        if (j != 0 || normal_ulps == 0) return same_bits(got, want);
        return std::abs(got - want) <= normal_ulps * double(std::numeric_limits<T>::epsilon()) * std::max(1.0, std::abs(want));
    };
    for (const RngKey& k : kKeys)
        for (std::int64_t n : {1, 7, 1003}) {
            const std::size_t un = static_cast<std::size_t>(n);
            Arena<typename TestFixture::B> a(this->be());
            this->be().normal(k, n, a.output_nan(un, "normal"));
            this->be().uniform(k, n, a.output_nan(un, "uniform"));
            this->be().bits(k, n, a.output_nan(un, "bits"));
            const auto r = a.results("rng");
            const std::string what = "key seed=" + std::to_string(k.seed) + " stream=" + std::to_string(k.stream) +
                                     " offset=" + std::to_string(k.offset) + " n=" + std::to_string(n);
            std::size_t bad[3] = {0, 0, 0}, first[3] = {un, un, un};
            for (std::size_t i = 0; i < un; ++i) {
                const double want[3] = {double(T(philox::normal(k, i))), double(T(philox::uniform(k, i))),
                                        double(T(philox::bit(k, i)))};
                for (int j = 0; j < 3; ++j)
                    // bit-for-bit (note: GCC 12 -O3 miscompiles memcmp against this local array)
                    if (!matches(j, r[static_cast<std::size_t>(j)][i], want[j])) {
                        if (!bad[j]++) first[j] = i;
                    }
            }
            const char* names[3] = {"normal", "uniform", "bits"};
            for (int j = 0; j < 3; ++j)
                EXPECT_EQ(bad[j], 0u) << names[j] << " " << what << ": " << bad[j] << " values differ from philox, first at "
                                      << first[j];
        }
}

TYPED_TEST(PointwiseOps, RandomStatistics) {
    constexpr std::int64_t n = 100000;
    const std::size_t un = static_cast<std::size_t>(n);
    Arena<typename TestFixture::B> a(this->be());
    const RngKey k{2024, 3, 0};
    this->be().normal(k, n, a.output_nan(un, "normal"));
    this->be().uniform(k, n, a.output_nan(un, "uniform"));
    this->be().bits(k, n, a.output_nan(un, "bits"));
    this->be().normal(RngKey{2024, 4, 0}, n, a.output_nan(un, "normal other stream"));
    const auto r = a.results("rng statistics");
    auto moments = [](const std::vector<double>& v) {
        double m = 0, q = 0;
        for (double x : v) m += x;
        m /= double(v.size());
        for (double x : v) q += (x - m) * (x - m);
        return std::pair{m, q / double(v.size())};
    };
    const double se = 1.0 / std::sqrt(double(n));
    {  // N(0,1): mean within 5 standard errors, variance within 5 standard errors (sd of s^2 = sqrt(2/n))
        const auto [m, v] = moments(r[0]);
        EXPECT_LT(std::abs(m), 5 * se) << "normal mean " << m;
        EXPECT_LT(std::abs(v - 1.0), 5 * std::sqrt(2.0) * se) << "normal variance " << v;
        std::size_t inside = 0;
        for (double x : r[0]) inside += std::abs(x) < 1.0;
        const double p = 0.6826894921370859;
        EXPECT_LT(std::abs(double(inside) / double(n) - p), 5 * std::sqrt(p * (1 - p)) * se) << "P(|z| < 1)";
    }
    {  // U(0,1)
        const auto [m, v] = moments(r[1]);
        EXPECT_LT(std::abs(m - 0.5), 5 * std::sqrt(1.0 / 12.0) * se) << "uniform mean " << m;
        EXPECT_LT(std::abs(v - 1.0 / 12.0), 5 * std::sqrt(1.0 / 180.0) * se) << "uniform variance " << v;
        for (double x : r[1]) {
            ASSERT_GT(x, 0.0);
            ASSERT_LE(x, 1.0);
        }
    }
    {  // Bernoulli(1/2)
        const auto [m, v] = moments(r[2]);
        EXPECT_LT(std::abs(m - 0.5), 5 * 0.5 * se) << "bits mean " << m;
        for (double x : r[2]) ASSERT_TRUE(x == 0.0 || x == 1.0) << x;
        (void)v;
    }
    {  // streams are independent: correlation ~ 0
        double c = 0;
        for (std::size_t i = 0; i < un; ++i) c += r[0][i] * r[3][i];
        EXPECT_LT(std::abs(c / double(n)), 5 * se) << "streams 3 and 4 are correlated";
    }
}

// ------------------------------------------------------------------------------------------ losses

TYPED_TEST(PointwiseOps, Losses) {
    for (std::int64_t n : {1, 16, 1000}) {
        const std::size_t un = static_cast<std::size_t>(n);
        // logits include large magnitudes: the loss must stay finite and accurate (stable softplus)
        auto x = this->rnd(un, 61 + n, 3.0);
        for (std::size_t i = 0; i < un; i += 17) x[i] = this->r(i % 2 ? 45.0 + double(i % 7) : -50.0 - double(i % 5));
        const auto t_bits = [&] {
            auto t = this->rndu(un, 62 + n, 0.0, 1.0);
            for (auto& v : t) v = v < 0.5 ? 0.0 : 1.0;
            return t;
        }();
        const auto t_soft = this->rndu(un, 63 + n, 0.0, 1.0), other = this->rnd(un, 64 + n);
        const double gs = this->r(0.25);
        const std::string ns = " n=" + std::to_string(n);
        for (double sign : {1.0, -1.0}) {
            this->compare("softplus_loss" + ns + " sign=" + std::to_string(sign), this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                a.scalar(b.softplus_loss(n, a.input(x, "x"), S(sign), S(gs), a.output_nan(un, "grad")));
                a.scalar(b.softplus_loss(n, a.input(x, "x"), S(sign), S(gs), nullptr));
            });
        }
        for (const auto* t : {&t_bits, &t_soft})
            this->compare("bce_logits_loss" + ns + (t == &t_bits ? " hard targets" : " soft targets"), this->tol(),
                          [&](auto& b, auto& a) {
                              using S = SGF_SCALAR_OF(b);
                              a.scalar(b.bce_logits_loss(n, a.input(x, "logits"), a.input(*t, "targets"), S(gs),
                                                         a.output_nan(un, "grad")));
                              a.scalar(b.bce_logits_loss(n, a.input(x, "logits"), a.input(*t, "targets"), S(gs), nullptr));
                          });
        this->compare("mse_loss" + ns, this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            a.scalar(b.mse_loss(n, a.input(other, "a"), a.input(x, "b"), S(gs), a.output_nan(un, "grad")));
            a.scalar(b.mse_loss(n, a.input(other, "a"), a.input(x, "b"), S(gs), nullptr));
        });
    }
}

// -------------------------------------------------------------------------------------- optimiser

TYPED_TEST(PointwiseOps, AdamSeveralSteps) {
    for (std::int64_t n : {1, 257}) {
        const std::size_t un = static_cast<std::size_t>(n);
        for (const AdamParams& h : {AdamParams{0.002, 0.0, 0.99, 1e-8}, AdamParams{0.01, 0.9, 0.999, 1e-6},
                                    AdamParams{0.0016, 0.0, 0.992, 1e-8}}) {
            const auto p0 = this->rnd(un, 71 + n);
            std::vector<std::vector<double>> grads;
            for (int t = 0; t < 6; ++t) grads.push_back(this->rnd(un, 80 + 10 * n + t, t == 3 ? 1e-3 : 1.0));
            const std::string what = "adam n=" + std::to_string(n) + " lr=" + std::to_string(h.lr) +
                                     " beta1=" + std::to_string(h.beta1) + " beta2=" + std::to_string(h.beta2);
            // compare the parameter CHANGE (p - p0) so the test sees the update, not p's rounding
            reference::Backend ref;
            auto run = [&](auto& b, auto& a) {
                auto* p = a.output(p0, "param");
                auto* m = a.output(std::vector<double>(un, 0.0), "m");
                auto* v = a.output(std::vector<double>(un, 0.0), "v");
                for (std::size_t t = 0; t < grads.size(); ++t)
                    b.adam_step(n, p, a.input(grads[t], "grad"), m, v, h, static_cast<std::int64_t>(t + 1));
            };
            auto exp = TestFixture::run_on(ref, run, what);
            auto act = TestFixture::run_on(this->be(), run, what);
            for (std::size_t i = 0; i < un; ++i) exp[0][i] -= p0[i], act[0][i] -= p0[i];
            const char* names[3] = {"param change", "m", "v"};
            for (int j = 0; j < 3; ++j) {
                EXPECT_CLOSE_NMSE(act[static_cast<std::size_t>(j)], exp[static_cast<std::size_t>(j)], this->tol(),
                                  what + " " + names[j]);
                EXPECT_TRUE(all_finite(act[static_cast<std::size_t>(j)])) << what << " " << names[j];
            }
        }
    }
}

// ---------------------------------------------------------------------- beta: overwrite vs accumulate

/// For an op with a beta output, on the backend under test alone:
///   overwrite (beta 0) into NaN == overwrite into garbage  (replaces, never reads),
///   accumulate (beta 1) into P == P + overwrite result      (adds),
///   beta 0.5 into P            == 0.5 P + overwrite result.
template <class Fixture, class Op>
void check_beta(Fixture& fx, const std::string& what, std::size_t out_n, Op op) {
    using B = typename Fixture::B;
    using S = typename B::Scalar;
    std::vector<double> P;
    auto run = [&](double beta, bool nan_init) {
        Arena<B> a(fx.be());
        S* out = nan_init ? a.output_nan(out_n, "out") : a.output(P, "out");
        op(fx.be(), a, S(beta), out);
        return a.results(what)[0];
    };
    const auto over = run(0.0, true);
    // old contents of the same magnitude as the result, so that accumulate visibly differs
    double rms = 0;
    for (double v : over) rms += v * v / double(out_n);
    P = fx.rnd(out_n, 4242 + out_n, std::max(1.0, std::sqrt(rms)));
    for (auto& v : P) v = fx.r(v < 0 ? v - 0.5 : v + 0.5);
    const auto over2 = run(0.0, false), acc = run(1.0, false), half = run(0.5, false);
    ASSERT_TRUE(all_finite(over)) << what << ": overwrite (beta = 0) read the NaN-filled output";
    EXPECT_CLOSE_NMSE(over2, over, fx.tol(), what + ": overwrite must ignore the old contents");
    std::vector<double> want_acc(out_n), want_half(out_n);
    for (std::size_t i = 0; i < out_n; ++i) want_acc[i] = P[i] + over[i], want_half[i] = 0.5 * P[i] + over[i];
    EXPECT_CLOSE_NMSE(acc, want_acc, fx.tol(), what + ": accumulate (beta = 1) must add to the old contents");
    EXPECT_CLOSE_NMSE(half, want_half, fx.tol(), what + ": beta = 0.5");
    // and accumulate must actually differ from overwrite (the test is not vacuous)
    EXPECT_GT(nmse(acc, over), 1e-3) << what;
}

TYPED_TEST(PointwiseOps, BetaOverwriteReplacesAccumulateAdds) {
    const ConvDesc d{3, 5, 6, 7, 4, 3, 1, 1};
    const std::size_t nx = static_cast<std::size_t>(d.x_shape().size()), nw = static_cast<std::size_t>(d.w_shape().size()),
                      ny = static_cast<std::size_t>(d.y_shape().size());
    const auto x = this->rnd(nx, 1), w = this->rnd(nw, 2), dy = this->rnd(ny, 3);
    check_beta(*this, "conv2d_backward_filter", nw, [&](auto& b, auto& a, auto beta, auto* out) {
        b.conv2d_backward_filter(d, 1, a.input(x), a.input(dy), beta, out);
    });
    check_beta(*this, "conv2d_backward_data", nx, [&](auto& b, auto& a, auto beta, auto* out) {
        b.conv2d_backward_data(d, 1, a.input(dy), a.input(w), beta, out);
    });
    check_beta(*this, "conv2d_forward", ny, [&](auto& b, auto& a, auto beta, auto* out) {
        b.conv2d_forward(d, 1, a.input(x), a.input(w), beta, out);
    });
    const Shape s{3, 4, 5, 5};
    const std::size_t n = static_cast<std::size_t>(s.size());
    const auto y = this->rnd(n, 4), g = this->rnd(n, 5), noise = this->rnd(static_cast<std::size_t>(s.n * s.plane()), 6);
    for (Act act : {Act::linear, Act::lrelu})
        check_beta(*this, act == Act::lrelu ? "bias_act_backward dbias lrelu" : "bias_act_backward dbias linear",
                   static_cast<std::size_t>(s.c), [&](auto& b, auto& a, auto beta, auto* out) {
                       b.bias_act_backward(s, a.input(y), a.input(g), act, 1.5, a.output_nan(n, "dx"), out, 0.5, beta);
                   });
    check_beta(*this, "channel_dot", static_cast<std::size_t>(s.n * s.c), [&](auto& b, auto& a, auto beta, auto* out) {
        b.channel_dot(s, a.input(y), a.input(g), beta, out);
    });
    check_beta(*this, "sum_rows", static_cast<std::size_t>(s.plane()), [&](auto& b, auto& a, auto beta, auto* out) {
        b.sum_rows(s.n * s.c, s.plane(), a.input(y), beta, out);
    });
    check_beta(*this, "noise_backward", 1, [&](auto& b, auto& a, auto beta, auto* out) {
        b.noise_backward(s, a.input(g), a.input(noise), beta, out);
    });
    check_beta(*this, "axpby", n, [&](auto& b, auto& a, auto beta, auto* out) {
        b.axpby(static_cast<std::int64_t>(n), 0.75, a.input(y), beta, out);
    });
    check_beta(*this, "gemm", 35, [&](auto& b, auto& a, auto beta, auto* out) {
        b.gemm(false, true, 5, 7, 9, 1, a.input(y), 9, a.input(g), 9, beta, out, 7);
    });
}

}  // namespace
}  // namespace sgf::test
