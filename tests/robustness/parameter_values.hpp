// The values of a network's parameters by name, on the host: what the model-attack tests compare
// before and after an attack.
#pragma once

#include <sgf/sgf.hpp>

#include <map>
#include <string>
#include <vector>

namespace sgf::test {

template <class Bk, class Net>
std::map<std::string, std::vector<float>> parameter_values(Bk& b, const Net& net) {
    std::map<std::string, std::vector<float>> m;
    for (const auto* p : net.parameters()) m[p->name] = to_host_vector<float>(b, p->value);
    return m;
}

}  // namespace sgf::test
