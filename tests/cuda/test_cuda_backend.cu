// CUDA backend tests. They compile in every build that finds nvcc; tests that need a GPU skip at
// run time with the reason when there is none.
#include <sgf/backends/cuda.cuh>

#include <gtest/gtest.h>

#include <vector>

namespace sgf::cuda {
namespace {

TEST(CudaBackend, DeviceDiscoveryNeverThrows) {
    int n = -1;
    EXPECT_NO_THROW(n = device_count());
    EXPECT_GE(n, 0);
    if (n == 0) EXPECT_FALSE(no_gpu_reason().empty());
}

TEST(CudaBackend, RandomDrawsMatchTheHostPhiloxExactly) {
    if (!gpu_available()) GTEST_SKIP() << "no CUDA GPU: " << no_gpu_reason();
    const std::int64_t n = 100003;
    DeviceBuffer<float> d(n);
    Random<float> rng;
    for (int kind = 0; kind < 3; ++kind) {
        const RngKey key{12345, 7u + kind, 99};
        if (kind == 0) rng.normal(key, n, d.data());
        if (kind == 1) rng.uniform(key, n, d.data());
        if (kind == 2) rng.bits(key, n, d.data());
        std::vector<float> h(n);
        SGF_CUDA_CHECK(cudaMemcpy(h.data(), d.data(), n * sizeof(float), cudaMemcpyDeviceToHost));
        int mismatches = 0;
        for (std::int64_t i = 0; i < n; ++i) {
            const double ref = kind == 0 ? philox::normal(key, i) : kind == 1 ? philox::uniform(key, i) : philox::bit(key, i);
            mismatches += h[i] != float(ref);
        }
        EXPECT_EQ(mismatches, 0) << "kind " << kind;
    }
}

TEST(CudaBackend, ErrorsBecomeBackendErrorsWithTheCall) {
    if (!gpu_available()) GTEST_SKIP() << "no CUDA GPU: " << no_gpu_reason();
    try {
        DeviceBuffer<float> huge(std::size_t(1) << 50);
        FAIL() << "a 4 PiB allocation must fail";
    } catch (const BackendError& e) {
        EXPECT_NE(std::string(e.what()).find("cudaMalloc"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sgf::cuda
