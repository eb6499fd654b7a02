// Builds against the installed package and runs one modulated conv forward on the CPU backend.
#include <sgf/sgf.hpp>
#include <sgf/backends/eigen.hpp>

#include <cstdio>

int main() {
    sgf::EigenCpu b(1);
    sgf::ModConv<sgf::EigenCpu> layer(b, "m", sgf::ModConvConfig{4, 4, 3, 8}, 1);
    sgf::Tensor<sgf::EigenCpu> x(b, sgf::Shape{2, 4, 8, 8}, 1.0f), w(b, sgf::Shape{2, 8}, 0.5f);
    auto ctx = layer.forward(b, x, w, sgf::RngKey{1, 2, 3});
    const bool ok = b.all_finite(ctx.y.size(), ctx.y.data()) && ctx.y.shape() == sgf::Shape{2, 4, 8, 8};
    std::printf("consumer: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
