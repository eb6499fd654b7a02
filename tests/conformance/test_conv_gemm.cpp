// Conformance, part 1: storage, GEMM, the three convolutions and FIR resampling on every backend
// of backend_list.hpp against the reference backend.
#include "harness.hpp"

#include <random>

namespace sgf::test {
namespace {

template <class Traits>
class DenseOps : public Conformance<Traits> {};
TYPED_TEST_SUITE(DenseOps, ConformanceBackends, BackendNames);

#define SGF_FIXTURE_TYPES       \
    using T = typename TestFixture::T; \
    (void)sizeof(T)

struct AlphaBeta {
    double alpha, beta;
};
// overwrite, accumulate, scaled overwrite, scaled accumulate, general beta
constexpr AlphaBeta kAlphaBeta[] = {{1.0, 0.0}, {1.0, 1.0}, {0.37, 0.0}, {-1.3, 1.0}, {0.6, 0.5}};

std::string ab_str(const AlphaBeta& ab) {
    return "alpha=" + std::to_string(ab.alpha) + " beta=" + std::to_string(ab.beta);
}

// ---------------------------------------------------------------------------------------- storage

TYPED_TEST(DenseOps, UploadDownloadRoundTripIsExact) {
    SGF_FIXTURE_TYPES;
    for (std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(1000)}) {
        const auto host = this->rnd(n, 11 + n);
        Arena<typename TestFixture::B> a(this->be());
        auto* p = a.output(host, "buffer");
        (void)p;
        const auto out = a.results("upload/download");
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0], host) << "round trip of " << n << " values is not exact";
    }
}

TYPED_TEST(DenseOps, FillCopyCopy2d) {
    SGF_FIXTURE_TYPES;
    for (std::size_t n : {std::size_t(1), std::size_t(13), std::size_t(1031)}) {
        const double v = this->r(-2.718281828);
        this->compare("fill n=" + std::to_string(n), this->tol(), [&](auto& b, auto& a) {
            using S = SGF_SCALAR_OF(b);
            b.fill(a.output_nan(n), n, S(v));
        });
        const auto src = this->rnd(n, 100 + n);
        this->compare("copy n=" + std::to_string(n), this->tol(), [&](auto& b, auto& a) {
            b.copy(a.input(src, "src"), a.output_nan(n, "dst"), n);
        });
    }
    struct C2 {
        std::int64_t rows, cols, src_ld, dst_ld;
    };
    for (const C2& c : {C2{1, 1, 1, 1}, C2{5, 3, 3, 3}, C2{7, 4, 9, 5}, C2{3, 11, 11, 16}, C2{16, 1, 4, 2}}) {
        const auto src = this->rnd(static_cast<std::size_t>(c.rows * c.src_ld), 7 + c.rows);
        const auto dst = this->rnd(static_cast<std::size_t>(c.rows * c.dst_ld), 9 + c.cols);  // gaps stay untouched
        this->compare("copy2d rows=" + std::to_string(c.rows) + " cols=" + std::to_string(c.cols) + " src_ld=" +
                          std::to_string(c.src_ld) + " dst_ld=" + std::to_string(c.dst_ld),
                      this->tol(), [&](auto& b, auto& a) {
                          b.copy2d(c.rows, c.cols, a.input(src, "src"), c.src_ld, a.output(dst, "dst"), c.dst_ld);
                      });
    }
}

// ------------------------------------------------------------------------------------------- gemm

TYPED_TEST(DenseOps, GemmAllTransposesOddSizes) {
    SGF_FIXTURE_TYPES;
    struct Mnk {
        std::int64_t m, n, k;
    };
    const Mnk sizes[] = {{1, 1, 1}, {3, 5, 7}, {17, 13, 11}, {2, 1, 9}, {1, 40, 3}, {33, 64, 70}, {65, 3, 129}};
    int seed = 0;
    for (const Mnk& s : sizes)
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb)
                for (const AlphaBeta& ab : kAlphaBeta) {
                    ++seed;
                    // padded leading dimensions (+0..2) to catch ld mix-ups
                    const std::int64_t lda = (ta ? s.m : s.k) + seed % 3, ldb = (tb ? s.k : s.n) + (seed / 3) % 3,
                                       ldc = s.n + (seed / 9) % 2;
                    const auto A = this->rnd(static_cast<std::size_t>((ta ? s.k : s.m) * lda), 1000 + seed);
                    const auto Bm = this->rnd(static_cast<std::size_t>((tb ? s.n : s.k) * ldb), 2000 + seed);
                    const auto C0 = this->rnd(static_cast<std::size_t>(s.m * ldc), 3000 + seed);
                    const double alpha = this->r(ab.alpha), beta = this->r(ab.beta);
                    const std::string what = "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " M=" +
                                             std::to_string(s.m) + " N=" + std::to_string(s.n) + " K=" +
                                             std::to_string(s.k) + " " + ab_str(ab);
                    this->compare(what, this->tol_conv(), [&](auto& b, auto& a) {
                        using S = SGF_SCALAR_OF(b);
                        // beta == 0: C is pre-filled with NaN everywhere except the ld gaps, which must survive
                        std::vector<double> c_init = C0;
                        if (beta == 0.0)
                            for (std::int64_t i = 0; i < s.m; ++i)
                                for (std::int64_t j = 0; j < s.n; ++j) c_init[static_cast<std::size_t>(i * ldc + j)] = kNaN;
                        b.gemm(ta != 0, tb != 0, s.m, s.n, s.k, S(alpha), a.input(A, "A"), lda, a.input(Bm, "B"), ldb,
                               S(beta), a.output(c_init, "C"), ldc);
                    });
                }
}

// ------------------------------------------------------------------------------------ convolution

std::string conv_str(const ConvDesc& d) {
    return "n=" + std::to_string(d.n) + " c_in=" + std::to_string(d.c_in) + " h=" + std::to_string(d.h) +
           " w=" + std::to_string(d.w) + " c_out=" + std::to_string(d.c_out) + " k=" + std::to_string(d.k) +
           " stride=" + std::to_string(d.stride) + " pad=" + std::to_string(d.pad);
}

/// 55 convolution shapes: hand-picked edge cases, then a deterministic random sweep over
/// k in {1,3,4}, stride 1/2, pad 0/1/2, odd sizes, batch 1..5, channels 1..17.
std::vector<ConvDesc> conv_shapes() {
    std::vector<ConvDesc> v = {
        {1, 1, 1, 1, 1, 1, 1, 0},     // all ones
        {1, 2, 1, 1, 3, 3, 1, 1},     // 1x1 image, 3x3 kernel, pad 1
        {2, 3, 5, 5, 4, 3, 1, 1},     // 3x3 "same"
        {3, 4, 8, 8, 5, 4, 2, 1},     // 4x4 stride-2 down-conv
        {2, 17, 7, 9, 17, 3, 2, 2},   // wide pad, stride 2, odd sizes
        {5, 1, 4, 6, 2, 1, 2, 0},     // 1x1 stride 2
        {1, 16, 16, 16, 16, 3, 1, 1}, // larger plane
        {4, 5, 3, 3, 7, 3, 1, 0},     // valid conv to 1x1
        {1, 3, 2, 7, 2, 4, 1, 2},     // k > h, saved by the padding
        {2, 6, 9, 4, 1, 1, 1, 0},     // pointwise, c_out 1
        {1, 8, 11, 11, 8, 1, 1, 2},   // 1x1 with padding (zero border)
        // preset-sized (small: 64 channels at 4-16 px, 32 at 32 px): oneDNN's blocked kernels
        {3, 64, 16, 16, 64, 3, 1, 1}, // 3x3 at 16 px
        {2, 32, 32, 32, 64, 3, 2, 1}, // 3x3 stride-2 down-conv into 16 px
        {2, 64, 8, 8, 32, 1, 2, 0},   // 1x1 stride-2 skip
    };
    std::mt19937_64 rng(20240611);
    auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
    const std::int64_t ks[] = {1, 3, 4};
    while (v.size() < 55) {
        ConvDesc d;
        d.n = pick(1, 5);
        d.c_in = pick(1, 17);
        d.c_out = pick(1, 17);
        d.k = ks[pick(0, 2)];
        d.stride = pick(1, 2);
        d.pad = pick(0, 2);
        d.h = pick(1, 11);
        d.w = pick(1, 11);
        if (d.h + 2 * d.pad < d.k || d.w + 2 * d.pad < d.k) continue;
        v.push_back(d);
    }
    return v;
}

enum class ConvOp { forward, backward_data, backward_filter };

template <class Fixture>
void run_conv_sweep(Fixture& fx, ConvOp op) {
    int seed = 0;
    for (const ConvDesc& d : conv_shapes()) {
        const std::size_t nx = static_cast<std::size_t>(d.x_shape().size()), nw = static_cast<std::size_t>(d.w_shape().size()),
                          ny = static_cast<std::size_t>(d.y_shape().size());
        for (const AlphaBeta& ab : kAlphaBeta) {
            ++seed;
            const auto x = fx.rnd(nx, 10000 + seed), w = fx.rnd(nw, 20000 + seed), dy = fx.rnd(ny, 30000 + seed);
            const double alpha = fx.r(ab.alpha), beta = fx.r(ab.beta);
            const char* name = op == ConvOp::forward ? "conv2d_forward"
                               : op == ConvOp::backward_data ? "conv2d_backward_data"
                                                             : "conv2d_backward_filter";
            fx.compare(std::string(name) + " " + conv_str(d) + " " + ab_str(ab), fx.tol_conv(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                auto out = [&](std::size_t n, std::uint64_t s) {
                    return beta == 0.0 ? a.output_nan(n, "out") : a.output(fx.rnd(n, s), "out");
                };
                switch (op) {
                    case ConvOp::forward:
                        b.conv2d_forward(d, S(alpha), a.input(x, "x"), a.input(w, "w"), S(beta), out(ny, 40000 + seed));
                        break;
                    case ConvOp::backward_data:
                        b.conv2d_backward_data(d, S(alpha), a.input(dy, "dy"), a.input(w, "w"), S(beta),
                                               out(nx, 50000 + seed));
                        break;
                    case ConvOp::backward_filter:
                        b.conv2d_backward_filter(d, S(alpha), a.input(x, "x"), a.input(dy, "dy"), S(beta),
                                                 out(nw, 60000 + seed));
                        break;
                }
            });
            if (::testing::Test::HasFailure()) return;  // one broken shape is enough to report
        }
    }
}

TYPED_TEST(DenseOps, ConvForwardShapeSweep) { run_conv_sweep(*this, ConvOp::forward); }
TYPED_TEST(DenseOps, ConvBackwardDataShapeSweep) { run_conv_sweep(*this, ConvOp::backward_data); }
TYPED_TEST(DenseOps, ConvBackwardFilterShapeSweep) { run_conv_sweep(*this, ConvOp::backward_filter); }

#if defined(SGF_TEST_HAVE_EIGEN) && defined(SGF_HAVE_ONEDNN) && SGF_HAVE_ONEDNN
// The sweeps above only prove something about oneDNN if the default float backend really uses it.
TEST(EigenConvEngine, FloatBackendUsesOneDnnWhenBuiltWithIt) {
    const char* env = std::getenv("SGF_ONEDNN");
    if (env && std::string(env) == "0") GTEST_SKIP() << "SGF_ONEDNN=0 in the environment turns oneDNN off";
    EXPECT_EQ(eigen::Backend<float>(2).conv_engine(), "onednn");
    EXPECT_EQ(eigen::Backend<float>(2, eigen::CpuConv::im2col).conv_engine(), "im2col");
    EXPECT_EQ(eigen::Backend<double>(2).conv_engine(), "im2col");  // oneDNN has no float64 convolution
}
#endif

TYPED_TEST(DenseOps, ConvRejectsBadDescriptors) {
    auto& b = this->be();
    auto x = b.allocate(64), w = b.allocate(64), y = b.allocate(64);
    using S = typename TestFixture::T;
    const ConvDesc negative{1, 0, 4, 4, 1, 3, 1, 1};   // c_in = 0
    const ConvDesc too_big{1, 1, 2, 2, 1, 5, 1, 1};    // 5x5 kernel on a 4x4 padded input
    const ConvDesc bad_stride{1, 1, 4, 4, 1, 3, 0, 1}; // stride 0
    for (const ConvDesc& d : {negative, too_big, bad_stride}) {
        EXPECT_THROW(b.conv2d_forward(d, S(1), x.data(), w.data(), S(0), y.data()), sgf::ArgumentError) << conv_str(d);
        EXPECT_THROW(b.conv2d_backward_data(d, S(1), y.data(), w.data(), S(0), x.data()), sgf::ArgumentError)
            << conv_str(d);
        EXPECT_THROW(b.conv2d_backward_filter(d, S(1), x.data(), y.data(), S(0), w.data()), sgf::ArgumentError)
            << conv_str(d);
    }
    EXPECT_THROW(b.conv2d_forward(too_big, S(1), x.data(), w.data(), S(0), y.data()), sgf::ShapeError);
}

// -------------------------------------------------------------------------------------------- FIR

std::string fir_str(const FirDesc& f) {
    return "n=" + std::to_string(f.n) + " c=" + std::to_string(f.c) + " h=" + std::to_string(f.h) + " w=" +
           std::to_string(f.w) + " up=" + std::to_string(f.up) + " down=" + std::to_string(f.down) + " pad=" +
           std::to_string(f.pad0) + "," + std::to_string(f.pad1) + " gain=" + std::to_string(f.gain) + " taps=" +
           std::to_string(f.taps[0]) + "," + std::to_string(f.taps[1]) + "," + std::to_string(f.taps[2]) + "," +
           std::to_string(f.taps[3]);
}

std::vector<FirDesc> fir_cases() {
    std::vector<FirDesc> v = {
        FirDesc::up2({2, 3, 4, 4}),    FirDesc::up2({1, 1, 1, 1}),         FirDesc::up2({3, 2, 5, 7}),
        FirDesc::down2({2, 3, 8, 8}),  FirDesc::down2({1, 2, 4, 4}),       FirDesc::down2({2, 1, 7, 5}),
        FirDesc::blur({2, 3, 6, 6}, 1, 2, 1.0), FirDesc::blur({1, 4, 5, 9}, 2, 1, 4.0),
        FirDesc::blur({3, 1, 1, 1}, 2, 1, 1.0), FirDesc::blur({1, 2, 8, 8}, 0, 0, 2.5),
    };
    std::mt19937_64 rng(777);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    while (v.size() < 34) {
        FirDesc f;
        f.n = pick(1, 3);
        f.c = pick(1, 4);
        f.h = pick(1, 9);
        f.w = pick(1, 9);
        f.up = pick(1, 2);
        f.down = pick(1, 2);
        f.pad0 = pick(0, 3);
        f.pad1 = pick(0, 3);
        f.gain = 0.25 * pick(1, 16);
        if (v.size() % 3 == 0) f.taps = {0.1, 0.2, 0.3, 0.4};  // asymmetric: correlation vs convolution matters
        if (f.h * f.up + f.pad0 + f.pad1 < FirDesc::ntaps || f.w * f.up + f.pad0 + f.pad1 < FirDesc::ntaps) continue;
        v.push_back(f);
    }
    return v;
}

TYPED_TEST(DenseOps, FirForwardAndBackward) {
    SGF_FIXTURE_TYPES;
    int seed = 0;
    for (const FirDesc& f : fir_cases()) {
        ++seed;
        const std::size_t nx = static_cast<std::size_t>(f.x_shape().size()), ny = static_cast<std::size_t>(f.y_shape().size());
        const auto x = this->rnd(nx, 500 + seed), dy = this->rnd(ny, 600 + seed);
        this->compare("fir " + fir_str(f), this->tol(),
                      [&](auto& b, auto& a) { b.fir(f, a.input(x, "x"), a.output_nan(ny, "y")); });
        this->compare("fir_backward " + fir_str(f), this->tol(),
                      [&](auto& b, auto& a) { b.fir_backward(f, a.input(dy, "dy"), a.output_nan(nx, "dx")); });
    }
}

TYPED_TEST(DenseOps, FirPresetShapes) {
    // the presets keep the documented output sizes (StyleGAN2's upsample2d / downsample2d)
    const Shape s{2, 3, 8, 6};
    EXPECT_EQ(FirDesc::up2(s).y_shape(), (Shape{2, 3, 16, 12}));
    EXPECT_EQ(FirDesc::down2(s).y_shape(), (Shape{2, 3, 4, 3}));
    EXPECT_EQ(FirDesc::blur(s, 2, 1, 4.0).y_shape(), s);
    // and a constant image stays constant inside (the filter is normalised; up2 has gain 4)
    for (const FirDesc& f : {FirDesc::up2(s), FirDesc::down2(s)}) {
        Arena<typename TestFixture::B> a(this->be());
        const std::size_t ny = static_cast<std::size_t>(f.y_shape().size());
        this->be().fir(f, a.input(std::vector<double>(static_cast<std::size_t>(s.size()), 1.0)), a.output_nan(ny));
        const auto y = a.results("fir constant")[0];
        const auto OH = f.out_h(), OW = f.out_w();
        for (std::int64_t pl = 0; pl < s.n * s.c; ++pl)
            for (std::int64_t oy = 1; oy + 1 < OH; ++oy)
                for (std::int64_t ox = 1; ox + 1 < OW; ++ox)
                    EXPECT_NEAR(y[static_cast<std::size_t>((pl * OH + oy) * OW + ox)], 1.0, 1e-6)
                        << fir_str(f) << " at " << oy << "," << ox;
    }
}

TYPED_TEST(DenseOps, FirRejectsTooSmallInput) {
    auto& b = this->be();
    auto x = b.allocate(16), y = b.allocate(16);
    FirDesc f = FirDesc::blur({1, 1, 1, 1}, 0, 0, 1.0);  // 1x1 input, 4 taps, no padding
    EXPECT_THROW(b.fir(f, x.data(), y.data()), sgf::ShapeError);
    EXPECT_THROW(b.fir_backward(f, y.data(), x.data()), sgf::ShapeError);
    FirDesc neg = FirDesc::blur({1, 1, 4, 4}, -1, 2, 1.0);
    EXPECT_THROW(b.fir(neg, x.data(), y.data()), sgf::ArgumentError);
}

}  // namespace
}  // namespace sgf::test
