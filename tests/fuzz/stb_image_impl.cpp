// stb_image's implementation, compiled with the fuzzers' instrumentation (coverage, ASan, UBSan)
// for fuzz_image; it takes precedence over the uninstrumented copy in libstb. Two checks are off
// for this file only, for stb 2.27 bugs whose result is a wrong pixel value, not a memory error
// (docs/security.md, findings 10 and 12): signed-integer-overflow, which stb commits when it
// dequantises corrupt JPEG coefficients (fixed upstream in 2.28), and shift-exponent, which its
// JPEG bit reader commits when corrupt Huffman codes drive its bit count negative (a shift by 32;
// reproducer tests/fuzz/corpus/image/known-stb-jpeg-shift-exponent.jpg). Memory errors, array
// bounds and every other UBSan check stay on.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
