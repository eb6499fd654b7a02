// libFuzzer entry point for the 'image' target (see targets.hpp and docs/security.md). The
// fuzzer links stb_image_impl.cpp, an instrumented build of the same stb_image 2.27 that Debian's
// libstb holds, so that stb's decoders are covered and checked by the sanitizers too.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { return sgf::fuzz::image(data, size); }
