// A temporary folder of the running test's own, SGF_TEST_TMPDIR/<area>/<Suite>.<Test>: ctest runs the
// tests of one binary in parallel, and two tests that write one file name read each other's bytes (a
// flaky "truncated: 0 bytes" under ASan, session 24).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace sgf::test {

inline std::filesystem::path own_tmpdir(const std::filesystem::path& root, const std::string& area) {
    std::filesystem::path d = root / area;
    if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
        d /= std::string(info->test_suite_name()) + "." + info->name();
    std::filesystem::create_directories(d);
    return d;
}

}  // namespace sgf::test
