// Builds against the installed package: one modulated conv forward on the CPU backend, and the
// installed default model (SGF_DEFAULT_MODEL from sgfConfig.cmake) loaded and baked.
#include <sgf/sgf.hpp>
#include <sgf/backends/eigen.hpp>

#include <cstdio>
#include <exception>

int main() {
    sgf::EigenCpu b(1);
    sgf::ModConv<sgf::EigenCpu> layer(b, "m", sgf::ModConvConfig{4, 4, 3, 8}, 1);
    sgf::Tensor<sgf::EigenCpu> x(b, sgf::Shape{2, 4, 8, 8}, 1.0f), w(b, sgf::Shape{2, 8}, 0.5f);
    auto ctx = layer.forward(b, x, w, sgf::RngKey{1, 2, 3});
    bool ok = b.all_finite(ctx.y.size(), ctx.y.data()) && ctx.y.shape() == sgf::Shape{2, 4, 8, 8};
    try {
        const auto model = sgf::io::load_meta_model(b, SGF_DEFAULT_MODEL);
        const auto baked = sgf::instantiate(b, model.G, sgf::Fingerprint::from_seed(model.config.fingerprint_bits, 1));
        std::printf("consumer: default model %s, %d px, baked: %s\n", SGF_DEFAULT_MODEL, model.config.resolution,
                    baked.baked() ? "yes" : "no");
        ok = ok && baked.baked();
    } catch (const std::exception& e) {
        std::printf("consumer: %s\n", e.what());
        ok = false;
    }
    std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
