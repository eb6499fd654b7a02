// Runs a program through the shell with stdout and stderr captured to files, for the tests that
// drive the sgf CLI as a user would.
#pragma once

#include "file_bytes.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace sgf::test {

/// s as one single-quoted POSIX shell word.
inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

struct CommandResult {
    int rc = -1;  ///< exit status, or 128 + signal
    std::string out, err;
};

/// Runs `program args...` with stdout sent to `stdout_path` (e.g. /dev/full) and stderr captured in
/// `capture_dir`/.stderr; `out` of the result is empty.
inline CommandResult run_command_to(const std::string& program, const std::vector<std::string>& args,
                                    const std::filesystem::path& capture_dir, const std::filesystem::path& stdout_path) {
    std::string cmd = shell_quote(program);
    for (const auto& a : args) {
        cmd += ' ';
        cmd += shell_quote(a);  // (appending piecewise: GCC 12 warns falsely on " " + std::string&&)
    }
    const std::filesystem::path err = capture_dir / ".stderr";
    cmd += " > ";
    cmd += shell_quote(stdout_path.string());
    cmd += " 2> ";
    cmd += shell_quote(err.string());
    const int status = std::system(cmd.c_str());
    CommandResult r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    r.err = slurp(err);
    return r;
}

/// Runs `program args...`; its output is captured in `capture_dir`/.stdout and .stderr.
inline CommandResult run_command(const std::string& program, const std::vector<std::string>& args,
                                 const std::filesystem::path& capture_dir) {
    const std::filesystem::path out = capture_dir / ".stdout";
    CommandResult r = run_command_to(program, args, capture_dir, out);
    r.out = slurp(out);
    return r;
}

}  // namespace sgf::test
