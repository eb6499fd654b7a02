// The training program's loop (sgf::run_training, behind `sgf train` and sgf_train): a new run never
// overwrites an earlier one in its --out folder, and --resume refuses data other than the run's.
#include <sgf/sgf.hpp>
#include <sgf/train/loop.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>

#include "file_bytes.hpp"
#include "test_util.hpp"

#include <filesystem>
#include <map>
#include <string>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;
using test::message_of;
using test::slurp;

fs::path fresh_dir(const std::string& name) {
    const fs::path d = fs::path(SGF_TEST_TMPDIR) / "loop" / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

/// A folder of n small grey training images (16 px, the tiny preset's resolution).
fs::path image_folder(const fs::path& d, int n, int salt = 0) {
    fs::create_directories(d);
    for (int i = 0; i < n; ++i) {
        io::Image im{16, 16, 1, std::vector<std::uint8_t>(256)};
        for (int y = 0; y < 16; ++y)
            for (int x = 0; x < 16; ++x) im.at(y, x, 0) = std::uint8_t(((x + i + salt) * (y + 3) * 37 + i * 11) & 255);
        io::save_png(d / fmt::format("img{:03d}.png", i), im);
    }
    return d;
}

/// Every file in `d` (not recursive) by name, with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& d) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(d)) files[e.path().filename().string()] = slurp(e.path());
    return files;
}

/// A tiny run: batch 4, so 0.008 kimg is 2 steps.
TrainLoopOptions tiny_run(const fs::path& out, const fs::path& data, double kimg = 0.008) {
    TrainLoopOptions o;
    o.out_dir = out;
    o.data = data.string();
    o.total_kimg = kimg;
    o.progress = false;
    return o;
}
TrainConfig tiny_train_config() {
    TrainConfig tc;
    tc.batch = 4;
    return tc;
}

// `sgf train --out run` twice (without --resume) truncated the first run's log.csv at start, a Ctrl-C
// then replaced its checkpoint and the end its model.safetensors. Now a new run refuses such a folder
// before it reads or writes anything, naming the file.
TEST(TrainingLoop, ANewRunRefusesAFolderThatHoldsARunAndLeavesItByteIdentical) {
    B b(1);
    const fs::path root = fresh_dir("refuse");
    const fs::path data = image_folder(root / "data", 8), out = root / "run";
    const ModelConfig mc = ModelConfig::tiny();
    const TrainConfig tc = tiny_train_config();
    ASSERT_EQ(run_training(b, mc, tc, tiny_run(out, data)), 0);
    for (const char* f : {"checkpoint.safetensors", "log.csv", "model.safetensors"}) ASSERT_TRUE(fs::exists(out / f)) << f;
    const auto before = snapshot(out);

    std::string m = message_of<ArgumentError>([&] { run_training(b, mc, tc, tiny_run(out, data, 0.02)); });
    EXPECT_NE(m.find((out / "checkpoint.safetensors").string()), std::string::npos) << m;
    EXPECT_NE(m.find("--resume"), std::string::npos) << m;
    EXPECT_NE(m.find("another --out"), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), before) << "the first run's files changed";
    // other data or a release file to start from make no difference: it is still a new run
    TrainLoopOptions init = tiny_run(out, image_folder(root / "other", 4, 1), 0.02);
    init.init_from = out / "model.safetensors";
    m = message_of<ArgumentError>([&] { run_training(b, mc, tc, init); });
    EXPECT_NE(m.find("checkpoint.safetensors"), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), before);

    // without the checkpoint, the release file and the log are each refused by name
    fs::remove(out / "checkpoint.safetensors");
    const auto without_ckpt = snapshot(out);
    m = message_of<ArgumentError>([&] { run_training(b, mc, tc, tiny_run(out, data)); });
    EXPECT_NE(m.find((out / "model.safetensors").string()), std::string::npos) << m;
    EXPECT_NE(m.find("another --out"), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), without_ckpt);
    fs::remove(out / "model.safetensors");
    const auto only_log = snapshot(out);
    ASSERT_NE(slurp(out / "log.csv"), std::string(kTrainingLogHeader)) << "the run should have logged a step";
    m = message_of<ArgumentError>([&] { run_training(b, mc, tc, tiny_run(out, data)); });
    EXPECT_NE(m.find((out / "log.csv").string()), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), only_log);
    // without the log, the run's sample grids: the new run would replace one and mix with the rest
    fs::remove(out / "log.csv");
    const auto only_grids = snapshot(out);
    EXPECT_TRUE(is_sample_grid_name("samples-0001234.png"));
    EXPECT_TRUE(is_sample_grid_name("samples-12345678.png"));  // past step 9,999,999
    for (const char* not_grid : {"samples-12.png", "samples-123456.png", "samples-000123a.png", "samples-0001234.jpg", "xsamples-0001234.png"})
        EXPECT_FALSE(is_sample_grid_name(not_grid)) << not_grid;
    ASSERT_FALSE(only_grids.empty());
    const std::string first_grid = only_grids.begin()->first;  // the map is sorted by name
    ASSERT_TRUE(is_sample_grid_name(first_grid)) << first_grid;
    m = message_of<ArgumentError>([&] { run_training(b, mc, tc, tiny_run(out, data)); });
    EXPECT_NE(m.find((out / first_grid).string()), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), only_grids);
    // other files are not a run's: a folder of notes and differently named pictures is used
    for (const auto& [name, bytes] : only_grids) fs::rename(out / name, out / ("my-" + name));
    std::ofstream(out / "samples-12.png") << "not a grid";
    EXPECT_EQ(run_training(b, mc, tc, tiny_run(out, data)), 0);
    EXPECT_EQ(slurp(out / "samples-12.png"), "not a grid");
    for (const auto& [name, bytes] : only_grids) EXPECT_EQ(slurp(out / ("my-" + name)), bytes) << name;

    // --resume continues the run in the folder: unchanged
    const fs::path run2 = root / "run2";
    ASSERT_EQ(run_training(b, mc, tc, tiny_run(run2, data)), 0);
    TrainLoopOptions resume = tiny_run(run2, data, 0.016);
    resume.resume = true;
    EXPECT_EQ(run_training(b, mc, tc, resume), 0);
}

// A log.csv that holds at most its header line (a run killed before its first checkpoint and its
// first logged step, even mid-way through writing the header) records nothing: a new run starts over.
TEST(TrainingLoop, ANewRunStartsOverALogThatHoldsOnlyItsHeader) {
    B b(1);
    const fs::path root = fresh_dir("header_only");
    const fs::path data = image_folder(root / "data", 8);
    const std::string header(kTrainingLogHeader);
    for (const std::string& log : {std::string(), header.substr(0, 9), header}) {
        const fs::path out = fresh_dir("header_only_run");
        {
            std::ofstream f(out / "log.csv", std::ios::binary);
            f << log;
        }
        ASSERT_EQ(run_training(b, ModelConfig::tiny(), tiny_train_config(), tiny_run(out, data)), 0) << "log '" << log << "'";
        EXPECT_EQ(slurp(out / "log.csv").rfind(header, 0), 0u);
        EXPECT_TRUE(fs::exists(out / "model.safetensors"));
    }
    // a log with anything else is refused (not sgf's, or a longer first line)
    const fs::path out = fresh_dir("header_only_other");
    {
        std::ofstream f(out / "log.csv", std::ios::binary);
        f << "my notes\n";
    }
    EXPECT_THROW(run_training(b, ModelConfig::tiny(), tiny_train_config(), tiny_run(out, data)), ArgumentError);
    EXPECT_EQ(slurp(out / "log.csv"), "my notes\n");
}

// --resume with other data: a smaller set stopped with "sampler: invalid state (63, 8)", naming no
// file; a larger or different one continued silently on other images. The checkpoint now records
// its data (name, number of images) and a resume on other data is refused, naming both.
TEST(TrainingLoop, ResumeRefusesDataOtherThanTheCheckpointsAndNamesBoth) {
    B b(1);
    const fs::path root = fresh_dir("data");
    const fs::path data = image_folder(root / "data", 12), out = root / "run";
    const fs::path smaller = image_folder(root / "smaller", 4), larger = image_folder(root / "larger", 16);
    const fs::path same_size = image_folder(root / "same_size", 12, 3);
    const ModelConfig mc = ModelConfig::tiny();
    const TrainConfig tc = tiny_train_config();
    ASSERT_EQ(run_training(b, mc, tc, tiny_run(out, data)), 0);
    const fs::path ckpt = out / "checkpoint.safetensors";
    const auto f = io::SafetensorsFile::load(ckpt);
    const std::string canonical = fs::canonical(data).string();
    EXPECT_EQ(f.metadata.at("sgf.dataset"), canonical);
    EXPECT_EQ(f.metadata.at("sgf.dataset_images"), "12");
    const auto before = snapshot(out);

    for (const auto& [other, n] : {std::pair{smaller, 4}, std::pair{larger, 16}, std::pair{same_size, 12}}) {
        TrainLoopOptions o = tiny_run(out, other, 0.016);
        o.resume = true;
        const std::string m = message_of<ArgumentError>([&] { run_training(b, mc, tc, o); });
        EXPECT_NE(m.find(ckpt.string()), std::string::npos) << m;
        EXPECT_NE(m.find(fmt::format("{} (12 images)", canonical)), std::string::npos) << m;
        EXPECT_NE(m.find(fmt::format("{} ({} images)", fs::canonical(other).string(), n)), std::string::npos) << m;
        EXPECT_NE(m.find("--data"), std::string::npos) << m;
        EXPECT_EQ(snapshot(out), before) << other;
    }
    // the same folder with one image changed (same path, same count): refused by the folder digest
    const std::string digest = f.metadata.at("sgf.dataset_digest");
    EXPECT_EQ(digest, io::load_image_folder(data, 1, 16).source_digest);
    const std::string img5 = slurp(data / "img005.png");
    {
        io::Image im = io::load_image(data / "img005.png");
        im.at(3, 4, 0) = std::uint8_t(im.at(3, 4, 0) ^ 1);  // one pixel, one step of 255
        io::save_png(data / "img005.png", im);
    }
    {
        TrainLoopOptions o = tiny_run(out, data, 0.016);
        o.resume = true;
        const std::string m = message_of<ArgumentError>([&] { run_training(b, mc, tc, o); });
        EXPECT_NE(m.find(ckpt.string()), std::string::npos) << m;
        EXPECT_NE(m.find(fmt::format("{} (12 images, digest {})", canonical, digest)), std::string::npos) << m;
        EXPECT_NE(m.find("the given data differ"), std::string::npos) << m;
        EXPECT_NE(m.find("an image file was changed"), std::string::npos) << m;
        EXPECT_EQ(snapshot(out), before);
    }
    {
        std::ofstream(data / "img005.png", std::ios::binary) << img5;
    }
    // the same folder spelled differently is the same data
    TrainLoopOptions o = tiny_run(out, data / "." / "", 0.016);
    o.resume = true;
    EXPECT_EQ(run_training(b, mc, tc, o), 0);
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.step"), "4");
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.dataset_digest"), digest);
    EXPECT_EQ(io::SafetensorsFile::load(out / "model.safetensors").metadata.at("sgf.dataset_digest"), digest);
    EXPECT_EQ(io::SafetensorsFile::load(out / "model.safetensors").metadata.at("sgf.trained_kimg"), "0.016");  // 4 steps of 4
    EXPECT_EQ(exact_kimg(100000), "100.000");
    EXPECT_EQ(exact_kimg(1234567), "1234.567");
}

// The source digest is 64-bit FNV-1a, over a folder's files (path, 0 byte, size, bytes) in load order
// and over Fashion-MNIST's pixels, as docs/model-format.md says.
TEST(TrainingLoop, TheDataDigestIsFnv1aOverTheFolderFilesInOrder) {
    const auto fnv = [](std::string_view bytes) {
        io::Fnv1a64 h;
        h.add(bytes.data(), bytes.size());
        return h.hex();
    };
    EXPECT_EQ(fnv(""), "cbf29ce484222325");  // FNV-1a 64 of no bytes: the offset basis
    EXPECT_EQ(fnv("a"), "af63dc4c8601ec8c");  // published test vectors
    EXPECT_EQ(fnv("foobar"), "85944171f73967e8");

    const fs::path root = fresh_dir("digest");
    const fs::path data = image_folder(root / "data", 3);
    std::string stream;  // the digested bytes, written out by hand
    for (int i = 0; i < 3; ++i) {
        const std::string name = fmt::format("img{:03d}.png", i), bytes = slurp(data / name);
        stream += name;
        stream += '\0';
        for (int k = 0; k < 8; ++k) stream += char((std::uint64_t(bytes.size()) >> (8 * k)) & 0xff);
        stream += bytes;
    }
    const std::string digest = io::load_image_folder(data, 1, 16).source_digest;
    EXPECT_EQ(digest, fnv(stream));
    // the same pixels under another name or in other bytes: other files, another digest
    fs::rename(data / "img002.png", data / "img009.png");
    EXPECT_NE(io::load_image_folder(data, 1, 16).source_digest, digest);
    fs::rename(data / "img009.png", data / "img002.png");
    EXPECT_EQ(io::load_image_folder(data, 1, 16).source_digest, digest);
    const auto pixels = io::load_image_folder(data, 1, 16).pixels;
    std::ofstream(data / "img002.png", std::ios::binary | std::ios::app) << "trailing bytes";  // after IEND: not decoded
    EXPECT_EQ(io::load_image_folder(data, 1, 16).pixels, pixels);
    EXPECT_NE(io::load_image_folder(data, 1, 16).source_digest, digest);
    // a subset's digest covers the files it loaded, in the order asked for
    const auto folder = io::scan_image_folder(data);
    EXPECT_NE(io::load_folder_images(folder, {2, 0}, 1, 16, "sub").source_digest,
              io::load_folder_images(folder, {0, 2}, 1, 16, "sub").source_digest);
}

// Checkpoints written before the data record resume as before; a data set too small for their data
// position is refused naming the checkpoint (it was "sampler: invalid state (63, 8)").
TEST(TrainingLoop, ResumeOfACheckpointWithoutADataRecordNamesItWhenTheDataCannotBeTheRunsData) {
    B b(1);
    const fs::path root = fresh_dir("old_checkpoint");
    const fs::path data = image_folder(root / "data", 12), out = root / "run";
    const fs::path smaller = image_folder(root / "smaller", 4);
    const ModelConfig mc = ModelConfig::tiny();
    const TrainConfig tc = tiny_train_config();
    ASSERT_EQ(run_training(b, mc, tc, tiny_run(out, data)), 0);  // 2 steps of 4: data position 8 of epoch 0
    const fs::path ckpt = out / "checkpoint.safetensors";
    {
        auto f = io::SafetensorsFile::load(ckpt);
        ASSERT_EQ(f.metadata.erase("sgf.dataset"), 1u);
        ASSERT_EQ(f.metadata.erase("sgf.dataset_images"), 1u);
        ASSERT_EQ(f.metadata.erase("sgf.dataset_digest"), 1u);
        ASSERT_EQ(f.metadata.at("sgf.sampler"), "0 8");
        f.save(ckpt);
    }
    const auto before = snapshot(out);
    TrainLoopOptions o = tiny_run(out, smaller, 0.016);
    o.resume = true;
    const std::string m = message_of<ArgumentError>([&] { run_training(b, mc, tc, o); });
    EXPECT_NE(m.find(ckpt.string()), std::string::npos) << m;
    EXPECT_NE(m.find("the data set differs"), std::string::npos) << m;
    EXPECT_NE(m.find("4 images"), std::string::npos) << m;
    EXPECT_EQ(snapshot(out), before);
    // an incomplete record is a malformed file
    {
        auto f = io::SafetensorsFile::load(ckpt);
        f.metadata["sgf.dataset_images"] = "12";
        f.save(ckpt);
    }
    o.data = data.string();
    EXPECT_NE(message_of<FormatError>([&] { run_training(b, mc, tc, o); }).find("training-data record"), std::string::npos);
    {
        auto f = io::SafetensorsFile::load(ckpt);
        f.metadata.erase("sgf.dataset_images");
        f.save(ckpt);
    }
    // a malformed digest is a malformed record
    {
        auto f = io::SafetensorsFile::load(ckpt);
        f.metadata["sgf.dataset"] = fs::canonical(data).string();
        f.metadata["sgf.dataset_images"] = "12";
        f.metadata["sgf.dataset_digest"] = "not hex";
        f.save(ckpt);
    }
    EXPECT_NE(message_of<FormatError>([&] { run_training(b, mc, tc, o); }).find("sgf.dataset_digest"), std::string::npos);
    // a record without the digest (written before sgf recorded it) still refuses another folder
    {
        auto f = io::SafetensorsFile::load(ckpt);
        f.metadata.erase("sgf.dataset_digest");
        f.save(ckpt);
    }
    const std::string same_count = image_folder(root / "same_count", 12, 5).string();
    TrainLoopOptions other = o;
    other.data = same_count;
    EXPECT_NE(message_of<ArgumentError>([&] { run_training(b, mc, tc, other); }).find("(12 images), not on the given"), std::string::npos);
    // without a digest, the same folder with a changed image resumes (name and count agree; the
    // checkpoint still holds both from the malformed-digest block above)
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.dataset_images"), "12");
    std::ofstream(data / "img003.png", std::ios::binary | std::ios::app) << "trailing bytes";
    TrainLoopOptions changed = o;
    changed.total_kimg = 0.012;
    EXPECT_EQ(run_training(b, mc, tc, changed), 0);
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.dataset_digest"), io::load_image_folder(data, 1, 16).source_digest);
    {
        auto f = io::SafetensorsFile::load(ckpt);
        f.metadata.erase("sgf.dataset");
        f.metadata.erase("sgf.dataset_images");
        f.metadata.erase("sgf.dataset_digest");
        f.save(ckpt);
    }
    // the run's own data: resumes, and the next checkpoint carries the record
    EXPECT_EQ(run_training(b, mc, tc, o), 0);
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.dataset_images"), "12");
    EXPECT_EQ(io::SafetensorsFile::load(ckpt).metadata.at("sgf.dataset_digest").size(), 16u);
}

TEST(TrainingLoop, TheStuckBitsWarningNamesTheRecipeFlagsARunLacks) {
    // the paper's weights (the CLI's defaults): every flag of the default models' recipe is named
    TrainConfig tc;
    std::string w = stuck_bits_warning(0.507, 50, tc);
    EXPECT_NE(w.find("still 0.507 after 50 kimg (chance: 0.5)"), std::string::npos) << w;
    EXPECT_NE(w.find("may be early"), std::string::npos) << w;
    EXPECT_NE(w.find("flags (--w-latent 0.125 --w-fingerprint 20 --consistency-rampup 30)"), std::string::npos) << w;
    // the recipe but one flag: that flag alone
    tc.weights.latent = 0.125;
    tc.weights.fingerprint = 20;
    w = stuck_bits_warning(0.51, 60, tc);
    EXPECT_NE(w.find("that recipe's flag (--consistency-rampup 30)"), std::string::npos) << w;
    EXPECT_EQ(w.find("--w-latent"), std::string::npos) << w;
    // the recipe itself: nothing to change, keep training
    tc.consistency_rampup_kimg = 30;
    w = stuck_bits_warning(0.51, 60, tc);
    EXPECT_NE(w.find("it is that recipe already"), std::string::npos) << w;
    EXPECT_EQ(w.find("--"), std::string::npos) << w;
}

// On resume, the running bit accuracy restarted at 0.5 while the warning looked at the run's total
// kimg: every resumed run past 50 kimg printed "bit accuracy is still 0.507 ... the decoder is not
// reading the fingerprint" on its first step, whatever the decoder read. The watch now averages this
// process's steps only, from the first, and judges after enough of them.
TEST(TrainingLoop, TheStuckBitsWarningJudgesAResumedRunOnItsOwnSteps) {
    // resumed at 298 kimg, reading 82% of the bits: never a warning
    StuckBitsWatch reading(50);
    for (int i = 0; i < 1000; ++i) EXPECT_FALSE(reading.update(0.82, 298 + i * 0.016)) << i;
    EXPECT_NEAR(reading.average(), 0.82, 1e-9);
    // at chance past stuck_kimg: warned once, after the watch has seen enough steps
    StuckBitsWatch chance(50, 100);
    int warned_at = -1, warnings = 0;
    for (int i = 0; i < 300; ++i)
        if (chance.update(0.5, 298 + i * 0.016)) ++warnings, warned_at = warned_at < 0 ? i : warned_at;
    EXPECT_EQ(warnings, 1);
    EXPECT_EQ(warned_at, 99);
    // at chance but before stuck_kimg: not yet; a run that starts reading is not warned
    StuckBitsWatch early(50, 1);
    EXPECT_FALSE(early.update(0.5, 10));
    EXPECT_TRUE(early.update(0.5, 50));
    StuckBitsWatch recovers(0, 10);
    for (int i = 0; i < 200; ++i) EXPECT_FALSE(recovers.update(0.9, i)) << i;
}

// The progress line: "\r" rewrites on a terminal; otherwise (a log file) whole lines at most every
// progress_line_seconds, the first and last step always, and no "\r" in the output.
TEST(TrainingLoop, ProgressIsWholeLinesForALogAndOneRewrittenLineForATerminal) {
    B b(1);
    const fs::path root = fresh_dir("progress");
    const fs::path data = image_folder(root / "data", 8);
    TrainLoopOptions o = tiny_run(root / "lines", data, 0.012);  // 3 steps
    o.progress = true;
    o.progress_line_seconds = 1e9;
    testing::internal::CaptureStdout();
    ASSERT_EQ(run_training(b, ModelConfig::tiny(), tiny_train_config(), o), 0);
    std::string out = testing::internal::GetCapturedStdout();
    EXPECT_EQ(out.find('\r'), std::string::npos) << out;
    EXPECT_NE(out.find("\nstep 1/3 "), std::string::npos) << out;
    EXPECT_EQ(out.find("step 2/3"), std::string::npos) << out;
    EXPECT_NE(out.find("\nstep 3/3 "), std::string::npos) << out;
    EXPECT_NE(out.find("\ndone: 3 steps"), std::string::npos) << out;
    EXPECT_EQ(out.find("\n\n"), std::string::npos) << "no empty lines: " << out;

    o.out_dir = root / "terminal";
    o.progress_line_seconds = 0;
    testing::internal::CaptureStdout();
    ASSERT_EQ(run_training(b, ModelConfig::tiny(), tiny_train_config(), o), 0);
    out = testing::internal::GetCapturedStdout();
    for (int s = 1; s <= 3; ++s) EXPECT_NE(out.find(fmt::format("\rstep {}/3 ", s)), std::string::npos) << out;
    EXPECT_NE(out.find(" \ndone: 3 steps"), std::string::npos) << out;
}

}  // namespace
}  // namespace sgf
