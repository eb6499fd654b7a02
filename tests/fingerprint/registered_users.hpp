// A matcher of `count` fingerprints from consecutive seeds, labelled "user0", "user1", ...: the
// registry the attribution tests decode against (test_codec_stats.cpp, test_weighted_score.cpp).
#pragma once

#include <sgf/fingerprint.hpp>

#include <string>
#include <vector>

namespace sgf::test {

struct RegisteredUsers {
    Matcher matcher;
    std::vector<Fingerprint> codes;  ///< codes[i] is "user<i>"'s
};

inline RegisteredUsers registered_users(int count, std::uint64_t first_seed, int bits = 128) {
    RegisteredUsers r{Matcher(bits), {}};
    for (int i = 0; i < count; ++i) {
        r.codes.push_back(Fingerprint::from_seed(bits, first_seed + std::uint64_t(i)));
        r.matcher.add(r.codes.back(), "user" + std::to_string(i));
    }
    return r;
}

}  // namespace sgf::test
