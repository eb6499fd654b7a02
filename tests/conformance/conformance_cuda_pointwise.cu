// Conformance part 2 (elementwise, reductions, mbstd, RNG, losses, Adam/EMA, beta contract)
// compiled by nvcc with the CUDA backend in the backend list: the same tests as
// test_pointwise.cpp, run on the GPU (skipped without one).
#define SGF_TEST_CUDA 1
#include <cuda_traits.hpp>

#include "test_pointwise.cpp"
