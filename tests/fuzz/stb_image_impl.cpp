// stb_image's implementation, compiled with the fuzzers' instrumentation (coverage, ASan, UBSan)
// for fuzz_image; it takes precedence over the uninstrumented copy in libstb. One check is off for
// this file only: signed-integer-overflow, which stb 2.27 commits when it dequantises corrupt
// JPEG coefficients (fixed upstream in 2.28; the result is a wrong pixel value, not a memory
// error). Memory errors, array bounds, shifts and every other UBSan check stay on.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
