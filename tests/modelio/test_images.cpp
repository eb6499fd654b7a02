// Image IO: round trips, limits and hostile files, the antialiased resize.
#include <sgf/io/image.hpp>

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include "test_util.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace sgf::io {
namespace {

namespace fs = std::filesystem;

fs::path tmpdir() { return test::own_tmpdir(SGF_TEST_TMPDIR, "images"); }

Image gradient(int w, int h, int c) {
    Image img{w, h, c, std::vector<std::uint8_t>(std::size_t(w) * h * c)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) img.at(y, x, k) = std::uint8_t((x * 7 + y * 13 + k * 50) & 255);
    return img;
}

TEST(Images, PngRoundTripAndTensorMapping) {
    const Image img = gradient(5, 3, 3);
    save_png(tmpdir() / "g.png", img);
    const Image back = load_image(tmpdir() / "g.png");
    EXPECT_EQ(back.pixels, img.pixels);
    const auto t = to_tensor(back);
    EXPECT_EQ(t.shape, (Shape{1, 3, 3, 5}));
    EXPECT_FLOAT_EQ(t.at(0, 0, 0, 0), img.at(0, 0, 0) / 127.5f - 1.0f);
    EXPECT_EQ(to_image(t).pixels, img.pixels);
}

// The 8-bit conversion of algorithm.md 2, against a plain reference in double on a grid of values,
// and its ends: a diverged generator's +inf was black (lround(inf) is unspecified; 0 on x86).
TEST(Images, EightBitConversionRoundsClampsAndDefinesNonFiniteValues) {
    for (int i = -3000; i <= 3000; ++i) {
        const float x = float(i) / 1000.0f;
        const double v = (double(x) + 1.0) * 127.5;
        const int want = v <= 0 ? 0 : v >= 255 ? 255 : int(std::lround(float((x + 1.0f) * 127.5f)));
        ASSERT_EQ(int(to_u8(x)), want) << x;
    }
    for (int u = 0; u < 256; ++u) EXPECT_EQ(int(to_u8(from_u8(std::uint8_t(u)))), u);
    EXPECT_EQ(to_u8(std::numeric_limits<float>::infinity()), 255);
    EXPECT_EQ(to_u8(1e30f), 255);
    EXPECT_EQ(to_u8(-std::numeric_limits<float>::infinity()), 0);
    EXPECT_EQ(to_u8(-1e30f), 0);
    EXPECT_EQ(to_u8(std::numeric_limits<float>::quiet_NaN()), 0);
}

TEST(Images, HostileFilesGetClearErrors) {
    EXPECT_THROW(load_image(tmpdir() / "missing.png"), IoError);
    write_file_atomic(tmpdir() / "text.png", std::string_view("definitely not an image"));
    EXPECT_THROW(load_image(tmpdir() / "text.png"), FormatError);
    const std::string png = encode_png(gradient(16, 16, 1));
    write_file_atomic(tmpdir() / "trunc.png", std::string_view(png.data(), png.size() / 2));
    try {
        load_image(tmpdir() / "trunc.png");
        FAIL() << "a truncated PNG must not decode";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("trunc.png"), std::string::npos) << e.what();
    }
    const Image one = load_image((save_png(tmpdir() / "one.png", gradient(1, 1, 1)), tmpdir() / "one.png"));
    EXPECT_EQ(one.width, 1);
    // a PNG whose header claims 20000 x 20000: rejected before decoding
    std::string huge = encode_png(gradient(2, 2, 1));
    const unsigned char dim[4] = {0x00, 0x00, 0x4E, 0x20};  // 20000 big-endian, IHDR width/height at 16/20
    std::memcpy(huge.data() + 16, dim, 4);
    std::memcpy(huge.data() + 20, dim, 4);
    write_file_atomic(tmpdir() / "huge.png", huge);
    try {
        load_image(tmpdir() / "huge.png");
        FAIL();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("20000x20000"), std::string::npos) << e.what();
    }
}

TEST(Images, GridAndChannelConversionRefuseBadArguments) {
    const Image im{4, 3, 1, std::vector<std::uint8_t>(12, 7)};
    // pad -1 wrote before the grid's buffer; 3 channels into a 2-channel image wrote past its end
    EXPECT_THROW(make_grid({im}, 1, -1), ArgumentError);
    EXPECT_THROW(make_grid({im, im}, 1, 70000), ArgumentError);
    EXPECT_THROW(convert_channels(im, 2), ArgumentError);
    EXPECT_THROW(convert_channels(im, 0), ArgumentError);
    EXPECT_THROW(convert_channels(Image{4, 3, 3, std::vector<std::uint8_t>(12)}, 1), ArgumentError);  // bytes != w*h*c
    const Image g = make_grid({im, im, im}, 2, 0);
    EXPECT_EQ(g.width, 8);
    EXPECT_EQ(g.height, 6);
    EXPECT_EQ(convert_channels(im, 3).pixels, std::vector<std::uint8_t>(36, 7));
}

TEST(Images, EncodersRefuseImagesWhoseSizesDoNotAgree) {
    // Image is a plain struct: a 32x32 gray image with 10 bytes made stb read 1,014 bytes past them
    const std::vector<Image> bad = {Image{32, 32, 1, std::vector<std::uint8_t>(10)}, Image{4, 3, 3, std::vector<std::uint8_t>(12)},
                                    Image{0, 3, 1, {}}, Image{4, -3, 1, {}}, Image{2, 2, 2, std::vector<std::uint8_t>(8)},
                                    Image{2, 2, 4, std::vector<std::uint8_t>(16)}};
    for (const Image& im : bad) {
        EXPECT_THROW((void)encode_png(im), ArgumentError) << im.width << "x" << im.height << "x" << im.channels;
        EXPECT_THROW((void)encode_jpeg(im, 90), ArgumentError) << im.width << "x" << im.height << "x" << im.channels;
    }
    try {
        save_png(tmpdir() / "never-written.png", bad[0]);
        FAIL() << "save_png accepted 10 bytes for a 32x32 image";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("needs 1024 bytes of pixels, it has 10"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(tmpdir() / "never-written.png"));
    const Image ok{4, 3, 3, std::vector<std::uint8_t>(36, 9)};
    const std::string png = encode_png(ok);
    EXPECT_EQ(decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "ok.png").pixels, ok.pixels);
}

// An Image and a HostTensor are plain structs anyone can fill. resize, center_crop_square, to_tensor
// and make_grid read width x height x channels bytes without checking (ASan: heap overflow), to_image
// took any sample index, make_grid built a -1x-1 grid from -5x-5 images, and resize allocated what
// any target asked for (2 GiB for 65536 x 32768). Each is now an ArgumentError naming the function.
TEST(Images, HelpersRefuseImagesWhoseSizesDoNotAgreeAndHugeTargets) {
    const Image short_pixels{4, 4, 3, std::vector<std::uint8_t>(3)};
    const Image wide_short{8, 4, 3, std::vector<std::uint8_t>(3)};
    auto message = [](auto&& f) { return sgf::test::message_of<ArgumentError>(f); };
    EXPECT_NE(message([&] { resize(short_pixels, 8, 8); }).find("resize: a 4x4 image with 3 channel(s) needs 48 bytes"), std::string::npos);
    EXPECT_NE(message([&] { center_crop_square(wide_short); }).find("center_crop_square: a 8x4 image"), std::string::npos);
    EXPECT_NE(message([&] { to_tensor(wide_short); }).find("to_tensor: a 8x4 image"), std::string::npos);
    EXPECT_NE(message([&] { make_grid({Image{8, 4, 3, {}}}, 1); }).find("make_grid: image 0: a 8x4 image"), std::string::npos);
    EXPECT_THROW(make_grid({Image{-5, -5, 1, {}}}, 1), ArgumentError);
    EXPECT_THROW(make_grid({gradient(4, 4, 1), short_pixels}, 2), ArgumentError);
    // targets: positive, at most 16384 per side and 64 Mi pixels
    const Image g = gradient(4, 4, 1);
    EXPECT_NE(message([&] { resize(g, 1 << 16, 1 << 15); }).find("above the limit of 16384 px per side"), std::string::npos);
    EXPECT_THROW(resize(g, 16384, 16384), ArgumentError);  // 256 Mi pixels
    EXPECT_THROW(resize(g, 0, 4), ArgumentError);
    EXPECT_EQ(resize(g, 16384, 4).width, 16384);
    // to_image: the sample must exist and the tensor hold its shape's values
    HostTensor<float> t(Shape{1, 1, 4, 4});
    EXPECT_NO_THROW(to_image(t, 0));
    EXPECT_NE(message([&] { to_image(t, 5); }).find("to_image: sample 5 of a batch of 1"), std::string::npos);
    EXPECT_THROW(to_image(t, -1), ArgumentError);
    t.data.resize(3);
    EXPECT_THROW(to_image(t, 0), ShapeError);
}

TEST(Images, ResizeIsAntialiased) {
    Image flat{10, 10, 1, std::vector<std::uint8_t>(100, 77)};
    for (auto v : resize(flat, 3, 7).pixels) EXPECT_EQ(v, 77);
    Image checker{64, 64, 1, std::vector<std::uint8_t>(64 * 64)};
    for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x) checker.at(y, x, 0) = ((x + y) % 2) ? 255 : 0;
    const Image small = resize(checker, 8, 8);
    for (auto v : small.pixels) {
        EXPECT_GE(v, 120);
        EXPECT_LE(v, 135);
    }
    const Image gray = convert_channels(gradient(4, 4, 3), 1);
    EXPECT_EQ(gray.channels, 1);
    const Image sq = prepare_for_model(gradient(40, 20, 3), 1, 32);
    EXPECT_EQ(sq.width, 32);
    EXPECT_EQ(sq.height, 32);
}

}  // namespace
}  // namespace sgf::io
