// sgf's version: CMakeLists.txt reads it from here for project(VERSION), so the package files,
// find_package(sgf VERSION) and `sgf --version` all say the same. One place to change.
#pragma once

#define SGF_VERSION_MAJOR 0
#define SGF_VERSION_MINOR 1
#define SGF_VERSION_PATCH 0

#define SGF_VERSION_STRINGIFY_(x) #x
#define SGF_VERSION_STRINGIFY(x) SGF_VERSION_STRINGIFY_(x)

namespace sgf {
/// "MAJOR.MINOR.PATCH", e.g. in `sgf --version` and in the record that `sgf --json verify` writes.
inline constexpr const char* kVersion = SGF_VERSION_STRINGIFY(SGF_VERSION_MAJOR) "." SGF_VERSION_STRINGIFY(
    SGF_VERSION_MINOR) "." SGF_VERSION_STRINGIFY(SGF_VERSION_PATCH);
}  // namespace sgf
