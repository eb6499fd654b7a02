// The benchmark programs' hand-rolled option parsing: the value after the option at argv[i].
#pragma once

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace sgf_bench {

/// Returns argv[i + 1] and advances i; exits with status 2 when the option has no value.
inline std::string option_value(int& i, int argc, char** argv) {
    if (i + 1 >= argc) {
        fmt::print(stderr, "missing value after {}\n", argv[i]);
        std::exit(2);
    }
    return argv[++i];
}

/// An integer option in [lo, hi] (the whole text must be the number); exits with status 2 naming the
/// option otherwise.
inline long long int_text(const std::string& text, const char* option, long long lo, long long hi) {
    long long v = 0;
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end || text.empty() || v < lo || v > hi) {
        fmt::print(stderr, "{}: expected an integer in {}..{}, got '{}'\n", option, lo, hi, text);
        std::exit(2);
    }
    return v;
}
inline long long int_value(int& i, int argc, char** argv, long long lo, long long hi) {
    const char* option = argv[i];
    return int_text(option_value(i, argc, argv), option, lo, hi);
}

/// A finite floating-point option in [lo, hi]; exits with status 2 naming the option otherwise.
inline double double_value(int& i, int argc, char** argv, double lo, double hi) {
    const char* option = argv[i];
    const std::string text = option_value(i, argc, argv);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < lo || v > hi) {
        fmt::print(stderr, "{}: expected a number in {}..{}, got '{}'\n", option, lo, hi, text);
        std::exit(2);
    }
    return v;
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
        else if (a == "--batch") batch = int(int_value(i, argc, argv, 1, 1 << 20));
        else if (a == "--warmup") warmup = int(int_value(i, argc, argv, 0, 1 << 20));
        else if (a == "--steps") steps = int(int_value(i, argc, argv, 1, 1 << 20));
        else if (a == "--repeats") repeats = int(int_value(i, argc, argv, 1, 1 << 20));
        else if (a == "--json") json = true;
        else if (a == "--print-config") print_config = true;
        else return false;
        return true;
    }
    static constexpr const char* usage = "[--preset P] [--batch N] [--warmup W] [--steps S] [--repeats R] [--json] "
                                         "[--print-config]";
};

}  // namespace sgf_bench
