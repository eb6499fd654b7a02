// FD-classifier (include/sgf/eval/fd_classifier.hpp): the Frechet distance and its matrix square
// root against brute-force computations, the softmax cross-entropy gradient, the classifier's file
// round trip, and the metric's behaviour on real images (real vs real near 0 next to real vs noise).
#include <sgf/eval/fd_classifier.hpp>
#include <sgf/backends/eigen.hpp>
#include "file_bytes.hpp"

#include <gtest/gtest.h>

#include <random>

namespace sgf::eval {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;

Eigen::MatrixXd random_spd(int n, std::uint64_t seed, double ridge = 0.1) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> nd;
    Eigen::MatrixXd A(n, n);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) A(i, j) = nd(rng);
    return A * A.transpose() + ridge * Eigen::MatrixXd::Identity(n, n);
}

/// Brute force: the principal square root of the (non-symmetric) product S1 S2 by the Denman-Beavers
/// iteration Y <- (Y + Z^-1) / 2, Z <- (Z + Y^-1) / 2 from Y = S1 S2, Z = I.
Eigen::MatrixXd denman_beavers_sqrt(const Eigen::MatrixXd& M) {
    Eigen::MatrixXd Y = M, Z = Eigen::MatrixXd::Identity(M.rows(), M.cols());
    for (int k = 0; k < 100; ++k) {
        const Eigen::MatrixXd Yi = Y.inverse(), Zi = Z.inverse();
        Y = 0.5 * (Y + Zi);
        Z = 0.5 * (Z + Yi);
    }
    return Y;
}

TEST(FrechetDistance, TraceSqrtMatchesBruteForce) {
    for (int n : {1, 2, 3, 5, 8}) {
        const Eigen::MatrixXd S1 = random_spd(n, 10 + n), S2 = random_spd(n, 100 + n);
        const Eigen::MatrixXd M = S1 * S2;
        const Eigen::MatrixXd R = denman_beavers_sqrt(M);
        ASSERT_LT((R * R - M).norm(), 1e-8 * M.norm()) << "n = " << n << ": the brute-force root did not converge";
        // independent second check: the eigenvalues of S1 S2 are real and positive; sum their roots
        Eigen::EigenSolver<Eigen::MatrixXd> es(M);
        double by_eig = 0;
        for (int i = 0; i < n; ++i) {
            EXPECT_NEAR(es.eigenvalues()[i].imag(), 0.0, 1e-8 * M.norm());
            by_eig += std::sqrt(es.eigenvalues()[i].real());
        }
        const double t = trace_sqrt_product(S1, S2);
        EXPECT_NEAR(t, R.trace(), 1e-9 * std::abs(R.trace())) << "n = " << n;
        EXPECT_NEAR(t, by_eig, 1e-9 * std::abs(by_eig)) << "n = " << n;
        EXPECT_NEAR(t, trace_sqrt_product(S2, S1), 1e-9 * std::abs(t)) << "Tr sqrt(S1 S2) = Tr sqrt(S2 S1)";
    }
}

TEST(FrechetDistance, ClosedFormForCommutingCovariances) {
    // Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    Gaussian a, b;
    auto vec = [](double x, double y, double z) {
        Eigen::VectorXd v(3);
        v << x, y, z;
        return v;
    };
    a.mean = vec(1, 2, 3);
    b.mean = vec(0, 2, 5);
    a.cov = vec(4, 1, 9).asDiagonal();
    b.cov = vec(1, 1, 16).asDiagonal();
    const auto d = frechet_distance(a, b);
    EXPECT_NEAR(d.mean_term, 1 + 0 + 4, 1e-12);
    EXPECT_NEAR(d.trace_term, 1 + 0 + 1, 1e-12);
    EXPECT_NEAR(d.value, 7, 1e-12);
}

TEST(FrechetDistance, SqrtPsdSquaresBackAndClampsRounding) {
    const Eigen::MatrixXd S = random_spd(6, 7);
    const Eigen::MatrixXd R = sqrt_psd(S);
    EXPECT_LT((R * R - S).norm(), 1e-10 * S.norm());
    EXPECT_LT((R - R.transpose()).norm(), 1e-12 * R.norm());
    // rank-deficient (a covariance of fewer samples than dimensions): no NaN
    Eigen::MatrixXd v = Eigen::MatrixXd::Random(6, 2);
    const Eigen::MatrixXd low = v * v.transpose();
    const Eigen::MatrixXd Rl = sqrt_psd(low);
    EXPECT_TRUE(Rl.allFinite());
    EXPECT_LT((Rl * Rl - low).norm(), 1e-6 * low.norm());
}

TEST(FrechetDistance, IdenticalSetsAreZeroAndShiftIsMeanTerm) {
    std::mt19937_64 rng(3);
    std::normal_distribution<double> nd;
    const int dim = 12, n = 300;
    std::vector<double> x(std::size_t(n) * dim);
    for (auto& v : x) v = nd(rng) * 2 + 1;
    const Gaussian g = fit_gaussian(x, dim);
    const auto same = frechet_distance(g, fit_gaussian(x, dim));
    EXPECT_NEAR(same.value, 0.0, 1e-9 * g.cov.trace());
    // a constant shift c changes only the means: FD = |c|^2
    std::vector<double> y = x;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < dim; ++j) y[std::size_t(i) * dim + j] += 0.5 * j;
    double c2 = 0;
    for (int j = 0; j < dim; ++j) c2 += 0.25 * j * j;
    const auto shifted = frechet_distance(g, fit_gaussian(y, dim));
    EXPECT_NEAR(shifted.value, c2, 1e-8 * c2);
    EXPECT_NEAR(shifted.trace_term, 0.0, 1e-8 * g.cov.trace());
    // symmetric
    const Gaussian h = fit_gaussian(std::vector<double>(y.begin(), y.begin() + 100 * dim), dim);
    EXPECT_NEAR(frechet_distance(g, h).value, frechet_distance(h, g).value, 1e-9 * frechet_distance(g, h).value);
}

TEST(FrechetDistance, FitGaussianIsTheUnbiasedSampleCovariance) {
    const std::vector<double> x{1, 2, 3, 6, 5, 10};  // three 2-d samples
    const Gaussian g = fit_gaussian(x, 2);
    EXPECT_EQ(g.count, 3);
    EXPECT_DOUBLE_EQ(g.mean[0], 3);
    EXPECT_DOUBLE_EQ(g.mean[1], 6);
    EXPECT_NEAR(g.cov(0, 0), (4 + 0 + 4) / 2.0, 1e-12);
    EXPECT_NEAR(g.cov(1, 1), (16 + 0 + 16) / 2.0, 1e-12);
    EXPECT_NEAR(g.cov(0, 1), (8 + 0 + 8) / 2.0, 1e-12);
    EXPECT_THROW(fit_gaussian({1, 2, 3}, 2), ArgumentError);
}

TEST(FdClassifier, SoftmaxCrossEntropyGradientMatchesFiniteDifferences) {
    const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.1f, 0.3f, -0.2f};
    const std::vector<int> labels{2, 0};
    std::vector<float> grad;
    const double loss = FdClassifier<B>::softmax_cross_entropy(logits, labels, 3, grad);
    EXPECT_GT(loss, 0);
    std::vector<float> tmp;
    for (std::size_t i = 0; i < logits.size(); ++i) {
        auto p = logits, m = logits;
        p[i] += 1e-3f;
        m[i] -= 1e-3f;
        const double fd = (FdClassifier<B>::softmax_cross_entropy(p, labels, 3, tmp) -
                           FdClassifier<B>::softmax_cross_entropy(m, labels, 3, tmp)) / 2e-3;
        EXPECT_NEAR(grad[i], fd, 1e-3) << "logit " << i;
    }
}

TEST(FdClassifier, InputConversion) {
    const ModelConfig cfg = fd_classifier_config(32, 1);
    HostTensor<float> rgb(Shape{2, 3, 16, 16});
    for (std::size_t i = 0; i < rgb.data.size(); ++i) rgb.data[i] = 0.25f;
    const auto x = to_classifier_input(rgb, cfg);
    EXPECT_EQ(x.shape, (Shape{2, 1, 32, 32}));
    for (float v : x.data) EXPECT_NEAR(v, 0.25f, 1e-5f);
}

/// The behaviour on data: a briefly trained classifier (the test must stay fast, the property does
/// not need a good one), Fashion-MNIST test images split into two disjoint halves, and noise.
class FdOnData : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        b_ = new B(2);
        train_ = new io::ImageDataset(io::load_fashion_mnist("train"));
        test_ = new io::ImageDataset(io::load_fashion_mnist("test"));
        clf_ = new FdClassifier<B>(*b_, fd_classifier_config(), 10, 5);
        FdTrainOptions o;
        o.steps = 60;
        o.eval_images = 1000;
        clf_->train(*b_, *train_, test_, o);
    }
    static void TearDownTestSuite() {
        delete clf_;
        delete test_;
        delete train_;
        delete b_;
    }
    static HostTensor<float> test_range(std::int64_t begin, std::int64_t count) {
        std::vector<std::int64_t> idx(static_cast<std::size_t>(count));
        std::iota(idx.begin(), idx.end(), begin);
        return test_->batch(idx);
    }
    static B* b_;
    static io::ImageDataset *train_, *test_;
    static FdClassifier<B>* clf_;
};
B* FdOnData::b_ = nullptr;
io::ImageDataset* FdOnData::train_ = nullptr;
io::ImageDataset* FdOnData::test_ = nullptr;
FdClassifier<B>* FdOnData::clf_ = nullptr;

TEST_F(FdOnData, TrainingLearnsSomething) {
    EXPECT_EQ(clf_->info().steps, 60);
    EXPECT_EQ(clf_->info().test_images, 1000);
    EXPECT_GT(clf_->info().test_accuracy, 0.3) << "10 classes: chance is 0.1";
    EXPECT_TRUE(std::isfinite(clf_->info().final_loss));
}

TEST_F(FdOnData, RealVsRealIsNearZeroNextToRealVsNoise) {
    const auto a = test_range(0, 600), b = test_range(600, 600);
    HostTensor<float> noise(Shape{600, 1, 32, 32});
    std::mt19937_64 rng(9);
    std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
    for (auto& v : noise.data) v = ud(rng);
    const Gaussian ga = clf_->fit(*b_, a), gb = clf_->fit(*b_, b), gn = clf_->fit(*b_, noise);
    const double real_real = frechet_distance(ga, gb).value, real_noise = frechet_distance(ga, gn).value;
    const double same = frechet_distance(ga, clf_->fit(*b_, a)).value;
    EXPECT_GT(real_noise, 0);
    EXPECT_LT(real_real, 0.05 * real_noise) << "real vs real " << real_real << ", real vs noise " << real_noise;
    EXPECT_LT(same, 1e-6 * real_noise) << "identical sets: " << same;
}

TEST_F(FdOnData, SaveLoadRoundTripGivesTheSameFeatures) {
    const fs::path dir = fs::path(SGF_TEST_TMPDIR) / "fd_roundtrip";
    fs::create_directories(dir);
    const fs::path p = dir / "fd-classifier.safetensors";
    clf_->save(*b_, p);
    const auto f = io::SafetensorsFile::load(p);
    EXPECT_EQ(f.meta("sgf.kind"), "fd-classifier");
    auto loaded = FdClassifier<B>::load(*b_, p);
    EXPECT_EQ(loaded.classes(), 10);
    EXPECT_EQ(loaded.feature_dim(), clf_->feature_dim());
    EXPECT_NEAR(loaded.info().test_accuracy, clf_->info().test_accuracy, 1e-6);
    const auto x = test_range(0, 20);
    EXPECT_EQ(loaded.features(*b_, x), clf_->features(*b_, x));
    // load_or_train loads an existing file instead of training
    bool trained = true;
    auto again = load_or_train_fd_classifier<B>(*b_, p, FdTrainOptions{}, &trained);
    EXPECT_FALSE(trained);
    EXPECT_EQ(again.features(*b_, x), clf_->features(*b_, x));
    // another kind of sgf file is refused
    const fs::path other = dir / "meta.safetensors";
    {
        ModelConfig c = ModelConfig::tiny();
        MetaGenerator<B> G(*b_, c, 1);
        auto F = make_decoder(*b_, c, 2);
        auto D = make_discriminator(*b_, c, 3);
        io::save_meta_model(*b_, other, G, F, D);
    }
    EXPECT_THROW(FdClassifier<B>::load(*b_, other), FormatError);
    // a config asking for far more weights than the file holds is refused before anything is
    // allocated (the same bound as model files: io::check_weight_bound)
    auto j = nlohmann::json::parse(test::safetensors_header(test::slurp(p)));
    auto cfg = nlohmann::json::parse(j["__metadata__"]["sgf.config"].get<std::string>());
    cfg["channel_base"] = 1 << 26;
    cfg["channel_max"] = 1 << 16;  // ~10^10 weights for a file of a few MB
    j["__metadata__"]["sgf.config"] = cfg.dump();
    j["__metadata__"].erase("sgf.config_checksum");  // reaches the weight bound, not the config checksum
    const fs::path huge = dir / "huge-config.safetensors";
    io::write_file_atomic(huge, test::with_safetensors_header(test::slurp(p), j.dump()));
    try {
        (void)FdClassifier<B>::load(*b_, huge);
        ADD_FAILURE() << "a huge config was loaded";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("weights"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sgf::eval
