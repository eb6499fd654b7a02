// The meta generator G(z, c) of algorithm.md 3.1-3.2:
//   E:   w = MLP(c), embed_layers dense layers with lrelu*sqrt2 after each, lr_mult 0.01
//   in:  x = lrelu(dense(z)) reshaped to [N, C_4, 4, 4]
//   4:   x = modconv3x3(x);            rgb = ToRGB_4(x)
//   r>4: x = modconv3x3_up(x); x = modconv3x3(x);  rgb = up2(rgb) + ToRGB_r(x)
// Every modconv is demodulated, has noise + bias + lrelu*sqrt2; ToRGB is a 1x1 modulated conv
// without demodulation, with bias, linear. The output is rgb, linear (no tanh, no clamp).
// Layer names (model-file tensor names) are listed in docs/model-format.md.
#pragma once

#include <sgf/layers.hpp>
#include <sgf/nets/config.hpp>
#include <sgf/fingerprint/fingerprint.hpp>

#include <optional>

namespace sgf {

template <Backend B>
class FingerprintEmbedding {
public:
    using T = typename B::Scalar;
    struct Ctx {
        std::vector<typename Dense<B>::Ctx> layers;
        const Tensor<B>& w() const { return layers.back().y; }
    };

    FingerprintEmbedding() = default;
    FingerprintEmbedding(B& b, const ModelConfig& cfg, std::uint64_t seed) {
        std::int64_t in = cfg.fingerprint_bits;
        for (int i = 0; i < cfg.embed_layers; ++i) {
            const std::int64_t out = i + 1 == cfg.embed_layers ? cfg.w_dim : cfg.embed_width;
            layers_.emplace_back(b, fmt::format("G.embed.fc{}", i),
                                 DenseConfig{in, out, cfg.embed_lr_mult, 0.0, Act::lrelu, kSqrt2, true}, seed);
            in = out;
        }
    }
    std::vector<Dense<B>>& layers() { return layers_; }  ///< G.embed.fc0, fc1, ... in order
    const std::vector<Dense<B>>& layers() const { return layers_; }
    void visit(const ParamVisitor<B>& f) {
        for (auto& l : layers_) l.visit(f);
    }
    Ctx forward(B& b, TensorView<T> c) const {
        Ctx ctx;
        ctx.layers.reserve(layers_.size());
        TensorView<T> h = c;
        for (const auto& l : layers_) {
            ctx.layers.push_back(l.forward(b, h));
            h = ctx.layers.back().y.view();
        }
        return ctx;
    }
    /// dw: dL/dw (consumed). The input (fingerprint bits) gets no gradient.
    void backward(B& b, const Ctx& ctx, Tensor<B>&& dw, GradMode mode) {
        Tensor<B> g = std::move(dw);
        for (std::size_t i = layers_.size(); i-- > 0;) g = layers_[i].backward(b, ctx.layers[i], std::move(g), mode, i > 0);
    }

private:
    std::vector<Dense<B>> layers_;
};

template <Backend B>
class MetaGenerator {
public:
    using T = typename B::Scalar;

    struct Ctx {
        typename FingerprintEmbedding<B>::Ctx embed;
        typename Dense<B>::Ctx input;
        std::vector<typename ModConv<B>::Ctx> ups, convs, torgbs;  // ups[i] is block i+1's first conv
        std::vector<Tensor<B>> rgb;                                // running skip sums, one per resolution
        const Tensor<B>& image() const { return rgb.back(); }
        const Tensor<B>& w() const { return embed.w(); }
    };

    MetaGenerator() = default;
    /// baked = true builds the structure of a per-user copy (see instantiate()): no embedding, no
    /// affines, weights that already hold the fingerprint.
    MetaGenerator(B& b, const ModelConfig& cfg, std::uint64_t seed, bool baked = false) : cfg_(cfg), baked_(baked) {
        cfg.validate();
        if (!baked) embed_ = FingerprintEmbedding<B>(b, cfg, seed);
        const std::int64_t c4 = cfg.channels_at(4);
        input_ = Dense<B>(b, "G.input", DenseConfig{cfg.z_dim, c4 * 16, 1.0, 0.0, Act::lrelu, kSqrt2, true}, seed);
        std::int64_t prev = c4;
        for (int r : cfg.resolutions()) {
            const std::int64_t ch = cfg.channels_at(r);
            if (r > 4)
                ups_.emplace_back(b, fmt::format("G.b{}.conv0", r),
                                  ModConvConfig{prev, ch, 3, cfg.w_dim, true, true, true, Act::lrelu, kSqrt2, baked}, seed);
            convs_.emplace_back(b, fmt::format("G.b{}.conv{}", r, r > 4 ? 1 : 0),
                                ModConvConfig{ch, ch, 3, cfg.w_dim, true, false, true, Act::lrelu, kSqrt2, baked}, seed);
            torgbs_.emplace_back(
                b, fmt::format("G.b{}.torgb", r),
                ModConvConfig{ch, cfg.image_channels, 1, cfg.w_dim, false, false, false, Act::linear, 1.0, baked}, seed);
            prev = ch;
        }
    }

    const ModelConfig& config() const { return cfg_; }
    bool baked() const { return baked_; }
    /// No layers: default-constructed or moved from. Every use (forward, instantiate, save) refuses it.
    bool empty() const noexcept { return convs_.empty(); }
    void check_not_empty(const char* what) const {
        SGF_CHECK(!empty(), ArgumentError, "{}: the generator holds no layers (default-constructed or moved from)", what);
    }
    FingerprintEmbedding<B>& embedding() { return embed_; }
    Dense<B>& input_layer() { return input_; }
    std::vector<ModConv<B>>& up_convs() { return ups_; }
    std::vector<ModConv<B>>& convs() { return convs_; }
    std::vector<ModConv<B>>& torgbs() { return torgbs_; }
    const FingerprintEmbedding<B>& embedding() const { return embed_; }
    const Dense<B>& input_layer() const { return input_; }
    const std::vector<ModConv<B>>& up_convs() const { return ups_; }
    const std::vector<ModConv<B>>& convs() const { return convs_; }
    const std::vector<ModConv<B>>& torgbs() const { return torgbs_; }

    void visit(const ParamVisitor<B>& f) {
        if (!baked_) embed_.visit(f);
        input_.visit(f);
        for (std::size_t i = 0; i < convs_.size(); ++i) {
            if (i > 0) ups_[i - 1].visit(f);
            convs_[i].visit(f);
            torgbs_[i].visit(f);
        }
    }
    std::vector<Parameter<B>*> parameters() {
        std::vector<Parameter<B>*> ps;
        visit([&](Parameter<B>& p) { ps.push_back(&p); });
        return ps;
    }
    /// Read-only, for writers and for anything holding a const network (visit changes nothing).
    std::vector<const Parameter<B>*> parameters() const {
        const auto ps = const_cast<MetaGenerator*>(this)->parameters();
        return {ps.begin(), ps.end()};
    }

    /// z: [N, z_dim]; c: [N, bits] of 0/1 floats. noise_seed: per-layer noise is drawn from
    /// RngKey{noise_seed, layer index, 0} (nullopt: no noise).
    Ctx forward(B& b, TensorView<T> z, TensorView<T> c, std::optional<std::uint64_t> noise_seed) const {
        const std::int64_t N = z.shape().n;
        check_not_empty("generator");
        SGF_CHECK(N > 0, ShapeError, "generator: an empty batch (z of shape {})", z.shape().matrix_str());
        SGF_CHECK(!baked_, ArgumentError, "generator: a baked (fingerprinted) generator takes no fingerprint; call forward_baked");
        SGF_CHECK(z.shape().sample_size() == cfg_.z_dim, ShapeError, "generator: expected z of shape [{}, {}], got {}", N,
                  cfg_.z_dim, z.shape().matrix_str());
        SGF_CHECK(c.shape().n == N && c.shape().sample_size() == cfg_.fingerprint_bits, ShapeError,
                  "generator: expected fingerprints of shape [{}, {}], got {}", N, cfg_.fingerprint_bits, c.shape().matrix_str());
        Ctx ctx;
        ctx.embed = embed_.forward(b, c);
        const TensorView<T> w = ctx.embed.w().view();
        return synthesize(b, std::move(ctx), z, w, noise_seed);
    }

    /// Forward of a baked generator: the fingerprint is in the weights. Same noise keys as forward().
    Ctx forward_baked(B& b, TensorView<T> z, std::optional<std::uint64_t> noise_seed) const {
        check_not_empty("generator");
        SGF_CHECK(baked_, ArgumentError, "generator: forward_baked needs a baked generator (see instantiate)");
        SGF_CHECK(z.shape().n > 0 && z.shape().sample_size() == cfg_.z_dim, ShapeError,
                  "generator: expected z of shape [N, {}], got {}", cfg_.z_dim, z.shape().matrix_str());
        return synthesize(b, Ctx{}, z, TensorView<T>{}, noise_seed);
    }

    /// Backward from dL/d(image). Parameter gradients of G (incl. E and the affines) follow `mode`.
    void backward(B& b, const Ctx& ctx, Tensor<B>&& dimage, GradMode mode) {
        check_shape(dimage.shape(), ctx.image().shape(), "generator backward d(image)");
        Tensor<B> dw = baked_ ? Tensor<B>() : Tensor<B>(b, ctx.w().shape());
        bool first_w = true;
        auto wbeta = [&] {
            const T beta = first_w ? T(0) : T(1);
            first_w = false;
            return beta;
        };
        Tensor<B> drgb = std::move(dimage);
        Tensor<B> dx;  // gradient w.r.t. the output of the current block's last conv, from the block above
        for (std::size_t i = convs_.size(); i-- > 0;) {
            Tensor<B> dxt = torgbs_[i].backward(b, ctx.torgbs[i], drgb.clone(b), mode, dw, wbeta());
            if (!dx.empty()) b.axpby(dxt.size(), T(1), dx.data(), T(1), dxt.data());
            Tensor<B> dup = convs_[i].backward(b, ctx.convs[i], std::move(dxt), mode, dw, wbeta());
            if (i > 0) {
                dx = ups_[i - 1].backward(b, ctx.ups[i - 1], std::move(dup), mode, dw, wbeta());
                drgb = upsample2x_backward(b, ctx.rgb[i - 1].shape(), drgb);
            } else {
                dup.reshape_inplace(ctx.input.y.shape());
                input_.backward(b, ctx.input, std::move(dup), mode, false);
            }
        }
        if (!baked_) embed_.backward(b, ctx.embed, std::move(dw), mode);
    }

    /// Everything after E, given w: shared by the meta generator and by path-length style uses.
    Ctx synthesize(B& b, Ctx&& ctx, TensorView<T> z, TensorView<T> w, std::optional<std::uint64_t> noise_seed) const {
        const std::int64_t N = z.shape().n;
        auto key = [&](std::uint64_t layer) -> std::optional<RngKey> {
            if (!noise_seed) return std::nullopt;
            return RngKey{*noise_seed, layer, 0};
        };
        ctx.input = input_.forward(b, z);
        TensorView<T> x{ctx.input.y.data(), Shape{N, cfg_.channels_at(4), 4, 4}};
        ctx.convs.reserve(convs_.size());
        ctx.torgbs.reserve(convs_.size());
        ctx.ups.reserve(ups_.size());
        std::uint64_t layer = 0;
        for (std::size_t i = 0; i < convs_.size(); ++i) {
            if (i > 0) {
                ctx.ups.push_back(ups_[i - 1].forward(b, x, w, key(layer++)));
                x = ctx.ups.back().y.view();
            }
            ctx.convs.push_back(convs_[i].forward(b, x, w, key(layer++)));
            x = ctx.convs.back().y.view();
            ctx.torgbs.push_back(torgbs_[i].forward(b, x, w, std::nullopt));
            const Tensor<B>& t = ctx.torgbs.back().y;
            if (i == 0) {
                ctx.rgb.push_back(t.clone(b));
            } else {
                Tensor<B> up = upsample2x(b, ctx.rgb.back());
                b.axpby(up.size(), T(1), t.data(), T(1), up.data());
                ctx.rgb.push_back(std::move(up));
            }
        }
        return std::move(ctx);
    }

private:
    ModelConfig cfg_;
    bool baked_ = false;
    FingerprintEmbedding<B> embed_;
    Dense<B> input_;
    std::vector<ModConv<B>> ups_, convs_, torgbs_;
};

/// Bakes fingerprint bits c ([1, bits] of 0/1) into a standalone generator (algorithm.md 3.3): for
/// every modulated layer W_u = W'' computed once for c; the input layer, biases and noise strengths
/// are copied. The result has no embedding, no affines and no fingerprint input, and reproduces
/// G(z, c) for the same z and noise seed to float rounding.
template <Backend B>
MetaGenerator<B> instantiate(B& b, const MetaGenerator<B>& G, TensorView<typename B::Scalar> c) {
    using T = typename B::Scalar;
    const ModelConfig& cfg = G.config();
    G.check_not_empty("instantiate");
    SGF_CHECK(!G.baked(), ArgumentError, "instantiate: the generator is already baked");
    SGF_CHECK(c.shape().n == 1 && c.shape().sample_size() == cfg.fingerprint_bits, ShapeError,
              "instantiate: expected one fingerprint of shape [1, {}], got {}", cfg.fingerprint_bits, c.shape().matrix_str());
    MetaGenerator<B> out(b, cfg, kNoInit, true);
    auto embed = G.embedding().forward(b, c);
    const TensorView<T> w = embed.w().view();
    auto copy = [&](const Parameter<B>& from, Parameter<B>& to) { b.copy(from.value.data(), to.value.data(), from.value.size()); };
    copy(G.input_layer().weight(), out.input_layer().weight());
    copy(G.input_layer().bias(), out.input_layer().bias());
    auto bake = [&](const ModConv<B>& from, ModConv<B>& to) {
        const auto wb = from.bake_weight(b, w);
        upload_into(b, std::span<const T>(wb), to.weight().value);
        copy(from.bias(), to.bias());
        if (from.config().noise) copy(from.noise_strength(), to.noise_strength());
    };
    for (std::size_t i = 0; i < G.convs().size(); ++i) {
        if (i > 0) bake(G.up_convs()[i - 1], out.up_convs()[i - 1]);
        bake(G.convs()[i], out.convs()[i]);
        bake(G.torgbs()[i], out.torgbs()[i]);
    }
    return out;
}

/// Bakes a fingerprint (e.g. a registry entry's) into a standalone generator: instantiate above with
/// c = the fingerprint's bits as 0/1.
template <Backend B>
MetaGenerator<B> instantiate(B& b, const MetaGenerator<B>& G, const Fingerprint& fp) {
    SGF_CHECK(fp.bits() == G.config().fingerprint_bits, ArgumentError,
              "instantiate: a {}-bit fingerprint for a generator of {}-bit fingerprints", fp.bits(),
              G.config().fingerprint_bits);
    const std::vector<float> bits = fp.to_floats();
    Tensor<B> c(b, Shape{1, fp.bits()});
    upload_into(b, std::span<const float>(bits), c);
    return instantiate(b, G, c.view());
}

}  // namespace sgf
