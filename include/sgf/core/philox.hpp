// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. The numbers depend only on (key, counter), so a CPU and a GPU backend
// draw identical values for the same seed, in any order and any thread layout.
//
// sgf's streams: element i of a draw with RngKey{seed, stream, offset} uses
//   counter = (lo32(offset+i), hi32(offset+i), lo32(stream), hi32(stream)), key = (lo32(seed), hi32(seed))
// and takes the first two 32-bit outputs r0, r1:
//   uniform(i) = (r0 + 0.5) * 2^-32                              in (0, 1)
//   normal(i)  = sqrt(-2 ln u0) * cos(2 pi u1),  u_j = (r_j + 0.5) * 2^-32   (Box-Muller, in double)
//   bit(i)     = r0 >> 31                                          (Bernoulli(0.5))
#pragma once

#include <sgf/core/descriptors.hpp>

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define SGF_HOST_DEVICE __host__ __device__
#else
#define SGF_HOST_DEVICE
#endif

namespace sgf::philox {

struct U32x4 {
    std::uint32_t v[4];
};

SGF_HOST_DEVICE inline void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
    const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
}

SGF_HOST_DEVICE inline U32x4 philox4x32_10(U32x4 ctr, std::uint32_t k0, std::uint32_t k1) {
    constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
        std::uint32_t hi0, lo0, hi1, lo1;
        mulhilo(M0, ctr.v[0], hi0, lo0);
        mulhilo(M1, ctr.v[2], hi1, lo1);
        ctr = U32x4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        k0 += W0;
        k1 += W1;
    }
    return ctr;
}

SGF_HOST_DEVICE inline U32x4 draw(const RngKey& key, std::uint64_t i) {
    const std::uint64_t c = key.offset + i;
    U32x4 ctr{{static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32), static_cast<std::uint32_t>(key.stream),
               static_cast<std::uint32_t>(key.stream >> 32)}};
    return philox4x32_10(ctr, static_cast<std::uint32_t>(key.seed), static_cast<std::uint32_t>(key.seed >> 32));
}

SGF_HOST_DEVICE inline double to_unit(std::uint32_t r) { return (static_cast<double>(r) + 0.5) * 2.3283064365386963e-10; }

SGF_HOST_DEVICE inline double uniform(const RngKey& key, std::uint64_t i) { return to_unit(draw(key, i).v[0]); }

SGF_HOST_DEVICE inline double normal(const RngKey& key, std::uint64_t i) {
    const U32x4 r = draw(key, i);
    const double u0 = to_unit(r.v[0]), u1 = to_unit(r.v[1]);
    return std::sqrt(-2.0 * std::log(u0)) * std::cos(6.283185307179586 * u1);
}

SGF_HOST_DEVICE inline int bit(const RngKey& key, std::uint64_t i) { return static_cast<int>(draw(key, i).v[0] >> 31); }

}  // namespace sgf::philox
