// Text checks shared by every file format and message: strict UTF-8 validation (JSON headers,
// checkpoints and registries hold UTF-8 only) and the escaping of untrusted text for messages.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sgf {

/// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
/// sequence. What a JSON header (safetensors, checkpoints) or the registry can hold.
inline bool is_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef) n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4) n = 3, cp = c & 0x07;
        else return false;
        if (i + std::size_t(n) >= s.size()) return false;  // truncated sequence
        for (int k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + std::size_t(k)]);
            if ((d & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += std::size_t(n) + 1;
    }
    return true;
}

/// Text from a file or a command line, for an error message: bytes outside printable ASCII as \xNN
/// (escape sequences never reach a terminal), at most `max_bytes` of it followed by "...".
inline std::string printable(std::string_view s, std::size_t max_bytes = std::string_view::npos) {
    std::string out;
    for (const char ch : s.substr(0, max_bytes)) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x20 && u < 0x7f) out += ch;
        else out += fmt::format("\\x{:02x}", u);
    }
    if (s.size() > max_bytes) out += "...";
    return out;
}

}  // namespace sgf
