// SHA-256 (the digest `sgf verify --json` records for its decoder file): FIPS 180-2's example
// messages, any split of the input, and files against coreutils' sha256sum.
#include <sgf/core/sha256.hpp>

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

namespace sgf {
namespace {

std::string sha(const std::string& s) {
    Sha256 h;
    h.add(s);
    return h.hex();
}

TEST(Sha256, Fips180Examples) {
    EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),  // 448 bits: the length spills into a second block
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, AnySplitOfTheInputGivesTheSameDigest) {
    std::mt19937 rng(3);
    std::string data(1000, '\0');
    for (char& c : data) c = char(rng());
    for (std::size_t len : {0u, 55u, 56u, 63u, 64u, 65u, 119u, 128u, 1000u}) {
        const std::string msg = data.substr(0, len), whole = sha(msg);
        for (std::size_t piece : {1u, 7u, 63u, 64u, 65u}) {
            Sha256 h;
            for (std::size_t i = 0; i < msg.size(); i += piece) h.add(msg.data() + i, std::min(piece, msg.size() - i));
            EXPECT_EQ(h.hex(), whole) << "length " << len << " in pieces of " << piece;
        }
    }
}

TEST(Sha256, FilesAgreeWithSha256sum) {
    const auto dir = test::own_tmpdir(SGF_TEST_TMPDIR, "sha256");
    const auto path = dir / "data.bin";
    std::mt19937 rng(5);
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; i < 200001; ++i) out.put(char(rng()));  // more than three of sha256_of_file's 64 KiB reads
    }
    std::FILE* p = popen(("sha256sum '" + path.string() + "'").c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[65] = {};
    const std::size_t n = std::fread(buf, 1, 64, p);
    const int status = pclose(p);
    if (n != 64 || status != 0) GTEST_SKIP() << "sha256sum is not available here";
    EXPECT_EQ(sha256_of_file(path), std::string(buf, 64));
    try {
        (void)sha256_of_file(dir / "missing.bin");
        ADD_FAILURE();
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("missing.bin: cannot open"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sgf
