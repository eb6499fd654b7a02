// CUDA backend tests that are specific to the GPU backend (the op-by-op comparison with the
// float64 reference is the conformance suite, tests/conformance, with the CUDA traits of
// tests/cuda/cuda_traits.hpp). They compile in every build that finds nvcc; tests that need a GPU
// skip at run time with the reason when there is none. Tests that need no GPU (error mapping,
// device discovery, the constructor's failure) run everywhere.
#include <sgf/backends/cuda.cuh>
#include <sgf/backends/reference.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace sgf::cuda {
namespace {

#define SGF_REQUIRE_GPU() \
    if (!gpu_available()) GTEST_SKIP() << "no CUDA GPU: " << no_gpu_reason()

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::vector<float> random_floats(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

/// Uploads host floats into a fresh device buffer of b.
template <class B>
typename B::Buffer up(B& b, const std::vector<typename B::Scalar>& h) {
    auto buf = b.allocate(h.size());
    b.upload(h.data(), h.size(), buf.data());
    return buf;
}
template <class B>
std::vector<typename B::Scalar> down(B& b, typename B::Buffer& buf) {
    std::vector<typename B::Scalar> h(buf.size());
    b.download(buf.data(), h.size(), h.data());
    return h;
}

// -------------------------------------------------------------------------- no GPU needed

TEST(CudaBackend, ModelsTheBackendContract) {
    static_assert(sgf::Backend<Backend<float>>);
    static_assert(sgf::Backend<Backend<double>>);
    static_assert(std::is_same_v<sgf::CudaGpu, Backend<float>>);
    EXPECT_EQ(Backend<float>::name(), "cuda-f32");
    EXPECT_EQ(Backend<double>::name(), "cuda-f64");
}

TEST(CudaBackend, DeviceDiscoveryNeverThrows) {
    int n = -1;
    EXPECT_NO_THROW(n = device_count());
    EXPECT_GE(n, 0);
    EXPECT_EQ(gpu_available(), n > 0);
    if (n == 0) EXPECT_FALSE(no_gpu_reason().empty());
    else EXPECT_TRUE(no_gpu_reason().empty());
}

TEST(CudaBackend, ConstructorWithoutGpuThrowsBackendError) {
    if (gpu_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU path";
    try {
        Backend<float> b;
        FAIL() << "constructing a CUDA backend without a GPU must throw";
    } catch (const BackendError& e) {
        EXPECT_TRUE(contains(e.what(), "no usable CUDA GPU")) << e.what();
    }
}

TEST(CudaBackend, CudaErrorsNameTheCallFileAndLine) {
    try {
        SGF_CUDA_CHECK(cudaErrorInvalidValue);
        FAIL() << "SGF_CUDA_CHECK must throw on an error";
    } catch (const BackendError& e) {
        const std::string m = e.what();
        EXPECT_TRUE(contains(m, "cudaErrorInvalidValue")) << m;
        EXPECT_TRUE(contains(m, "failed")) << m;
        EXPECT_TRUE(contains(m, "test_cuda_backend.cu:")) << m;
        EXPECT_TRUE(contains(e.where(), "test_cuda_backend.cu:")) << e.where();
    }
    EXPECT_NO_THROW(SGF_CUDA_CHECK(cudaSuccess));
}

TEST(CudaBackend, CublasErrorsNameTheCallFileAndLine) {
    try {
        SGF_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
        FAIL() << "SGF_CUBLAS_CHECK must throw on an error";
    } catch (const BackendError& e) {
        const std::string m = e.what();
        EXPECT_TRUE(contains(m, "CUBLAS_STATUS_INVALID_VALUE")) << m;
        EXPECT_TRUE(contains(m, "test_cuda_backend.cu:")) << m;
    }
    // a real cuBLAS call with a null handle
    try {
        SGF_CUBLAS_CHECK(cublasSetStream(nullptr, nullptr));
        FAIL() << "cublasSetStream(nullptr) must fail";
    } catch (const BackendError& e) {
        EXPECT_TRUE(contains(e.what(), "cublasSetStream(nullptr, nullptr) failed")) << e.what();
    }
}

#if defined(SGF_HAVE_CUDNN)
TEST(CudaBackend, CudnnErrorsNameTheCallFileAndLine) {
    try {
        SGF_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM);
        FAIL() << "SGF_CUDNN_CHECK must throw on an error";
    } catch (const BackendError& e) {
        const std::string m = e.what();
        EXPECT_TRUE(contains(m, "CUDNN_STATUS_BAD_PARAM")) << m;
        EXPECT_TRUE(contains(m, "test_cuda_backend.cu:")) << m;
    }
    // a real cuDNN call with an invalid argument (no GPU needed for descriptors)
    cudnnTensorDescriptor_t t = nullptr;
    ASSERT_EQ(cudnnCreateTensorDescriptor(&t), CUDNN_STATUS_SUCCESS);
    try {
        SGF_CUDNN_CHECK(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, -1, 2, 3, 4));
        FAIL() << "a negative tensor dimension must be rejected";
    } catch (const BackendError& e) {
        EXPECT_TRUE(contains(e.what(), "cudnnSetTensor4dDescriptor")) << e.what();
        EXPECT_TRUE(contains(e.what(), "BAD_PARAM")) << e.what();
    }
    cudnnDestroyTensorDescriptor(t);
}
#endif

TEST(CudaBackend, AllocatorRoundsToSizeClasses) {
    EXPECT_EQ(DeviceAllocator::round_up(0), 512u);
    EXPECT_EQ(DeviceAllocator::round_up(1), 512u);
    EXPECT_EQ(DeviceAllocator::round_up(513), 1024u);
    EXPECT_EQ(DeviceAllocator::round_up(std::size_t(1) << 20), std::size_t(1) << 20);
    EXPECT_EQ(DeviceAllocator::round_up((std::size_t(1) << 20) + 1), std::size_t(2) << 20);
    EXPECT_EQ(DeviceAllocator::round_up((std::size_t(5) << 20) + 7), std::size_t(6) << 20);
}

// ------------------------------------------------------------------------------ GPU needed

TEST(CudaBackend, RandomDrawsMatchTheHostPhiloxExactly) {
    SGF_REQUIRE_GPU();
    Backend<float> b;
    const std::int64_t n = 100003;
    auto d = b.allocate(std::size_t(n));
    for (int kind = 0; kind < 3; ++kind) {
        const RngKey key{12345, 7u + unsigned(kind), 99};
        if (kind == 0) b.normal(key, n, d.data());
        if (kind == 1) b.uniform(key, n, d.data());
        if (kind == 2) b.bits(key, n, d.data());
        const auto h = down(b, d);
        int mismatches = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double ref = kind == 0 ? philox::normal(key, i) : kind == 1 ? philox::uniform(key, i) : philox::bit(key, i);
            mismatches += h[std::size_t(i)] != float(ref);
        }
        EXPECT_EQ(mismatches, 0) << "kind " << kind;
    }
}

TEST(CudaBackend, OutOfMemoryIsABackendErrorNamingCudaMalloc) {
    SGF_REQUIRE_GPU();
    try {
        DeviceBuffer<float> huge(std::size_t(1) << 50);
        FAIL() << "a 4 PiB allocation must fail";
    } catch (const BackendError& e) {
        EXPECT_TRUE(contains(e.what(), "cudaMalloc")) << e.what();
    }
    Backend<float> b;
    try {
        auto huge = b.allocate(std::size_t(1) << 50);
        FAIL() << "a 4 PiB allocation must fail";
    } catch (const BackendError& e) {
        EXPECT_TRUE(contains(e.what(), "cudaMalloc")) << e.what();
    }
    // the backend still works afterwards
    auto ok = up(b, std::vector<float>{1.f, 2.f, 3.f});
    EXPECT_EQ(b.sum(3, ok.data()), 6.0);
}

TEST(CudaBackend, BadArgumentsThrowBeforeLaunching) {
    SGF_REQUIRE_GPU();
    Backend<float> b;
    auto x = b.allocate(64);
    EXPECT_THROW(Backend<float>(Options{.device = 1000}), ArgumentError);
    EXPECT_THROW(b.conv2d_forward(ConvDesc{1, 0, 4, 4, 1, 3, 1, 1}, 1.f, x.data(), x.data(), 0.f, x.data()),
                 ArgumentError);
    EXPECT_THROW(b.mbstd({6, 2, 2, 2}, 4, x.data(), x.data()), ShapeError);
    EXPECT_THROW(b.adam_step(4, x.data(), x.data(), x.data(), x.data(), AdamParams{}, 0), ArgumentError);
}

TEST(CudaBackend, CachingAllocatorReusesFreedBlocks) {
    SGF_REQUIRE_GPU();
    Backend<float> b;
    const auto s0 = b.allocator_stats();
    float* first = nullptr;
    {
        auto a = b.allocate(1000);
        first = a.data();
        EXPECT_GE(b.allocator_stats().in_use_bytes, 4000u);
    }
    EXPECT_GE(b.allocator_stats().cached_bytes, 4000u);
    {
        auto a = b.allocate(1000);  // same size class: the cached block comes back
        EXPECT_EQ(a.data(), first);
    }
    const auto s1 = b.allocator_stats();
    EXPECT_EQ(s1.device_allocations, s0.device_allocations + 1);
    EXPECT_GE(s1.cache_hits, s0.cache_hits + 1);
    b.empty_cache();
    EXPECT_EQ(b.allocator_stats().cached_bytes, 0u);
    // buffers may outlive their backend (the allocator is shared)
    Buffer<float> survivor;
    {
        Backend<float> tmp;
        survivor = tmp.allocate(16);
    }
    EXPECT_NE(survivor.data(), nullptr);
}

#if defined(SGF_HAVE_CUDNN)
TEST(CudaBackend, ConvolutionPlansAreCachedPerOperationAndShape) {
    SGF_REQUIRE_GPU();
    Backend<float> b(Options{.mode = Mode::checking});
    const ConvDesc d{2, 3, 8, 8, 4, 3, 1, 1}, d2{2, 3, 8, 8, 4, 3, 2, 1};
    auto x = up(b, random_floats(std::size_t(d.x_shape().size()), 1));
    auto w = up(b, random_floats(std::size_t(d.w_shape().size()), 2));
    auto y = b.allocate(std::size_t(d.y_shape().size()));
    EXPECT_EQ(b.conv_plan_count(), 0u);
    b.conv2d_forward(d, 1.f, x.data(), w.data(), 0.f, y.data());
    b.conv2d_forward(d, 1.f, x.data(), w.data(), 0.f, y.data());
    EXPECT_EQ(b.conv_plan_count(), 1u);
    b.conv2d_backward_data(d, 1.f, y.data(), w.data(), 0.f, x.data());
    b.conv2d_backward_filter(d, 1.f, x.data(), y.data(), 0.f, w.data());
    EXPECT_EQ(b.conv_plan_count(), 3u);
    auto y2 = b.allocate(std::size_t(d2.y_shape().size()));
    b.conv2d_forward(d2, 1.f, x.data(), w.data(), 0.f, y2.data());
    EXPECT_EQ(b.conv_plan_count(), 4u);
    // checking mode keeps to the deterministic GEMM-style algorithms
    const int fwd = b.conv_algorithm(0, d), bwd_data = b.conv_algorithm(1, d), bwd_filter = b.conv_algorithm(2, d);
    EXPECT_TRUE(fwd == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM || fwd == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
                fwd == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || fwd == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT)
        << fwd;
    EXPECT_EQ(bwd_data, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
    EXPECT_EQ(bwd_filter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
    std::printf("  device: %s\n", b.device_name().c_str());
}

TEST(CudaBackend, DirectConvolutionKernelsAgreeWithCudnn) {
    SGF_REQUIRE_GPU();
    Backend<float> dnn(Options{.mode = Mode::checking}), direct(Options{.mode = Mode::checking, .conv = ConvEngine::direct});
    const ConvDesc shapes[] = {{2, 3, 8, 8, 4, 3, 1, 1}, {3, 5, 9, 7, 6, 4, 2, 1}, {1, 16, 16, 16, 8, 1, 1, 0},
                               {2, 4, 5, 5, 3, 3, 2, 2}};
    for (const ConvDesc& d : shapes) {
        const auto xh = random_floats(std::size_t(d.x_shape().size()), 3), wh = random_floats(std::size_t(d.w_shape().size()), 4),
                   dyh = random_floats(std::size_t(d.y_shape().size()), 5);
        std::vector<float> r[2][3];
        int i = 0;
        for (Backend<float>* b : {&dnn, &direct}) {
            auto x = up(*b, xh), w = up(*b, wh), dy = up(*b, dyh);
            auto y = b->allocate(dyh.size()), dx = b->allocate(xh.size()), dw = b->allocate(wh.size());
            b->conv2d_forward(d, 1.f, x.data(), w.data(), 0.f, y.data());
            b->conv2d_backward_data(d, 1.f, dy.data(), w.data(), 0.f, dx.data());
            b->conv2d_backward_filter(d, 1.f, x.data(), dy.data(), 0.f, dw.data());
            r[i][0] = down(*b, y), r[i][1] = down(*b, dx), r[i][2] = down(*b, dw);
            ++i;
        }
        for (int op = 0; op < 3; ++op) {
            double num = 0, den = 0;
            for (std::size_t j = 0; j < r[0][op].size(); ++j) {
                const double e = double(r[0][op][j]) - double(r[1][op][j]);
                num += e * e;
                den += double(r[1][op][j]) * double(r[1][op][j]);
            }
            EXPECT_LE(num / std::max(den, 1e-30), 1e-10) << "op " << op << " n=" << d.n << " c_in=" << d.c_in << " k=" << d.k;
        }
    }
}
#endif

TEST(CudaBackend, CheckingModeIsBitwiseReproducible) {
    SGF_REQUIRE_GPU();
    const ConvDesc d{8, 32, 16, 16, 32, 3, 1, 1};
    const auto xh = random_floats(std::size_t(d.x_shape().size()), 7), wh = random_floats(std::size_t(d.w_shape().size()), 8),
               dyh = random_floats(std::size_t(d.y_shape().size()), 9);
    std::vector<float> runs[2][4];
    double sums[2];
    for (int run = 0; run < 2; ++run) {
        Backend<float> b(Options{.mode = Mode::checking});
        auto x = up(b, xh), w = up(b, wh), dy = up(b, dyh);
        auto y = b.allocate(dyh.size()), dx = b.allocate(xh.size()), dw = b.allocate(wh.size()), c = b.allocate(64 * 64);
        b.conv2d_forward(d, 1.f, x.data(), w.data(), 0.f, y.data());
        b.conv2d_backward_data(d, 1.f, dy.data(), w.data(), 0.f, dx.data());
        b.conv2d_backward_filter(d, 1.f, x.data(), dy.data(), 0.f, dw.data());
        b.gemm(false, true, 64, 64, 512, 1.f, x.data(), 512, dy.data(), 512, 0.f, c.data(), 64);
        runs[run][0] = down(b, y), runs[run][1] = down(b, dx), runs[run][2] = down(b, dw), runs[run][3] = down(b, c);
        sums[run] = b.sum(std::int64_t(xh.size()), x.data()) + b.softplus_loss(std::int64_t(dyh.size()), dy.data(), 1.f, 1.f, y.data());
    }
    for (int k = 0; k < 4; ++k) EXPECT_EQ(std::memcmp(runs[0][k].data(), runs[1][k].data(), runs[0][k].size() * 4), 0) << k;
    EXPECT_EQ(sums[0], sums[1]);
}

TEST(CudaBackend, QueuedOpsRunInOrderOnTheStream) {
    SGF_REQUIRE_GPU();
    Backend<float> b;
    const std::int64_t n = 1 << 20;
    auto x = b.allocate(std::size_t(n)), y = b.allocate(std::size_t(n));
    b.fill(x.data(), std::size_t(n), 1.f);
    for (int i = 0; i < 50; ++i) b.axpby(n, 1.f, x.data(), i == 0 ? 0.f : 1.f, y.data());  // y = 50
    {
        auto tmp = b.allocate(std::size_t(n));  // released while queued work may still use it
        b.copy(y.data(), tmp.data(), std::size_t(n));
        b.copy(tmp.data(), x.data(), std::size_t(n));  // x = 50
    }
    auto reuse = b.allocate(std::size_t(n));  // the same cached block: must not disturb x
    b.fill(reuse.data(), std::size_t(n), -7.f);
    EXPECT_EQ(b.sum(n, x.data()), 50.0 * double(n));
    EXPECT_EQ(b.sum(n, reuse.data()), -7.0 * double(n));
}

TEST(CudaBackend, GemmRowMajorMappingAgainstTheReference) {
    SGF_REQUIRE_GPU();
    // one case per transpose combination, with padded leading dimensions; the full sweep is the
    // conformance suite
    for (Mode mode : {Mode::checking, Mode::fast}) {
        Backend<float> b(Options{.mode = mode});
        reference::Backend ref;
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            const std::int64_t M = 37, N = 29, K = 41, lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            const auto A = random_floats(std::size_t((ta ? K : M) * lda), 10 + t),
                       Bm = random_floats(std::size_t((tb ? N : K) * ldb), 20 + t), C = random_floats(std::size_t(M * ldc), 30 + t);
            auto dA = up(b, A), dB = up(b, Bm), dC = up(b, C);
            b.gemm(ta, tb, M, N, K, 0.5f, dA.data(), lda, dB.data(), ldb, 1.f, dC.data(), ldc);
            const auto got = down(b, dC);
            std::vector<double> a(A.begin(), A.end()), bb(Bm.begin(), Bm.end()), c(C.begin(), C.end());
            ref.gemm(ta, tb, M, N, K, 0.5, a.data(), lda, bb.data(), ldb, 1.0, c.data(), ldc);
            double num = 0, den = 0;
            for (std::size_t i = 0; i < c.size(); ++i) num += (got[i] - c[i]) * (got[i] - c[i]), den += c[i] * c[i];
            EXPECT_LE(num / den, mode == Mode::checking ? 1e-9 : 1e-5) << "ta=" << ta << " tb=" << tb << " " << mode_name(mode);
        }
    }
}

}  // namespace
}  // namespace sgf::cuda
