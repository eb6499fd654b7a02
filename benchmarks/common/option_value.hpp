// The benchmark programs' hand-rolled option parsing: the value after the option at argv[i].
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sgf_bench {

/// Returns argv[i + 1] and advances i; exits with status 2 when the option has no value.
inline std::string option_value(int& i, int argc, char** argv) {
    if (i + 1 >= argc) {
        fmt::print(stderr, "missing value after {}\n", argv[i]);
        std::exit(2);
    }
    return argv[++i];
}

}  // namespace sgf_bench
