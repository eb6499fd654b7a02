// Parameter-free layers: FIR up/down-sampling (StyleGAN2's upsample2d/downsample2d with the
// [1,3,3,1] filter) and the minibatch-stddev feature.
#pragma once

#include <sgf/layers/parameter.hpp>

namespace sgf {

template <Backend B>
Tensor<B> upsample2x(B& b, const Tensor<B>& x) {
    const FirDesc f = FirDesc::up2(x.shape());
    Tensor<B> y(b, f.y_shape());
    b.fir(f, x.data(), y.data());
    return y;
}
template <Backend B>
Tensor<B> upsample2x_backward(B& b, const Shape& x_shape, const Tensor<B>& dy) {
    const FirDesc f = FirDesc::up2(x_shape);
    check_shape(dy.shape(), f.y_shape(), "upsample2x backward dy");
    Tensor<B> dx(b, x_shape);
    b.fir_backward(f, dy.data(), dx.data());
    return dx;
}
template <Backend B>
Tensor<B> downsample2x(B& b, const Tensor<B>& x) {
    SGF_CHECK(x.shape().h % 2 == 0 && x.shape().w % 2 == 0, ShapeError, "downsample2x: needs an even size, got {}",
              x.shape().str());
    const FirDesc f = FirDesc::down2(x.shape());
    Tensor<B> y(b, f.y_shape());
    b.fir(f, x.data(), y.data());
    return y;
}
template <Backend B>
Tensor<B> downsample2x_backward(B& b, const Shape& x_shape, const Tensor<B>& dy) {
    const FirDesc f = FirDesc::down2(x_shape);
    check_shape(dy.shape(), f.y_shape(), "downsample2x backward dy");
    Tensor<B> dx(b, x_shape);
    b.fir_backward(f, dy.data(), dx.data());
    return dx;
}

/// Minibatch standard deviation (StyleGAN2, one feature map): appends one channel holding the
/// average over (c,h,w) of the per-position standard deviation across each group of samples.
template <Backend B>
class MinibatchStd {
public:
    explicit MinibatchStd(int group = 4) : group_(group) {}
    int group() const { return group_; }
    Tensor<B> forward(B& b, const Tensor<B>& x) const {
        const Shape& s = x.shape();
        Tensor<B> y(b, Shape{s.n, s.c + 1, s.h, s.w});
        b.mbstd(s, group_, x.data(), y.data());
        return y;
    }
    Tensor<B> backward(B& b, const Tensor<B>& x, const Tensor<B>& dy) const {
        const Shape& s = x.shape();
        check_shape(dy.shape(), Shape{s.n, s.c + 1, s.h, s.w}, "minibatch stddev backward dy");
        Tensor<B> dx(b, s);
        b.mbstd_backward(s, group_, x.data(), dy.data(), dx.data());
        return dx;
    }

private:
    int group_;
};

}  // namespace sgf
