// Whole-file reads and safetensors header surgery shared by the tests and the fuzz seed writer
// (no GoogleTest dependency: sgf_fuzz_seeds is a plain program).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace sgf::test {

/// The bytes of a file ("" when it cannot be opened).
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The JSON header of a serialised safetensors file (8-byte little-endian length, then the JSON).
inline std::string safetensors_header(const std::string& bytes) {
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    return bytes.substr(8, n);
}

/// The same file with its JSON header replaced (padded with spaces to a multiple of 8 bytes) and
/// its tensor data kept.
inline std::string with_safetensors_header(const std::string& bytes, std::string json) {
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    const std::string data = bytes.substr(8 + n);
    while (json.size() % 8) json.push_back(' ');
    std::string out(8, '\0');
    const std::uint64_t m = json.size();
    std::memcpy(out.data(), &m, 8);
    return out + json + data;
}

}  // namespace sgf::test
