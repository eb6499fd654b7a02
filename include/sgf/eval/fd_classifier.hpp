// FD-classifier: a fidelity metric for generated images (algorithm.md 6, "Fidelity").
//
// The paper compares a fingerprinted generator with an unfingerprinted one by FID (InceptionV3
// features). sgf has no ImageNet network, so it measures the same kind of quantity with its own
// small classifier trained on the dataset's labels (Fashion-MNIST, 10 classes):
//
//   FD-classifier(X, Y) = |mu_X - mu_Y|^2 + Tr(S_X + S_Y - 2 (S_X S_Y)^{1/2})
//
// the Frechet distance between Gaussian fits (mean, unbiased covariance) of the classifier's
// penultimate-layer features (the activations of its fc layer) on two image sets. It is NOT FID:
// the numbers are on another scale, depend on this classifier's weights and on the number of
// images (the estimate is biased upwards for small sets), and compare only with FD-classifier
// values computed with the same classifier file and the same set sizes.
//
// The classifier is a ResidualCritic (the decoder's architecture, narrower) with 10 outputs,
// trained with softmax cross-entropy (computed on the host from the logits; dL/dlogits is
// uploaded and back-propagated) and Adam. It is saved as a safetensors file with
// sgf.kind = "fd-classifier", so it is trained once and reused.
//
// The matrix square root: (S_X S_Y)^{1/2} is similar to the symmetric positive semi-definite
// A S_Y A with A = S_X^{1/2}, so Tr (S_X S_Y)^{1/2} = sum_i sqrt(lambda_i(A S_Y A)); both square
// roots come from self-adjoint eigen-decompositions in double precision, with eigenvalues that
// rounding pushed below zero clamped to 0. Needs Eigen (link sgf::eigen).
#pragma once

#include <sgf/io/datasets.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/nets.hpp>
#include <sgf/robustness/image_attacks.hpp>

#include <Eigen/Dense>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <numbers>
#include <string>
#include <vector>

namespace sgf::eval {

// ---- Frechet distance between Gaussian fits --------------------------------------------------------

/// Mean and covariance of a set of feature vectors.
struct Gaussian {
    Eigen::VectorXd mean;
    Eigen::MatrixXd cov;  ///< unbiased (divides by n - 1); zero for a single sample
    std::int64_t count = 0;
    int dim() const { return int(mean.size()); }
};

/// Fits a Gaussian to `features` (n rows of `dim` values, row-major).
inline Gaussian fit_gaussian(const std::vector<double>& features, int dim) {
    SGF_CHECK(dim > 0 && !features.empty() && features.size() % std::size_t(dim) == 0, ArgumentError,
              "fit_gaussian: {} values are not a whole number of {}-dimensional rows", features.size(), dim);
    const std::int64_t n = std::int64_t(features.size() / std::size_t(dim));
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> X(features.data(), n, dim);
    Gaussian g;
    g.count = n;
    g.mean = X.colwise().mean().transpose();
    const Eigen::MatrixXd C = X.rowwise() - g.mean.transpose();
    g.cov = n > 1 ? Eigen::MatrixXd((C.transpose() * C) / double(n - 1)) : Eigen::MatrixXd::Zero(dim, dim);
    return g;
}

/// Symmetric positive semi-definite square root via eigen-decomposition (negative eigenvalues,
/// which only rounding produces for a covariance, are clamped to 0).
inline Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& S) {
    const Eigen::MatrixXd sym = 0.5 * (S + S.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sym);
    SGF_CHECK(es.info() == Eigen::Success, NumericError, "sqrt_psd: eigen-decomposition did not converge");
    const Eigen::VectorXd r = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
    return es.eigenvectors() * r.asDiagonal() * es.eigenvectors().transpose();
}

/// Tr((S1 S2)^{1/2}) for covariance matrices S1, S2: sum of sqrt(eigenvalues of S1^{1/2} S2 S1^{1/2}).
inline double trace_sqrt_product(const Eigen::MatrixXd& S1, const Eigen::MatrixXd& S2) {
    SGF_CHECK(S1.rows() == S1.cols() && S2.rows() == S2.cols() && S1.rows() == S2.rows(), ShapeError,
              "trace_sqrt_product: need two square matrices of the same size, got {}x{} and {}x{}", S1.rows(), S1.cols(),
              S2.rows(), S2.cols());
    const Eigen::MatrixXd A = sqrt_psd(S1);
    const Eigen::MatrixXd M = A * S2 * A;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(0.5 * (M + M.transpose()), Eigen::EigenvaluesOnly);
    SGF_CHECK(es.info() == Eigen::Success, NumericError, "trace_sqrt_product: eigen-decomposition did not converge");
    return es.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}

struct FrechetDistance {
    double value = 0;       ///< mean_term + trace_term (clamped at 0 against rounding)
    double mean_term = 0;   ///< |mu1 - mu2|^2
    double trace_term = 0;  ///< Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})
};

inline FrechetDistance frechet_distance(const Gaussian& a, const Gaussian& b) {
    SGF_CHECK(a.dim() == b.dim() && a.dim() > 0, ShapeError, "frechet_distance: feature sizes {} and {} differ", a.dim(), b.dim());
    FrechetDistance d;
    d.mean_term = (a.mean - b.mean).squaredNorm();
    d.trace_term = a.cov.trace() + b.cov.trace() - 2.0 * trace_sqrt_product(a.cov, b.cov);
    d.value = std::max(0.0, d.mean_term + d.trace_term);
    return d;
}

// ---- the classifier ---------------------------------------------------------------------------------

inline constexpr const char* kFdClassifierKind = "fd-classifier";

/// The classifier's architecture for images of `resolution` px with `channels` channels: the
/// decoder's residual trunk at half the small preset's channel_base (512: 16 channels at 32 px, 32 at
/// 16 px, 64 below, where small has 32, 64, 64) and a 128-wide fc layer, whose activations are the FD features.
inline ModelConfig fd_classifier_config(int resolution = 32, int channels = 1) {
    ModelConfig c;
    c.preset = "fd-classifier";
    c.resolution = resolution;
    c.image_channels = channels;
    c.channel_base = 512;
    c.channel_max = 64;
    c.fc_width = 128;
    c.validate();
    return c;
}

struct FdTrainOptions {
    std::int64_t steps = 1500;  ///< Adam steps
    std::int64_t batch = 64;
    double lr = 0.02;           ///< peak learning rate; cosine decay to 0 over `steps`
    std::uint64_t seed = 1;
    std::int64_t eval_images = 10000;  ///< test images for the reported accuracy (0: skip)
};

/// What training produced (also stored in the file's metadata).
struct FdTrainInfo {
    std::int64_t steps = 0, batch = 0;
    double final_loss = 0;       ///< mean cross-entropy over the last 50 steps
    double train_seconds = 0;
    double test_accuracy = -1;   ///< top-1 on the first eval_images test images; -1 when not measured
    std::int64_t test_images = 0;
    std::string dataset;
};

/// Images are converted to the classifier's input first when their shape differs: channels by
/// luma (RGB -> gray) or replication (gray -> RGB), then a float resize with the antialiased
/// triangle filter (attack::resize_images). Samples are not clamped or quantised here.
inline HostTensor<float> to_classifier_input(const HostTensor<float>& x, const ModelConfig& cfg) {
    const Shape& s = x.shape;
    if (s.c == cfg.image_channels && s.h == cfg.resolution && s.w == cfg.resolution) return x;
    SGF_CHECK(s.c == 1 || s.c == 3, ShapeError, "fd-classifier: images must have 1 or 3 channels, got shape {}", s.str());
    HostTensor<float> y = x;
    if (s.c != cfg.image_channels) {
        y = HostTensor<float>(Shape{s.n, cfg.image_channels, s.h, s.w});
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t i = 0; i < s.h; ++i)
                for (std::int64_t j = 0; j < s.w; ++j) {
                    if (cfg.image_channels == 1)
                        y.at(n, 0, i, j) = float(0.299 * x.at(n, 0, i, j) + 0.587 * x.at(n, 1, i, j) + 0.114 * x.at(n, 2, i, j));
                    else
                        for (int c = 0; c < 3; ++c) y.at(n, c, i, j) = x.at(n, 0, i, j);
                }
    }
    return attack::resize_images(y, cfg.resolution, cfg.resolution);
}

template <Backend B>
class FdClassifier {
public:
    FdClassifier() = default;
    FdClassifier(B& b, const ModelConfig& cfg, int classes, std::uint64_t seed)
        : cfg_(cfg), classes_(classes), net_(b, "C", cfg, classes, false, seed) {
        SGF_CHECK(classes >= 2, ArgumentError, "fd-classifier: needs at least 2 classes, got {}", classes);
    }

    const ModelConfig& config() const { return cfg_; }
    int classes() const { return classes_; }
    int feature_dim() const { return cfg_.fc_width; }
    ResidualCritic<B>& net() { return net_; }
    const FdTrainInfo& info() const { return info_; }

    /// Penultimate (fc) features, row-major [N, feature_dim], and the logits [N, classes], of images
    /// in [-1, 1] (converted with to_classifier_input when their shape differs), in batches.
    void run(B& b, const HostTensor<float>& images, std::vector<double>* features, std::vector<float>* logits,
             std::int64_t batch = 256) const {
        const HostTensor<float> x = to_classifier_input(images, cfg_);
        const std::int64_t N = x.shape.n, S = x.shape.sample_size();
        if (features) features->clear();
        if (logits) logits->clear();
        for (std::int64_t done = 0; done < N; done += batch) {
            const std::int64_t n = std::min(batch, N - done);
            const Shape sh{n, x.shape.c, x.shape.h, x.shape.w};
            auto t = from_host<B, float>(b, sh, std::span<const float>(x.data.data() + done * S, std::size_t(n * S)));
            auto ctx = net_.forward(b, t);
            if (features) {
                const auto f = to_host_vector<double>(b, ctx.fc.y);
                features->insert(features->end(), f.begin(), f.end());
            }
            if (logits) {
                const auto l = to_host_vector<float>(b, ctx.output());
                logits->insert(logits->end(), l.begin(), l.end());
            }
        }
    }
    std::vector<double> features(B& b, const HostTensor<float>& images) const {
        std::vector<double> f;
        run(b, images, &f, nullptr);
        return f;
    }
    Gaussian fit(B& b, const HostTensor<float>& images) const { return fit_gaussian(features(b, images), feature_dim()); }

    /// Top-1 accuracy on labelled images.
    double accuracy(B& b, const HostTensor<float>& images, const std::vector<int>& labels) const {
        SGF_CHECK(std::int64_t(labels.size()) == images.shape.n, ArgumentError, "fd-classifier: {} labels for {} images",
                  labels.size(), images.shape.n);
        std::vector<float> l;
        run(b, images, nullptr, &l);
        std::int64_t ok = 0;
        for (std::size_t i = 0; i < labels.size(); ++i) {
            const float* r = l.data() + i * std::size_t(classes_);
            ok += int(std::max_element(r, r + classes_) - r) == labels[i];
        }
        return labels.empty() ? 0.0 : double(ok) / double(labels.size());
    }

    /// Softmax cross-entropy of logits [N, K] against labels; writes dL/dlogits (mean over N).
    static double softmax_cross_entropy(const std::vector<float>& logits, const std::vector<int>& labels, int K,
                                        std::vector<float>& grad) {
        const std::size_t N = labels.size();
        grad.assign(logits.size(), 0.0f);
        double loss = 0;
        for (std::size_t i = 0; i < N; ++i) {
            const float* l = logits.data() + i * std::size_t(K);
            const double mx = *std::max_element(l, l + K);
            double z = 0;
            for (int k = 0; k < K; ++k) z += std::exp(double(l[k]) - mx);
            const double lse = mx + std::log(z);
            loss += lse - double(l[labels[i]]);
            for (int k = 0; k < K; ++k)
                grad[i * std::size_t(K) + std::size_t(k)] = float((std::exp(double(l[k]) - lse) - (k == labels[i] ? 1.0 : 0.0)) / double(N));
        }
        return loss / double(N);
    }

    /// Trains on a labelled dataset (train split) and measures top-1 accuracy on `test`.
    /// `progress(step, steps, running loss)` is called every 50 steps when set.
    void train(B& b, const io::ImageDataset& data, const io::ImageDataset* test, const FdTrainOptions& opt,
               const std::function<void(std::int64_t, std::int64_t, double)>& progress = {}) {
        SGF_CHECK(!data.labels.empty() && std::int64_t(data.labels.size()) == data.size(), ArgumentError,
                  "fd-classifier: {} has no labels", data.name);
        SGF_CHECK(opt.steps > 0 && opt.batch > 0, ArgumentError, "fd-classifier: steps and batch must be positive");
        for (int l : data.labels)
            SGF_CHECK(l >= 0 && l < classes_, ArgumentError, "fd-classifier: label {} outside 0..{}", l, classes_ - 1);
        const auto t0 = std::chrono::steady_clock::now();
        auto params = net_.parameters();
        AdamParams hp;
        hp.lr = opt.lr;
        hp.beta1 = 0.9;
        hp.beta2 = 0.999;
        Adam<B> adam(b, params, hp);
        io::Sampler sampler(data.size(), opt.seed);
        std::vector<float> grad;
        std::vector<int> labels;
        double recent = 0;
        std::int64_t recent_n = 0;
        for (std::int64_t step = 0; step < opt.steps; ++step) {
            hp.lr = opt.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * double(step) / double(opt.steps)));
            adam.set_hyper(hp);
            const auto idx = sampler.next(opt.batch);
            labels.clear();
            for (auto i : idx) labels.push_back(data.labels[std::size_t(i)]);
            const auto x = data.batch(idx);
            auto xt = from_host<B, float>(b, x);
            auto ctx = net_.forward(b, xt);
            const auto logits = to_host_vector<float>(b, ctx.output());
            const double loss = softmax_cross_entropy(logits, labels, classes_, grad);
            SGF_CHECK(std::isfinite(loss), NumericError, "fd-classifier: loss is not finite at step {}", step);
            if (step >= opt.steps - 50) {
                recent += loss;
                ++recent_n;
            }
            auto g = from_host<B, float>(b, ctx.output().shape(), std::span<const float>(grad));
            net_.backward(b, ctx, std::move(g), GradMode::overwrite, false);
            adam.step(b);
            if (progress && ((step + 1) % 50 == 0 || step + 1 == opt.steps)) progress(step + 1, opt.steps, loss);
        }
        info_ = FdTrainInfo{};
        info_.steps = opt.steps;
        info_.batch = opt.batch;
        info_.final_loss = recent_n ? recent / double(recent_n) : 0;
        info_.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        info_.dataset = data.name;
        if (test && opt.eval_images > 0 && !test->labels.empty()) {
            const std::int64_t n = std::min(opt.eval_images, test->size());
            std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
            std::iota(idx.begin(), idx.end(), std::int64_t(0));
            std::vector<int> lab(test->labels.begin(), test->labels.begin() + n);
            info_.test_accuracy = accuracy(b, test->batch(idx), lab);
            info_.test_images = n;
        }
    }

    void save(B& b, const std::filesystem::path& path) {
        io::SafetensorsFile f;
        io::set_header(f, kFdClassifierKind, cfg_);
        f.metadata["sgf.fd.classes"] = std::to_string(classes_);
        f.metadata["sgf.fd.dataset"] = info_.dataset;
        f.metadata["sgf.fd.steps"] = std::to_string(info_.steps);
        f.metadata["sgf.fd.batch"] = std::to_string(info_.batch);
        f.metadata["sgf.fd.final_loss"] = fmt::format("{:.6g}", info_.final_loss);
        f.metadata["sgf.fd.train_seconds"] = fmt::format("{:.3f}", info_.train_seconds);
        f.metadata["sgf.fd.test_accuracy"] = fmt::format("{:.6f}", info_.test_accuracy);
        f.metadata["sgf.fd.test_images"] = std::to_string(info_.test_images);
        io::put_parameters(b, f, net_.parameters());
        f.save(path);
    }

    static FdClassifier load(B& b, const std::filesystem::path& path) {
        const auto f = io::SafetensorsFile::load(path);
        if (f.meta("sgf.format_version") != io::kFormatVersion)
            SGF_THROW(FormatError, "{}: format version {} is not supported", path.string(), f.meta("sgf.format_version"));
        if (f.meta("sgf.kind") != kFdClassifierKind)
            SGF_THROW(FormatError, "{}: holds a '{}', expected {}", path.string(), f.meta("sgf.kind"), kFdClassifierKind);
        io::check_config_checksum(f);
        ModelConfig cfg;
        int classes = 0;
        FdTrainInfo info;
        try {
            cfg = nlohmann::json::parse(f.meta("sgf.config")).get<ModelConfig>();
            classes = std::stoi(f.meta("sgf.fd.classes"));
            auto num = [&](const char* k, double dflt) { return f.metadata.count(k) ? std::stod(f.metadata.at(k)) : dflt; };
            info.steps = std::int64_t(num("sgf.fd.steps", 0));
            info.batch = std::int64_t(num("sgf.fd.batch", 0));
            info.final_loss = num("sgf.fd.final_loss", 0);
            info.train_seconds = num("sgf.fd.train_seconds", 0);
            info.test_accuracy = num("sgf.fd.test_accuracy", -1);
            info.test_images = std::int64_t(num("sgf.fd.test_images", 0));
            if (f.metadata.count("sgf.fd.dataset")) info.dataset = f.metadata.at("sgf.fd.dataset");
        } catch (const FormatError&) {
            throw;
        } catch (const std::exception& e) {
            SGF_THROW(FormatError, "{}: bad fd-classifier metadata: {}", path.string(), e.what());
        }
        SGF_CHECK(classes >= 2 && classes <= 100000 && cfg.resolution <= 1024, FormatError,
                  "{}: implausible fd-classifier ({} classes, resolution {})", path.string(), classes, cfg.resolution);
        io::check_weight_bound(f, cfg, kFdClassifierKind);
        FdClassifier c(b, cfg, classes, kNoInit);
        io::get_parameters(b, f, c.net_.parameters());
        c.info_ = info;
        return c;
    }

private:
    ModelConfig cfg_;
    int classes_ = 0;
    ResidualCritic<B> net_;
    FdTrainInfo info_;
};

/// FormatError when the file at `path` is not an FD classifier (sgf.kind), and ArgumentError (before
/// anything is computed) when it records a training set (sgf.fd.dataset) other than `dataset`: its
/// features would measure distances to the wrong data. A file without the record, or with an empty
/// one, passes.
inline void check_fd_classifier_file(const std::filesystem::path& path, const std::string& dataset) {
    const auto f = io::SafetensorsFile::load(path);
    const auto kind = f.metadata.find("sgf.kind");
    if (kind == f.metadata.end() || kind->second != kFdClassifierKind)
        SGF_THROW(FormatError, "{}: holds a '{}', expected {} (give another --fd-classifier file; it is trained there when missing)",
                  path.string(), kind == f.metadata.end() ? std::string() : kind->second, kFdClassifierKind);
    const auto it = f.metadata.find("sgf.fd.dataset");
    if (it == f.metadata.end() || it->second.empty() || it->second == dataset) return;
    SGF_THROW(ArgumentError,
              "{}: this FD classifier was trained on {}, but the real images of this evaluation are {}; give another "
              "--fd-classifier file (it is trained there when missing)",
              path.string(), it->second, dataset);
}

/// Loads the classifier from `path` (it must have been trained on `train`'s name), or, when the
/// file does not exist, trains one on the labelled `train` (accuracy on `test` when given; classes =
/// train.class_names, or 1 + the largest label) and saves it there. `trained` tells which happened.
template <Backend B>
FdClassifier<B> load_or_train_fd_classifier(B& b, const std::filesystem::path& path, const FdTrainOptions& opt,
                                            const io::ImageDataset& train, const io::ImageDataset* test, bool* trained = nullptr,
                                            const std::function<void(std::int64_t, std::int64_t, double)>& progress = {}) {
    if (std::filesystem::exists(path)) {
        if (trained) *trained = false;
        check_fd_classifier_file(path, train.name);
        return FdClassifier<B>::load(b, path);
    }
    SGF_CHECK(!train.labels.empty(), ArgumentError, "fd-classifier: {} has no labels", train.name);
    const int classes = train.class_names.empty() ? 1 + *std::max_element(train.labels.begin(), train.labels.end())
                                                  : int(train.class_names.size());
    FdClassifier<B> c(b, fd_classifier_config(train.height, train.channels), classes, opt.seed);
    c.train(b, train, test, opt, progress);
    if (path.has_parent_path()) io::ensure_directory(path.parent_path());
    c.save(b, path);
    if (trained) *trained = true;
    return c;
}

/// The same for Fashion-MNIST (train split; accuracy on the test split), read from `data_dir` only
/// when the classifier has to be trained.
template <Backend B>
FdClassifier<B> load_or_train_fd_classifier(B& b, const std::filesystem::path& path, const FdTrainOptions& opt, bool* trained = nullptr,
                                            const std::function<void(std::int64_t, std::int64_t, double)>& progress = {},
                                            const std::filesystem::path& data_dir = io::fashion_mnist_dir()) {
    if (std::filesystem::exists(path)) {
        if (trained) *trained = false;
        check_fd_classifier_file(path, "fashion-mnist/train");
        return FdClassifier<B>::load(b, path);
    }
    const auto train = io::load_fashion_mnist("train", data_dir);
    const auto test = io::load_fashion_mnist("test", data_dir);
    return load_or_train_fd_classifier(b, path, opt, train, &test, trained, progress);
}

}  // namespace sgf::eval
