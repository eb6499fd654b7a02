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

namespace sgf_bench {

/// The options every training-step benchmark takes (train_step.cpp, train_step_cuda.cu):
/// --preset P --batch N --warmup W --steps S --repeats R --json --print-config.
struct StepOptions {
    std::string preset = "small";
    int batch = 16, warmup = 4, steps = 32, repeats = 3;
    bool json = false, print_config = false;

    /// Consumes argv[i] (and its value) when it is one of the common options; false otherwise.
    bool parse(const std::string& a, int& i, int argc, char** argv) {
        if (a == "--preset") preset = option_value(i, argc, argv);
        else if (a == "--batch") batch = std::stoi(option_value(i, argc, argv));
        else if (a == "--warmup") warmup = std::stoi(option_value(i, argc, argv));
        else if (a == "--steps") steps = std::stoi(option_value(i, argc, argv));
        else if (a == "--repeats") repeats = std::stoi(option_value(i, argc, argv));
        else if (a == "--json") json = true;
        else if (a == "--print-config") print_config = true;
        else return false;
        return true;
    }
    static constexpr const char* usage = "[--preset P] [--batch N] [--warmup W] [--steps S] [--repeats R] [--json] "
                                         "[--print-config]";
};

}  // namespace sgf_bench
