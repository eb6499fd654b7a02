// Training data: Fashion-MNIST from Debian's dataset-fashion-mnist package (IDX files, gzip), padded
// with background (-1) from 28x28 to 32x32, and a deterministic, resumable sampler.
#pragma once

#include <sgf/core/philox.hpp>
#include <sgf/core/shape.hpp>
#include <sgf/io/image.hpp>

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

namespace sgf::io {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Where Fashion-MNIST is read from by default: $SGF_FASHION_MNIST_DIR when set and not empty (a copy
/// outside Debian's package, e.g. on another distribution), else kFashionMnistDir.
inline std::filesystem::path fashion_mnist_dir() {
    if (const char* e = std::getenv("SGF_FASHION_MNIST_DIR"); e && *e) return e;
    return kFashionMnistDir;
}

/// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over every byte added.
class Fnv1a64 {
public:
    void add(const void* data, std::size_t n) {
        const auto* p = static_cast<const std::uint8_t*>(data);
        for (std::size_t i = 0; i < n; ++i) h_ = (h_ ^ p[i]) * 0x100000001b3ull;
    }
    void add_u64_le(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) {
            const auto byte = std::uint8_t(v >> (8 * i));
            add(&byte, 1);
        }
    }
    std::string hex() const { return fmt::format("{:016x}", h_); }

private:
    std::uint64_t h_ = 0xcbf29ce484222325ull;
};

/// An in-memory image dataset: uint8 pixels [N, C, H, W] plus optional labels.
struct ImageDataset {
    std::string name;
    std::int64_t count = 0;
    int channels = 1, height = 0, width = 0;
    std::vector<std::uint8_t> pixels;
    std::vector<int> labels;  ///< empty when unlabelled
    std::vector<std::string> class_names;  ///< name of each label value (image folders: the sub-folder names)
    /// What the images were loaded from, as 16 hex digits of Fnv1a64 (empty for a data set not made
    /// by sgf's loaders): Fashion-MNIST over its padded pixels in order (image, row, column); a folder
    /// over the files loaded, in the order loaded (load_image_folder: every file in
    /// list_image_files' order; load_folder_images: the files at `indices`, in that order), each as
    /// its path below the folder ('/'-separated), a 0 byte, its size in bytes (8 bytes,
    /// little-endian) and its bytes. So a folder's digest does not depend on how this build decodes
    /// or resizes the files.
    std::string source_digest;

    std::int64_t size() const { return count; }
    std::int64_t sample_size() const { return std::int64_t(channels) * height * width; }
    /// Images at `indices` as floats in [-1, 1]: u8 / 127.5 - 1.
    HostTensor<float> batch(const std::vector<std::int64_t>& indices) const {
        HostTensor<float> t(Shape{static_cast<std::int64_t>(indices.size()), channels, height, width});
        const std::int64_t S = sample_size();
        for (std::size_t i = 0; i < indices.size(); ++i) {
            SGF_CHECK(indices[i] >= 0 && indices[i] < count, ArgumentError, "{}: index {} out of range [0, {})", name,
                      indices[i], count);
            const std::uint8_t* src = pixels.data() + indices[i] * S;
            for (std::int64_t j = 0; j < S; ++j) t.data[i * S + j] = float(src[j]) / 127.5f - 1.0f;
        }
        return t;
    }
    /// Images at `indices` in [0, 2 size()) with mirror augmentation (x-flip, the only augmentation
    /// of reals the paper uses): index i < size() is image i, index size() + i is image i mirrored
    /// left to right. A Sampler over 2 size() indices then visits every image once each way per
    /// epoch, and its (epoch, position) still resumes the run exactly.
    HostTensor<float> x_flip_batch(const std::vector<std::int64_t>& indices) const {
        std::vector<std::int64_t> plain(indices.size());
        for (std::size_t i = 0; i < indices.size(); ++i) {
            SGF_CHECK(indices[i] >= 0 && indices[i] < 2 * count, ArgumentError, "{}: x-flip index {} out of range [0, {})", name,
                      indices[i], 2 * count);
            plain[i] = indices[i] % count;
        }
        HostTensor<float> t = batch(plain);
        const std::int64_t rows = std::int64_t(channels) * height;
        for (std::size_t i = 0; i < indices.size(); ++i) {
            if (indices[i] < count) continue;
            float* img = t.data.data() + std::int64_t(i) * sample_size();
            for (std::int64_t r = 0; r < rows; ++r) std::reverse(img + r * width, img + (r + 1) * width);
        }
        return t;
    }
    /// Every image, in order, as floats in [-1, 1].
    HostTensor<float> all_images() const {
        std::vector<std::int64_t> idx(static_cast<std::size_t>(count));
        std::iota(idx.begin(), idx.end(), std::int64_t(0));
        return batch(idx);
    }
};

namespace detail {
inline std::vector<std::uint8_t> read_gzip(const std::filesystem::path& path, const char* what_to_install) {
    if (!std::filesystem::exists(path))
        SGF_THROW(IoError, "{}: not found; {}", path.string(), what_to_install);
    // gzopen of a FIFO or device would block or read forever: only regular files (or links to them)
    if (!std::filesystem::is_regular_file(path)) SGF_THROW(IoError, "{}: not a regular file", path.string());
    gzFile gz = gzopen(path.c_str(), "rb");
    if (!gz) SGF_THROW(IoError, "{}: cannot open", path.string());
    std::vector<std::uint8_t> out;
    std::uint8_t buf[1 << 16];
    for (;;) {
        const int n = gzread(gz, buf, sizeof buf);
        if (n < 0) {
            int err = 0;
            const std::string msg = gzerror(gz, &err);
            gzclose(gz);
            SGF_THROW(FormatError, "{}: corrupt gzip data: {}", path.string(), msg);
        }
        if (n == 0) break;
        out.insert(out.end(), buf, buf + n);
        if (out.size() > (std::size_t(1) << 31)) {
            gzclose(gz);
            SGF_THROW(FormatError, "{}: decompresses to more than 2 GiB", path.string());
        }
    }
    gzclose(gz);
    return out;
}
inline std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
}  // namespace detail

/// Loads the "train" (60000) or "test" (10000) split, padded to 32x32 with background -1 (u8 0).
inline ImageDataset load_fashion_mnist(const std::string& split, const std::filesystem::path& dir = fashion_mnist_dir()) {
    SGF_CHECK(split == "train" || split == "test", ArgumentError, "fashion-mnist: split must be 'train' or 'test', got '{}'", split);
    const std::string stem = split == "train" ? "train" : "t10k";
    const char* hint = "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data";
    const auto ipath = dir / (stem + "-images-idx3-ubyte.gz"), lpath = dir / (stem + "-labels-idx1-ubyte.gz");
    const auto img = detail::read_gzip(ipath, hint);
    const auto lab = detail::read_gzip(lpath, hint);
    if (img.size() < 16 || detail::be32(img.data()) != 0x00000803)
        SGF_THROW(FormatError, "{}: not an IDX image file (bad magic number)", ipath.string());
    if (lab.size() < 8 || detail::be32(lab.data()) != 0x00000801)
        SGF_THROW(FormatError, "{}: not an IDX label file (bad magic number)", lpath.string());
    const std::uint32_t n = detail::be32(img.data() + 4), h = detail::be32(img.data() + 8), w = detail::be32(img.data() + 12);
    if (h != 28 || w != 28) SGF_THROW(FormatError, "{}: images are {}x{}, expected 28x28", ipath.string(), h, w);
    if (img.size() != 16 + std::size_t(n) * h * w)
        SGF_THROW(FormatError, "{}: truncated: header says {} images ({} bytes), file has {} bytes", ipath.string(), n,
                  16 + std::size_t(n) * h * w, img.size());
    if (detail::be32(lab.data() + 4) != n || lab.size() != 8 + std::size_t(n))
        SGF_THROW(FormatError, "{}: label count does not match the {} images of {}", lpath.string(), n, ipath.string());
    ImageDataset ds;
    ds.name = "fashion-mnist/" + split;
    ds.count = n;
    ds.channels = 1;
    ds.height = ds.width = 32;
    ds.pixels.assign(std::size_t(n) * 32 * 32, 0);
    ds.labels.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        for (int y = 0; y < 28; ++y)
            std::copy_n(img.data() + 16 + (std::size_t(i) * 28 + y) * 28, 28, ds.pixels.data() + (std::size_t(i) * 32 + y + 2) * 32 + 2);
        ds.labels[i] = lab[8 + i];
        if (ds.labels[i] > 9) SGF_THROW(FormatError, "{}: label {} of image {} is outside 0..9", lpath.string(), ds.labels[i], i);
    }
    Fnv1a64 digest;
    digest.add(ds.pixels.data(), ds.pixels.size());
    ds.source_digest = digest.hex();
    return ds;
}

/// The .png/.jpg/.jpeg files (any case) under `dir`, searched recursively, sorted by path. Hidden
/// entries (a name starting with '.', e.g. macOS "._x.png" or ".ipynb_checkpoints/") are skipped, and
/// symbolic links to folders are not followed. IoError when `dir` is not a folder or holds no such file.
inline std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) SGF_THROW(IoError, "{}: not a folder of images{}", dir.string(), fs::exists(dir, ec) ? "" : " (not found)");
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        if (!it->is_regular_file(ec)) continue;
        std::string ext = it->path().extension().string();
        for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(it->path());
    }
    if (ec) SGF_THROW(IoError, "{}: cannot list the folder: {}", dir.string(), ec.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) SGF_THROW(IoError, "{}: no .png/.jpg/.jpeg images found", dir.string());
    return files;
}

/// A folder of images, listed but not decoded: files (list_image_files) and, under the image-folder
/// convention, labels. When every image lies in a first-level sub-folder and there are at least two
/// of them, label k is the k-th sub-folder name in sorted order (class_names; deeper folders belong to
/// their first-level one); otherwise the folder is unlabelled (labels and class_names empty).
struct ImageFolder {
    std::filesystem::path dir;
    std::vector<std::filesystem::path> files;
    std::vector<std::string> relative;  ///< each file's path below dir, '/'-separated
    std::vector<int> labels;
    std::vector<std::string> class_names;
    std::int64_t size() const { return std::int64_t(files.size()); }
};

inline ImageFolder scan_image_folder(const std::filesystem::path& dir) {
    ImageFolder f;
    f.dir = dir;
    f.files = list_image_files(dir);
    std::vector<std::string> first;  // first path component below dir ("" for files directly in it)
    for (const auto& p : f.files) {
        const auto rel = p.lexically_relative(dir);
        f.relative.push_back(rel.generic_string());
        first.push_back(std::distance(rel.begin(), rel.end()) >= 2 ? rel.begin()->string() : std::string());
    }
    std::vector<std::string> names = first;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    if (names.size() >= 2 && !names.front().empty()) {  // "" sorts first: any loose file leaves it unlabelled
        f.class_names = names;
        for (const auto& s : first) f.labels.push_back(int(std::lower_bound(names.begin(), names.end(), s) - names.begin()));
    }
    return f;
}

/// The images of `folder` at `indices` (in that order), decoded and converted like any decoded image
/// to `channels` x `resolution` x `resolution` (io::prepare_for_model: centre crop to a square,
/// antialiased resize), with their labels. A file that cannot be read or decoded stops the load with
/// an error naming it.
inline ImageDataset load_folder_images(const ImageFolder& folder, const std::vector<std::int64_t>& indices, int channels, int resolution,
                                       const std::string& name) {
    ImageDataset ds;
    ds.name = name;
    ds.count = std::int64_t(indices.size());
    ds.channels = channels;
    ds.height = ds.width = resolution;
    ds.class_names = folder.class_names;
    ds.pixels.reserve(indices.size() * std::size_t(ds.sample_size()));
    Fnv1a64 digest;
    for (std::int64_t i : indices) {
        SGF_CHECK(i >= 0 && i < folder.size(), ArgumentError, "{}: image index {} out of range [0, {})", folder.dir.string(), i, folder.size());
        const auto& file = folder.files[std::size_t(i)];
        const auto bytes = read_image_file(file);  // read once: digested, then decoded (as load_image)
        const std::string& rel = folder.relative[std::size_t(i)];
        digest.add(rel.data(), rel.size());
        digest.add("", 1);
        digest.add_u64_le(bytes.size());
        digest.add(bytes.data(), bytes.size());
        const Image raw = decode_image(bytes.data(), bytes.size(), file.string());
        // as decode_files refuses it: a thumbnail enlarged > 4x per side would train or measure on blur
        SGF_CHECK(raw.width >= min_image_side(resolution) && raw.height >= min_image_side(resolution), FormatError,
                  "{}: image is {}x{}, too small for a {}-px model: images need at least {} px per side (remove it from {})",
                  file.string(), raw.width, raw.height, resolution, min_image_side(resolution), folder.dir.string());
        const Image im = prepare_for_model(raw, channels, resolution);
        for (int c = 0; c < im.channels; ++c)
            for (int y = 0; y < im.height; ++y)
                for (int x = 0; x < im.width; ++x) ds.pixels.push_back(im.at(y, x, c));
        if (!folder.labels.empty()) ds.labels.push_back(folder.labels[std::size_t(i)]);
    }
    ds.source_digest = digest.hex();
    return ds;
}

/// Every image under `dir` (scan_image_folder + load_folder_images), named `dir`.
inline ImageDataset load_image_folder(const std::filesystem::path& dir, int channels, int resolution) {
    const auto folder = scan_image_folder(dir);
    std::vector<std::int64_t> all(folder.files.size());
    std::iota(all.begin(), all.end(), std::int64_t(0));
    return load_folder_images(folder, all, channels, resolution, dir.string());
}

/// Deterministic shuffling: epoch e visits a permutation drawn from Philox(seed, e) (Fisher-Yates
/// with uniform draws); the state (epoch, position) is all a checkpoint needs to resume exactly.
class Sampler {
public:
    Sampler() = default;
    Sampler(std::int64_t n, std::uint64_t seed) : n_(checked_size(n)), seed_(seed) { reshuffle(); }
    std::int64_t epoch() const { return epoch_; }
    std::int64_t position() const { return pos_; }
    std::int64_t size() const { return n_; }  ///< the number of images it draws from
    void restore(std::int64_t epoch, std::int64_t position) {
        SGF_CHECK(epoch >= 0 && position >= 0 && position <= n_, ArgumentError, "sampler: invalid state ({}, {})", epoch, position);
        epoch_ = epoch;
        reshuffle();
        pos_ = position;
    }
    std::vector<std::int64_t> next(std::int64_t count) {
        SGF_CHECK(n_ > 0, ArgumentError, "sampler: the dataset is empty");
        SGF_CHECK(count >= 0, ArgumentError, "sampler: cannot draw {} indices", count);
        std::vector<std::int64_t> out;
        out.reserve(count);
        while (static_cast<std::int64_t>(out.size()) < count) {
            if (pos_ == n_) {
                ++epoch_;
                reshuffle();
                pos_ = 0;
            }
            out.push_back(perm_[pos_++]);
        }
        return out;
    }

private:
    static std::int64_t checked_size(std::int64_t n) {
        SGF_CHECK(n >= 0, ArgumentError, "sampler: dataset size {} is negative", n);
        return n;
    }
    void reshuffle() {
        perm_.resize(n_);
        std::iota(perm_.begin(), perm_.end(), 0);
        const RngKey key{seed_, 0x5A3B1E ^ std::uint64_t(epoch_), 0};
        for (std::int64_t i = n_ - 1; i > 0; --i) {
            const auto j = static_cast<std::int64_t>(philox::uniform(key, i) * double(i + 1));
            std::swap(perm_[i], perm_[std::min(j, i)]);
        }
    }
    std::int64_t n_ = 0;
    std::uint64_t seed_ = 0;
    std::int64_t epoch_ = 0, pos_ = 0;
    std::vector<std::int64_t> perm_;
};

}  // namespace sgf::io
