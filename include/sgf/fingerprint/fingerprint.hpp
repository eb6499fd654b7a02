// Fingerprints: n-bit codes (default 128) with a hex text form, Hamming distance and the network's
// 0/1 float input. Bit i is the i-th network input; the hex text is most-significant nibble first,
// i.e. the last hex character holds bits 3..0.
#pragma once

#include <sgf/core/error.hpp>
#include <sgf/core/philox.hpp>

#include <bit>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sgf {

class Fingerprint {
public:
    Fingerprint() = default;
    explicit Fingerprint(int bits) : n_(checked_bits(bits)), words_((bits + 63) / 64, 0) {}
    /// `bits` when it is in 1..65536; ArgumentError otherwise (before anything is sized from it).
    static int checked_bits(int bits) {
        SGF_CHECK(bits >= 1 && bits <= 65536, ArgumentError, "fingerprint: bit count must be in 1..65536, got {}", bits);
        return bits;
    }

    int bits() const noexcept { return n_; }
    const std::vector<std::uint64_t>& words() const noexcept { return words_; }
    bool bit(int i) const {
        SGF_CHECK(i >= 0 && i < n_, ArgumentError, "fingerprint: bit {} out of range [0, {})", i, n_);
        return (words_[std::size_t(i) / 64] >> (i % 64)) & 1u;
    }
    void set_bit(int i, bool v) {
        SGF_CHECK(i >= 0 && i < n_, ArgumentError, "fingerprint: bit {} out of range [0, {})", i, n_);
        const std::uint64_t m = std::uint64_t(1) << (i % 64);
        if (v) words_[std::size_t(i) / 64] |= m;
        else words_[std::size_t(i) / 64] &= ~m;
    }
    friend bool operator==(const Fingerprint&, const Fingerprint&) = default;

    /// Deterministic from a seed: bit i = Philox bit (seed, stream 0xF1, i).
    static Fingerprint from_seed(int bits, std::uint64_t seed) {
        Fingerprint f(bits);
        for (int i = 0; i < bits; ++i) f.set_bit(i, philox::bit(RngKey{seed, 0xF1, 0}, std::uint64_t(i)));
        return f;
    }
    /// From the OS entropy source (std::random_device, /dev/urandom on Linux).
    static Fingerprint random(int bits) {
        std::random_device rd;
        Fingerprint f(bits);
        for (auto& w : f.words_) w = (std::uint64_t(rd()) << 32) ^ rd();
        f.mask_tail();
        return f;
    }

    std::string hex() const {
        static const char* digits = "0123456789abcdef";
        const int nibbles = (n_ + 3) / 4;
        std::string s(std::size_t(nibbles), '0');
        for (int k = 0; k < nibbles; ++k) {
            int v = 0;
            for (int b = 0; b < 4; ++b) {
                const int i = 4 * k + b;
                if (i < n_ && bit(i)) v |= 1 << b;
            }
            s[std::size_t(nibbles - 1 - k)] = digits[v];
        }
        return s;
    }

    /// Parses hex text of exactly ceil(bits/4) digits (optional 0x prefix, either case).
    static Fingerprint parse(std::string_view text, int bits = 128) {
        Fingerprint f(bits);
        const std::string_view given = text;  // the messages quote what was given, prefix included
        if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text.remove_prefix(2);
        const int nibbles = (bits + 3) / 4;
        if (text.size() != std::size_t(nibbles))
            SGF_THROW(ArgumentError, "fingerprint '{}': expected {} hex digits for {} bits{}, got {}", printable(given, 80), nibbles,
                      bits, given.size() != text.size() ? " after the 0x prefix" : "", text.size());
        for (int k = 0; k < nibbles; ++k) {
            const char ch = text[std::size_t(k)];
            int v;
            if (ch >= '0' && ch <= '9') v = ch - '0';
            else if (ch >= 'a' && ch <= 'f') v = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F') v = ch - 'A' + 10;
            else
                SGF_THROW(ArgumentError, "fingerprint '{}': '{}' at position {} is not a hex digit", printable(given, 80), printable({&ch, 1}),
                          k + int(given.size() - text.size()));
            const int base = 4 * (nibbles - 1 - k);
            for (int b = 0; b < 4; ++b) {
                if (!((v >> b) & 1)) continue;
                if (base + b >= bits)
                    SGF_THROW(ArgumentError, "fingerprint '{}': sets bit {} but the fingerprint has only {} bits", printable(given, 80),
                              base + b, bits);
                f.set_bit(base + b, true);
            }
        }
        return f;
    }

    /// 0.0 / 1.0 per bit: the meta generator's fingerprint input.
    std::vector<float> to_floats() const {
        std::vector<float> v(static_cast<std::size_t>(n_));
        for (int i = 0; i < n_; ++i) v[std::size_t(i)] = bit(i) ? 1.0f : 0.0f;
        return v;
    }
    /// Bit i = 1 iff logit i > 0 (the decoder's reading).
    static Fingerprint from_logits(std::span<const float> logits) {
        Fingerprint f(static_cast<int>(logits.size()));
        for (std::size_t i = 0; i < logits.size(); ++i) f.set_bit(int(i), logits[i] > 0);
        return f;
    }

    int hamming(const Fingerprint& o) const {
        SGF_CHECK(o.n_ == n_, ArgumentError, "fingerprint: cannot compare {} bits with {} bits", n_, o.n_);
        int d = 0;
        for (std::size_t i = 0; i < words_.size(); ++i) d += std::popcount(words_[i] ^ o.words_[i]);
        return d;
    }
    int matching_bits(const Fingerprint& o) const { return n_ - hamming(o); }

private:
    void mask_tail() {
        if (n_ % 64) words_.back() &= (std::uint64_t(1) << (n_ % 64)) - 1;
    }
    int n_ = 0;
    std::vector<std::uint64_t> words_;
};

}  // namespace sgf
