// The fuzz targets' bodies, shared by the libFuzzer executables (fuzz_*.cpp, built with
// -DSGF_BUILD_FUZZERS=ON and clang) and by test_hostile_inputs, which replays the committed seed
// corpus through them in every normal and sanitizer build.
//
// Contract of every target: any input may be rejected, but only with an sgf::Error (a clear,
// catchable error); anything else escaping (std::out_of_range, nlohmann exceptions, bad_alloc),
// a crash, a leak, a sanitizer report or a broken invariant (checked with SGF_FUZZ_ASSERT, which
// aborts) is a bug.
#pragma once

#include <sgf/fingerprint.hpp>
#include <sgf/io/image.hpp>
#include <sgf/io/model_file.hpp>
#include <sgf/nets.hpp>
#include <sgf/backends/eigen.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#define SGF_FUZZ_ASSERT(cond, ...)                                                              \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, "  %s\n", fmt::format(__VA_ARGS__).c_str());                 \
            std::abort();                                                                       \
        }                                                                                       \
    } while (0)

namespace sgf::fuzz {

namespace fs = std::filesystem;

/// A per-process scratch folder (tmpfs when available: targets write files on every input).
inline const fs::path& scratch_dir() {
    static const fs::path dir = [] {
        fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
        if (const char* t = std::getenv("SGF_FUZZ_TMPDIR")) base = t;
        fs::path d = base / fmt::format("sgf-fuzz-{}", ::getpid());
        fs::create_directories(d);
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(scratch_dir(), ec);
        });
        return d;
    }();
    return dir;
}

inline void remove_quietly(const fs::path& p) {
    std::error_code ec;
    fs::remove(p, ec);
}

inline void write_bytes(const fs::path& p, const std::uint8_t* data, std::size_t size) {
    FILE* f = std::fopen(p.c_str(), "wb");
    SGF_FUZZ_ASSERT(f != nullptr, "cannot create {}", p.string());
    if (size) SGF_FUZZ_ASSERT(std::fwrite(data, 1, size, f) == size, "short write to {}", p.string());
    std::fclose(f);
}

// ------------------------------------------------------------------------------------------------
// Model files: the safetensors container, then sgf's model-file layer (kind, version, config,
// parameter-count check, network construction, every tensor's dtype and shape), then one forward
// pass of what was loaded. Also the fixed-architecture path: the file's tensors loaded into
// networks of the `tiny` preset (what a tool holding a tiny model does with a foreign file).
// ------------------------------------------------------------------------------------------------
using FuzzBackend = EigenCpu;

inline FuzzBackend& backend() {
    static FuzzBackend b(1);
    return b;
}

struct TinyNets {
    ModelConfig cfg = ModelConfig::tiny();
    MetaGenerator<FuzzBackend> G{backend(), cfg, kNoInit};
    MetaGenerator<FuzzBackend> Gu{backend(), cfg, kNoInit, true};
    ResidualCritic<FuzzBackend> F = make_decoder(backend(), cfg, kNoInit);
    ResidualCritic<FuzzBackend> D = make_discriminator(backend(), cfg, kNoInit);
};
inline TinyNets& tiny_nets() {
    static TinyNets n;
    return n;
}

template <class Fn>
bool sgf_error_or_ok(Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const sgf::Error&) {
        return false;
    }
}

inline void one_forward(MetaGenerator<FuzzBackend>& G) {
    auto& b = backend();
    const ModelConfig& cfg = G.config();
    Tensor<FuzzBackend> z(b, Shape{1, cfg.z_dim}, 0.5f);
    if (G.baked()) {
        auto ctx = G.forward_baked(b, z, 1);
        SGF_FUZZ_ASSERT(ctx.image().shape() == (Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution}),
                        "baked generator produced {}", ctx.image().shape().str());
    } else {
        Tensor<FuzzBackend> c(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
        auto ctx = G.forward(b, z, c, 1);
        SGF_FUZZ_ASSERT(ctx.image().shape() == (Shape{1, cfg.image_channels, cfg.resolution, cfg.resolution}),
                        "generator produced {}", ctx.image().shape().str());
    }
}

inline int model_file(const std::uint8_t* data, std::size_t size) {
    auto& b = backend();
    io::SafetensorsLimits lim;
    lim.max_header_bytes = 1 << 20;
    io::SafetensorsFile f;
    if (!sgf_error_or_ok([&] { f = io::SafetensorsFile::parse(data, size, "fuzz.safetensors", lim); })) return 0;
    // every tensor reads back with its own dtype, with exactly the bytes the header promised
    std::uint64_t total = 0;
    for (const auto& entry : f.tensors()) {
        const std::string& name = entry.first;
        const io::SafeTensor& t = entry.second;
        SGF_FUZZ_ASSERT(t.bytes.size() == std::uint64_t(t.numel()) * io::dtype_size(t.dtype), "tensor {} size", name);
        total += t.bytes.size();
        if (t.dtype == "F32") SGF_FUZZ_ASSERT(f.get<float>(name, &t.shape).size() == std::size_t(t.numel()), "{}", name);
        if (t.dtype == "F64") SGF_FUZZ_ASSERT(f.get<double>(name).size() == std::size_t(t.numel()), "{}", name);
        if (t.dtype == "U8") SGF_FUZZ_ASSERT(f.get<std::uint8_t>(name).size() == std::size_t(t.numel()), "{}", name);
        if (t.dtype != "F32") SGF_FUZZ_ASSERT(!sgf_error_or_ok([&] { (void)f.get<float>(name); }), "{}: dtype ignored", name);
    }
    SGF_FUZZ_ASSERT(total + 8 <= size, "tensors hold {} bytes, the input has {}", total, size);
    // a re-serialised file parses again to the same tensors (checksum recomputed)
    {
        io::SafetensorsFile copy = f;
        const std::string again = copy.serialize();
        io::SafetensorsFile g = io::SafetensorsFile::parse(reinterpret_cast<const std::uint8_t*>(again.data()), again.size(), "again");
        SGF_FUZZ_ASSERT(g.size() == f.size(), "round trip lost tensors");
        for (const auto& [name, t] : f.tensors()) {
            SGF_FUZZ_ASSERT(g.has(name), "round trip lost {}", name);
            SGF_FUZZ_ASSERT(g.tensors().at(name).bytes == t.bytes && g.tensors().at(name).shape == t.shape, "{}", name);
        }
    }
    // fixed architecture: the tiny preset's networks, shapes checked tensor by tensor
    auto& tn = tiny_nets();
    sgf_error_or_ok([&] { io::get_parameters(b, f, tn.G.parameters()); });
    sgf_error_or_ok([&] { io::get_parameters(b, f, tn.Gu.parameters()); });
    sgf_error_or_ok([&] { io::get_parameters(b, f, tn.F.parameters()); });
    sgf_error_or_ok([&] { io::get_parameters(b, f, tn.D.parameters()); });
    // the file's own architecture, through the public loaders (they take a path)
    ModelConfig cfg;
    if (!sgf_error_or_ok([&] { cfg = io::check_header(f, {"meta-model", "baked-generator", "checkpoint", "decoder", "meta-generator"}); })) return 0;
    const fs::path p = scratch_dir() / "model.safetensors";
    write_bytes(p, data, size);
    const std::string kind = f.meta("sgf.kind");
    if (kind == "meta-model") {
        sgf_error_or_ok([&] {
            auto m = io::load_meta_model<FuzzBackend>(b, p);
            SGF_FUZZ_ASSERT(nlohmann::json(m.config) == nlohmann::json(cfg), "config changed on load");
            if (cfg.resolution <= 64) one_forward(m.G);  // bigger models are legitimately slow
        });
    } else if (kind == "baked-generator") {
        sgf_error_or_ok([&] {
            auto G = io::load_baked_generator<FuzzBackend>(b, p);
            if (cfg.resolution <= 64) one_forward(G);
        });
    }
    if (kind == "meta-model" || kind == "meta-generator")  // what instantiate and generate load
        sgf_error_or_ok([&] {
            auto m = io::load_meta_generator<FuzzBackend>(b, p);
            SGF_FUZZ_ASSERT(nlohmann::json(m.config) == nlohmann::json(cfg), "config changed on load");
            if (kind == "meta-generator" && cfg.resolution <= 64) one_forward(m.G);
        });
    if (kind == "meta-model" || kind == "decoder")  // what decode and verify load
        sgf_error_or_ok([&] {
            auto d = io::load_decoder<FuzzBackend>(b, p);
            SGF_FUZZ_ASSERT(nlohmann::json(d.config) == nlohmann::json(cfg), "config changed on load");
        });
    remove_quietly(p);
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Images: decode (limits checked before stb allocates anything), then what the decoder sees.
// ------------------------------------------------------------------------------------------------
inline int image(const std::uint8_t* data, std::size_t size) {
    io::ImageLimits lim;
    lim.max_side = 4096;
    lim.max_pixels = 1 << 16;  // keeps each run fast (decoding garbage costs per pixel); default limits: test_hostile_inputs
    io::Image img;
    if (!sgf_error_or_ok([&] { img = io::decode_image(data, size, "fuzz-image", lim); })) return 0;
    SGF_FUZZ_ASSERT(img.width > 0 && img.height > 0 && img.width <= lim.max_side && img.height <= lim.max_side,
                    "decoded {}x{}", img.width, img.height);
    SGF_FUZZ_ASSERT(std::int64_t(img.width) * img.height <= lim.max_pixels, "decoded {}x{}", img.width, img.height);
    SGF_FUZZ_ASSERT(img.channels == 1 || img.channels == 3, "{} channels", img.channels);
    SGF_FUZZ_ASSERT(img.pixels.size() == std::size_t(img.width) * img.height * img.channels, "pixel buffer size");
    for (const auto& [channels, resolution] : {std::pair{1, 16}, std::pair{3, 32}}) {
        const io::Image x = io::prepare_for_model(img, channels, resolution);
        SGF_FUZZ_ASSERT(x.width == resolution && x.height == resolution && x.channels == channels, "prepared image size");
        const auto t = io::to_tensor(x);
        for (float v : t.data) SGF_FUZZ_ASSERT(v >= -1.0f && v <= 1.0f, "pixel {} outside [-1, 1]", v);
    }
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Hex fingerprints: byte 0 picks the bit count, the rest is the text.
// ------------------------------------------------------------------------------------------------
inline int hex_fingerprint(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    static const int kBits[] = {128, 1, 3, 4, 5, 8, 63, 64, 65, 127, 129, 256, 1000, 4096, 65536, 128};
    const int bits = kBits[data[0] & 15];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    Fingerprint f;
    if (!sgf_error_or_ok([&] { f = Fingerprint::parse(text, bits); })) return 0;
    SGF_FUZZ_ASSERT(f.bits() == bits, "parsed {} bits, asked for {}", f.bits(), bits);
    const std::string hex = f.hex();
    std::string norm(text);
    if (norm.size() >= 2 && norm[0] == '0' && (norm[1] == 'x' || norm[1] == 'X')) norm.erase(0, 2);
    for (auto& c : norm) c = char(std::tolower(static_cast<unsigned char>(c)));
    SGF_FUZZ_ASSERT(hex == norm, "'{}' printed back as '{}'", text, hex);
    SGF_FUZZ_ASSERT(Fingerprint::parse(hex, bits) == f, "round trip of {}", hex);
    SGF_FUZZ_ASSERT(f.hamming(f) == 0, "self distance");
    const auto v = f.to_floats();
    SGF_FUZZ_ASSERT(int(v.size()) == bits, "to_floats size");
    return 0;
}

// ------------------------------------------------------------------------------------------------
// Registry import into a fresh temporary SQLite registry. Byte 0: bit 0 JSON (1) or CSV (0), bit 1
// an 8-bit registry (min distance 2) instead of 128 bits; bit 2 import twice (the second import
// must fail as a whole: every label is taken). The rest is the text. Invariants: all-or-nothing,
// every row complete and exactly as imported, labels unique, the file reopens.
// ------------------------------------------------------------------------------------------------
inline void fresh_registry(const fs::path& p) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) remove_quietly(p.string() + suffix);
}

inline int registry_import(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool json = data[0] & 1, small = data[0] & 2, twice = data[0] & 4;
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    const fs::path p = scratch_dir() / "registry.db";
    fresh_registry(p);
    RegistryOptions opt;
    opt.bits = small ? 8 : 128;
    opt.min_distance = small ? 2 : -1;
    std::int64_t imported = -1;
    std::vector<RegistryEntry> rows;
    {
        Registry reg(p, opt);
        const auto before = reg.all();
        SGF_FUZZ_ASSERT(before.empty(), "fresh registry holds {} rows", before.size());
        sgf_error_or_ok([&] { imported = json ? reg.import_json(text, "fuzz") : reg.import_csv(text, "fuzz"); });
        rows = reg.all();
        SGF_FUZZ_ASSERT(imported < 0 ? rows.empty() : std::int64_t(rows.size()) == imported,
                        "import returned {} but the registry holds {} rows", imported, rows.size());
        if (imported > 0 && json) {
            // every row is stored exactly as given (no truncation at NUL bytes, no lost fields)
            const auto j = nlohmann::json::parse(text);
            SGF_FUZZ_ASSERT(j.size() == rows.size(), "{} entries, {} rows", j.size(), rows.size());
            for (std::size_t i = 0; i < rows.size(); ++i) {
                const auto& o = j[i];
                SGF_FUZZ_ASSERT(rows[i].label == o["label"].get<std::string>(), "entry {}: label stored as '{}'", i, rows[i].label);
                SGF_FUZZ_ASSERT(rows[i].fingerprint == Fingerprint::parse(o["fingerprint"].get<std::string>(), opt.bits),
                                "entry {}: fingerprint changed", i);
                if (o.contains("metadata"))
                    SGF_FUZZ_ASSERT(rows[i].metadata == o["metadata"].get<std::string>(), "entry {}: metadata changed", i);
                if (o.contains("issued_at") && !o["issued_at"].get<std::string>().empty())
                    SGF_FUZZ_ASSERT(rows[i].issued_at == o["issued_at"].get<std::string>(), "entry {}: issued_at changed", i);
            }
        }
        if (imported > 0) {
            // what was stored is exactly what the exporter writes; re-importing it elsewhere gives the same rows
            const std::string exported = json ? reg.export_json() : reg.export_csv();
            const fs::path p2 = scratch_dir() / "registry2.db";
            fresh_registry(p2);
            {
                Registry copy(p2, opt);
                const std::int64_t n = json ? copy.import_json(exported, "export") : copy.import_csv(exported, "export");
                SGF_FUZZ_ASSERT(n == imported, "re-import of the export gave {} rows, not {}", n, imported);
                const auto back = copy.all();
                for (std::size_t i = 0; i < rows.size(); ++i) {
                    SGF_FUZZ_ASSERT(back[i].label == rows[i].label && back[i].fingerprint == rows[i].fingerprint &&
                                        back[i].issued_at == rows[i].issued_at && back[i].metadata == rows[i].metadata,
                                    "row {} changed in an export/import round trip: '{}'", i, rows[i].label);
                }
            }
            fresh_registry(p2);
            if (twice) {
                SGF_FUZZ_ASSERT(!sgf_error_or_ok([&] { json ? reg.import_json(text, "fuzz") : reg.import_csv(text, "fuzz"); }),
                                "importing the same labels twice succeeded");
                SGF_FUZZ_ASSERT(reg.all().size() == rows.size(), "a failed import left rows behind");
            }
        }
    }
    {
        RegistryOptions ro;
        ro.read_only = true;
        Registry again(p, ro);
        const auto back = again.all();
        SGF_FUZZ_ASSERT(back.size() == rows.size(), "reopened registry holds {} rows, not {}", back.size(), rows.size());
        std::set<std::string> labels;
        for (const auto& e : back) {
            SGF_FUZZ_ASSERT(!e.label.empty() && !e.issued_at.empty(), "incomplete row {}", e.id);
            SGF_FUZZ_ASSERT(e.fingerprint.bits() == opt.bits, "row {} has {} bits", e.id, e.fingerprint.bits());
            SGF_FUZZ_ASSERT(labels.insert(e.label).second, "label '{}' twice", e.label);
            const auto found = again.find(e.label);
            SGF_FUZZ_ASSERT(found && found->id == e.id, "label '{}' cannot be found again", e.label);
        }
        for (std::size_t i = 0; i + 1 < back.size(); ++i)
            for (std::size_t j = i + 1; j < back.size(); ++j)
                SGF_FUZZ_ASSERT(back[i].fingerprint.hamming(back[j].fingerprint) >= again.min_distance(),
                                "rows {} and {} are closer than the minimum distance", back[i].label, back[j].label);
    }
    fresh_registry(p);
    return 0;
}

}  // namespace sgf::fuzz
