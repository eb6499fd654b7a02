// Central-difference gradient checking for layers in float64 (dlib's test_layer pattern): the
// scalar f = <layer(inputs), g> with a fixed random projection g, differentiated numerically with
// respect to sampled coordinates of every input and parameter, against the hand-written backward.
#pragma once

#include <sgf/sgf.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace sgf::test {

using B64 = EigenCpu64;

inline std::vector<double> random_vector(std::size_t n, std::uint64_t seed, double scale = 1.0) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> nd(0.0, scale);
    std::vector<double> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

inline Tensor<B64> random_tensor(B64& b, Shape s, std::uint64_t seed, double scale = 1.0) {
    auto v = random_vector(static_cast<std::size_t>(s.size()), seed, scale);
    return from_host<B64, double>(b, s, std::span<const double>(v));
}

/// One differentiable quantity: its storage (host-addressable for CPU backends) and the analytic
/// gradient the backward pass produced for it.
struct GradTarget {
    std::string name;
    double* data;
    std::size_t size;
    std::vector<double> analytic;
};

/// Checks analytic vs numeric gradients of `f` for up to `samples` coordinates of each target.
inline void expect_gradients(const std::function<double()>& f, std::vector<GradTarget> targets, double eps = 1e-5,
                             double tol = 2e-6, std::size_t samples = 24, bool require_nonzero = true) {
    std::mt19937_64 rng(1234);
    for (auto& t : targets) {
        ASSERT_EQ(t.analytic.size(), t.size) << t.name;
        std::vector<std::size_t> idx(t.size);
        for (std::size_t i = 0; i < t.size; ++i) idx[i] = i;
        std::shuffle(idx.begin(), idx.end(), rng);
        idx.resize(std::min(samples, t.size));
        double worst = 0;
        for (std::size_t i : idx) {
            const double keep = t.data[i];
            t.data[i] = keep + eps;
            const double fp = f();
            t.data[i] = keep - eps;
            const double fm = f();
            t.data[i] = keep;
            const double num = (fp - fm) / (2 * eps);
            const double err = std::abs(num - t.analytic[i]) / std::max({1e-2, std::abs(num), std::abs(t.analytic[i])});
            worst = std::max(worst, err);
            EXPECT_LT(err, tol) << t.name << "[" << i << "]: analytic " << t.analytic[i] << " numeric " << num;
        }
        // a gradient that is identically zero would make the check vacuous
        double mag = 0;
        for (double a : t.analytic) mag = std::max(mag, std::abs(a));
        if (require_nonzero) {
            EXPECT_GT(mag, 1e-9) << t.name << ": analytic gradient is all zero";
        }
    }
}

inline GradTarget target_of(B64& b, const std::string& name, Tensor<B64>& value, const Tensor<B64>& grad) {
    return GradTarget{name, value.data(), value.size(), to_host_vector<double>(b, grad)};
}

}  // namespace sgf::test
