// Conformance part 1 (storage, GEMM, convolutions, FIR) on the host emulation of the CUDA
// backend's op layer (emulated_backend.hpp): the same tests as tests/conformance/test_conv_gemm.cpp.
#define SGF_TEST_CUDA 1
#include "emulated_traits.hpp"

#include "test_conv_gemm.cpp"
