// Synthetic "real" images for training tests: one smooth Gaussian blob per image in [-1, 1], its
// centre and radius drawn from Philox, deterministic in (step). `stride` is the number of draws per
// image (the immunisation tests were written with 3; the rest use 4).
#pragma once

#include <sgf/core/philox.hpp>
#include <sgf/core/tensor.hpp>
#include <sgf/nets/config.hpp>

#include <cmath>

namespace sgf::test {

inline HostTensor<float> blob_images(const ModelConfig& cfg, int n, std::uint64_t step, int stride = 4) {
    HostTensor<float> h(Shape{n, cfg.image_channels, cfg.resolution, cfg.resolution});
    for (int i = 0; i < n; ++i) {
        const double cx = philox::uniform(RngKey{99, step, 0}, stride * i) * cfg.resolution;
        const double cy = philox::uniform(RngKey{99, step, 0}, stride * i + 1) * cfg.resolution;
        const double r = 2 + philox::uniform(RngKey{99, step, 0}, stride * i + 2) * cfg.resolution / 3;
        for (int c = 0; c < cfg.image_channels; ++c)
            for (int y = 0; y < cfg.resolution; ++y)
                for (int x = 0; x < cfg.resolution; ++x)
                    h.at(i, c, y, x) = float(std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r)) * 2 - 1);
    }
    return h;
}

}  // namespace sgf::test
