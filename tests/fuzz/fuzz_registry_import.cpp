// libFuzzer entry point for the 'registry_import' target (see targets.hpp and docs/security.md).
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { return sgf::fuzz::registry_import(data, size); }
