// Model perturbations (sgf/robustness/model_attacks.hpp) on a baked (per-user) generator: identity
// strengths leave the output bit-identical, each attack changes the weights by the documented
// amount, and the noise is deterministic from the seed.
#include <sgf/backends/eigen.hpp>
#include <sgf/robustness.hpp>

#include <gtest/gtest.h>

#include "parameter_values.hpp"

#include <bit>
#include <cmath>
#include <map>
#include <set>

namespace sgf::attack {
namespace {

using B = EigenCpu;

struct Fixture {
    B b{1};
    ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<B> G{b, cfg, 3};
    Tensor<B> z;
    Fixture() {
        z = Tensor<B>(b, Shape{2, cfg.z_dim});
        b.normal(RngKey{5, 6, 0}, z.size(), z.data());
    }
    MetaGenerator<B> baked(std::uint64_t bits_seed = 1) {
        Tensor<B> c(b, Shape{1, cfg.fingerprint_bits});
        b.bits(RngKey{bits_seed, 2, 0}, c.size(), c.data());
        return instantiate(b, G, c);
    }
    std::vector<float> image(MetaGenerator<B>& Gu) { return to_host_vector<float>(b, Gu.forward_baked(b, z, 77).image()); }
    std::map<std::string, std::vector<float>> params(MetaGenerator<B>& Gu) { return test::parameter_values(b, Gu); }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return false;
    return true;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    return s / double(a.size());
}

bool is_weight(const std::string& name) { return name.size() > 7 && name.substr(name.size() - 7) == ".weight"; }

TEST(ModelAttacks, IdentityStrengthsLeaveTheOutputBitIdentical) {
    Fixture f;
    MetaGenerator<B> Gu = f.baked();
    const auto img0 = f.image(Gu);
    const auto p0 = f.params(Gu);
    for (const auto& info : model_attacks()) {
        if (!info.identity) continue;
        const auto rep = apply(f.b, Gu, ModelAttack{info.name, *info.identity}, 123);
        EXPECT_FALSE(rep.tensors.empty()) << info.name;
        for (const auto& t : rep.tensors) EXPECT_EQ(t.max_abs_change, 0.0) << info.name << " " << t.name;
        EXPECT_TRUE(same_bits(f.image(Gu), img0)) << info.name;
        for (const auto& [name, v] : f.params(Gu)) EXPECT_TRUE(same_bits(v, p0.at(name))) << info.name << " " << name;
    }
}

TEST(ModelAttacks, RelativeWeightNoiseHasTheDocumentedSizeAndIsDeterministic) {
    Fixture f;
    MetaGenerator<B> A = f.baked(), A2 = f.baked(), A3 = f.baked();
    const auto before = f.params(A);
    const auto img0 = f.image(A);
    const double sigma = 0.1;
    const auto rep = apply(f.b, A, ModelAttack{"weight_noise", sigma}, 42);
    apply(f.b, A2, ModelAttack{"weight_noise", sigma}, 42);
    apply(f.b, A3, ModelAttack{"weight_noise", sigma}, 43);
    const auto after = f.params(A), after2 = f.params(A2), after3 = f.params(A3);
    int checked = 0;
    for (const auto& t : rep.tensors) EXPECT_TRUE(is_weight(t.name)) << t.name;
    for (const auto& [name, v] : before) {
        const auto& w = after.at(name);
        EXPECT_TRUE(same_bits(w, after2.at(name))) << name;  // same seed, same noise
        if (!is_weight(name)) {
            EXPECT_TRUE(same_bits(w, v)) << name;  // biases and noise strengths untouched
            continue;
        }
        EXPECT_FALSE(same_bits(w, after3.at(name))) << name;  // another seed, other noise
        if (v.size() < 256) continue;
        double mean = 0, var = 0;
        for (float x : v) mean += x;
        mean /= double(v.size());
        for (float x : v) var += (x - mean) * (x - mean);
        const double sd = std::sqrt(var / double(v.size())), rms = std::sqrt(mse(w, v));
        EXPECT_NEAR(rms, sigma * sd, 0.1 * sigma * sd) << name;
        ++checked;
    }
    EXPECT_GE(checked, 2);
    // the output changes, and more with a larger sigma (same seed: the same normals scaled)
    double prev = 0;
    for (double s : {0.01, 0.05, 0.2}) {
        MetaGenerator<B> Gs = f.baked();
        apply(f.b, Gs, ModelAttack{"weight_noise", s}, 42);
        const double e = mse(f.image(Gs), img0);
        EXPECT_GT(e, prev) << s;
        prev = e;
    }
}

TEST(ModelAttacks, AbsoluteWeightNoise) {
    Fixture f;
    MetaGenerator<B> A = f.baked();
    const auto before = f.params(A);
    apply(f.b, A, ModelAttack{"weight_noise_abs", 0.01}, 42);
    const auto after = f.params(A);
    int checked = 0;
    for (const auto& [name, v] : before)
        if (is_weight(name) && v.size() >= 256) {
            EXPECT_NEAR(std::sqrt(mse(after.at(name), v)), 0.01, 0.001) << name;
            ++checked;
        }
    EXPECT_GT(checked, 0) << "no weight tensor of >= 256 values: the check above never ran";
}

TEST(ModelAttacks, RoundingErrorIsAtMostHalfAStep) {
    Fixture f;
    for (int d : {5, 3, 1}) {
        MetaGenerator<B> A = f.baked();
        const auto before = f.params(A);
        const auto rep = apply(f.b, A, ModelAttack{"round", double(d)}, 0);
        EXPECT_EQ(rep.tensors.size(), before.size());  // rounding acts on every parameter
        const auto after = f.params(A);
        const double step = std::pow(10.0, -d);
        bool changed = false;
        for (const auto& [name, v] : before) {
            const auto& w = after.at(name);
            for (std::size_t i = 0; i < v.size(); ++i) {
                // half a step, plus the float rounding of the result
                ASSERT_LE(std::abs(double(w[i]) - v[i]), 0.5 * step * (1 + 1e-9) + 1e-7 * std::abs(v[i])) << name << " d=" << d;
                ASSERT_NEAR(double(w[i]) / step, std::round(double(w[i]) / step), 1e-6 * std::max(1.0, std::abs(v[i]) / step));
                changed |= w[i] != v[i];
            }
        }
        EXPECT_TRUE(changed);
        for (const auto& t : rep.tensors) EXPECT_DOUBLE_EQ(t.step, step);
    }
    // strong rounding changes the image
    Fixture g;
    MetaGenerator<B> A = g.baked();
    const auto img0 = g.image(A);
    apply(g.b, A, ModelAttack{"round", 1}, 0);
    EXPECT_GT(mse(g.image(A), img0), 0);
}

TEST(ModelAttacks, QuantisationErrorIsAtMostHalfTheScale) {
    Fixture f;
    MetaGenerator<B> A = f.baked();
    const auto before = f.params(A);
    const auto rep = apply(f.b, A, ModelAttack{"quantize", 8}, 0);
    const auto after = f.params(A);
    int checked = 0;
    for (const auto& t : rep.tensors) {
        ++checked;
        ASSERT_TRUE(is_weight(t.name));
        const auto &v = before.at(t.name), &w = after.at(t.name);
        double amax = 0;
        for (float x : v) amax = std::max(amax, std::abs(double(x)));
        EXPECT_NEAR(t.step, amax / 127.0, 1e-12 * amax);
        std::set<long> levels;
        for (std::size_t i = 0; i < v.size(); ++i) {
            ASSERT_LE(std::abs(double(w[i]) - v[i]), 0.5 * t.step + 1e-7 * amax) << t.name;
            const double q = double(w[i]) / t.step;
            ASSERT_NEAR(q, std::round(q), 1e-4);
            ASSERT_LE(std::abs(std::lround(q)), 127);
            levels.insert(std::lround(q));
        }
        EXPECT_LE(levels.size(), 255u);
        EXPECT_LE(t.max_abs_change, 0.5 * t.step + 1e-7 * amax);
    }
    EXPECT_GT(checked, 0) << "the quantisation report lists no tensor: the checks above never ran";
    for (const auto& [name, v] : before)
        if (!is_weight(name)) {
            EXPECT_TRUE(same_bits(after.at(name), v)) << name;
        }
    // fewer bits, larger error
    double prev = 0;
    for (int bits : {8, 6, 4, 2}) {
        MetaGenerator<B> Q = f.baked();
        const auto r = apply(f.b, Q, ModelAttack{"quantize", double(bits)}, 0);
        double e = 0;
        for (const auto& t : r.tensors) e += t.rms_change;
        EXPECT_GT(e, prev) << bits;
        prev = e;
    }
}

TEST(ModelAttacks, PruningZeroesExactlyTheRequestedFractionOfEachConvWeight) {
    Fixture f;
    for (double p : {0.25, 0.5, 0.9}) {
        MetaGenerator<B> A = f.baked();
        const auto before = f.params(A);
        const auto rep = apply(f.b, A, ModelAttack{"prune", p}, 0);
        const auto after = f.params(A);
        std::set<std::string> conv;
        for (auto* q : A.parameters())
            if (is_weight(q->name) && q->dims.size() == 4) conv.insert(q->name);
        EXPECT_EQ(rep.tensors.size(), conv.size());
        for (const auto& t : rep.tensors) EXPECT_TRUE(conv.count(t.name)) << t.name;
        for (const auto& [name, v] : before) {
            const auto& w = after.at(name);
            if (!conv.count(name)) {
                EXPECT_TRUE(same_bits(w, v)) << name;
                continue;
            }
            std::size_t zeros = 0, zeros_before = 0;
            double max_pruned = 0, min_kept = 1e300;
            for (std::size_t i = 0; i < v.size(); ++i) {
                zeros_before += v[i] == 0;
                if (w[i] == 0) {
                    ++zeros;
                    max_pruned = std::max(max_pruned, std::abs(double(v[i])));
                } else {
                    ASSERT_EQ(w[i], v[i]);  // kept weights untouched
                    min_kept = std::min(min_kept, std::abs(double(v[i])));
                }
            }
            EXPECT_EQ(zeros_before, 0u) << name;
            EXPECT_EQ(zeros, std::size_t(std::llround(p * double(v.size())))) << name << " p=" << p;
            EXPECT_LE(max_pruned, min_kept) << name;  // the smallest magnitudes went
        }
    }
}

TEST(ModelAttacks, HostKernels) {
    std::vector<double> w{0.5, -0.1, 0.1, 0.0, -2.0, 0.1};
    auto a = w;
    EXPECT_EQ(prune_smallest(a, 0.5), 3);  // 0.0, then the tie -0.1 / 0.1 / 0.1 by index: -0.1, 0.1
    EXPECT_EQ(a, (std::vector<double>{0.5, 0.0, 0.0, 0.0, -2.0, 0.1}));
    auto q = w;
    EXPECT_DOUBLE_EQ(quantize_symmetric(q, 2), 2.0);  // levels -1, 0, 1 times 2
    EXPECT_EQ(q, (std::vector<double>{0.0, 0.0, 0.0, 0.0, -2.0, 0.0}));
    auto r = std::vector<double>{1.234, -0.0049, 0.0051};
    round_values(r, 2);
    EXPECT_NEAR(r[0], 1.23, 1e-15);
    EXPECT_EQ(r[1], 0.0);
    EXPECT_NEAR(r[2], 0.01, 1e-15);
}

TEST(ModelAttacks, RejectsBadArguments) {
    Fixture f;
    MetaGenerator<B> A = f.baked();
    EXPECT_THROW(apply(f.b, A, ModelAttack{"round", 2.5}, 0), ArgumentError);
    EXPECT_THROW(apply(f.b, A, ModelAttack{"quantize", 1}, 0), ArgumentError);
    EXPECT_THROW(apply(f.b, A, ModelAttack{"prune", 1.5}, 0), ArgumentError);
    EXPECT_THROW(apply(f.b, A, ModelAttack{"weight_noise", -1}, 0), ArgumentError);
    EXPECT_THROW(apply(f.b, A, ModelAttack{"finetune", 1}, 0), ArgumentError);
    // the public host kernels check their own arguments (bits 1 gave NaN weights, a negative
    // fraction pruned everything, 10^400 made every weight NaN)
    std::vector<double> w{0.5, -0.25, 0.125};
    EXPECT_THROW(quantize_symmetric(w, 1), ArgumentError);
    EXPECT_THROW(quantize_symmetric(w, 0), ArgumentError);
    EXPECT_THROW(quantize_symmetric(w, 2000), ArgumentError);
    EXPECT_THROW(prune_smallest(w, -0.5), ArgumentError);
    EXPECT_THROW(prune_smallest(w, std::nan("")), ArgumentError);
    EXPECT_THROW(round_values(w, 400), ArgumentError);
    EXPECT_THROW(round_values(w, -400), ArgumentError);
    EXPECT_EQ(w, (std::vector<double>{0.5, -0.25, 0.125})) << "refused calls change nothing";
    // an explicit selection overrides the default: pruning every parameter also zeroes biases
    const auto rep = apply(f.b, A, ModelAttack{"prune", 1.0, ParamSet::all}, 0);
    EXPECT_EQ(rep.tensors.size(), A.parameters().size());
    for (auto* p : A.parameters())
        for (float v : to_host_vector<float>(f.b, p->value)) ASSERT_EQ(v, 0.0f) << p->name;
}

}  // namespace
}  // namespace sgf::attack
