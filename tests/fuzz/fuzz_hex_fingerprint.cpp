// libFuzzer entry point for the 'hex_fingerprint' target (see targets.hpp and docs/security.md).
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { return sgf::fuzz::hex_fingerprint(data, size); }
