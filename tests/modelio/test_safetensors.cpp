// The safetensors container: round trips, atomic writes, and every malformed-file case.
#include <sgf/io/safetensors.hpp>
#include <sgf/io/datasets.hpp>
#include <sgf/io/atomic_file.hpp>
#include "file_bytes.hpp"

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include <cstring>
#include <fstream>

#include <sys/resource.h>
#include <sys/stat.h>

namespace sgf::io {
namespace {

namespace fs = std::filesystem;

fs::path tmpdir() { return test::own_tmpdir(SGF_TEST_TMPDIR, "safetensors"); }

std::string sample_bytes() {
    SafetensorsFile f;
    f.put<float>("b", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6.5f});
    f.put<std::int64_t>("a", {1}, std::vector<std::int64_t>{-7});
    f.metadata["k"] = "v";
    return f.serialize();
}

void write_raw(const fs::path& p, const std::string& bytes) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}


void expect_format_error(const std::string& bytes, const std::string& needle) {
    const fs::path p = tmpdir() / "bad.safetensors";
    write_raw(p, bytes);
    try {
        SafetensorsFile::load(p);
        FAIL() << "expected FormatError containing '" << needle << "'";
    } catch (const FormatError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("bad.safetensors"), std::string::npos) << m;
        EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
}

TEST(Safetensors, RoundTripIsBitExact) {
    const fs::path p = tmpdir() / "rt.safetensors";
    SafetensorsFile f;
    std::vector<float> v(1000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(float(i)) * 1e-3f + float(i);
    f.put<float>("w", {10, 100}, v);
    f.put<double>("d", {3}, std::vector<double>{1.0 / 3, 2e-300, -0.0});
    f.metadata["sgf.kind"] = "test";
    f.save(p);
    const auto g = SafetensorsFile::load(p);
    EXPECT_EQ(g.get<float>("w"), v);
    const auto d = g.get<double>("d");
    EXPECT_EQ(std::memcmp(d.data(), std::vector<double>{1.0 / 3, 2e-300, -0.0}.data(), 24), 0);
    EXPECT_EQ(g.meta("sgf.kind"), "test");
    const std::vector<std::int64_t> wrong{100, 10};
    EXPECT_THROW(g.get<float>("w", &wrong), FormatError);
    EXPECT_THROW(g.get<double>("w"), FormatError);
    EXPECT_THROW(g.get<float>("missing"), FormatError);
}

TEST(Safetensors, LoadCanDigestEveryByteItReads) {
    // what sgf verify records as its decoder's SHA-256: the bytes load read, which are the whole file
    const fs::path p = tmpdir() / "digest.safetensors";
    SafetensorsFile f;
    f.put<float>("a", {3, 5}, std::vector<float>(15, 0.25f));
    f.put<float>("b", {0}, std::vector<float>{});  // an empty tensor between two others
    f.put<float>("c", {7}, std::vector<float>(7, -2.0f));
    f.metadata["sgf.kind"] = "test";
    f.save(p);
    Sha256 digest;
    const auto g = SafetensorsFile::load(p, {}, &digest);
    EXPECT_EQ(g.get<float>("c"), std::vector<float>(7, -2.0f));
    EXPECT_EQ(digest.hex(), sha256_of_file(p));
}

TEST(Safetensors, HeaderLayoutFollowsTheSpec) {
    const std::string bytes = sample_bytes();
    std::uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    const auto j = nlohmann::json::parse(test::safetensors_header(bytes));
    EXPECT_EQ(j["a"]["dtype"], "I64");
    EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json::array({0, 8}));
    EXPECT_EQ(j["b"]["shape"], nlohmann::json::array({2, 3}));
    EXPECT_EQ(j["b"]["data_offsets"], nlohmann::json::array({8, 32}));
    EXPECT_EQ(bytes.size(), 8 + n + 32);
}

TEST(Safetensors, MalformedFilesAreRejectedWithTheFileName) {
    const std::string good = sample_bytes();
    expect_format_error(good.substr(0, 5), "truncated");
    expect_format_error(good.substr(0, 20), "truncated");
    expect_format_error(good.substr(0, good.size() - 4), "truncated or corrupt");
    std::string huge = good;
    const std::uint64_t big = std::uint64_t(1) << 40;
    std::memcpy(huge.data(), &big, 8);
    expect_format_error(huge, "not a safetensors file, or a damaged one");
    expect_format_error(test::with_safetensors_header(good, "{not json"), "not valid JSON");
    auto j = nlohmann::json::parse(test::safetensors_header(good));
    auto overlap = j;
    overlap["b"]["data_offsets"] = {4, 28};
    expect_format_error(test::with_safetensors_header(good, overlap.dump()), "overlaps");
    auto oob = j;
    oob["b"]["data_offsets"] = {8, 4000};
    expect_format_error(test::with_safetensors_header(good, oob.dump()), "truncated or corrupt");
    auto wrong_len = j;
    wrong_len["b"]["shape"] = {2, 2};
    expect_format_error(test::with_safetensors_header(good, wrong_len.dump()), "expected");
    auto neg = j;
    neg["b"]["shape"] = {-2, 3};
    expect_format_error(test::with_safetensors_header(good, neg.dump()), "negative");
    auto dtype = j;
    dtype["b"]["dtype"] = "X7";
    expect_format_error(test::with_safetensors_header(good, dtype.dump()), "unknown dtype");
    std::string flipped = good;
    flipped.back() ^= 0x40;
    expect_format_error(flipped, "checksum mismatch");
    auto gap = j;
    gap["b"]["data_offsets"] = {8, 32};
    gap["a"]["data_offsets"] = {0, 8};
    gap["__metadata__"]["sgf.checksum"] = "crc32:00000000";
    expect_format_error(test::with_safetensors_header(good, gap.dump()), "checksum mismatch");
}

/// Loads `bytes` written to `file` with `lim`, expecting a FormatError whose message names the file
/// and contains every needle (the limit and what exceeded it).
void expect_limit_error(const std::string& file, const std::string& bytes, const SafetensorsLimits& lim,
                        std::initializer_list<std::string> needles) {
    const fs::path p = tmpdir() / file;
    write_raw(p, bytes);
    try {
        SafetensorsFile::load(p, lim);
        ADD_FAILURE() << file << ": expected a FormatError";
    } catch (const FormatError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(p.string()), std::string::npos) << m;
        for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "missing '" << n << "' in: " << m;
    }
    // the same bytes through parse() with a name: the same check
    if (bytes.size() <= lim.max_file_bytes) {
        EXPECT_THROW(SafetensorsFile::parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), file, lim), FormatError);
    }
}

TEST(SafetensorsLimits, FileLargerThanMaxFileBytesIsRejectedBeforeReading) {
    const std::string good = sample_bytes();
    const std::uint64_t size = good.size();
    const fs::path p = tmpdir() / "size-limit.safetensors";
    write_raw(p, good);
    SafetensorsLimits lim;
    lim.max_file_bytes = size;  // exactly at the limit: accepted
    EXPECT_EQ(SafetensorsFile::load(p, lim).size(), 2u);
    lim.max_file_bytes = size - 1;
    expect_limit_error("size-limit.safetensors", good, lim,
                       {"file is " + std::to_string(size) + " bytes", "limit of " + std::to_string(size - 1)});
    lim.max_file_bytes = 16;
    expect_limit_error("size-limit.safetensors", good, lim, {"limit of 16"});
}

// load() read the whole file before the header could refuse it: a model file followed by 1 GiB of
// anything cost 1 GiB of memory (a 5 GB file, 5 GB) before "trailing bytes" (under a memory limit,
// bad_alloc and exit 1). The header is now checked against the file's size first. The file here is
// sparse (no disk used); the peak resident size shows whether its bytes were read.
TEST(SafetensorsLimits, TrailingGigabytesAreRefusedWithoutReadingThem) {
    const std::string good = sample_bytes();
    const fs::path p = tmpdir() / "trailing-gigabyte.safetensors";
    write_raw(p, good);
    const std::uint64_t extra = std::uint64_t(1) << 30;
    fs::resize_file(p, good.size() + extra);
    struct rusage before {};
    ::getrusage(RUSAGE_SELF, &before);
    try {
        SafetensorsFile::load(p);
        ADD_FAILURE() << "expected a FormatError";
    } catch (const FormatError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(p.string()), std::string::npos) << m;
        EXPECT_NE(m.find(std::to_string(extra) + " trailing bytes"), std::string::npos) << m;
    }
    struct rusage after {};
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024) << "peak resident size grew by " << after.ru_maxrss - before.ru_maxrss
                                                             << " KiB: the trailing bytes were read";
    fs::remove(p);
    // a header that is not JSON, ahead of a large data area: refused the same way
    std::string bad = good;
    bad[8] = '#';
    write_raw(p, bad);
    fs::resize_file(p, bad.size() + extra);
    ::getrusage(RUSAGE_SELF, &before);
    EXPECT_THROW(SafetensorsFile::load(p), FormatError);
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024);
    fs::remove(p);
}

// A file that ends inside its data area (the size shrank after the header was read, or a short
// file): the loader names the file and what is missing, through both entry points.
TEST(Safetensors, TruncatedDataAreaIsRefusedByLoadAndParseAlike) {
    const std::string good = sample_bytes();
    for (std::size_t cut : {std::size_t(1), std::size_t(4), std::size_t(20)}) {
        const std::string bytes = good.substr(0, good.size() - cut);
        expect_format_error(bytes, "truncated or corrupt");
        EXPECT_THROW(SafetensorsFile::parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "cut"), FormatError);
    }
}

TEST(SafetensorsLimits, MoreTensorsThanMaxTensorsAreRejected) {
    SafetensorsFile f;
    for (int i = 0; i < 5; ++i) f.put<float>("t" + std::to_string(i), {2}, std::vector<float>{float(i), -float(i)});
    const std::string bytes = f.serialize();
    const fs::path p = tmpdir() / "count-limit.safetensors";
    write_raw(p, bytes);
    SafetensorsLimits lim;
    lim.max_tensors = 5;  // exactly at the limit: accepted
    EXPECT_EQ(SafetensorsFile::load(p, lim).size(), 5u);
    lim.max_tensors = 4;
    expect_limit_error("count-limit.safetensors", bytes, lim, {"5 tensors", "limit of 4 tensors"});
    lim.max_tensors = 1;
    expect_limit_error("count-limit.safetensors", bytes, lim, {"5 tensors", "limit of 1 tensors"});
}

TEST(SafetensorsLimits, HeaderLongerThanMaxHeaderBytesIsRejected) {
    const std::string good = sample_bytes();
    std::uint64_t n = 0;
    std::memcpy(&n, good.data(), 8);
    const fs::path p = tmpdir() / "header-limit.safetensors";
    write_raw(p, good);
    SafetensorsLimits lim;
    lim.max_header_bytes = n;
    EXPECT_EQ(SafetensorsFile::load(p, lim).size(), 2u);
    lim.max_header_bytes = n - 1;
    expect_limit_error("header-limit.safetensors", good, lim,
                       {"header length of " + std::to_string(n), "limit of " + std::to_string(n - 1) + " bytes"});
}

// The tensor-count check once counted header entries minus one for __metadata__ (header.size() >
// max_tensors + 1), so a header WITHOUT __metadata__ (legal safetensors) got one tensor more than
// the limit. Fixed; this keeps it fixed.
TEST(SafetensorsLimits, MaxTensorsHoldsWithoutMetadata) {
    SafetensorsFile f;
    for (int i = 0; i < 3; ++i) f.put<float>("t" + std::to_string(i), {1}, std::vector<float>{float(i)});
    const std::string with_meta = f.serialize();
    auto j = nlohmann::json::parse(test::safetensors_header(with_meta));
    j.erase("__metadata__");
    const std::string bytes = test::with_safetensors_header(with_meta, j.dump());
    SafetensorsLimits lim;
    lim.max_tensors = 3;
    EXPECT_EQ(SafetensorsFile::parse(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "nometa", lim).size(), 3u);
    lim.max_tensors = 2;
    expect_limit_error("no-metadata-count.safetensors", bytes, lim, {"limit of 2 tensors"});
}

TEST(Safetensors, MissingFileIsAnIoError) {
    EXPECT_THROW(SafetensorsFile::load(tmpdir() / "does-not-exist.safetensors"), IoError);
}

TEST(Safetensors, AFifoIsRefusedWithoutBlocking) {
    // open(O_RDONLY) on a FIFO without a writer blocks forever: `sgf info pipe` hung
    const fs::path p = tmpdir() / "pipe.safetensors";
    fs::remove(p);
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    try {
        (void)read_file(p);
        ADD_FAILURE() << "a FIFO was read";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
    }
    EXPECT_THROW(SafetensorsFile::load(p), IoError);
    fs::remove(p);
}

TEST(AtomicWrite, FailedWriteLeavesTheOldFileIntact) {
    const fs::path p = tmpdir() / "atomic.bin";
    write_file_atomic(p, std::string_view("old content"));
    EXPECT_THROW(write_file_atomic(p,
                                   [](FileSink& s) {
                                       s.write(std::string_view("new cont"));
                                       throw std::runtime_error("disk on fire");
                                   }),
                 std::runtime_error);
    const auto back = read_file(p);
    EXPECT_EQ(std::string(back.begin(), back.end()), "old content");
    for (const auto& e : fs::directory_iterator(tmpdir()))
        EXPECT_EQ(e.path().filename().string().find(".atomic.bin.tmp"), std::string::npos) << "temp file left behind";
    EXPECT_THROW(write_file_atomic(tmpdir() / "no-such-dir" / "x", std::string_view("x")), IoError);
}

TEST(Datasets, FashionMnistLoadsAndPads) {
    if (!fs::exists(kFashionMnistDir)) GTEST_SKIP() << "dataset-fashion-mnist is not installed at " << kFashionMnistDir;
    const auto ds = load_fashion_mnist("test");
    ASSERT_EQ(ds.size(), 10000);
    const auto batch = ds.batch({0, 1, 9999});
    EXPECT_EQ(batch.shape, (Shape{3, 1, 32, 32}));
    double mx = -2, inner_max = -2;
    for (int n = 0; n < 3; ++n)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) {
                const float v = batch.at(n, 0, y, x);
                ASSERT_GE(v, -1.0f);
                ASSERT_LE(v, 1.0f);
                if (y < 2 || y >= 30 || x < 2 || x >= 30) EXPECT_EQ(v, -1.0f) << "padding must be background";
                else inner_max = std::max<double>(inner_max, v);
                mx = std::max<double>(mx, v);
            }
    EXPECT_GT(inner_max, 0.5) << "garments are bright on a dark background";
    for (int l : ds.labels) ASSERT_TRUE(l >= 0 && l <= 9);
}

TEST(Datasets, MissingDatasetNamesFileAndPackage) {
    try {
        load_fashion_mnist("train", tmpdir() / "nowhere");
        FAIL();
    } catch (const IoError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("train-images-idx3-ubyte.gz"), std::string::npos) << m;
        EXPECT_NE(m.find("dataset-fashion-mnist"), std::string::npos) << m;
    }
    const fs::path d = tmpdir() / "corrupt";
    fs::create_directories(d);
    write_raw(d / "t10k-images-idx3-ubyte.gz", "this is not gzip data at all");
    write_raw(d / "t10k-labels-idx1-ubyte.gz", "nor this");
    EXPECT_THROW(load_fashion_mnist("test", d), FormatError);
}

TEST(Datasets, AFifoInPlaceOfTheDatasetIsRefusedWithoutBlocking) {
    // gzopen of a FIFO without a writer blocked forever
    const fs::path d = tmpdir() / "fifo-dataset";
    fs::remove_all(d);
    fs::create_directories(d);
    ASSERT_EQ(::mkfifo((d / "t10k-images-idx3-ubyte.gz").c_str(), 0600), 0);
    try {
        (void)load_fashion_mnist("test", d);
        ADD_FAILURE() << "a FIFO was read";
    } catch (const IoError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("t10k-images-idx3-ubyte.gz: not a regular file"), std::string::npos) << m;
    }
    fs::remove_all(d);
}

TEST(Datasets, SamplerRefusesNegativeSizesAndCounts) {
    EXPECT_THROW(Sampler(-1, 7), ArgumentError);  // was a std::length_error from the permutation
    Sampler s(10, 7);
    EXPECT_THROW(s.next(-1), ArgumentError);  // was a std::length_error from reserve
    EXPECT_TRUE(s.next(0).empty());
    EXPECT_THROW(Sampler(0, 7).next(1), ArgumentError);
}

TEST(Datasets, SamplerIsDeterministicAndResumable) {
    Sampler a(100, 7), b(100, 7), c(100, 8);
    const auto x = a.next(250), y = b.next(250), z = c.next(250);
    EXPECT_EQ(x, y);
    EXPECT_NE(x, z);
    std::vector<std::int64_t> first(x.begin(), x.begin() + 100);
    std::sort(first.begin(), first.end());
    for (int i = 0; i < 100; ++i) ASSERT_EQ(first[i], i) << "an epoch is a permutation";
    Sampler d(100, 7);
    d.next(130);
    Sampler e(100, 7);
    e.restore(d.epoch(), d.position());
    const auto cont = e.next(120);
    EXPECT_EQ(std::vector<std::int64_t>(x.begin() + 130, x.end()), cont);
}

// Mirror augmentation: index N + i is image i reversed along each row, every channel; an epoch of a
// Sampler over 2N indices shows each image once as stored and once mirrored.
TEST(Datasets, XFlipBatchMirrorsTheUpperHalfOfTheIndices) {
    ImageDataset ds;
    ds.name = "xflip-test";
    ds.count = 3;
    ds.channels = 2;
    ds.height = 2;
    ds.width = 3;
    for (int i = 0; i < ds.count * ds.sample_size(); ++i) ds.pixels.push_back(std::uint8_t(i * 7 % 256));
    const auto plain = ds.batch({0, 1, 2});
    const auto t = ds.x_flip_batch({4, 1, 3, 5, 2});
    ASSERT_EQ(t.shape, (Shape{5, 2, 2, 3}));
    const std::int64_t source[5] = {1, 1, 0, 2, 2};
    const bool mirrored[5] = {true, false, true, true, false};
    for (int n = 0; n < 5; ++n)
        for (int c = 0; c < 2; ++c)
            for (int y = 0; y < 2; ++y)
                for (int x = 0; x < 3; ++x)
                    ASSERT_EQ(t.at(n, c, y, x), plain.at(source[n], c, y, mirrored[n] ? 2 - x : x)) << n << c << y << x;
    EXPECT_THROW(ds.x_flip_batch({6}), ArgumentError);
    EXPECT_THROW(ds.x_flip_batch({-1}), ArgumentError);
    Sampler s(2 * ds.count, 5);
    auto epoch = s.next(2 * ds.count);
    std::sort(epoch.begin(), epoch.end());
    EXPECT_EQ(epoch, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace sgf::io
