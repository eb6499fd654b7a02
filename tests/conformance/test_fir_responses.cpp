// FirDesc::up2 and FirDesc::down2 (StyleGAN2's upsample2d / downsample2d) against responses
// worked out by hand from the upfirdn2d definition (docs/architecture.md, "Resampling"), on every
// backend of backend_list.hpp. The other FIR tests compare backends with the reference backend or
// check output sizes only; these pin down the values themselves.
//
// Both presets filter with f = [1,3,3,1]/8 along each axis; the inputs below are separable (an
// impulse) or sums of separable terms (a ramp), so each 2-D response is built from 1-D ones:
//
// up2 (up 2, pad 2/1, gain 4 = 2 x 2 per axis): length L -> 2L, y[m] = sum_a 2 f[a] u[m + a - 2]
//   with u[2j] = x[j], u[2j+1] = 0.
//   impulse at j: y[2j-1 .. 2j+2] = [1, 3, 3, 1] / 4 (clipped at the borders)
//   constant 1:   [3/4, 1, 1, ..., 1, 3/4]
//   ramp x[j]=j:  y[m] = (m - 1/2) / 2 inside (pixel m sits at input coordinate (m - 1/2) / 2);
//                 borders y[0] = 0 (the -1/4 of x[-1] is padding), y[2L-1] = 3 (L-1) / 4
// down2 (down 2, pad 1/1, gain 1): length L -> L/2, y[m] = sum_a f[a] x[2m + a - 1].
//   impulse at j = 2q:   y[q-1] = 1/8, y[q] = 3/8;   at j = 2q+1: y[q] = 3/8, y[q+1] = 1/8
//   constant 1:          [7/8, 1, ..., 1, 7/8]
//   ramp x[j]=j:         y[m] = 2m + 1/2 inside; y[0] = 5/8, y[L/2-1] = L - 5/2
#include "harness.hpp"

#include <string>
#include <vector>

namespace sgf::test {
namespace {

template <class Traits>
class FirResponses : public Conformance<Traits> {};
TYPED_TEST_SUITE(FirResponses, ConformanceBackends, BackendNames);

using Vec = std::vector<double>;

/// 1-D response of up2 to an impulse at j, input length L (output 2L).
Vec up2_impulse_1d(std::int64_t j, std::int64_t L) {
    Vec y(static_cast<std::size_t>(2 * L), 0.0);
    const double r[4] = {0.25, 0.75, 0.75, 0.25};
    for (int t = 0; t < 4; ++t) {
        const std::int64_t m = 2 * j - 1 + t;
        if (m >= 0 && m < 2 * L) y[static_cast<std::size_t>(m)] = r[t];
    }
    return y;
}

/// 1-D response of down2 to an impulse at j, input length L (output L/2).
Vec down2_impulse_1d(std::int64_t j, std::int64_t L) {
    Vec y(static_cast<std::size_t>(L / 2), 0.0);
    auto put = [&](std::int64_t m, double v) {
        if (m >= 0 && m < L / 2) y[static_cast<std::size_t>(m)] = v;
    };
    const std::int64_t q = j / 2;
    if (j % 2 == 0) {
        put(q - 1, 0.125);
        put(q, 0.375);
    } else {
        put(q, 0.375);
        put(q + 1, 0.125);
    }
    return y;
}

/// Runs b.fir(f, x) on the backend under test and returns y.
template <class Fixture>
Vec run_fir(Fixture& t, const FirDesc& f, const Vec& x, const std::string& what) {
    Arena<typename Fixture::B> a(t.be());
    const std::size_t ny = static_cast<std::size_t>(f.y_shape().size());
    t.be().fir(f, a.input(x, "x"), a.output_nan(ny, "y"));
    auto out = a.results(what);
    return out.at(0);
}

void expect_values(const Vec& y, const Vec& expected, const std::string& what) {
    ASSERT_EQ(y.size(), expected.size()) << what;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        if (!(std::abs(y[i] - expected[i]) <= 1e-6 * std::max(1.0, std::abs(expected[i])))) {
            if (++bad <= 5) ADD_FAILURE() << what << ": element " << i << " is " << y[i] << ", expected " << expected[i];
        }
    EXPECT_EQ(bad, 0u) << what;
}

/// Impulses at every position of an H x W plane, in N*C planes at once (plane p holds its impulse
/// at position (k + 5p) mod HW, with amplitude p+1), against outer products of 1-D responses.
template <class Fixture, class Resp>
void check_impulses(Fixture& t, const FirDesc& f, Resp resp_1d, const std::string& name) {
    const std::int64_t P = f.n * f.c, H = f.h, W = f.w, OH = f.out_h(), OW = f.out_w();
    for (std::int64_t k = 0; k < H * W; ++k) {
        Vec x(static_cast<std::size_t>(P * H * W), 0.0), e(static_cast<std::size_t>(P * OH * OW), 0.0);
        for (std::int64_t p = 0; p < P; ++p) {
            const std::int64_t pos = (k + 5 * p) % (H * W), jy = pos / W, jx = pos % W;
            const double amp = double(p + 1);
            x[static_cast<std::size_t>(p * H * W + pos)] = amp;
            const Vec ry = resp_1d(jy, H), rx = resp_1d(jx, W);
            for (std::int64_t my = 0; my < OH; ++my)
                for (std::int64_t mx = 0; mx < OW; ++mx)
                    e[static_cast<std::size_t>((p * OH + my) * OW + mx)] =
                        amp * ry[static_cast<std::size_t>(my)] * rx[static_cast<std::size_t>(mx)];
        }
        const std::string what = name + " impulse k=" + std::to_string(k);
        expect_values(run_fir(t, f, x, what), e, what);
    }
}

/// x[y][x] = x + 10 y in every plane; expected = c[my] r[mx] + 10 r[my] c[mx] (c: response to a
/// constant 1, r: response to the ramp 0, 1, 2, ...).
template <class Fixture>
void check_ramp(Fixture& t, const FirDesc& f, const Vec& c, const Vec& r, const std::string& name) {
    ASSERT_EQ(f.h, f.w);
    const std::int64_t P = f.n * f.c, H = f.h, OH = f.out_h();
    ASSERT_EQ(static_cast<std::int64_t>(c.size()), OH);
    ASSERT_EQ(static_cast<std::int64_t>(r.size()), OH);
    Vec x, e;
    for (std::int64_t p = 0; p < P; ++p) {
        for (std::int64_t iy = 0; iy < H; ++iy)
            for (std::int64_t ix = 0; ix < H; ++ix) x.push_back(double(ix) + 10.0 * double(iy));
        for (std::int64_t my = 0; my < OH; ++my)
            for (std::int64_t mx = 0; mx < OH; ++mx) {
                const auto Y = static_cast<std::size_t>(my), X = static_cast<std::size_t>(mx);
                e.push_back(c[Y] * r[X] + 10.0 * r[Y] * c[X]);
            }
    }
    expect_values(run_fir(t, f, x, name + " ramp"), e, name + " ramp");
}

TYPED_TEST(FirResponses, Up2ImpulseAtTheOriginByHand) {
    // 4x4 -> 8x8; the impulse at (0,0) keeps the 3x3 corner of [1,3,3,1]^T [1,3,3,1] / 16
    const FirDesc f = FirDesc::up2(Shape{1, 1, 4, 4});
    Vec x(16, 0.0);
    x[0] = 1.0;
    Vec e(64, 0.0);
    const double corner[3][3] = {{9, 9, 3}, {9, 9, 3}, {3, 3, 1}};
    for (int y = 0; y < 3; ++y)
        for (int xx = 0; xx < 3; ++xx) e[static_cast<std::size_t>(y * 8 + xx)] = corner[y][xx] / 16.0;
    expect_values(run_fir(*this, f, x, "up2 impulse (0,0)"), e, "up2 impulse (0,0)");
    // the impulse at (1,2) lands whole at rows 1..4, columns 3..6
    Vec x2(16, 0.0);
    x2[1 * 4 + 2] = 1.0;
    Vec e2(64, 0.0);
    const double t[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; ++a)
        for (int c = 0; c < 4; ++c) e2[static_cast<std::size_t>((1 + a) * 8 + 3 + c)] = t[a] * t[c] / 16.0;
    expect_values(run_fir(*this, f, x2, "up2 impulse (1,2)"), e2, "up2 impulse (1,2)");
}

TYPED_TEST(FirResponses, Up2ImpulseAtEveryPosition) {
    check_impulses(*this, FirDesc::up2(Shape{2, 2, 4, 3}), up2_impulse_1d, "up2 [2,2,4,3]");
}

TYPED_TEST(FirResponses, Up2Ramp) {
    // 4x4 -> 8x8
    const Vec c = {0.75, 1, 1, 1, 1, 1, 1, 0.75};
    const Vec r = {0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 2.25};
    check_ramp(*this, FirDesc::up2(Shape{2, 3, 4, 4}), c, r, "up2 [2,3,4,4]");
}

TYPED_TEST(FirResponses, Down2ImpulseByHand) {
    // 8x8 -> 4x4; impulse at (2,5): rows {0: 1/8, 1: 3/8}, columns {2: 3/8, 3: 1/8}
    const FirDesc f = FirDesc::down2(Shape{1, 1, 8, 8});
    Vec x(64, 0.0);
    x[2 * 8 + 5] = 1.0;
    Vec e(16, 0.0);
    e[0 * 4 + 2] = 3.0 / 64;
    e[0 * 4 + 3] = 1.0 / 64;
    e[1 * 4 + 2] = 9.0 / 64;
    e[1 * 4 + 3] = 3.0 / 64;
    expect_values(run_fir(*this, f, x, "down2 impulse (2,5)"), e, "down2 impulse (2,5)");
    // impulse at (0,7): row 0 gets 3/8 (the 1/8 at row -1 falls off), column 3 gets 3/8
    Vec x2(64, 0.0);
    x2[0 * 8 + 7] = 1.0;
    Vec e2(16, 0.0);
    e2[0 * 4 + 3] = 9.0 / 64;
    expect_values(run_fir(*this, f, x2, "down2 impulse (0,7)"), e2, "down2 impulse (0,7)");
}

TYPED_TEST(FirResponses, Down2ImpulseAtEveryPosition) {
    check_impulses(*this, FirDesc::down2(Shape{2, 2, 8, 6}), down2_impulse_1d, "down2 [2,2,8,6]");
}

TYPED_TEST(FirResponses, Down2Ramp) {
    // 8x8 -> 4x4
    const Vec c = {0.875, 1, 1, 0.875};
    const Vec r = {0.625, 2.5, 4.5, 5.5};
    check_ramp(*this, FirDesc::down2(Shape{2, 3, 8, 8}), c, r, "down2 [2,3,8,8]");
}

}  // namespace
}  // namespace sgf::test
