// Parameters, gradient modes and deterministic initialisation shared by all layers.
#pragma once

#include <sgf/core/tensor.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sgf {

/// What a backward pass does with parameter gradients. The input gradient is always computed.
///  accumulate: grad += dL/dparam   (several losses or several passes add up)
///  overwrite:  grad  = dL/dparam
///  skip:       parameter gradients untouched (the G step routes dL/dx through D this way)
enum class GradMode { accumulate, overwrite, skip };

template <class T>
constexpr T grad_beta(GradMode m) {
    return m == GradMode::accumulate ? T(1) : T(0);
}

/// A trainable tensor and its gradient (same shape). Stored values are what files hold; the
/// equalised-lr scaling is applied by the layer at run time.
template <Backend B>
struct Parameter {
    std::string name;
    Tensor<B> value;
    Tensor<B> grad;
    std::vector<std::int64_t> dims;  ///< the natural shape (rank 1-4) used in model files
};

/// 64-bit FNV-1a of a parameter name: the Philox stream its initial values are drawn from, so a
/// model's initial weights depend only on (seed, names), never on construction order or backend.
constexpr std::uint64_t name_hash(std::string_view s) {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

/// Seed value that skips the random draw (values are zero): for networks whose weights are about to
/// be loaded from a file or baked, where drawing millions of normals would only cost time.
inline constexpr std::uint64_t kNoInit = ~std::uint64_t(0);

/// random_normal: values ~ N(0, constant^2) (constant 0 or 1 means unit variance); otherwise all
/// values equal `constant`.
template <Backend B>
Parameter<B> make_parameter(B& b, std::string name, std::vector<std::int64_t> dims, std::uint64_t seed,
                            bool random_normal, double constant = 0.0) {
    SGF_CHECK(!dims.empty() && dims.size() <= 4, ArgumentError, "parameter '{}': rank must be 1-4", name);
    Shape s{dims[0], 1, 1, 1};
    if (dims.size() > 1) s.c = dims[1];
    if (dims.size() > 2) s.h = dims[2];
    if (dims.size() > 3) s.w = dims[3];
    Parameter<B> p{std::move(name), Tensor<B>(b, s), Tensor<B>(b, s, typename B::Scalar(0)), std::move(dims)};
    if (random_normal && seed == kNoInit) {
        b.fill(p.value.data(), p.value.size(), typename B::Scalar(0));
    } else if (random_normal) {
        b.normal(RngKey{seed, name_hash(p.name), 0}, s.size(), p.value.data());
        if (constant != 0.0 && constant != 1.0) b.axpby(s.size(), typename B::Scalar(0), p.value.data(),
                                                        typename B::Scalar(constant), p.value.data());
    } else b.fill(p.value.data(), p.value.size(), typename B::Scalar(constant));
    return p;
}

/// A visitor over parameters; networks compose these.
template <Backend B>
using ParamVisitor = std::function<void(Parameter<B>&)>;

template <Backend B>
void zero_grads(B& b, const std::vector<Parameter<B>*>& ps) {
    for (auto* p : ps) b.fill(p->grad.data(), p->grad.size(), typename B::Scalar(0));
}

/// Copies the values of `from` into `to` (the same network's parameters, in the same order).
template <Backend B>
void copy_values(B& b, const std::vector<Parameter<B>*>& from, const std::vector<Parameter<B>*>& to) {
    SGF_CHECK(from.size() == to.size(), ArgumentError, "copy_values: {} source parameters vs {} targets", from.size(),
              to.size());
    for (std::size_t i = 0; i < from.size(); ++i) {
        check_shape(to[i]->value.shape(), from[i]->value.shape(), "copy_values '" + from[i]->name + "'");
        b.copy(from[i]->value.data(), to[i]->value.data(), from[i]->value.size());
    }
}

}  // namespace sgf
