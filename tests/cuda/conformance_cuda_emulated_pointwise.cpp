// Conformance part 2 (elementwise, reductions, mbstd, RNG, losses, Adam/EMA, beta contract) on the
// host emulation of the CUDA backend's op layer: the same tests as tests/conformance/test_pointwise.cpp.
#define SGF_TEST_CUDA 1
#include "emulated_traits.hpp"

#include "test_pointwise.cpp"
