// The safetensors container (https://github.com/huggingface/safetensors format description):
//   [u64 little-endian N][N bytes of JSON header, space-padded to a multiple of 8][data]
//   header: {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
// Offsets are relative to the start of the data area. sgf writes tensors sorted by name, packed
// without gaps, and records a CRC-32 of the data area in __metadata__["sgf.checksum"], which load()
// verifies. load() validates everything before trusting it (limits in SafetensorsLimits); every
// problem is a FormatError that names the file.
#pragma once

#include <sgf/core/sha256.hpp>
#include <sgf/io/atomic_file.hpp>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <bit>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace sgf::io {

static_assert(std::endian::native == std::endian::little, "sgf's model files assume a little-endian host");

struct SafetensorsLimits {
    std::uint64_t max_header_bytes = 100u << 20;
    std::size_t max_tensors = 100000;
    std::uint64_t max_file_bytes = std::uint64_t(1) << 36;
};

struct SafeTensor {
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::uint8_t> bytes;

    std::int64_t numel() const {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
};

inline std::size_t dtype_size(std::string_view dt) {
    if (dt == "F32" || dt == "I32" || dt == "U32") return 4;
    if (dt == "F64" || dt == "I64" || dt == "U64") return 8;
    if (dt == "F16" || dt == "BF16" || dt == "I16" || dt == "U16") return 2;
    if (dt == "U8" || dt == "I8" || dt == "BOOL") return 1;
    return 0;
}

template <class T>
constexpr const char* dtype_of() {
    if constexpr (std::is_same_v<T, float>) return "F32";
    else if constexpr (std::is_same_v<T, double>) return "F64";
    else if constexpr (std::is_same_v<T, std::int64_t>) return "I64";
    else if constexpr (std::is_same_v<T, std::uint64_t>) return "U64";
    else if constexpr (std::is_same_v<T, std::uint32_t>) return "U32";
    else if constexpr (std::is_same_v<T, std::uint8_t>) return "U8";
    else static_assert(sizeof(T) == 0, "unsupported dtype");
}

/// CRC-32 (zlib's) of n bytes, continuing from `crc` (start with crc32_start()).
inline uLong crc32_start() { return ::crc32(0L, Z_NULL, 0); }
inline uLong crc32_update(uLong crc, const std::uint8_t* data, std::size_t n) {
    while (n > 0) {
        const uInt chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        crc = ::crc32(crc, data, chunk);
        data += chunk;
        n -= chunk;
    }
    return crc;
}
inline std::string crc32_text(uLong crc) { return fmt::format("crc32:{:08x}", static_cast<std::uint32_t>(crc)); }
inline std::string crc32_hex(const std::uint8_t* data, std::size_t n) { return crc32_text(crc32_update(crc32_start(), data, n)); }

class SafetensorsFile {
public:
    std::map<std::string, std::string> metadata;

    std::string source;  ///< the path it was loaded from (for messages)

    const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }
    bool has(const std::string& name) const { return tensors_.count(name) != 0; }
    std::size_t size() const { return tensors_.size(); }

    template <class T>
    void put(const std::string& name, std::vector<std::int64_t> shape, std::span<const T> values) {
        SafeTensor t{dtype_of<T>(), std::move(shape), {}};
        SGF_CHECK(t.numel() == static_cast<std::int64_t>(values.size()), ArgumentError,
                  "safetensors: tensor '{}' has {} values for {} elements", name, values.size(), t.numel());
        t.bytes.resize(values.size() * sizeof(T));
        if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
        tensors_[name] = std::move(t);
    }
    template <class T>
    void put(const std::string& name, std::vector<std::int64_t> shape, const std::vector<T>& values) {
        put<T>(name, std::move(shape), std::span<const T>(values));
    }

    /// The values of tensor `name` as T; FormatError (naming file and tensor) when it is missing,
    /// has another dtype, or (when expected_shape is given) another shape.
    template <class T>
    std::vector<T> get(const std::string& name, const std::vector<std::int64_t>* expected_shape = nullptr) const {
        auto it = tensors_.find(name);
        if (it == tensors_.end()) SGF_THROW(FormatError, "{}: tensor '{}' is missing", where(), name);
        const SafeTensor& t = it->second;
        if (t.dtype != dtype_of<T>())
            SGF_THROW(FormatError, "{}: tensor '{}' has dtype {}, expected {}", where(), name, t.dtype, dtype_of<T>());
        if (expected_shape && *expected_shape != t.shape)
            SGF_THROW(FormatError, "{}: tensor '{}' has shape [{}], expected [{}]", where(), name, fmt::join(t.shape, ", "),
                      fmt::join(*expected_shape, ", "));
        std::vector<T> out(t.bytes.size() / sizeof(T));
        if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
        return out;
    }
    const std::string& meta(const std::string& key) const {
        auto it = metadata.find(key);
        if (it == metadata.end()) SGF_THROW(FormatError, "{}: metadata key '{}' is missing", where(), key);
        return it->second;
    }

    /// Serialises to bytes (header + data); sets metadata["sgf.checksum"].
    std::string serialize() {
        std::uint64_t offset = 0;
        nlohmann::json header = nlohmann::json::object();
        std::string data;
        std::size_t total = 0;
        for (const auto& [name, t] : tensors_) total += t.bytes.size();
        data.reserve(total);
        for (const auto& [name, t] : tensors_) {
            header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
            data.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
            offset += t.bytes.size();
        }
        metadata["sgf.checksum"] = crc32_hex(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
        header["__metadata__"] = metadata;
        std::string h;
        try {
            h = header.dump();
        } catch (const nlohmann::json::type_error& e) {  // 316: a name or metadata value that is not UTF-8
            SGF_THROW(ArgumentError, "safetensors: a tensor name or metadata value is not valid UTF-8, which the JSON header "
                                     "cannot hold ({})", e.what());
        }
        while (h.size() % 8) h.push_back(' ');
        std::string out(8, '\0');
        const std::uint64_t n = h.size();
        std::memcpy(out.data(), &n, 8);
        out += h;
        out += data;
        return out;
    }

    void save(const std::filesystem::path& path) { write_file_atomic(path, serialize()); }

    /// Reads and validates a file. The header is read and checked against the file's size first:
    /// a damaged header, a truncated file or one with trailing bytes is refused without reading (or
    /// allocating memory for) its data area. With `digest`, every byte read is added to it: as the
    /// tensors cover the data area without gaps, that is the whole file (its SHA-256, e.g. for a record).
    static SafetensorsFile load(const std::filesystem::path& path, const SafetensorsLimits& lim = {}, Sha256* digest = nullptr) {
        InputFile in(path);
        const std::string name = path.string();
        if (in.size() > lim.max_file_bytes)
            SGF_THROW(FormatError, "{}: file is {} bytes, above the limit of {}", name, in.size(), lim.max_file_bytes);
        std::uint8_t length[8] = {};
        if (in.size() >= 8) in.read(length, 8);
        const std::uint64_t n = header_length(length, in.size(), name, lim);
        std::vector<std::uint8_t> header(static_cast<std::size_t>(n));
        in.read(header.data(), header.size());
        if (digest) {
            digest->add(length, 8);
            digest->add(header.data(), header.size());
        }
        SafetensorsFile f;
        f.source = name;
        const std::uint64_t data_size = in.size() - 8 - n;
        const auto spans = f.parse_header(header.data(), n, data_size, lim);
        uLong crc = crc32_start();
        for (const auto& s : spans) {  // in file order, without gaps (checked)
            auto& bytes = f.tensors_.at(s.name).bytes;
            bytes.resize(static_cast<std::size_t>(s.e - s.b));
            in.read(bytes.data(), bytes.size());
            crc = crc32_update(crc, bytes.data(), bytes.size());
            if (digest) digest->add(bytes.data(), bytes.size());
        }
        f.check_checksum(crc32_text(crc));
        return f;
    }

    /// Validates and reads a file held in memory (size bytes at p); `name` goes into messages.
    static SafetensorsFile parse(const std::uint8_t* p, std::size_t size, const std::string& name,
                                 const SafetensorsLimits& lim = {}) {
        const std::uint64_t n = header_length(p, size, name, lim);
        SafetensorsFile f;
        f.source = name;
        const std::uint64_t data_size = size - 8 - n;
        const std::uint8_t* data = p + 8 + n;
        for (const auto& s : f.parse_header(p + 8, n, data_size, lim))
            f.tensors_.at(s.name).bytes.assign(data + s.b, data + s.e);
        f.check_checksum(crc32_hex(data, data_size));
        return f;
    }

private:
    struct Span {  // a tensor's bytes [b, e) in the data area
        std::uint64_t b, e;
        std::string name;
    };

    [[noreturn]] static void fail_in(const std::string& name, std::string_view f, fmt::format_args args) {
        SGF_THROW(FormatError, "{}: {}", name, fmt::vformat(f, args));
    }
    template <class... A>
    [[noreturn]] void fail(std::string_view f, const A&... args) const {
        fail_in(where(), f, fmt::make_format_args(args...));
    }

    /// The header length from the file's first 8 bytes (`prefix`; a file of `size` bytes), checked
    /// against the limit and the file's size.
    static std::uint64_t header_length(const std::uint8_t* prefix, std::uint64_t size, const std::string& name,
                                       const SafetensorsLimits& lim) {
        if (size < 8) fail_in(name, "truncated: {} bytes, not a safetensors file (needs at least 8)", fmt::make_format_args(size));
        std::uint64_t n = 0;
        std::memcpy(&n, prefix, 8);
        const std::uint64_t max_header = lim.max_header_bytes;
        // files that are often given by mistake: say what they are (their first bytes read as a huge length)
        if (n > max_header && std::memcmp(prefix, "SQLite f", 8) == 0)
            fail_in(name, "an SQLite database (an sgf registry?), not a model file", fmt::make_format_args());
        if (n > max_header && (std::memcmp(prefix, "\x89PNG", 4) == 0 || std::memcmp(prefix, "\xFF\xD8\xFF", 3) == 0)) {
            const std::string_view format = prefix[0] == 0x89 ? "PNG" : "JPEG";
            fail_in(name, "an image ({}), not a model file", fmt::make_format_args(format));
        }
        if (n > max_header)
            fail_in(name,
                    "not a safetensors file, or a damaged one: its first 8 bytes give a header length of {}, over the limit "
                    "of {} bytes",
                    fmt::make_format_args(n, max_header));
        const std::uint64_t after = size - 8;
        if (n > after) fail_in(name, "truncated: header says {} bytes of JSON, file has {} after the length", fmt::make_format_args(n, after));
        return n;
    }

    /// Reads the JSON header (n bytes at h) into metadata and tensor entries (bytes still empty) and
    /// checks it against a data area of data_size bytes: every tensor inside it, sized by its shape
    /// and dtype, the tensors packed without overlap, gap or trailing bytes. Returns the tensors in
    /// file order.
    std::vector<Span> parse_header(const std::uint8_t* h, std::uint64_t n, std::uint64_t data_size, const SafetensorsLimits& lim) {
        nlohmann::json header;
        try {
            header = nlohmann::json::parse(reinterpret_cast<const char*>(h), reinterpret_cast<const char*>(h + n));
        } catch (const nlohmann::json::exception& e) {
            fail("header is not valid JSON: {}", e.what());
        }
        if (!header.is_object()) fail("header is not a JSON object");
        const std::size_t n_tensors = header.size() - (header.contains("__metadata__") ? 1 : 0);  // __metadata__ is optional
        if (n_tensors > lim.max_tensors) fail("{} tensors exceed the limit of {} tensors", n_tensors, lim.max_tensors);
        std::vector<Span> spans;
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") {
                if (!it.value().is_object()) fail("__metadata__ is not an object");
                for (auto m = it.value().begin(); m != it.value().end(); ++m) {
                    if (!m.value().is_string()) fail("metadata value '{}' is not a string", m.key());
                    metadata[m.key()] = m.value().get<std::string>();
                }
                continue;
            }
            const auto& e = it.value();
            if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
                fail("tensor '{}': entry needs dtype, shape and data_offsets", it.key());
            if (!e["dtype"].is_string()) fail("tensor '{}': dtype is not a string", it.key());
            SafeTensor t;
            t.dtype = e["dtype"].get<std::string>();
            const std::size_t isz = dtype_size(t.dtype);
            if (isz == 0) fail("tensor '{}': unknown dtype '{}'", it.key(), t.dtype);
            if (!e["shape"].is_array() || e["shape"].size() > 8) fail("tensor '{}': shape must be an array of rank <= 8", it.key());
            std::uint64_t numel = 1;
            for (const auto& d : e["shape"]) {
                if (!d.is_number_integer() || d.get<std::int64_t>() < 0) fail("tensor '{}': shape has a negative or non-integer dimension", it.key());
                const auto v = d.get<std::uint64_t>();
                if (v != 0 && numel > (std::uint64_t(1) << 40) / v) fail("tensor '{}': shape is too large", it.key());
                numel *= v;
                t.shape.push_back(static_cast<std::int64_t>(v));
            }
            const auto& off = e["data_offsets"];
            if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                fail("tensor '{}': data_offsets must be two non-negative integers", it.key());
            const std::uint64_t b = off[0].get<std::uint64_t>(), en = off[1].get<std::uint64_t>();
            if (b > en || en > data_size)
                fail("truncated or corrupt: tensor '{}' spans bytes [{}, {}) but the data area has {} bytes", it.key(), b,
                     en, data_size);
            if (en - b != numel * isz)
                fail("tensor '{}': {} bytes for shape [{}] of {} ({} expected)", it.key(), en - b,
                     fmt::format("{}", fmt::join(t.shape, ", ")), t.dtype, numel * isz);
            spans.push_back({b, en, it.key()});
            tensors_[it.key()] = std::move(t);
        }
        std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& c) { return a.b < c.b; });
        std::uint64_t pos = 0;
        for (const auto& s : spans) {
            if (s.b < pos) fail("tensor '{}' overlaps the previous tensor", s.name);
            if (s.b > pos) fail("gap of {} bytes before tensor '{}'", s.b - pos, s.name);
            pos = s.e;
        }
        if (pos != data_size) fail("{} trailing bytes after the last tensor", data_size - pos);
        return spans;
    }

    /// FormatError when metadata records a checksum other than `actual` (of the data area).
    void check_checksum(const std::string& actual) const {
        auto ck = metadata.find("sgf.checksum");
        if (ck != metadata.end() && ck->second != actual)
            fail("checksum mismatch: the tensor data is corrupt (metadata says {}, data has {})", ck->second, actual);
    }

    std::string where() const { return source.empty() ? std::string("safetensors") : source; }
    std::map<std::string, SafeTensor> tensors_;
};

}  // namespace sgf::io
