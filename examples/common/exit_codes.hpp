// The exit codes of every sgf program (`sgf`, `sgf_train`, `sgf_train_cuda`; the table in docs/cli.md)
// and the one place that turns sgf's exception types into them.
#pragma once

#include <sgf/core/error.hpp>
#include <sgf/core/text.hpp>

#include <fmt/format.h>

#include <cstdio>
#include <exception>

namespace sgf_examples {

enum Exit : int {
    kOk = 0,               // success; for verify: every image attributed
    kInternal = 1,         // a bug: an exception that is not one of sgf's error types
    kUsage = 2,            // bad arguments
    kIoError = 3,          // missing or unreadable input
    kFormatError = 4,      // corrupt or malformed input (model, image, registry, fingerprint text)
    kNumeric = 5,          // NaN/Inf stopped training
    kBackend = 6,          // the compute backend cannot run: no usable GPU, CUDA/cuDNN errors
    kNotFingerprinted = 10,
    kInconclusive = 11,
    kInterrupted = 130,    // training stopped by SIGINT/SIGTERM after writing a checkpoint
};

/// Runs `body` (which returns an exit code) and turns an sgf error it throws into its exit code,
/// printing "error: <message>" on stderr (control characters as \xNN). ShapeError is an ArgumentError (exit 2).
template <class Body>
int run_with_exit_codes(Body&& body) {
    auto fail = [](const std::exception& e, Exit code) {
        // a file name in the message cannot drive the terminal or split the line (backslashes kept)
        fmt::print(stderr, "{}: {}\n", code == kInternal ? "internal error" : "error", sgf::terminal_safe(e.what(), false));
        return int(code);
    };
    try {
        return body();
    } catch (const sgf::IoError& e) {
        return fail(e, kIoError);
    } catch (const sgf::FormatError& e) {
        return fail(e, kFormatError);
    } catch (const sgf::NumericError& e) {
        return fail(e, kNumeric);
    } catch (const sgf::ArgumentError& e) {
        return fail(e, kUsage);
    } catch (const sgf::BackendError& e) {
        return fail(e, kBackend);
    } catch (const std::exception& e) {
        return fail(e, kInternal);
    }
}

}  // namespace sgf_examples
