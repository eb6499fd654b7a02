// Conformance part 3 (fill/copy/copy2d/GEMM edge cases) on the host emulation of the CUDA
// backend's op layer: the same tests as tests/conformance/test_storage_edges.cpp. Reaches the
// element code of the Fill, Copy2d (src_ld < cols) and ScaleRows (GEMM with K == 0 or
// alpha == 0) kernels; memset and the overlapping-copy temporary are GPU-only paths.
#define SGF_TEST_CUDA 1
#include "emulated_traits.hpp"

#include "test_storage_edges.cpp"
