// Conformance part 1 (storage, GEMM, convolutions, FIR) compiled by nvcc with the CUDA backend in
// the backend list: the same tests as test_conv_gemm.cpp, run on the GPU (skipped without one).
#define SGF_TEST_CUDA 1
#include <cuda_traits.hpp>

#include "test_conv_gemm.cpp"
