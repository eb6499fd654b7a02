// Warnings of the sgf subcommands: one line on stderr, so stdout stays parseable (with --json the
// caller also puts the text in its JSON). Shared by commands.hpp and eval_command.hpp.
#pragma once

#include <sgf/core/text.hpp>

#include <iostream>
#include <string>

namespace sgf_cli {

/// "sgf: warning: WHAT" on stderr, control characters escaped; nothing for an empty text.
inline void warn(const std::string& what) {
    if (!what.empty()) std::cerr << "sgf: warning: " << sgf::terminal_safe(what, false) << "\n";
}

}  // namespace sgf_cli
