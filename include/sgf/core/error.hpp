// Error types. Every failure in sgf is an exception derived from sgf::Error whose message says
// what went wrong in terms the user can act on (file name, layer name, expected vs actual shape).
// The source location is kept separately (where()) so messages stay readable.
#pragma once

#include <sgf/core/text.hpp>  // printable(), for the messages

#include <fmt/format.h>

#if __has_include(<source_location>)
#include <source_location>
#endif
#include <stdexcept>
#if !defined(__cpp_lib_source_location) && !defined(SGF_SOURCE_LOCATION_SHIM)
#error "sgf needs C++20's std::source_location: GCC 11 or newer, or Clang 15 or newer with libstdc++ (16 or newer with libc++), with -std=c++20 (docs/library.md, 'Requirements')"
#endif
#include <string>
#include <string_view>

namespace sgf {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& msg, std::source_location loc = std::source_location::current())
        : std::runtime_error(msg), where_(fmt::format("{}:{}", loc.file_name(), loc.line())) {}
    const std::string& where() const noexcept { return where_; }

private:
    std::string where_;
};

/// A caller passed something invalid (bad shape, negative size, malformed fingerprint text).
class ArgumentError : public Error {
public:
    explicit ArgumentError(const std::string& msg, std::source_location loc = std::source_location::current()) : Error(msg, loc) {}
};
/// Tensor shapes that do not fit a layer or op.
class ShapeError : public ArgumentError {
public:
    explicit ShapeError(const std::string& msg, std::source_location loc = std::source_location::current()) : ArgumentError(msg, loc) {}
};
/// A file could not be opened, read or written.
class IoError : public Error {
public:
    explicit IoError(const std::string& msg, std::source_location loc = std::source_location::current()) : Error(msg, loc) {}
};
/// A file was read but its content is malformed, truncated or inconsistent.
class FormatError : public Error {
public:
    explicit FormatError(const std::string& msg, std::source_location loc = std::source_location::current()) : Error(msg, loc) {}
};
/// A numerical failure (NaN/Inf) was detected.
class NumericError : public Error {
public:
    explicit NumericError(const std::string& msg, std::source_location loc = std::source_location::current()) : Error(msg, loc) {}
};
/// A backend (e.g. CUDA, cuDNN, cuBLAS) call failed.
class BackendError : public Error {
public:
    explicit BackendError(const std::string& msg, std::source_location loc = std::source_location::current()) : Error(msg, loc) {}
};

namespace detail {
template <class E, class... Args>
[[noreturn]] inline void raise(std::source_location loc, fmt::format_string<Args...> f, Args&&... args) {
    throw E(fmt::format(f, std::forward<Args>(args)...), loc);
}
}  // namespace detail

}  // namespace sgf

/// SGF_THROW(ShapeError, "conv '{}': expected {} got {}", name, a, b)
#define SGF_THROW(Type, ...) ::sgf::detail::raise<::sgf::Type>(std::source_location::current(), __VA_ARGS__)
/// SGF_CHECK(cond, Type, fmt, args...): throw Type with the formatted message when cond is false.
#define SGF_CHECK(cond, Type, ...)                                     \
    do {                                                               \
        if (!(cond)) SGF_THROW(Type, __VA_ARGS__);                     \
    } while (0)
