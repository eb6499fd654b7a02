// Conformance part 3 (fill/copy/copy2d/GEMM edge cases) compiled by nvcc with the CUDA backend in
// the backend list: the same tests as test_storage_edges.cpp, run on the GPU (skipped without one).
// They reach the backend's own paths: fill with +0.0 (cudaMemsetAsync), overlapping copy (through
// a temporary), copy2d with src_ld < cols (kernel instead of cudaMemcpy2D), GEMM with K == 0 or
// alpha == 0 (ScaleRows kernel instead of cuBLAS).
#define SGF_TEST_CUDA 1
#include <cuda_traits.hpp>

#include "test_storage_edges.cpp"
