// Comparing two trainers parameter by parameter: the resume tests (tests/modelio, tests/immunise)
// check that a run continued from a checkpoint ends with exactly the weights of a straight run.
#pragma once

#include <sgf/sgf.hpp>

#include <gtest/gtest.h>

namespace sgf::test {

/// Every parameter of G, its EMA, F and D equal, value for value (a resume that mis-restores any of
/// them shows here even when no loss of the compared steps reads it, as for the EMA generator).
template <class Bk, class Tr>
void expect_same_weights(Bk& b, Tr& x, Tr& y) {
    auto cmp = [&](const char* what, const auto& px, const auto& py) {
        ASSERT_EQ(px.size(), py.size()) << what;
        for (std::size_t i = 0; i < px.size(); ++i)
            EXPECT_EQ(to_host_vector(b, px[i]->value), to_host_vector(b, py[i]->value)) << what << " " << px[i]->name;
    };
    cmp("G", x.generator().parameters(), y.generator().parameters());
    cmp("G_ema", x.generator_ema().parameters(), y.generator_ema().parameters());
    cmp("F", x.decoder().parameters(), y.decoder().parameters());
    cmp("D", x.discriminator().parameters(), y.discriminator().parameters());
}

}  // namespace sgf::test
