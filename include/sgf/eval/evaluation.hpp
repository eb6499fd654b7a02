// The measurements behind `sgf eval --out DIR` (algorithm.md 6-8, docs/evaluation.md): for one meta
// model, or an original and an immunised one side by side,
//   - clean bit accuracy (float output and 8-bit PNG), mean -log10 p-value, TPR at FPR alpha;
//   - empirical false-positive rate on real test images, against one fingerprint and a registry;
//   - attribution accuracy in the closed and the open world for registries of 1, 10, 100, 1000 users;
//   (detection, false positives and attribution under both scores of fingerprint/attribution.hpp:
//   the matching bit count, and the confidence-weighted score that needs the decoder's logits)
//   - robustness: bit accuracy under every image attack of attack::image_attacks() and every model
//     attack of attack::model_attacks() at every strength of its sweep;
//   - fidelity: FD-classifier (eval/fd_classifier.hpp; not FID) of generated vs real images, for the
//     model and for a baseline trained without fingerprinting.
// Everything is deterministic from EvalOptions::seed. The report files are written by
// eval/report.hpp.
//
// Conventions:
//   - Published images are 8-bit: "PNG" measurements quantise the generator's float output with
//     io::to_image's rule (round(127.5 (x + 1)) clamped), exactly what a lossless PNG stores.
//   - An attacked image is quantised to 8 bits again after the attack (it is saved as an image).
//   - The clean set reproduces measure_bit_accuracy (verify/evaluate.hpp) image for image: batches
//     of 64, draw_generator_batch(seed, stream = batch index), fingerprint c1, noise1. So the clean
//     float/PNG accuracies equal what `sgf eval` without --out prints for the same seed and count.
#pragma once

#include <sgf/core/text.hpp>
#include <sgf/eval/fd_classifier.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/io.hpp>
#include <sgf/robustness/image_attacks.hpp>
#include <sgf/robustness/finetune_attack.hpp>
#include <sgf/robustness/model_attacks.hpp>
#include <sgf/train/objective.hpp>
#include <sgf/verify/decode.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sgf::eval {

/// At most this many images of a folder's reference half train its FD classifier.
inline constexpr std::int64_t kFdFolderTrainImages = 20000;

struct EvalOptions {
    std::int64_t images = 1000;        ///< images per measurement (generated, real, open world)
    std::int64_t users_max = 1000;     ///< largest registry of the attribution study (1, 10, 100, 1000 up to this)
    std::uint64_t seed = 2024;
    AttributionRule rule{};            ///< alpha (family-wise, also the single-fingerprint FPR) and min margin
    std::vector<std::string> attacks;  ///< image and model attacks to sweep (find_attack); empty: every registered one
    std::int64_t finetune_batch = 16;  ///< batch of the fine-tuning attack's steps (attack::FinetuneOptions::batch)
    int strip_images = 2;              ///< example images per model in each attack's strip
    int strip_strengths = 5;           ///< strengths shown in each strip
    std::int64_t batch = 64;           ///< decode batch
    bool fidelity = true;              ///< compute FD-classifier
    std::filesystem::path fd_classifier;  ///< classifier file: loaded, or trained and saved there when missing
    FdTrainOptions fd_train{};
    std::filesystem::path data_dir = io::fashion_mnist_dir();
    /// Real images from this folder (io::scan_image_folder + io::load_folder_images, converted to the first model's shape)
    /// instead of Fashion-MNIST, for the false positives, the attribution study and the fidelity
    /// reference (which needs labelled sub-folders); empty: Fashion-MNIST from data_dir.
    std::filesystem::path real_dir;
};

/// A set of decoded images: the hard bits of each and the decoder's logits they came from.
struct DecodedSet {
    std::vector<Fingerprint> fingerprints;
    std::vector<float> logits;  ///< fingerprints.size() x bits, row-major; bit = logit > 0
    std::size_t size() const { return fingerprints.size(); }
    bool empty() const { return fingerprints.empty(); }
    std::span<const float> logits_of(std::size_t i) const {
        const std::size_t n = std::size_t(fingerprints[i].bits());
        return {logits.data() + i * n, n};
    }
    void push_back(Fingerprint f, std::span<const float> l) {
        SGF_CHECK(std::int64_t(l.size()) == f.bits(), ArgumentError, "DecodedSet: {} logits for a {}-bit fingerprint", l.size(), f.bits());
        fingerprints.push_back(std::move(f));
        logits.insert(logits.end(), l.begin(), l.end());
    }
};

/// Detection statistics of a set of decoded images against the fingerprints they were made with.
struct DetectionStats {
    std::int64_t images = 0;
    double bit_accuracy = 0;       ///< mean fraction of matching bits
    double worst_image = 1;        ///< lowest per-image fraction
    double tpr = 0;                ///< fraction with matching bits >= k*(n, alpha): detected against the true code alone
    double mean_neg_log10_p = 0;   ///< mean of -log10 P[Bin(n, 1/2) >= matching bits]
    /// The same two with the confidence-weighted score (test_claim with Score::weighted; the bit
    /// count for fingerprints over stats::WeightedNull::kMaxBits bits): the fraction whose weighted
    /// score against the true code passes its own threshold at alpha, and the mean -log10 p-value.
    double tpr_weighted = 0;
    double mean_neg_log10_p_weighted = 0;
    std::vector<double> per_bit;   ///< accuracy of every bit position
};

/// Model attacks perturb the baked copies of the first U = this many registered users (fewer when
/// users_max or the images are fewer); user u makes ceil((N - u) / U) of a sweep row's N images, the
/// users' images stored one user after the other. The fine-tuning attack, which trains each copy,
/// attacks fewer.
inline constexpr std::int64_t kModelAttackUsers = 10;
inline constexpr std::int64_t kFinetuneUsers = 2;

/// A registered attack by name: an image attack (robustness/image_attacks.hpp) or a model attack
/// (robustness/model_attacks.hpp); the two lists share no name.
struct AttackRef {
    std::string kind;  ///< "image" or "model"
    const attack::AttackInfo* info = nullptr;
};
inline AttackRef find_attack(std::string_view name) {
    for (const auto& a : attack::image_attacks())
        if (a.name == name) return {"image", &a};
    for (const auto& a : attack::model_attacks())
        if (a.name == name) return {"model", &a};
    if (name == attack::finetune_attack_info().name) return {"model", &attack::finetune_attack_info()};
    std::string image, model;
    for (const auto& a : attack::image_attacks()) image += (image.empty() ? "" : ", ") + a.name;
    for (const auto& a : attack::model_attacks()) model += (model.empty() ? "" : ", ") + a.name;
    model += ", " + attack::finetune_attack_info().name;
    SGF_THROW(ArgumentError, "unknown attack '{}' (image attacks: {}; model attacks: {})", name, image, model);
}

/// Every attack find_attack knows, image attacks first: what an empty EvalOptions::attacks sweeps.
inline std::vector<std::string> registered_attack_names() {
    std::vector<std::string> names;
    for (const auto* list : {&attack::image_attacks(), &attack::model_attacks()})
        for (const auto& a : *list) names.push_back(a.name);
    names.push_back(attack::finetune_attack_info().name);
    return names;
}

/// How many users' copies the model attack `name` perturbs (kModelAttackUsers, kFinetuneUsers for
/// fine-tuning), capped by the registry (users_max) and by the images they make between them.
inline std::int64_t model_attack_users(std::string_view name, const EvalOptions& opt) {
    return std::min({name == attack::finetune_attack_info().name ? kFinetuneUsers : kModelAttackUsers, opt.users_max, opt.images});
}

struct SweepRow {
    std::string model;     ///< "original", "immunised"
    std::string kind = "image";  ///< "image": the attack changed the images; "model": the baked generators' weights
    std::string attack, parameter;
    double strength = 0;
    bool identity = false;  ///< the strength is the attack's no-op
    DetectionStats stats;
};

struct FprStats {
    std::int64_t real_images = 0;
    int threshold_single = 0;               ///< k*(n, alpha): one fingerprint
    std::int64_t single_pass = 0;           ///< real images matching fingerprint #0 of the registry in >= k* bits
    double single_mean_matching = 0;        ///< their mean matching bits with it
    std::int64_t comparisons = 0;           ///< real images x registry entries
    std::int64_t comparison_pass = 0;       ///< (image, entry) pairs with >= k*(n, alpha) matching bits
    std::int64_t registry_size = 0;
    int threshold_registry = 0;             ///< k*(n, alpha / registry_size)
    std::int64_t registry_detected = 0;     ///< real images whose best match passes k*
    std::int64_t registry_attributed = 0;   ///< real images attributed to some user
    int max_matching = 0;                   ///< most matching bits of a real image with any entry
    // the same counts with the confidence-weighted score (each image's own threshold at alpha, or at
    // alpha / registry_size against the registry)
    std::int64_t single_pass_weighted = 0;
    std::int64_t comparison_pass_weighted = 0;
    std::int64_t registry_detected_weighted = 0;
    std::int64_t registry_attributed_weighted = 0;
    double min_log10_p_weighted = 0;        ///< smallest per-comparison log10 p-value of a real image with any entry
    double min_log10_p = 0;                 ///< the same for the bit count (of max_matching)
};

struct AttributionStats {
    Score score = Score::bits;  ///< how the registry scored the matches
    std::int64_t users = 0;
    int threshold = 0;  ///< k*(n, alpha / users); the weighted score's threshold is each image's own
    std::int64_t generated = 0, correct = 0, wrong_user = 0, inconclusive = 0, missed = 0;
    std::int64_t real = 0, real_attributed = 0;  ///< false attributions of real images
    std::int64_t open = 0, open_attributed = 0, open_detected = 0;  ///< images from never-issued fingerprints
    double closed_accuracy = 0;  ///< (correct + real not attributed) / (generated + real)
    double open_accuracy = 0;    ///< (correct + real not attributed + open not attributed) / (all three)
};

struct ModelEval {
    std::string role, path;
    ModelConfig config;
    DetectionStats clean_float, clean_png;
    double saturated_pixels = 0;  ///< fraction of the clean float output's values outside [-1, 1] (lost to the 8-bit clamp)
    FprStats fpr;
    /// every registry size under the weighted score, then under the bit count (only the bit count's
    /// rows for fingerprints over stats::WeightedNull::kMaxBits bits, see effective_score)
    std::vector<AttributionStats> attribution;
    std::vector<SweepRow> sweeps;
    std::optional<FrechetDistance> fd;  ///< FD-classifier of generated (8-bit) vs real reference images
};

struct FidelityResult {
    bool computed = false;
    std::string classifier_path;
    bool classifier_trained_now = false;
    FdTrainInfo classifier;
    int classes = 0;
    std::int64_t images = 0;
    std::string skipped;   ///< why it was not computed although asked for (an unlabelled --real-dir)
    std::string reference;  ///< the real images the distances are measured against
    std::string held_out;   ///< the real images of the floor (real_vs_real)
    std::string note;       ///< e.g. fewer images per set than asked for
    FrechetDistance real_vs_real;  ///< held-out real images vs the real reference: the floor at this size
    std::optional<FrechetDistance> baseline;
    std::string baseline_path;
};

/// One example strip: rows = example images of each model, columns = strengths.
struct ExampleStrip {
    std::string attack;
    std::vector<std::string> column_labels, row_labels;
    std::vector<std::vector<io::Image>> rows;
};

struct EvalResult {
    EvalOptions options;
    int bits = 0;
    int threshold_single = 0;  ///< k*(n, alpha)
    std::vector<ModelEval> models;
    FidelityResult fidelity;
    std::string real_source;          ///< where the real images come from ("Fashion-MNIST test split" or the folder)
    std::int64_t real_available = 0;  ///< real images there (the measurements use min(images, this))
    std::vector<ExampleStrip> strips;
    std::vector<std::pair<std::string, double>> seconds;  ///< per stage
    double total_seconds = 0;
};

/// The training set an FD classifier must record (sgf.fd.dataset) to serve this evaluation:
/// "fashion-mnist/train", or the real-image folder's canonical path.
inline std::string fd_dataset_name(const EvalOptions& opt) {
    if (opt.real_dir.empty()) return "fashion-mnist/train";
    std::error_code ec;
    const auto id = std::filesystem::weakly_canonical(opt.real_dir, ec);
    return (ec ? opt.real_dir : id).string();
}

/// Progress: (stage, done, total); called after each unit of work.
using Progress = std::function<void(const std::string&, std::int64_t, std::int64_t)>;

/// A model to evaluate: a meta model (G and F) under a role name.
template <Backend B>
struct EvalModelInput {
    std::string role, path;
    io::MetaModel<B>* model = nullptr;
};

/// A baseline generator for fidelity only: a meta model (fed random fingerprints) or a baked one.
template <Backend B>
struct BaselineInput {
    std::string path;
    MetaGenerator<B>* G = nullptr;
};

// ---- helpers ------------------------------------------------------------------------------------------

namespace detail {

/// SplitMix64 finaliser: derives independent seeds from (seed, purpose, index).
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
    std::uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1) + 0xbf58476d1ce4e5b9ull * (c + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/// In place: what an 8-bit image stores (io::to_image then io::to_tensor, value by value).
inline void quantize8(HostTensor<float>& x) {
    for (auto& v : x.data) v = from_u8(to_u8(v));
}

inline HostTensor<float> slice(const HostTensor<float>& x, std::int64_t begin, std::int64_t count) {
    const std::int64_t S = x.shape.sample_size();
    HostTensor<float> y(Shape{count, x.shape.c, x.shape.h, x.shape.w});
    std::copy_n(x.data.begin() + begin * S, count * S, y.data.begin());
    return y;
}

inline void append(HostTensor<float>& dst, const HostTensor<float>& src) {
    if (dst.data.empty()) {
        dst = src;
        return;
    }
    dst.data.insert(dst.data.end(), src.data.begin(), src.data.end());
    dst.shape.n += src.shape.n;
}

/// Decoded fingerprints and logits of a host batch, in chunks of `batch`.
template <Backend B>
DecodedSet decode_host(B& b, const ResidualCritic<B>& F, const HostTensor<float>& x, std::int64_t batch) {
    DecodedSet out;
    out.fingerprints.reserve(std::size_t(x.shape.n));
    const std::int64_t S = x.shape.sample_size();
    for (std::int64_t done = 0; done < x.shape.n; done += batch) {
        const std::int64_t n = std::min(batch, x.shape.n - done);
        auto t = from_host<B, float>(b, Shape{n, x.shape.c, x.shape.h, x.shape.w},
                                     std::span<const float>(x.data.data() + done * S, std::size_t(n * S)));
        for (auto& d : decode_batch(b, F, t)) out.push_back(std::move(d.fingerprint), d.logits);
    }
    return out;
}

/// -log10 P[Bin(n, 1/2) >= k] for k = 0..n.
inline std::vector<double> neg_log10_p_table(int n) {
    std::vector<double> t(std::size_t(n) + 1);
    for (int k = 0; k <= n; ++k) t[std::size_t(k)] = -stats::log10_p_value(k, n);
    return t;
}

/// `nlp` is neg_log10_p_table(n) and k_star = bit_threshold(n, alpha): the bit count's p-values and
/// threshold, shared by every image; the weighted score's come from each image's logits.
inline DetectionStats detection_stats(const DecodedSet& decoded, const std::vector<Fingerprint>& truth, int k_star,
                                      const std::vector<double>& nlp, double alpha) {
    SGF_CHECK(decoded.size() == truth.size() && !decoded.empty(), ArgumentError, "detection_stats: {} decoded vs {} truths",
              decoded.size(), truth.size());
    const int n = truth[0].bits();
    DetectionStats s;
    s.images = std::int64_t(decoded.size());
    s.per_bit.assign(std::size_t(n), 0.0);
    std::int64_t pass = 0, pass_weighted = 0;
    for (std::size_t i = 0; i < decoded.size(); ++i) {
        const Fingerprint& d = decoded.fingerprints[i];
        const int m = d.matching_bits(truth[i]);
        const double a = double(m) / n;
        s.bit_accuracy += a;
        s.worst_image = std::min(s.worst_image, a);
        s.mean_neg_log10_p += nlp[std::size_t(m)];
        pass += m >= k_star;
        const auto w = test_claim(truth[i], d, decoded.logits_of(i), alpha, Score::weighted, "detection_stats");
        pass_weighted += w.match;
        s.mean_neg_log10_p_weighted -= w.log10_p;
        for (int j = 0; j < n; ++j) s.per_bit[std::size_t(j)] += d.bit(j) == truth[i].bit(j);
    }
    const double N = double(decoded.size());
    s.bit_accuracy /= N;
    s.mean_neg_log10_p /= N;
    s.mean_neg_log10_p_weighted /= N;
    s.tpr = double(pass) / N;
    s.tpr_weighted = double(pass_weighted) / N;
    for (auto& v : s.per_bit) v /= N;
    return s;
}

/// Images of G for explicit per-image fingerprints: z and noise from draw_generator_batch(seed,
/// stream_base + batch index) in batches of 64; 8-bit quantised when `png`.
template <Backend B>
HostTensor<float> generate(B& b, const MetaGenerator<B>& G, const std::vector<Fingerprint>& fps, std::uint64_t seed,
                           std::uint64_t stream_base, bool png = true) {
    const ModelConfig& cfg = G.config();
    HostTensor<float> out;
    const std::int64_t total = std::int64_t(fps.size()), batch = 64;
    for (std::int64_t done = 0, k = 0; done < total; done += batch, ++k) {
        const std::int64_t n = std::min(batch, total - done);
        auto gb = draw_generator_batch(b, cfg, n, seed, stream_base + std::uint64_t(k));
        HostTensor<float> img;
        if (G.baked()) {
            img = to_host<float>(b, G.forward_baked(b, gb.z, gb.noise1).image());
        } else {
            std::vector<float> c;
            c.reserve(std::size_t(n * cfg.fingerprint_bits));
            for (std::int64_t i = 0; i < n; ++i) {
                const auto f = fps[std::size_t(done + i)].to_floats();
                c.insert(c.end(), f.begin(), f.end());
            }
            auto ct = from_host<B, float>(b, Shape{n, cfg.fingerprint_bits}, std::span<const float>(c));
            img = to_host<float>(b, G.forward(b, gb.z, ct, gb.noise1).image());
        }
        append(out, img);
    }
    if (png) quantize8(out);
    return out;
}

/// `count` fingerprints drawn from Philox (seed, purpose) with the registry's issuance rule:
/// a draw closer than `min_distance` bits to an accepted one is rejected and drawn again.
inline std::vector<Fingerprint> issue_fingerprints(int bits, std::int64_t count, int min_distance, std::uint64_t seed) {
    Matcher m(bits);
    m.reserve(std::size_t(count));
    std::vector<Fingerprint> out;
    out.reserve(std::size_t(count));
    for (std::int64_t i = 0; i < count; ++i) {
        bool ok = false;
        for (int attempt = 0; attempt < 10000 && !ok; ++attempt) {
            Fingerprint f = Fingerprint::from_seed(bits, mix(seed, std::uint64_t(i), std::uint64_t(attempt)));
            std::int64_t i1, i2;
            int m1, m2;
            m.best_two(f, i1, m1, i2, m2);
            if (i1 < 0 || bits - m1 >= min_distance) {
                m.add(f, std::to_string(i));
                out.push_back(std::move(f));
                ok = true;
            }
        }
        SGF_CHECK(ok, ArgumentError, "issue_fingerprints: no {}-bit code at distance >= {} from {} issued ones after 10000 draws", bits,
                  min_distance, out.size());
    }
    return out;
}

/// Real images (dataset u8) as the decoder of `cfg` sees them: io::prepare_for_model per image
/// (channels, centre crop, antialiased resize in 8 bits), as `sgf verify` would read them.
inline HostTensor<float> real_for_model(const HostTensor<float>& real, const ModelConfig& cfg) {
    if (real.shape.c == cfg.image_channels && real.shape.h == cfg.resolution && real.shape.w == cfg.resolution) return real;
    HostTensor<float> out;
    for (std::int64_t i = 0; i < real.shape.n; ++i)
        append(out, io::to_tensor(io::prepare_for_model(io::to_image(real, i), cfg.image_channels, cfg.resolution)));
    return out;
}

inline std::vector<std::int64_t> permutation_prefix(std::int64_t n, std::int64_t count, std::uint64_t seed) {
    io::Sampler s(n, seed);
    return s.next(std::min(count, n));
}

/// `count` entries of `from` at a seeded random subset of its positions.
inline std::vector<std::int64_t> pick(const std::vector<std::int64_t>& from, std::int64_t count, std::uint64_t seed) {
    std::vector<std::int64_t> out;
    for (std::int64_t i : permutation_prefix(std::int64_t(from.size()), count, seed)) out.push_back(from[std::size_t(i)]);
    return out;
}

/// The first `count` images of x.
inline HostTensor<float> first_images(const HostTensor<float>& x, std::int64_t count) {
    if (count >= x.shape.n) return x;
    HostTensor<float> y(Shape{count, x.shape.c, x.shape.h, x.shape.w});
    std::copy_n(x.data.begin(), std::size_t(count * x.shape.sample_size()), y.data.begin());
    return y;
}

/// A folder's fidelity split, independent of the seed and of the other files: a file is in the
/// held-out half when the top bit of a 64-bit mix of the FNV-1a hash of its path below the folder is
/// set, else in the reference half. Each half is returned in the order of that hash (a fixed shuffle).
inline std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> folder_halves(const io::ImageFolder& f) {
    std::vector<std::pair<std::uint64_t, std::int64_t>> keyed;
    for (std::size_t i = 0; i < f.relative.size(); ++i) {
        std::uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char ch : f.relative[i]) h = (h ^ ch) * 0x100000001b3ull;
        keyed.emplace_back(mix(h, 0x5F1D), std::int64_t(i));
    }
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::int64_t> reference, held_out;
    for (const auto& [h, i] : keyed) (h >> 63 ? held_out : reference).push_back(i);
    return {reference, held_out};
}

inline std::vector<std::size_t> strip_columns(std::size_t sweep_size, int wanted) {
    std::vector<std::size_t> cols;
    const int k = std::max(1, std::min<int>(wanted, int(sweep_size)));
    for (int i = 0; i < k; ++i) {
        const std::size_t c = k == 1 ? 0 : std::size_t(std::lround(double(i) * double(sweep_size - 1) / double(k - 1)));
        if (cols.empty() || cols.back() != c) cols.push_back(c);
    }
    return cols;
}

}  // namespace detail

/// Attribution outcomes against `reg` of decoded generated images (image i made by entry who[i]),
/// decoded real images and decoded open-world images (never-issued fingerprints), scored by
/// rule.score (effective_score: the bit count over stats::WeightedNull::kMaxBits bits).
inline AttributionStats count_attribution(const Matcher& reg, const DecodedSet& generated, const std::vector<std::int64_t>& who,
                                          const DecodedSet& real, const DecodedSet& open, const AttributionRule& rule) {
    SGF_CHECK(generated.size() == who.size(), ArgumentError, "count_attribution: {} images, {} owners", generated.size(), who.size());
    AttributionStats s;
    s.score = effective_score(rule.score, reg.bits());
    s.users = reg.size();
    s.threshold = stats::family_bit_threshold(reg.bits(), rule.alpha, reg.size());
    s.generated = std::int64_t(generated.size());
    auto attribute = [&](const DecodedSet& set, std::size_t i) {
        return reg.attribute(set.fingerprints[i], set.logits_of(i), rule, "count_attribution");
    };
    for (std::size_t i = 0; i < generated.size(); ++i) {
        const auto a = attribute(generated, i);
        if (a.outcome == Outcome::attributed) {
            if (a.best_index == who[i]) ++s.correct;
            else ++s.wrong_user;
        } else if (a.outcome == Outcome::inconclusive) {
            ++s.inconclusive;
        } else {
            ++s.missed;
        }
    }
    s.real = std::int64_t(real.size());
    for (std::size_t i = 0; i < real.size(); ++i) s.real_attributed += attribute(real, i).outcome == Outcome::attributed;
    s.open = std::int64_t(open.size());
    for (std::size_t i = 0; i < open.size(); ++i) {
        const auto a = attribute(open, i);
        s.open_attributed += a.outcome == Outcome::attributed;
        s.open_detected += a.detected;
    }
    const double closed_ok = double(s.correct + s.real - s.real_attributed);
    const double closed_n = double(s.generated + s.real), open_n = closed_n + double(s.open);
    s.closed_accuracy = closed_n > 0 ? closed_ok / closed_n : 0.0;
    s.open_accuracy = open_n > 0 ? (closed_ok + double(s.open - s.open_attributed)) / open_n : 0.0;
    return s;
}

/// False positives of decoded real images (no fingerprint) against `users` (registry order): with
/// fingerprint #0 alone, with every entry one comparison at a time, and against the whole registry
/// (Bonferroni over its size), by the bit count and by the weighted score.
inline FprStats false_positive_stats(const DecodedSet& real, const std::vector<Fingerprint>& users, const AttributionRule& rule) {
    SGF_CHECK(!users.empty(), ArgumentError, "false_positive_stats: no registered fingerprint");
    const int n = users[0].bits();
    FprStats f;
    f.real_images = std::int64_t(real.size());
    f.threshold_single = stats::bit_threshold(n, rule.alpha);
    Matcher reg(n);
    for (std::size_t u = 0; u < users.size(); ++u) reg.add(users[u], std::to_string(u));
    f.registry_size = reg.size();
    f.threshold_registry = stats::family_bit_threshold(n, rule.alpha, f.registry_size);
    const bool weighted = effective_score(Score::weighted, n) == Score::weighted;
    const double la = stats::detail::log_alpha(rule.alpha);
    for (std::size_t i = 0; i < real.size(); ++i) {
        const Fingerprint& d = real.fingerprints[i];
        const int m0 = d.matching_bits(users[0]);
        f.single_pass += m0 >= f.threshold_single;
        f.single_mean_matching += m0;
        // the weighted score: this image's weights, null distribution and one-comparison threshold
        std::optional<stats::WeightedNull> null;
        std::optional<sgf::detail::WeightPlanes> planes;
        std::int64_t t_single = 0, best_weighted = 0;
        if (weighted) {
            const auto q = confidence_weights(real.logits_of(i));
            null.emplace(q);
            planes.emplace(q, d.words().size());
            t_single = null->threshold_for_log_level(la);
        }
        for (std::size_t k = 0; k < users.size(); ++k) {
            const int mu = d.matching_bits(users[k]);
            f.comparison_pass += mu >= f.threshold_single;
            f.max_matching = std::max(f.max_matching, mu);
            if (weighted) {
                const std::int64_t w = null->total() - planes->mismatch(users[k].words().data(), d.words().data());
                f.comparison_pass_weighted += w >= t_single;
                best_weighted = std::max(best_weighted, w);
                if (k == 0) f.single_pass_weighted += w >= t_single;
            }
        }
        if (weighted) {
            f.min_log10_p_weighted = std::min(f.min_log10_p_weighted, null->log10_p_value(best_weighted));
        }
        f.comparisons += std::int64_t(users.size());
        for (const Score sc : {Score::bits, Score::weighted}) {
            AttributionRule r = rule;
            r.score = sc;
            const auto a = reg.attribute(d, real.logits_of(i), r, "false positives");
            (sc == Score::bits ? f.registry_detected : f.registry_detected_weighted) += a.detected;
            (sc == Score::bits ? f.registry_attributed : f.registry_attributed_weighted) += a.outcome == Outcome::attributed;
        }
    }
    f.min_log10_p = stats::log10_p_value(f.max_matching, n);
    if (!weighted) {  // fingerprints too long for the weighted score: it is the bit count (effective_score)
        f.single_pass_weighted = f.single_pass;
        f.comparison_pass_weighted = f.comparison_pass;
        f.min_log10_p_weighted = f.min_log10_p;
    }
    f.single_mean_matching /= double(std::max<std::int64_t>(1, f.real_images));
    return f;
}

// ---- the evaluation -------------------------------------------------------------------------------------

/// Runs every measurement (see the file comment). `models` must all use the same fingerprint length.
template <Backend B>
EvalResult evaluate(B& b, std::vector<EvalModelInput<B>> models, const EvalOptions& opt, std::optional<BaselineInput<B>> baseline = {},
                    const Progress& progress = {}) {
    using clock = std::chrono::steady_clock;
    const auto t_all = clock::now();
    SGF_CHECK(!models.empty(), ArgumentError, "evaluate: no model");
    SGF_CHECK(opt.images >= 2, ArgumentError, "evaluate: --images must be at least 2, got {}", opt.images);
    SGF_CHECK(opt.users_max >= 1 && opt.users_max <= 1000000, ArgumentError, "evaluate: --users-max must be in 1..1000000, got {}",
              opt.users_max);
    SGF_CHECK(opt.strip_images >= 0 && opt.strip_strengths >= 0, ArgumentError,
              "evaluate: strip_images and strip_strengths must be >= 0, got {} and {}", opt.strip_images, opt.strip_strengths);
    SGF_CHECK(opt.batch >= 1 && opt.finetune_batch >= 1, ArgumentError, "evaluate: batch and finetune_batch must be positive");
    // the FD classifier's training options, before the sweeps (it may be trained only at the end)
    SGF_CHECK(opt.fd_train.steps >= 1, ArgumentError, "evaluate: --fd-steps must be at least 1, got {}", opt.fd_train.steps);
    SGF_CHECK(opt.fd_train.batch >= 1 && std::isfinite(opt.fd_train.lr) && opt.fd_train.lr > 0, ArgumentError,
              "evaluate: the FD classifier's batch ({}) and learning rate ({}) must be positive", opt.fd_train.batch, opt.fd_train.lr);
    SGF_CHECK(opt.rule.alpha > 0 && opt.rule.alpha < 1, ArgumentError, "evaluate: alpha must be in (0, 1), got {}", opt.rule.alpha);
    const int n = models[0].model->config.fingerprint_bits;
    const auto& c0 = models[0].model->config;
    for (const auto& m : models) {
        SGF_CHECK(m.model->config.fingerprint_bits == n, ArgumentError, "evaluate: {} uses {}-bit fingerprints, {} uses {}", m.path,
                  m.model->config.fingerprint_bits, models[0].path, n);
        // the report puts their images side by side and decodes the same real images with both
        SGF_CHECK(m.model->config.resolution == c0.resolution && m.model->config.image_channels == c0.image_channels, ArgumentError,
                  "evaluate: {} makes {}x{}x{} images, {} makes {}x{}x{}: the models of one report need the same image size",
                  m.path, m.model->config.image_channels, m.model->config.resolution, m.model->config.resolution, models[0].path,
                  c0.image_channels, c0.resolution, c0.resolution);
    }
    if (baseline) {  // its FD is computed with the same classifier on the same real images
        const ModelConfig& bc = baseline->G->config();
        SGF_CHECK(bc.resolution == c0.resolution && bc.image_channels == c0.image_channels, ArgumentError,
                  "evaluate: the baseline {} makes {}x{}x{} images, {} makes {}x{}x{}: it must make images of the same size",
                  baseline->path, bc.image_channels, bc.resolution, bc.resolution, models[0].path, c0.image_channels, c0.resolution,
                  c0.resolution);
    }
    std::vector<std::string> attack_names = opt.attacks.empty() ? registered_attack_names() : opt.attacks;
    for (std::size_t i = 0; i < attack_names.size(); ++i) {
        (void)find_attack(attack_names[i]);  // unknown names fail before any work
        for (std::size_t j = 0; j < i; ++j)
            SGF_CHECK(attack_names[i] != attack_names[j], ArgumentError, "evaluate: attack '{}' is given twice", attack_names[i]);
    }

    EvalResult res;
    res.options = opt;
    res.bits = n;
    res.threshold_single = stats::bit_threshold(n, opt.rule.alpha);
    const auto nlp = detail::neg_log10_p_table(n);
    auto report = [&](const std::string& stage, std::int64_t done, std::int64_t total) {
        if (progress) progress(stage, done, total);
    };
    auto stage_time = [&](const std::string& name, clock::time_point t0) {
        res.seconds.push_back({name, std::chrono::duration<double>(clock::now() - t0).count()});
    };
    const std::int64_t N = opt.images;

    // Shared inputs: real test images, registry fingerprints, open-world fingerprints.
    auto t0 = clock::now();
    // A folder is listed, and only the images a measurement uses are decoded.
    const ModelConfig& cfg0 = models[0].model->config;
    std::optional<io::ImageFolder> folder;
    HostTensor<float> real;
    if (opt.real_dir.empty()) {
        const auto test = io::load_fashion_mnist("test", opt.data_dir);
        res.real_source = "Fashion-MNIST test split";
        res.real_available = test.size();
        real = test.batch(detail::permutation_prefix(test.size(), N, detail::mix(opt.seed, 1)));
    } else {
        folder = io::scan_image_folder(opt.real_dir);
        res.real_source = "the folder " + opt.real_dir.string();
        res.real_available = folder->size();
        const auto idx = detail::permutation_prefix(folder->size(), N, detail::mix(opt.seed, 1));
        real = io::load_folder_images(*folder, idx, cfg0.image_channels, cfg0.resolution, opt.real_dir.string()).all_images();
    }
    // fidelity with a folder: it needs classes and two halves of at least 2 images (decided now, so
    // that a classifier file trained on other data is refused before any measurement)
    std::vector<std::int64_t> ref_half, held_half;
    if (opt.fidelity && folder) {
        std::tie(ref_half, held_half) = detail::folder_halves(*folder);
        if (folder->labels.empty())
            res.fidelity.skipped = fmt::format("{} has no labels: the FD classifier needs the images in at least two sub-folders, "
                                               "one per class",
                                               opt.real_dir.string());
        else if (ref_half.size() < 2 || held_half.size() < 2)
            res.fidelity.skipped = fmt::format("{} splits into {} reference and {} held-out images; the FD-classifier needs at least 2 in each",
                                               opt.real_dir.string(), ref_half.size(), held_half.size());
    }
    if (opt.fidelity && res.fidelity.skipped.empty()) {
        if (std::filesystem::exists(opt.fd_classifier)) check_fd_classifier_file(opt.fd_classifier, fd_dataset_name(opt));
        // the classifier file must record the folder's name
        SGF_CHECK(!folder || is_valid_utf8(fd_dataset_name(opt)), ArgumentError,
                  "{}: the folder's path is not valid UTF-8, so an FD classifier file cannot record it; rename the folder or "
                  "skip fidelity (--no-fidelity)",
                  printable(opt.real_dir.string()));
    }
    const int min_distance = Registry::default_min_distance(n);
    const auto users = detail::issue_fingerprints(n, opt.users_max, min_distance, detail::mix(opt.seed, 2));
    std::vector<Fingerprint> open_fps;
    for (std::int64_t i = 0; i < N; ++i) open_fps.push_back(Fingerprint::from_seed(n, detail::mix(opt.seed, 3, std::uint64_t(i))));
    std::vector<std::int64_t> sizes;
    for (std::int64_t u : {1, 10, 100, 1000, 10000, 100000, 1000000})
        if (u <= opt.users_max) sizes.push_back(u);
    if (sizes.empty() || sizes.back() != opt.users_max) sizes.push_back(opt.users_max);
    stage_time("prepare", t0);

    std::map<std::string, std::vector<std::vector<io::Image>>> strip_rows;  // attack -> rows
    std::map<std::string, std::vector<std::string>> strip_cols;
    std::vector<std::string> strip_row_labels;
    std::vector<HostTensor<float>> clean_sets;  // 8-bit clean images per model (fidelity)

    for (auto& in : models) {
        auto& m = *in.model;
        ModelEval me;
        me.role = in.role;
        me.path = in.path;
        me.config = m.config;
        const auto& cfg = m.config;

        // 1. clean set: measure_bit_accuracy's images (batches of 64, stream = batch index)
        t0 = clock::now();
        HostTensor<float> clean;
        std::vector<Fingerprint> truth;
        {
            HostTensor<float> flt;
            for (std::int64_t done = 0, k = 0; done < N; done += 64, ++k) {
                const std::int64_t nb = std::min<std::int64_t>(64, N - done);
                auto gb = draw_generator_batch(b, cfg, nb, opt.seed, std::uint64_t(k));
                const auto c = to_host_vector<float>(b, gb.c1);
                for (std::int64_t i = 0; i < nb; ++i)
                    truth.push_back(Fingerprint::from_logits(std::span<const float>(c.data() + i * n, std::size_t(n))));
                // from_logits: bit = value > 0, and c1 holds 0/1
                detail::append(flt, to_host<float>(b, m.G.forward(b, gb.z, gb.c1, gb.noise1).image()));
                report(in.role + ": generating the clean set", std::min(N, done + nb), N);
            }
            me.clean_float = detail::detection_stats(detail::decode_host(b, m.F, flt, opt.batch), truth, res.threshold_single, nlp, opt.rule.alpha);
            std::int64_t outside = 0;
            for (float v : flt.data) outside += v < -1.f || v > 1.f;
            me.saturated_pixels = double(outside) / double(std::max<std::size_t>(1, flt.data.size()));
            clean = std::move(flt);
            detail::quantize8(clean);
            me.clean_png = detail::detection_stats(detail::decode_host(b, m.F, clean, opt.batch), truth, res.threshold_single, nlp, opt.rule.alpha);
        }
        stage_time(in.role + ": clean bit accuracy", t0);

        // 2. real images: empirical false-positive rate
        t0 = clock::now();
        const HostTensor<float> real_m = detail::real_for_model(real, cfg);
        const auto real_dec = detail::decode_host(b, m.F, real_m, opt.batch);
        me.fpr = false_positive_stats(real_dec, users, opt.rule);
        stage_time(in.role + ": false positives on real images", t0);

        // 3. attribution, closed and open world
        t0 = clock::now();
        {
            const auto open_img = detail::generate(b, m.G, open_fps, opt.seed, 0x0FE00000ull);
            const auto open_dec = detail::decode_host(b, m.F, open_img, opt.batch);
            std::vector<AttributionStats> by_score[2];  // weighted rows, then the bit count's
            for (std::size_t si = 0; si < sizes.size(); ++si) {
                const std::int64_t U = sizes[si];
                Matcher reg(n);
                for (std::int64_t u = 0; u < U; ++u) reg.add(users[std::size_t(u)], std::to_string(u));
                std::vector<Fingerprint> fps;
                std::vector<std::int64_t> who;
                for (std::int64_t i = 0; i < N; ++i) {
                    who.push_back(i % U);
                    fps.push_back(users[std::size_t(i % U)]);
                }
                const auto img = detail::generate(b, m.G, fps, opt.seed, 0x0A000000ull + (std::uint64_t(si) << 20));
                const auto dec = detail::decode_host(b, m.F, img, opt.batch);
                for (const Score sc : {Score::weighted, Score::bits}) {
                    if (effective_score(sc, n) != sc) continue;  // too long for the weighted score: its rows would be the count's
                    AttributionRule rule = opt.rule;
                    rule.score = sc;
                    by_score[sc == Score::weighted ? 0 : 1].push_back(count_attribution(reg, dec, who, real_dec, open_dec, rule));
                }
                report(in.role + ": attribution", std::int64_t(si + 1), std::int64_t(sizes.size()));
            }
            for (auto& rows : by_score) me.attribution.insert(me.attribution.end(), rows.begin(), rows.end());
        }
        stage_time(in.role + ": attribution", t0);

        // 4. robustness sweeps. Image attacks change the 8-bit clean set. Model attacks change the
        // weights of the baked copies of the first Um registered users (instantiate, then
        // attack::apply), which make N images, user u ceil((N - u) / Um) of them (stored user after
        // user), with the same z at every strength (draw_generator_batch streams 0x0C000000 + (u << 16) + batch index; weight
        // noise seeded by mix(mix(seed, name_hash(name), strength index), u)); the images are saved
        // in 8 bits and decoded against their user's fingerprint.
        t0 = clock::now();
        {
            std::int64_t total = 0, done = 0;
            for (const auto& a : attack_names) total += std::int64_t(find_attack(a).info->sweep.size());
            const int ex = int(std::min<std::int64_t>(opt.strip_images, N));
            for (int r = 0; r < ex; ++r) strip_row_labels.push_back(fmt::format("{} {}", in.role, r + 1));
            for (const auto& name : attack_names) {
                const AttackRef ref = find_attack(name);
                const auto& info = *ref.info;
                const bool model_attack = ref.kind == "model", finetune = name == attack::finetune_attack_info().name;
                // model attacks: the users whose copies are attacked, and the images' fingerprints, grouped by user
                const std::int64_t Um = model_attack_users(name, opt);
                std::vector<Fingerprint> model_truth;
                for (std::int64_t u = 0; u < Um && model_attack; ++u)
                    for (std::int64_t i = u; i < N; i += Um) model_truth.push_back(users[std::size_t(u)]);
                auto copy_images = [&](std::int64_t u, const MetaGenerator<B>& Gu) {  // user u's ceil((N - u) / Um) images
                    const std::vector<Fingerprint> fps(std::size_t((N - u + Um - 1) / Um), users[std::size_t(u)]);
                    return detail::generate(b, Gu, fps, opt.seed, 0x0C000000ull + (std::uint64_t(u) << 16));
                };
                // the fine-tuning attack continues one run per user from strength to strength (its steps)
                std::vector<MetaGenerator<B>> ft_copies;
                std::vector<std::unique_ptr<attack::AdversarialFinetune<B>>> ft_runs;
                if (finetune) {
                    ft_copies.reserve(std::size_t(Um));  // the runs hold pointers to the copies
                    for (std::int64_t u = 0; u < Um; ++u) ft_copies.push_back(instantiate(b, m.G, users[std::size_t(u)]));
                    for (std::int64_t u = 0; u < Um; ++u) {
                        attack::FinetuneOptions fo;
                        fo.seed = detail::mix(opt.seed, name_hash(name), std::uint64_t(u));
                        fo.batch = opt.finetune_batch;
                        ft_runs.push_back(std::make_unique<attack::AdversarialFinetune<B>>(b, ft_copies[std::size_t(u)], m.D, real_m, fo));
                    }
                }
                const auto cols = detail::strip_columns(info.sweep.size(), opt.strip_strengths);
                auto& rows = strip_rows[name];
                const std::size_t row0 = rows.size();
                rows.resize(row0 + std::size_t(ex));
                auto& labels = strip_cols[name];
                for (std::size_t si = 0; si < info.sweep.size(); ++si) {
                    HostTensor<float> y;
                    std::string label;
                    if (!model_attack) {
                        const attack::ImageAttack atk{name, info.sweep[si]};
                        label = atk.label();
                        y = attack::apply(atk, clean, detail::mix(opt.seed, name_hash(name), si));
                        if (y.shape != clean.shape) y = attack::resize_images(y, int(clean.shape.w), int(clean.shape.h));
                        detail::quantize8(y);
                    } else if (finetune) {
                        label = fmt::format("{}@{}", name, info.sweep[si]);
                        const auto steps = std::int64_t(info.sweep[si]);
                        for (std::int64_t u = 0; u < Um; ++u) {
                            auto& run = *ft_runs[std::size_t(u)];
                            SGF_CHECK(steps >= run.steps_done(), ArgumentError, "evaluate: the fine-tuning sweep must not decrease");
                            (void)run.run(b, steps - run.steps_done());
                            detail::append(y, copy_images(u, ft_copies[std::size_t(u)]));
                        }
                    } else {
                        const attack::ModelAttack atk{name, info.sweep[si]};
                        label = atk.label();
                        for (std::int64_t u = 0; u < Um; ++u) {
                            auto Gu = instantiate(b, m.G, users[std::size_t(u)]);
                            (void)attack::apply(b, Gu, atk, detail::mix(detail::mix(opt.seed, name_hash(name), si), std::uint64_t(u)));
                            detail::append(y, copy_images(u, Gu));
                        }
                    }
                    SweepRow row;
                    row.model = in.role;
                    row.kind = ref.kind;
                    row.attack = name;
                    row.parameter = info.parameter;
                    row.strength = info.sweep[si];
                    row.identity = info.identity && *info.identity == info.sweep[si];
                    row.stats = detail::detection_stats(detail::decode_host(b, m.F, y, opt.batch), model_attack ? model_truth : truth,
                                                        res.threshold_single, nlp, opt.rule.alpha);
                    me.sweeps.push_back(std::move(row));
                    if (std::find(cols.begin(), cols.end(), si) != cols.end()) {
                        if (row0 == 0) labels.push_back(label);
                        for (int r = 0; r < ex; ++r) rows[row0 + std::size_t(r)].push_back(io::to_image(y, r));
                    }
                    report(in.role + ": robustness sweeps", ++done, total);
                }
            }
        }
        stage_time(in.role + ": robustness sweeps", t0);
        clean_sets.push_back(std::move(clean));
        res.models.push_back(std::move(me));
    }

    for (const auto& name : attack_names) {
        ExampleStrip s;
        s.attack = name;
        s.column_labels = strip_cols[name];
        s.row_labels = strip_row_labels;
        s.rows = std::move(strip_rows[name]);
        if (!s.rows.empty() && !s.rows[0].empty()) res.strips.push_back(std::move(s));
    }

    // 5. fidelity: FD-classifier of generated vs real, every set of M = min(images, reference,
    // held-out) images. Fashion-MNIST: classifier trained on the train split, reference = train
    // images, floor = the real test images above. A folder: reference and held-out halves
    // (detail::folder_halves); the classifier trains on (up to kFdFolderTrainImages of) the reference
    // half and reports its accuracy on the held-out half; the floor is held-out vs reference.
    if (opt.fidelity && res.fidelity.skipped.empty()) {
        t0 = clock::now();
        auto& fr = res.fidelity;
        fr.computed = true;
        fr.classifier_path = opt.fd_classifier.string();
        auto on_step = [&](std::int64_t s, std::int64_t total, double) { report("training the FD classifier", s, total); };
        const int fc = cfg0.image_channels, fres = cfg0.resolution;
        const std::string folder_name = folder ? fd_dataset_name(opt) : std::string();
        auto load_half = [&](const std::vector<std::int64_t>& idx, const std::string& name) {
            return io::load_folder_images(*folder, idx, fc, fres, name);
        };
        std::optional<FdClassifier<B>> Cl;
        if (!folder) {
            Cl.emplace(load_or_train_fd_classifier(b, opt.fd_classifier, opt.fd_train, &fr.classifier_trained_now, on_step, opt.data_dir));
        } else if (std::filesystem::exists(opt.fd_classifier)) {
            Cl.emplace(FdClassifier<B>::load(b, opt.fd_classifier));
            fr.classifier_trained_now = false;
        } else {
            const auto train_idx = std::vector<std::int64_t>(
                ref_half.begin(), ref_half.begin() + std::min<std::ptrdiff_t>(kFdFolderTrainImages, std::ptrdiff_t(ref_half.size())));
            const auto test_idx = std::vector<std::int64_t>(
                held_half.begin(), held_half.begin() + std::min<std::ptrdiff_t>(std::max<std::int64_t>(0, opt.fd_train.eval_images),
                                                                                std::ptrdiff_t(held_half.size())));
            const auto train = load_half(train_idx, folder_name);  // the name the file records (sgf.fd.dataset)
            const auto test = load_half(test_idx, folder_name + " (held out)");
            Cl.emplace(load_or_train_fd_classifier(b, opt.fd_classifier, opt.fd_train, train, &test, &fr.classifier_trained_now, on_step));
        }
        auto& C = *Cl;
        fr.classifier = C.info();
        fr.classes = C.classes();
        stage_time(fr.classifier_trained_now ? "fidelity: training the classifier" : "fidelity: loading the classifier", t0);
        t0 = clock::now();
        Gaussian ref;
        if (!folder) {
            const auto train = io::load_fashion_mnist("train", opt.data_dir);
            const std::int64_t M = std::min({N, train.size(), real.shape.n});
            fr.images = M;
            ref = C.fit(b, train.batch(detail::permutation_prefix(train.size(), M, detail::mix(opt.seed, 4))));
            fr.real_vs_real = frechet_distance(C.fit(b, detail::first_images(real, M)), ref);
            fr.reference = fmt::format("{} Fashion-MNIST training images", M);
            fr.held_out = fmt::format("{} Fashion-MNIST test images", M);
        } else {
            const std::int64_t M = std::min({N, std::int64_t(ref_half.size()), std::int64_t(held_half.size())});
            fr.images = M;
            const auto rset = load_half(detail::pick(ref_half, M, detail::mix(opt.seed, 4)), folder_name);
            const auto hset = load_half(detail::pick(held_half, M, detail::mix(opt.seed, 7)), folder_name);
            ref = C.fit(b, rset.all_images());
            fr.real_vs_real = frechet_distance(C.fit(b, hset.all_images()), ref);
            fr.reference = fmt::format("{} of the {} images of the reference half of {}", M, ref_half.size(), opt.real_dir.string());
            fr.held_out = fmt::format("{} of the {} images of the held-out half", M, held_half.size());
        }
        if (fr.images < N) fr.note = fmt::format("{} images per set, fewer than --images {}: the real images limit it", fr.images, N);
        for (std::size_t i = 0; i < res.models.size(); ++i) {
            res.models[i].fd = frechet_distance(C.fit(b, detail::first_images(clean_sets[i], fr.images)), ref);
            report("fidelity", std::int64_t(i + 1), std::int64_t(res.models.size()) + (baseline ? 1 : 0));
        }
        if (baseline) {
            const ModelConfig& bc = baseline->G->config();
            std::vector<Fingerprint> fps;
            for (std::int64_t i = 0; i < fr.images; ++i)
                fps.push_back(Fingerprint::from_seed(bc.fingerprint_bits, detail::mix(opt.seed, 5, std::uint64_t(i))));
            const auto img = detail::generate(b, *baseline->G, fps, opt.seed, 0x0B000000ull);
            fr.baseline = frechet_distance(C.fit(b, img), ref);
            fr.baseline_path = baseline->path;
            report("fidelity", std::int64_t(res.models.size()) + 1, std::int64_t(res.models.size()) + 1);
        }
        stage_time("fidelity: FD-classifier", t0);
    }
    res.total_seconds = std::chrono::duration<double>(clock::now() - t_all).count();
    return res;
}

}  // namespace sgf::eval
