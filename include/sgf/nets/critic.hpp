// The residual trunk shared (in structure, not weights) by the decoder F and the discriminator D
// (algorithm.md 3.4-3.5):
//   fromrgb: 1x1 conv C_img -> C_R, lrelu
//   for r = R .. 8: ResBlock C_r -> C_{r/2}, output r/2 x r/2
//   [D only: minibatch stddev, group 4, one extra channel]
//   conv4:   3x3 conv (C_4 [+1]) -> C_4, lrelu
//   fc:      dense C_4*16 -> fc_width, lrelu   (fc_width = 512 in the paper)
//   out:     dense fc_width -> outputs, linear
// F has outputs = z_dim + bits (z_hat first, then the fingerprint logits); D has one logit.
#pragma once

#include <sgf/layers.hpp>
#include <sgf/nets/config.hpp>

namespace sgf {

template <Backend B>
class ResidualCritic {
public:
    using T = typename B::Scalar;
    struct Ctx {
        typename Conv2d<B>::Ctx fromrgb;
        std::vector<typename ResBlock<B>::Ctx> blocks;
        Tensor<B> mbstd;  // D only
        typename Conv2d<B>::Ctx conv4;
        typename Dense<B>::Ctx fc, out;
        const Tensor<B>& output() const { return out.y; }
    };

    ResidualCritic() = default;
    ResidualCritic(B& b, const std::string& prefix, const ModelConfig& cfg, std::int64_t outputs, bool minibatch_std,
                   std::uint64_t seed)
        : cfg_(cfg), mbstd_(cfg.mbstd_group), use_mbstd_(minibatch_std) {
        cfg.validate();
        fromrgb_ = Conv2d<B>(b, prefix + ".fromrgb",
                             ConvConfig{cfg.image_channels, cfg.channels_at(cfg.resolution), 1, false, true, Act::lrelu, kSqrt2},
                             seed);
        for (int r = cfg.resolution; r > 4; r /= 2)
            blocks_.emplace_back(b, fmt::format("{}.b{}", prefix, r), cfg.channels_at(r), cfg.channels_at(r / 2), seed);
        const std::int64_t c4 = cfg.channels_at(4);
        conv4_ = Conv2d<B>(b, prefix + ".b4.conv", ConvConfig{c4 + (minibatch_std ? 1 : 0), c4, 3, false, true, Act::lrelu, kSqrt2},
                           seed);
        fc_ = Dense<B>(b, prefix + ".b4.fc", DenseConfig{c4 * 16, cfg.fc_width, 1.0, 0.0, Act::lrelu, kSqrt2, true}, seed);
        out_ = Dense<B>(b, prefix + ".b4.out", DenseConfig{cfg.fc_width, outputs, 1.0, 0.0, Act::linear, 1.0, true}, seed);
    }

    const ModelConfig& config() const { return cfg_; }
    std::int64_t outputs() const { return out_.config().out; }
    // The layers, in forward order (for tools that read the effective weights, and for tests).
    Conv2d<B>& fromrgb() { return fromrgb_; }
    std::vector<ResBlock<B>>& blocks() { return blocks_; }
    Conv2d<B>& conv4() { return conv4_; }
    Dense<B>& fc() { return fc_; }
    Dense<B>& out() { return out_; }
    const Conv2d<B>& fromrgb() const { return fromrgb_; }
    const std::vector<ResBlock<B>>& blocks() const { return blocks_; }
    const Conv2d<B>& conv4() const { return conv4_; }
    const Dense<B>& fc() const { return fc_; }
    const Dense<B>& out() const { return out_; }
    void visit(const ParamVisitor<B>& f) {
        fromrgb_.visit(f);
        for (auto& blk : blocks_) blk.visit(f);
        conv4_.visit(f);
        fc_.visit(f);
        out_.visit(f);
    }
    std::vector<Parameter<B>*> parameters() {
        std::vector<Parameter<B>*> ps;
        visit([&](Parameter<B>& p) { ps.push_back(&p); });
        return ps;
    }
    /// Read-only, for writers and for anything holding a const network (visit changes nothing).
    std::vector<const Parameter<B>*> parameters() const {
        const auto ps = const_cast<ResidualCritic*>(this)->parameters();
        return {ps.begin(), ps.end()};
    }

    /// No layers: default-constructed or moved from. forward and the model-file writers refuse it.
    bool empty() const noexcept { return fromrgb_.name().empty(); }
    /// "F" for the decoder, "D" for the discriminator: the first part of every tensor name.
    std::string name_prefix() const { return fromrgb_.name().substr(0, fromrgb_.name().find('.')); }
    void check_not_empty(const char* what) const {
        SGF_CHECK(!empty(), ArgumentError, "{}: the network holds no layers (default-constructed or moved from)", what);
    }

    Ctx forward(B& b, TensorView<T> image) const {
        check_not_empty("decoder/discriminator");
        const Shape expect{image.shape().n, cfg_.image_channels, cfg_.resolution, cfg_.resolution};
        const char* who = name_prefix() == "F" ? "decoder" : "discriminator";
        SGF_CHECK(image.shape() == expect, ShapeError, "{}: expected images of shape {}, got {}", who, expect.str(), image.shape().str());
        SGF_CHECK(expect.n > 0, ShapeError, "{}: an empty batch (0 images, shape {})", who, image.shape().str());
        Ctx ctx;
        ctx.fromrgb = fromrgb_.forward(b, image);
        TensorView<T> x = ctx.fromrgb.y.view();
        ctx.blocks.reserve(blocks_.size());
        for (const auto& blk : blocks_) {
            ctx.blocks.push_back(blk.forward(b, x));
            x = ctx.blocks.back().y.view();
        }
        if (use_mbstd_) {
            ctx.mbstd = Tensor<B>(b, Shape{x.shape().n, x.shape().c + 1, 4, 4});
            b.mbstd(x.shape(), mbstd_.group(), x.data(), ctx.mbstd.data());
            x = ctx.mbstd.view();
        }
        ctx.conv4 = conv4_.forward(b, x);
        ctx.fc = fc_.forward(b, ctx.conv4.y);
        ctx.out = out_.forward(b, ctx.fc.y);
        return ctx;
    }

    /// dout: dL/d(output) (consumed). Returns dL/d(image) when need_dx.
    Tensor<B> backward(B& b, const Ctx& ctx, Tensor<B>&& dout, GradMode mode, bool need_dx = true) {
        Tensor<B> g = out_.backward(b, ctx.out, std::move(dout), mode, true);
        g = fc_.backward(b, ctx.fc, std::move(g), mode, true);
        g = conv4_.backward(b, ctx.conv4, std::move(g), mode, true);
        if (use_mbstd_) {
            const TensorView<T> x = ctx.blocks.empty() ? ctx.fromrgb.y.view() : ctx.blocks.back().y.view();
            Tensor<B> dx(b, x.shape());
            b.mbstd_backward(x.shape(), mbstd_.group(), x.data(), g.data(), dx.data());
            g = std::move(dx);
        }
        for (std::size_t i = blocks_.size(); i-- > 0;) g = blocks_[i].backward(b, ctx.blocks[i], std::move(g), mode, true);
        return fromrgb_.backward(b, ctx.fromrgb, std::move(g), mode, need_dx);
    }

private:
    ModelConfig cfg_;
    Conv2d<B> fromrgb_;
    std::vector<ResBlock<B>> blocks_;
    MinibatchStd<B> mbstd_;
    bool use_mbstd_ = false;
    Conv2d<B> conv4_;
    Dense<B> fc_, out_;
};

/// The decoder F: outputs [N, z_dim + bits] = (z_hat, fingerprint logits).
template <Backend B>
ResidualCritic<B> make_decoder(B& b, const ModelConfig& cfg, std::uint64_t seed) {
    return ResidualCritic<B>(b, "F", cfg, cfg.decoder_outputs(), false, seed);
}
/// The discriminator D: one logit per image, with minibatch stddev.
template <Backend B>
ResidualCritic<B> make_discriminator(B& b, const ModelConfig& cfg, std::uint64_t seed) {
    return ResidualCritic<B>(b, "D", cfg, 1, true, seed);
}

}  // namespace sgf
