// Text checks shared by every file format and message: strict UTF-8 validation (JSON headers,
// checkpoints and registries hold UTF-8 only) and the escaping of untrusted text for messages
// (printable) and for a terminal (terminal_safe); counts with their nouns (count_of).
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

/// Whether a C1 control character (U+0080..U+009F, in UTF-8 the bytes C2 80..C2 9F) starts at s[i]:
/// an 8-bit terminal reads it as a control sequence (U+009B is CSI).
inline bool is_c1_control_at(std::string_view s, std::size_t i) noexcept {
    return i + 1 < s.size() && static_cast<unsigned char>(s[i]) == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;
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

/// Text from a file (metadata, labels of a foreign registry, file names) for a terminal, so that it
/// can neither forge a result line nor drive the terminal: C0 controls (TAB, newline, ESC), DEL, the
/// C1 controls U+0080..U+009F and bytes that are not part of valid UTF-8 as \xNN, and a backslash as
/// \\ (so a file really named `a\x09b` reads back as `a\\x09b`, not as a TAB). Other UTF-8 text passes.
/// escape_backslash = false keeps backslashes (error messages, whose names went through printable()).
inline std::string terminal_safe(std::string_view s, bool escape_backslash = true) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u == '\\' && escape_backslash) {
            out += "\\\\";
            continue;
        }
        if (u >= 0x20 && u < 0x7f) {
            out += s[i];
            continue;
        }
        const std::size_t len = u >= 0xf0 ? 4 : u >= 0xe0 ? 3 : u >= 0xc0 ? 2 : 1;  // of a UTF-8 sequence led by u
        if (len > 1 && !is_c1_control_at(s, i) && i + len <= s.size() && is_valid_utf8(s.substr(i, len))) {
            out += s.substr(i, len);
            i += len - 1;
        } else {
            out += fmt::format("\\x{:02x}", u);  // a control, a C1 control's lead byte, or a stray byte
        }
    }
    return out;
}

/// "1 image", "3 images": a count with its noun in messages (nouns whose plural adds an "s").
inline std::string count_of(long long n, std::string_view noun) {
    return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

}  // namespace sgf
