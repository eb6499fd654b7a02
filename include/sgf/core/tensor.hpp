// Tensor<B>: an owning buffer in backend B's memory plus its NCHW shape. Tensors are moved, never
// implicitly copied (use clone()). Host transfers go through to_host / from_host.
#pragma once

#include <sgf/core/concepts.hpp>
#include <sgf/core/shape.hpp>

#include <span>
#include <utility>
#include <vector>

namespace sgf {

/// A non-owning view of a tensor's storage: what layer contexts keep of their inputs. The data
/// pointer stays valid when the owning Tensor is moved (only its buffer handle moves), so contexts
/// can be moved around freely as long as the owner lives.
template <class Scalar>
struct TensorView {
    const Scalar* ptr = nullptr;
    Shape shp{};
    const Scalar* data() const noexcept { return ptr; }
    const Shape& shape() const noexcept { return shp; }
    std::size_t size() const noexcept { return static_cast<std::size_t>(shp.size()); }
};

template <StorageBackend B>
class Tensor {
public:
    using Scalar = typename B::Scalar;

    Tensor() = default;
    Tensor(B& b, Shape s) : shape_(s), buf_(b.allocate(static_cast<std::size_t>(HostTensor<Scalar>::checked_size(s)))) {}
    Tensor(B& b, Shape s, Scalar value) : Tensor(b, s) { b.fill(data(), size(), value); }

    // A moved-from tensor is empty (shape [0, 0, 1, 1], no storage), not a shape without storage:
    // an op given it fails its shape check instead of reading through a null pointer.
    Tensor(Tensor&& o) noexcept : shape_(std::exchange(o.shape_, Shape{})), buf_(std::move(o.buf_)) {}
    Tensor& operator=(Tensor&& o) noexcept {
        if (this != &o) {
            shape_ = std::exchange(o.shape_, Shape{});
            buf_ = std::move(o.buf_);
        }
        return *this;
    }
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;

    const Shape& shape() const noexcept { return shape_; }
    std::size_t size() const noexcept { return static_cast<std::size_t>(shape_.size()); }
    bool empty() const noexcept { return shape_.size() == 0; }
    Scalar* data() noexcept { return buf_.data(); }
    const Scalar* data() const noexcept { return const_cast<typename B::Buffer&>(buf_).data(); }

    /// Same storage, new shape with the same element count (e.g. [N,F,1,1] <-> [N,C,H,W]).
    Tensor&& reshape(Shape s) && {
        SGF_CHECK(s.size() == shape_.size(), ShapeError, "reshape: {} has {} elements, {} has {}", shape_.str(),
                  shape_.size(), s.str(), s.size());
        shape_ = s;
        return std::move(*this);
    }
    void reshape_inplace(Shape s) {
        SGF_CHECK(s.size() == shape_.size(), ShapeError, "reshape: {} has {} elements, {} has {}", shape_.str(),
                  shape_.size(), s.str(), s.size());
        shape_ = s;
    }

    TensorView<Scalar> view() const noexcept { return {data(), shape_}; }
    operator TensorView<Scalar>() const noexcept { return view(); }

    Tensor clone(B& b) const {
        Tensor t(b, shape_);
        if (size()) b.copy(data(), t.data(), size());
        return t;
    }

private:
    Shape shape_{};
    typename B::Buffer buf_{};
};

/// Copies a tensor to a host vector (converting to T).
template <class T = float, StorageBackend B>
std::vector<T> to_host_vector(B& b, const Tensor<B>& t) {
    std::vector<typename B::Scalar> tmp(t.size());
    if (t.size()) b.download(t.data(), t.size(), tmp.data());
    if constexpr (std::is_same_v<T, typename B::Scalar>) return tmp;
    else return std::vector<T>(tmp.begin(), tmp.end());
}

template <class T = float, StorageBackend B>
HostTensor<T> to_host(B& b, const Tensor<B>& t) {
    HostTensor<T> h;
    h.shape = t.shape();
    h.data = to_host_vector<T>(b, t);
    return h;
}

/// Uploads host values (any arithmetic type) into a new tensor of the given shape.
template <StorageBackend B, class T>
Tensor<B> from_host(B& b, Shape s, std::span<const T> values) {
    SGF_CHECK(static_cast<std::int64_t>(values.size()) == s.size(), ShapeError,
              "from_host: shape {} needs {} values, got {}", s.str(), s.size(), values.size());
    Tensor<B> t(b, s);
    if constexpr (std::is_same_v<T, typename B::Scalar>) {
        if (t.size()) b.upload(values.data(), values.size(), t.data());
    } else {
        std::vector<typename B::Scalar> tmp(values.begin(), values.end());
        if (t.size()) b.upload(tmp.data(), tmp.size(), t.data());
    }
    return t;
}

template <StorageBackend B, class T>
Tensor<B> from_host(B& b, const HostTensor<T>& h) {
    return from_host<B, T>(b, h.shape, std::span<const T>(h.data));
}

template <StorageBackend B, class T>
void upload_into(B& b, std::span<const T> values, Tensor<B>& t) {
    SGF_CHECK(values.size() == t.size(), ShapeError, "upload: tensor {} holds {} values, got {}", t.shape().str(),
              t.size(), values.size());
    if constexpr (std::is_same_v<T, typename B::Scalar>) {
        if (t.size()) b.upload(values.data(), values.size(), t.data());
    } else {
        std::vector<typename B::Scalar> tmp(values.begin(), values.end());
        if (t.size()) b.upload(tmp.data(), tmp.size(), t.data());
    }
}

/// Copies a tensor between two backends (e.g. float32 to float64), converting through the host.
template <StorageBackend From, StorageBackend To>
void copy_across(From& from, const Tensor<From>& src, To& to, Tensor<To>& dst) {
    const auto host = to_host_vector<typename To::Scalar>(from, src);
    upload_into(to, std::span<const typename To::Scalar>(host), dst);
}

}  // namespace sgf
