// Option checks shared by the sgf programs, in place of CLI11's own where those say too little or
// too much: a seed must be a decimal integer that fits 64 bits (CLI11 saturated 10^23 to 2^64-1 and
// wrapped -1), and a weight a finite number >= 0 (CLI11's NonNegativeNumber printed its range as a
// 309-digit number).
#pragma once

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

namespace sgf_examples {

/// A 64-bit seed: decimal digits only, 0 to 18446744073709551615. Attach it with ->transform(), not
/// ->check(): it rewrites the text canonically, since CLI11 converts integers with base 0 and would
/// read "010" as octal 8.
inline CLI::Validator seed_check() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            std::uint64_t v = 0;
            const char* end = s.data() + s.size();
            const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
            const auto r = std::from_chars(s.data(), end, v);
            if (!digits || r.ec != std::errc{} || r.ptr != end)
                return fmt::format("'{}' is not a seed: give a decimal integer from 0 to 18446744073709551615", s);
            s = std::to_string(v);
            return {};
        },
        "SEED", "seed");
}

/// A finite number >= 0.
inline CLI::Validator non_negative_check() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            double v = 0;
            const char* end = s.data() + s.size();
            const auto r = std::from_chars(s.data(), end, v);
            if (s.empty() || r.ec != std::errc{} || r.ptr != end || !std::isfinite(v) || v < 0)
                return fmt::format("must be a finite number >= 0, got '{}'", s);
            return {};
        },
        "NUMBER>=0", "non-negative");
}

}  // namespace sgf_examples
