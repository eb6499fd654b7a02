// Conformance, part 3: edge cases of the storage ops and GEMM that the sweeps of
// test_conv_gemm.cpp never reach, on every backend of backend_list.hpp. Each case is checked
// twice: against the reference backend (through the harness: guard tails, untouched inputs,
// NaN-filled outputs) and against the exact result the contract fixes, computed here on the host.
//
// What the contract promises (core/concepts.hpp; reference.hpp fixes the implicit parts):
//  * fill(p, n, v) writes v to n elements. +0.0 and -0.0 are different values (the CUDA backend
//    turns a fill with +0.0 into cudaMemsetAsync, so -0.0 must not take that path).
//  * copy has memmove semantics: "copy may be called with overlapping ranges" (reference.hpp;
//    the CUDA backend copies overlapping ranges through a temporary).
//  * copy2d: dst[r*dst_ld + c] = src[r*src_ld + c] for r < rows, c < cols; src and dst do not
//    alias. The formula defines every destination element exactly once when dst_ld >= cols (or
//    rows <= 1), whatever src_ld is: a source row may overlap the next one (src_ld < cols, even
//    0 = broadcast one row), which is a plain read. With rows > 1 and dst_ld < cols the formula
//    would write some destination elements twice, so every backend refuses it (check_copy2d:
//    ArgumentError, nothing written), as it refuses negative sizes and leading dimensions; the
//    boundary dst_ld == cols is tested.
//  * gemm: C = alpha * op(A) op(B) + beta * C; beta == 0 means C is not read (it may hold NaN).
//    With K == 0 or alpha == 0 the product is zero, so C becomes beta * C (0 when beta == 0;
//    unchanged when beta == 1), and nothing outside the M x N window (ldc gaps) is touched.
//    (A and B hold finite values here: whether alpha == 0 may skip reading a NaN in A or B is not
//    fixed by the contract - the reference multiplies 0 * NaN.)
#include "harness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sgf::test {
namespace {

template <class Traits>
class StorageEdges : public Conformance<Traits> {};
TYPED_TEST_SUITE(StorageEdges, ConformanceBackends, BackendNames);

/// Bitwise equality of two host vectors holding values of scalar type T (a float backend's
/// results come back as float64 holding float values: compare them as T).
template <class T>
::testing::AssertionResult same_values_bits(const std::vector<double>& actual, const std::vector<double>& expected,
                                            const std::string& what) {
    if (actual.size() != expected.size())
        return ::testing::AssertionFailure() << what << ": size " << actual.size() << ", expected " << expected.size();
    for (std::size_t i = 0; i < actual.size(); ++i)
        if (!same_bits(static_cast<T>(actual[i]), static_cast<T>(expected[i])))
            return ::testing::AssertionFailure() << what << ": element " << i << " is " << actual[i]
                                                 << (std::signbit(actual[i]) ? " (sign bit set)" : "") << ", expected "
                                                 << expected[i] << (std::signbit(expected[i]) ? " (sign bit set)" : "");
    return ::testing::AssertionSuccess();
}

/// Value equality (+0.0 == -0.0; NaN never equal).
inline ::testing::AssertionResult same_values(const std::vector<double>& actual, const std::vector<double>& expected,
                                              const std::string& what) {
    if (actual.size() != expected.size())
        return ::testing::AssertionFailure() << what << ": size " << actual.size() << ", expected " << expected.size();
    for (std::size_t i = 0; i < actual.size(); ++i)
        if (!(actual[i] == expected[i]))
            return ::testing::AssertionFailure() << what << ": element " << i << " is " << actual[i] << ", expected "
                                                 << expected[i];
    return ::testing::AssertionSuccess();
}

const std::size_t kSizes[] = {1, 2, 13, 1031, 65543};

// ------------------------------------------------------------------------------------------- fill

TYPED_TEST(StorageEdges, FillWithPositiveAndNegativeZero) {
    using T = typename TestFixture::T;
    using B = typename TestFixture::B;
    for (std::size_t n : kSizes)
        for (double v : {0.0, -0.0}) {
            const std::string what = std::string("fill ") + (std::signbit(v) ? "-0.0" : "+0.0") + " n=" + std::to_string(n);
            // over NaN (the harness compares with the reference, checks the guard tail)
            this->compare(what, this->tol(), [&](auto& b, auto& a) {
                using S = SGF_SCALAR_OF(b);
                b.fill(a.output_nan(n, "dst"), n, S(v));
            });
            // and bit for bit: every element holds v with its sign, nothing before or after changes
            const std::size_t off = n > 2 ? 3 : 0, len = n - off;  // an offset pointer: memset of a sub-range
            std::vector<double> init = this->rnd(n, 77 + n), want = init;
            for (std::size_t i = off; i < n; ++i) want[i] = v;
            Arena<B> a(this->be());
            T* p = a.output(init, "dst");
            this->be().fill(p + off, len, T(v));
            const auto got = a.results(what)[0];
            EXPECT_TRUE(same_values_bits<T>(got, want, what + " (offset " + std::to_string(off) + ")"));
        }
}

TYPED_TEST(StorageEdges, FillWithZeroCountWritesNothing) {
    using T = typename TestFixture::T;
    using B = typename TestFixture::B;
    for (double v : {0.0, -2.5}) {
        const auto init = this->rnd(9, 5);
        Arena<B> a(this->be());
        T* p = a.output(init, "dst");
        this->be().fill(p + 4, 0, T(v));
        EXPECT_TRUE(same_values_bits<T>(a.results("fill n=0")[0], init, "fill n=0 v=" + std::to_string(v)));
    }
}

// ------------------------------------------------------------------------------------------- copy

TYPED_TEST(StorageEdges, CopyOverlappingRangesHasMemmoveSemantics) {
    using T = typename TestFixture::T;
    using B = typename TestFixture::B;
    int cases = 0;
    for (std::size_t n : kSizes) {
        // shifts of the destination against the source: 1 element, a few, half, exactly n (adjacent,
        // no overlap), both directions; 0 = src == dst
        std::vector<std::ptrdiff_t> shifts = {0, 1, -1, 7, -7};
        if (n > 2) shifts.insert(shifts.end(), {std::ptrdiff_t(n / 2), -std::ptrdiff_t(n / 2)});
        shifts.insert(shifts.end(), {std::ptrdiff_t(n), -std::ptrdiff_t(n)});
        for (std::ptrdiff_t shift : shifts) {
            const std::size_t span = n + static_cast<std::size_t>(std::abs(shift));
            const std::size_t src_off = shift < 0 ? static_cast<std::size_t>(-shift) : 0;
            const std::size_t dst_off = shift > 0 ? static_cast<std::size_t>(shift) : 0;
            const auto init = this->rnd(span, 1000 + n + static_cast<std::size_t>(shift + 100000));
            const std::string what = "copy n=" + std::to_string(n) + " dst = src " + (shift >= 0 ? "+ " : "- ") +
                                     std::to_string(std::abs(shift));
            this->compare(what, this->tol(), [&](auto& b, auto& a) {
                auto* buf = a.output(init, "buffer");
                b.copy(buf + src_off, buf + dst_off, n);
            });
            std::vector<double> want = init;
            std::memmove(want.data() + dst_off, want.data() + src_off, n * sizeof(double));
            Arena<B> a(this->be());
            T* buf = a.output(init, "buffer");
            this->be().copy(buf + src_off, buf + dst_off, n);
            EXPECT_TRUE(same_values_bits<T>(a.results(what)[0], want, what));
            ++cases;
            if (::testing::Test::HasFailure()) return;
        }
    }
    EXPECT_GT(cases, 30);
}

// ----------------------------------------------------------------------------------------- copy2d

struct Copy2dCase {
    std::int64_t rows, cols, src_ld, dst_ld;
};

std::string copy2d_str(const Copy2dCase& c) {
    return "copy2d rows=" + std::to_string(c.rows) + " cols=" + std::to_string(c.cols) + " src_ld=" +
           std::to_string(c.src_ld) + " dst_ld=" + std::to_string(c.dst_ld);
}

/// Runs copy2d against the reference and against the formula, with dst's gaps holding random
/// values that must survive.
template <class Fixture>
void check_copy2d(Fixture& fx, const Copy2dCase& c, std::uint64_t seed) {
    using B = typename Fixture::B;
    using T = typename Fixture::T;
    // buffers just large enough for the formula's last element (src_ld may be 0)
    const auto extent = [&](std::int64_t ld) {
        return c.rows <= 0 || c.cols <= 0 ? std::size_t(0) : static_cast<std::size_t>((c.rows - 1) * ld + c.cols);
    };
    const auto src = fx.rnd(extent(c.src_ld), seed), dst0 = fx.rnd(extent(c.dst_ld), seed + 1);
    const std::string what = copy2d_str(c);
    fx.compare(what, fx.tol(), [&](auto& b, auto& a) {
        b.copy2d(c.rows, c.cols, a.input(src, "src"), c.src_ld, a.output(dst0, "dst"), c.dst_ld);
    });
    std::vector<double> want = dst0;
    for (std::int64_t r = 0; r < c.rows; ++r)
        for (std::int64_t k = 0; k < c.cols; ++k)
            want[static_cast<std::size_t>(r * c.dst_ld + k)] = src[static_cast<std::size_t>(r * c.src_ld + k)];
    Arena<B> a(fx.be());
    T* d = a.output(dst0, "dst");
    fx.be().copy2d(c.rows, c.cols, a.input(src, "src"), c.src_ld, d, c.dst_ld);
    EXPECT_TRUE(same_values_bits<T>(a.results(what)[0], want, what));
}

TYPED_TEST(StorageEdges, Copy2dLeadingDimensionEqualToCols) {
    std::uint64_t seed = 300;
    for (const Copy2dCase& c : {Copy2dCase{1, 1, 1, 1}, Copy2dCase{4, 6, 6, 6},        // both dense
                                Copy2dCase{5, 3, 3, 8}, Copy2dCase{9, 17, 17, 20},     // src dense, dst strided
                                Copy2dCase{6, 5, 11, 5}, Copy2dCase{33, 64, 70, 64},   // src strided, dst dense
                                Copy2dCase{1, 2000, 2000, 2000}, Copy2dCase{2000, 1, 1, 1}})
        check_copy2d(*this, c, seed += 7);
}

TYPED_TEST(StorageEdges, Copy2dNothingToCopyWritesNothing) {
    std::uint64_t seed = 400;
    for (const Copy2dCase& c : {Copy2dCase{0, 5, 5, 5}, Copy2dCase{5, 0, 3, 4}, Copy2dCase{0, 0, 1, 1}}) {
        using B = typename TestFixture::B;
        using T = typename TestFixture::T;
        const auto dst0 = this->rnd(24, seed += 3);
        Arena<B> a(this->be());
        T* d = a.output(dst0, "dst");
        this->be().copy2d(c.rows, c.cols, a.input(this->rnd(24, seed + 1), "src"), c.src_ld, d, c.dst_ld);
        EXPECT_TRUE(same_values_bits<T>(a.results(copy2d_str(c))[0], dst0, copy2d_str(c)));
    }
}

TYPED_TEST(StorageEdges, Copy2dSourceRowsMayOverlap) {
    // src_ld < cols: source rows overlap (src_ld == 0 repeats one row); every destination element
    // still has exactly one value. A single row ignores both leading dimensions, so dst_ld < cols
    // is well defined there too. (The CUDA backend's cudaMemcpy2D needs ld >= cols and falls back
    // to its own kernel for these.)
    std::uint64_t seed = 500;
    for (const Copy2dCase& c : {Copy2dCase{4, 5, 0, 5}, Copy2dCase{3, 7, 0, 9},         // broadcast one row
                                Copy2dCase{6, 5, 2, 5}, Copy2dCase{5, 8, 7, 8},         // src rows overlap
                                Copy2dCase{1, 9, 0, 0}, Copy2dCase{1, 9, 3, 1}})        // one row, any ld
        check_copy2d(*this, c, seed += 7);
}

TYPED_TEST(StorageEdges, Copy2dRefusesOverlappingDestinationRowsAndNegativeSizes) {
    using B = typename TestFixture::B;
    using T = typename TestFixture::T;
    const auto dst0 = this->rnd(64, 600);
    Arena<B> a(this->be());
    const T* s = a.input(this->rnd(64, 601), "src");
    T* d = a.output(dst0, "dst");
    int refused = 0;
    for (const Copy2dCase& c : {Copy2dCase{2, 5, 5, 4}, Copy2dCase{3, 7, 0, 0}, Copy2dCase{-1, 3, 3, 3},
                                Copy2dCase{2, -3, 3, 3}, Copy2dCase{2, 3, -3, 3}, Copy2dCase{2, 3, 3, -3}}) {
        try {
            this->be().copy2d(c.rows, c.cols, s, c.src_ld, d, c.dst_ld);
            ADD_FAILURE() << copy2d_str(c) << " was accepted";
        } catch (const sgf::ArgumentError& e) {
            ++refused;
            EXPECT_NE(std::string(e.what()).find("copy2d"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(refused, 6);
    EXPECT_TRUE(same_values_bits<T>(a.results("refused copy2d")[0], dst0, "refused copy2d writes nothing"));
}

// ------------------------------------------------------------------------------------------- gemm

TYPED_TEST(StorageEdges, GemmWithZeroKOrZeroAlphaScalesC) {
    using B = typename TestFixture::B;
    using T = typename TestFixture::T;
    struct Case {
        std::int64_t m, n, k;
        double alpha;
    };
    const Case cases[] = {{1, 1, 0, 1.0}, {3, 5, 0, 1.0}, {17, 13, 0, -0.37}, {4, 70, 0, 2.0},
                          {1, 1, 3, 0.0}, {3, 5, 7, 0.0}, {17, 13, 11, 0.0},  {65, 3, 129, 0.0}};
    int seed = 0;
    int ran = 0;
    for (const Case& s : cases)
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb)
                for (double beta_d : {0.0, 1.0, 0.5, -1.3}) {
                    ++seed;
                    // leading dimensions padded (never 0, also with K == 0)
                    const std::int64_t lda = (ta ? s.m : s.k) + 1 + seed % 2, ldb = (tb ? s.k : s.n) + 1 + seed % 3,
                                       ldc = s.n + 1 + seed % 2;
                    // with K == 0, A and B are empty: any read of them hits the harness's NaN tail
                    auto A = this->rnd(static_cast<std::size_t>(s.k == 0 ? 0 : (ta ? s.k : s.m) * lda), 7000 + seed);
                    auto Bm = this->rnd(static_cast<std::size_t>(s.k == 0 ? 0 : (tb ? s.n : s.k) * ldb), 8000 + seed);
                    if (s.alpha == 0.0) {  // BLAS semantics (concepts.hpp): alpha == 0 reads neither A nor B
                        std::fill(A.begin(), A.end(), kNaN);
                        std::fill(Bm.begin(), Bm.end(), kNaN);
                    }
                    const auto C0 = this->rnd(static_cast<std::size_t>(s.m * ldc), 9000 + seed);
                    const double alpha = this->r(s.alpha), beta = this->r(beta_d);
                    // beta == 0: C's M x N window holds NaN (must not be read); the ldc gaps keep C0
                    std::vector<double> c_init = C0;
                    if (beta == 0.0)
                        for (std::int64_t i = 0; i < s.m; ++i)
                            for (std::int64_t j = 0; j < s.n; ++j) c_init[static_cast<std::size_t>(i * ldc + j)] = kNaN;
                    const std::string what = "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb) + " M=" +
                                             std::to_string(s.m) + " N=" + std::to_string(s.n) + " K=" +
                                             std::to_string(s.k) + " alpha=" + std::to_string(s.alpha) +
                                             " beta=" + std::to_string(beta_d);
                    this->compare(what, this->tol_conv(), [&](auto& b, auto& a) {
                        using S = SGF_SCALAR_OF(b);
                        b.gemm(ta != 0, tb != 0, s.m, s.n, s.k, S(alpha), a.input(A, "A"), lda, a.input(Bm, "B"), ldb,
                               S(beta), a.output(c_init, "C"), ldc);
                    });
                    // exactly: beta 0 -> 0, beta 1 -> C unchanged, beta 0.5 -> C / 2 (exact in any
                    // precision); beta -1.3 -> beta * C within the GEMM tolerance (checked above)
                    Arena<B> a(this->be());
                    T* c = a.output(c_init, "C");
                    this->be().gemm(ta != 0, tb != 0, s.m, s.n, s.k, T(alpha), a.input(A, "A"), lda, a.input(Bm, "B"),
                                    ldb, T(beta), c, ldc);
                    const auto got = a.results(what)[0];
                    std::vector<double> want = C0;
                    for (std::int64_t i = 0; i < s.m; ++i)
                        for (std::int64_t j = 0; j < s.n; ++j) {
                            const auto at = static_cast<std::size_t>(i * ldc + j);
                            want[at] = beta == 0.0 ? 0.0 : static_cast<double>(T(beta) * T(C0[at]));
                        }
                    if (beta == 0.0 || beta == 1.0 || beta == 0.5)
                        EXPECT_TRUE(same_values(got, want, what + " (exact beta * C)"));
                    else
                        EXPECT_CLOSE_NMSE(got, want, this->tol_conv(), what + " (beta * C)");
                    ++ran;
                    if (::testing::Test::HasFailure()) return;  // one broken case is enough to report
                }
    EXPECT_EQ(ran, 8 * 4 * 4);
}

TYPED_TEST(StorageEdges, GemmWithEmptyOutputWritesNothing) {
    // M == 0 or N == 0: C has no elements; nothing may be written (the harness checks C's guard
    // tail) and A / B (possibly empty) must not be touched.
    using S = typename TestFixture::T;
    struct Case {
        std::int64_t m, n, k;
    };
    for (const Case& s : {Case{0, 5, 3}, Case{4, 0, 3}, Case{0, 0, 0}, Case{0, 3, 0}})
        for (double beta : {0.0, 1.0}) {
            Arena<typename TestFixture::B> a(this->be());
            const auto A = this->rnd(static_cast<std::size_t>(s.m * std::max<std::int64_t>(s.k, 1)), 11);
            const auto Bm = this->rnd(static_cast<std::size_t>(std::max<std::int64_t>(s.k, 1) * s.n), 12);
            this->be().gemm(false, false, s.m, s.n, s.k, S(1), a.input(A, "A"), std::max<std::int64_t>(s.k, 1),
                            a.input(Bm, "B"), std::max<std::int64_t>(s.n, 1), S(beta),
                            a.output(std::vector<double>{}, "C"), std::max<std::int64_t>(s.n, 1));
            const auto out = a.results("gemm M=" + std::to_string(s.m) + " N=" + std::to_string(s.n));
            ASSERT_EQ(out.size(), 1u);
            EXPECT_TRUE(out[0].empty());
        }
}

}  // namespace
}  // namespace sgf::test
