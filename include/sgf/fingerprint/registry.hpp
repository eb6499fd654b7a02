// The registry of issued fingerprints: one SQLite file (docs/verification.md has the schema).
// Issuing draws a fresh random fingerprint and rejects it while it is closer than min_distance
// bits to any issued one. Concurrency: every issue/add runs in a BEGIN IMMEDIATE transaction (one
// writer at a time across processes, WAL journal, busy timeout), and refreshes the in-memory copy
// of the codes inside that transaction before checking distances, so concurrent issuers never
// produce duplicates or too-close codes, and a killed process leaves no half-written row. Within a
// process, one Registry may be shared by threads: every call holds the object's mutex, so calls take
// turns (a write that waits for another process's lock holds up the other threads, and issue_all's
// before_commit runs with the mutex held: it must not wait for another thread using this Registry).
#pragma once

#include <sgf/core/text.hpp>
#include <sgf/fingerprint/attribution.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/statvfs.h>   // ST_RDONLY: a read-only mount
#include <unistd.h>
#ifdef __linux__
#include <linux/fs.h>      // FS_IOC_GETFLAGS, FS_IMMUTABLE_FL: an immutable folder
#include <sys/ioctl.h>
#endif

namespace sgf {

struct RegistryEntry {
    std::int64_t id = 0;
    std::string label;
    Fingerprint fingerprint;
    std::string issued_at;  ///< UTC, ISO-8601
    std::string metadata;   ///< free-form (JSON by convention)
};

struct RegistryOptions {
    int bits = 128;
    int min_distance = -1;  ///< -1: Registry::default_min_distance(bits); only used when creating
    bool create = true;     ///< create the file when missing
    bool read_only = false;
    int busy_timeout_ms = 60000;

    /// For a registry that must already exist, opened read-only (verifying, looking up, exporting): a
    /// mistyped path is then an IoError ("registry not found"), not a new, empty registry that
    /// attributes nothing. `bits` only sizes the matcher until the file's own length is read.
    static RegistryOptions existing_read_only(int bits = 128) {
        RegistryOptions o;
        o.bits = bits;
        o.create = false;
        o.read_only = true;
        return o;
    }
};

class Registry {
public:
    static constexpr int kSchemaVersion = 1;
    static constexpr std::size_t kMaxLabelBytes = 256;          ///< per label (issue, add, import)
    static constexpr std::size_t kMaxMetadataBytes = 64 << 10;  ///< per row's metadata
    static constexpr std::size_t kMaxImportRows = 1000000;      ///< per import_csv / import_json call
    /// Default minimum pairwise Hamming distance: a quarter of the bits (32 for 128). Random pairs
    /// are Bin(n, 1/2) apart (64 +- 5.7 for 128 bits), so rejection is rare even at 10^6 entries.
    static int default_min_distance(int bits) { return std::max(1, bits / 4); }

    using Options = RegistryOptions;

    explicit Registry(const std::filesystem::path& path) : Registry(path, RegistryOptions{}) {}
    Registry(const std::filesystem::path& path, RegistryOptions opt) : path_(path.string()), matcher_(opt.bits) {
        namespace fs = std::filesystem;
        SGF_CHECK(opt.bits >= 1 && opt.bits <= 65536, ArgumentError, "{}: fingerprint bits must be in 1..65536, got {}", path_,
                  opt.bits);
        SGF_CHECK(opt.min_distance >= -1 && opt.min_distance <= 65536, ArgumentError,
                  "{}: the minimum Hamming distance must be in 0..65536, got {}", path_, opt.min_distance);
        // SQLite reads "" as a private temporary database and ":memory:" (or "file:...") as URIs or
        // in-memory databases: every fingerprint issued into one would be lost when it closes.
        SGF_CHECK(!path_.empty() && path_ != ":memory:" && path_.rfind("file:", 0) != 0, ArgumentError,
                  "registry path '{}' is not a file path (SQLite would keep it in memory or parse it as a URI)", path_);
        SGF_CHECK(opt.busy_timeout_ms >= 0, ArgumentError, "{}: busy_timeout_ms must be >= 0, got {}", path_, opt.busy_timeout_ms);
        std::error_code ec;
        const bool exists = fs::exists(path, ec);
        if (ec)  // a folder on the way that cannot be searched: not "registry not found"
            SGF_THROW(IoError, "{}: cannot reach the registry: {}", path_, ec.message());
        if (exists && fs::is_directory(path, ec)) SGF_THROW(IoError, "{}: is a folder, not a registry file", path_);
        if (exists && !fs::is_regular_file(path, ec))  // a FIFO would block the header check forever
            SGF_THROW(IoError, "{}: not a regular file, so not a registry", path_);
        if (!exists && (!opt.create || opt.read_only)) SGF_THROW(IoError, "{}: registry not found", path_);
        const bool empty = exists && fs::file_size(path, ec) == 0 && !ec;
        if (empty && (!opt.create || opt.read_only))
            SGF_THROW(FormatError, "{}: an empty file (0 bytes), not an sgf registry", path_);
        if (!exists || empty) check_new_min_distance(opt);  // about to create it (checked again in open_schema)
        if (!exists && !path.empty() && !path.has_filename())
            SGF_THROW(IoError, "{}: names a folder (it ends in '/'), not a registry file", path_);
        if (exists) check_sqlite_header(path);
        int flags = opt.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        std::string target = path_;
        if (opt.read_only) {
            std::error_code real_ec;
            const fs::path real = fs::canonical(path, real_ec);
            if (!real_ec && on_read_only_storage(real)) {
                target = immutable_uri(real);
                flags |= SQLITE_OPEN_URI;
            }
        }
        if (sqlite3_open_v2(target.c_str(), &db_, flags | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            if (!exists) diagnose_missing_folder(path);  // SQLite says only "unable to open database file"
            SGF_THROW(IoError, "{}: cannot open registry: {}", path_, msg);
        }
        try {
            open_schema(opt, exists);
        } catch (...) {
            close();  // the destructor does not run for a throwing constructor
            throw;
        }
    }

private:
    /// A registry on read-only storage (a read-only mount, or a folder with the immutable attribute,
    /// `chattr +i`): SQLite reads a WAL database through -wal and -shm files beside it, cannot create
    /// them there, and fails with "unable to open database file". It is then opened as immutable (no
    /// locks, no -shm) when no connection can be live and no rows are pending: no -wal file at all, or
    /// an empty one with no -shm (an open connection keeps both; the last one to close removes them).
    /// Otherwise SQLite is left to read the files that are there (it can when both exist): a read-only
    /// mount may be a view of a registry that is still being written through another mount, and an
    /// immutable reader would miss its new rows or read torn pages. For the same reason a folder that
    /// only this user cannot write to does not count: its owner may still issue. `real` is the file
    /// SQLite opens (symbolic links resolved: the -wal and -shm files lie beside the target).
    static bool on_read_only_storage(const std::filesystem::path& real) {
        namespace fs = std::filesystem;
        const fs::path folder = real.parent_path();
        struct statvfs vfs {};
        bool read_only = ::statvfs(folder.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0;
#ifdef __linux__
        if (!read_only) {  // the immutable attribute: not even root can create files there
            const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            int attributes = 0;
            if (fd >= 0) {
                read_only = ::ioctl(fd, FS_IOC_GETFLAGS, &attributes) == 0 && (attributes & FS_IMMUTABLE_FL) != 0;
                ::close(fd);
            }
        }
#endif
        if (!read_only) return false;
        std::error_code ec;
        fs::path wal = real, shm = real;
        wal += "-wal";
        shm += "-shm";
        const auto wal_size = fs::file_size(wal, ec);
        if (ec) return true;  // no -wal file: no connection is open, and every row is in the file
        return wal_size == 0 && !fs::exists(shm, ec);
    }
    /// `real` (an absolute path) as an SQLite URI opened read-only and immutable: file:// + the path,
    /// with every byte but [A-Za-z0-9/._~-] percent-encoded ('?', '#' and '%' would end or escape it).
    static std::string immutable_uri(const std::filesystem::path& real) {
        std::string uri = "file://";
        for (const unsigned char c : real.string()) {
            if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '~' || c == '-') uri += char(c);
            else uri += fmt::format("%{:02X}", c);
        }
        return uri + "?mode=ro&immutable=1";
    }

    /// Why a registry cannot be created at `path`: its folder is missing, cannot be reached, or is a
    /// file. Returns when the folder looks fine (the caller then reports SQLite's own message).
    void diagnose_missing_folder(const std::filesystem::path& path) const {
        namespace fs = std::filesystem;
        const fs::path folder = path.parent_path();
        if (folder.empty()) return;  // the working folder
        std::error_code ec;
        const fs::file_status st = fs::status(folder, ec);
        if (st.type() == fs::file_type::not_found)
            SGF_THROW(IoError, "{}: cannot create the registry: the folder {} does not exist", path_, folder.string());
        if (ec)  // a folder that exists but cannot be reached (no permission, a symbolic-link loop)
            SGF_THROW(IoError, "{}: cannot create the registry: the folder {}: {}", path_, folder.string(), ec.message());
        if (st.type() != fs::file_type::directory)
            SGF_THROW(IoError, "{}: cannot create the registry: {} is not a folder", path_, folder.string());
    }

    void open_schema(const RegistryOptions& opt, bool exists) {
        sqlite3_busy_timeout(db_, opt.busy_timeout_ms);
        // Refuse a foreign database before changing anything in it (the WAL switch rewrites its header).
        // One statement, so one snapshot: with two queries another process creating the same registry
        // could commit its schema in between, and the file would look foreign (tables, none of ours).
        const auto [tables, has_schema] = table_census();
        if (!has_schema && (opt.read_only || (exists && tables > 0)))
            SGF_THROW(FormatError, "{}: an SQLite database, but not an sgf registry (no sgf_registry_meta table)", path_);
        if (!opt.read_only) enable_wal(opt.busy_timeout_ms);
        if (!has_schema) {
            exec("BEGIN IMMEDIATE");
            try {
                if (!table_exists("sgf_registry_meta")) {
                    check_new_min_distance(opt);
                    exec("CREATE TABLE sgf_registry_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
                    exec("CREATE TABLE fingerprints(id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL UNIQUE, "
                         "fingerprint TEXT NOT NULL UNIQUE, issued_at TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '')");
                    set_meta("schema_version", std::to_string(kSchemaVersion));
                    set_meta("bits", std::to_string(opt.bits));
                    set_meta("min_distance", std::to_string(opt.min_distance < 0 ? default_min_distance(opt.bits) : opt.min_distance));
                }
                exec("COMMIT");
            } catch (...) {
                exec_noexcept("ROLLBACK");
                throw;
            }
        }
        const auto ver = get_meta("schema_version"), bits = get_meta("bits"), md = get_meta("min_distance");
        if (!ver || !bits || !md) SGF_THROW(FormatError, "{}: registry metadata is incomplete", path_);
        if (meta_int("schema_version", *ver, 0, 1 << 30) != kSchemaVersion)
            SGF_THROW(FormatError, "{}: registry schema version {} (this sgf reads {})", path_, *ver, kSchemaVersion);
        bits_ = meta_int("bits", *bits, 1, 65536);
        min_distance_ = meta_int("min_distance", *md, 0, bits_);  // sgf never stores more than the bits
        if (bits_ != opt.bits) matcher_ = Matcher(bits_);
        refresh();
    }

    /// A registry being created stores its minimum distance: it must fit its bits.
    void check_new_min_distance(const RegistryOptions& opt) const {
        SGF_CHECK(opt.min_distance <= opt.bits, ArgumentError,
                  "{}: the minimum Hamming distance must be in 0..{} (the fingerprint bits), got {}", path_, opt.bits,
                  opt.min_distance);
    }

    /// A metadata value as an integer in [lo, hi]; FormatError naming the file otherwise.
    int meta_int(const char* key, const std::string& v, long lo, long hi) const {
        long x = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        if (ec != std::errc() || end != v.data() + v.size() || x < lo || x > hi)
            SGF_THROW(FormatError, "{}: registry metadata '{}' = '{}' is not an integer in {}..{}", path_, key, v, lo, hi);
        return static_cast<int>(x);
    }

public:
    ~Registry() { close(); }
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;
    /// Movable (into a std::optional, a container, a member): the connection moves with it, and every
    /// call on the moved-from object is an ArgumentError. Moving from inside a write's before_commit
    /// callback is refused.
    Registry(Registry&& o) {
        std::scoped_lock lock(o.mu_);
        SGF_CHECK(!o.in_txn_, ArgumentError, "registry {}: cannot be moved inside its own write", o.path_);
        take(o);
    }
    Registry& operator=(Registry&& o) {
        if (this != &o) {
            std::scoped_lock lock(mu_, o.mu_);
            SGF_CHECK(!in_txn_ && !o.in_txn_, ArgumentError, "registry {}: cannot be moved or assigned to inside its own write",
                      in_txn_ ? path_ : o.path_);
            close();
            take(o);
        }
        return *this;
    }

    const std::string& path() const { return path_; }
    int bits() const { return bits_; }
    /// ArgumentError naming the file unless the registry holds `model_bits`-bit fingerprints: a file
    /// keeps the length it was created with, whatever RegistryOptions::bits says when it is opened.
    void require_bits(int model_bits) const {
        SGF_CHECK(bits_ == model_bits, ArgumentError, "{}: the registry holds {}-bit fingerprints, but the model uses {}-bit fingerprints",
                  path_, bits_, model_bits);
    }
    int min_distance() const { return min_distance_; }
    std::int64_t size() {
        std::scoped_lock lock(mu_);
        refresh();
        return matcher_.size();
    }
    /// A snapshot of the in-memory matcher over every issued fingerprint (refreshed from the file):
    /// a copy, so that it stays valid while other threads issue; attribute many codes with it
    /// without a query per code.
    Matcher matcher() {
        std::scoped_lock lock(mu_);
        refresh();
        return matcher_;
    }

    /// Issues a new random fingerprint under `label`. `seed` makes the draw reproducible (tests).
    RegistryEntry issue(const std::string& label, const std::string& metadata = "", std::optional<std::uint64_t> seed = {}) {
        return write_txn([&] { return issue_one(label, metadata, seed); });
    }

    /// Issues one fingerprint per label of `req` (the explicit labels, then `numbered` labels
    /// "<numbered_prefix><n>", n counting on from the registry's size, six digits zero-padded, skipping
    /// numbers whose label is already taken) in one transaction: all of them, or (on any error: an
    /// explicit label already issued, a repeated label, a full registry) none.
    struct IssueRequest {
        std::vector<std::string> labels;
        std::string numbered_prefix = "user";
        std::int64_t numbered = 0;
        std::string metadata;
    };
    /// The label of the n-th numbered entry: "<prefix><n>", six digits zero-padded.
    static std::string numbered_label(const std::string& prefix, std::int64_t n) { return fmt::format("{}{:06d}", prefix, n); }

    /// ArgumentError (prefixed with `where`) unless one request can issue `n` fingerprints: at most
    /// kMaxImportRows, since one transaction holds the write lock. Callers can check before they
    /// create or open a registry.
    static void check_request_size(std::int64_t n, const std::string& where) {
        SGF_CHECK(n <= std::int64_t(kMaxImportRows), ArgumentError,
                  "{}: {} fingerprints in one request exceed the limit of {} (one transaction holds the write lock)", where, n,
                  kMaxImportRows);
    }

    /// Issues every label of `req` in one transaction, or none. `before_commit`, when given, sees the
    /// new entries inside the transaction, before it commits: if it throws (say, the caller could not
    /// print the fingerprints it issues), the transaction rolls back and nothing is issued.
    std::vector<RegistryEntry> issue_all(const IssueRequest& req,
                                         const std::function<void(const std::vector<RegistryEntry>&)>& before_commit = {}) {
        SGF_CHECK(req.numbered >= 0, ArgumentError, "{}: cannot issue a negative number ({}) of fingerprints", path_, req.numbered);
        check_request_size(req.numbered, path_);  // first alone: the sum below must not overflow
        check_request_size(req.numbered + std::int64_t(std::min(req.labels.size(), kMaxImportRows + 1)), path_);
        return write_txn([&] {
            std::vector<RegistryEntry> out;
            std::int64_t n = static_cast<std::int64_t>(matcher_.size());  // read inside the transaction
            for (const auto& l : req.labels) out.push_back(issue_one(l, req.metadata, {}));
            for (std::int64_t i = 0; i < req.numbered; ++i) {
                // Skip numbers whose label is taken (an imported row, or an explicit label above).
                while (find(numbered_label(req.numbered_prefix, n))) ++n;
                out.push_back(issue_one(numbered_label(req.numbered_prefix, n++), req.metadata, {}));
            }
            if (before_commit) before_commit(out);
            return out;
        });
    }

    /// Strict UTF-8 (sgf::is_valid_utf8, kept here for callers of the registry's API).
    static bool is_valid_utf8(std::string_view s) noexcept { return sgf::is_valid_utf8(s); }

    /// Throws ArgumentError (prefixed with `where`) unless `label` and `metadata` can be stored: a
    /// non-empty label of at most kMaxLabelBytes, metadata of at most kMaxMetadataBytes, no NUL
    /// characters (SQLite binds C strings: a NUL would silently cut the stored text short), both
    /// valid UTF-8 (they end up in JSON output and model-file headers), and no control characters
    /// in a label (a tab or newline would break the `label<TAB>hex` lines of `sgf issue`; escape
    /// sequences would reach the terminal). Callers can check a whole batch before they create or
    /// open a registry.
    static void check_entry(const std::string& label, const std::string& metadata, const std::string& where) {
        SGF_CHECK(!label.empty(), ArgumentError, "{}: labels must not be empty", where);
        SGF_CHECK(label.size() <= kMaxLabelBytes && label.find('\0') == std::string::npos, ArgumentError,
                  "{}: a label must be at most {} bytes without NUL characters (got {} bytes)", where, kMaxLabelBytes, label.size());
        SGF_CHECK(is_valid_utf8(label), ArgumentError, "{}: label '{}' is not valid UTF-8", where, printable(label));
        for (std::size_t i = 0; i < label.size(); ++i) {
            const auto u = static_cast<unsigned char>(label[i]);
            SGF_CHECK(u >= 0x20 && u != 0x7f, ArgumentError,
                      "{}: label '{}' holds a control character (byte 0x{:02x}): labels are printable text", where, printable(label), u);
            SGF_CHECK(!is_c1_control_at(label, i), ArgumentError,
                      "{}: label '{}' holds a C1 control character (U+{:04X}): labels are printable text", where, printable(label),
                      static_cast<unsigned char>(label[i + 1]));
        }
        SGF_CHECK(metadata.size() <= kMaxMetadataBytes && metadata.find('\0') == std::string::npos, ArgumentError,
                  "{}: metadata of '{}' must be at most {} bytes without NUL characters (got {} bytes)", where, label,
                  kMaxMetadataBytes, metadata.size());
        SGF_CHECK(is_valid_utf8(metadata), ArgumentError, "{}: metadata of '{}' is not valid UTF-8", where, label);
    }

    /// Registers an explicit fingerprint (checked against the minimum distance and duplicates).
    RegistryEntry add(const std::string& label, const Fingerprint& f, const std::string& metadata = "") {
        return write_txn([&] {
            SGF_CHECK(f.bits() == bits_, ArgumentError, "{}: fingerprint has {} bits, the registry uses {}", path_, f.bits(), bits_);
            const std::int64_t near = too_close(f);
            if (near >= 0) {
                SGF_THROW(ArgumentError, "{}: {}", path_,
                          conflict_text(fmt::format("fingerprint {}", f.hex()), distance_to(f, near), printable(matcher_.label(near)),
                                        fmt::format("'{}'", printable(matcher_.label(near)))));
            }
            return insert(label, f, metadata);
        });
    }

    /// The entry labelled exactly `label` (every byte: a label with a NUL or longer than
    /// kMaxLabelBytes cannot be stored, so it finds nothing).
    std::optional<RegistryEntry> find(const std::string& label) {
        std::scoped_lock lock(mu_);
        check_open();  // a moved-from object is an error for every label, also one that cannot be stored
        if (label.size() > kMaxLabelBytes || label.find('\0') != std::string::npos) return std::nullopt;
        sqlite3_stmt* s = prepare("SELECT id, label, fingerprint, issued_at, metadata FROM fingerprints WHERE label = ?");
        sqlite3_bind_text(s, 1, label.data(), int(label.size()), SQLITE_TRANSIENT);
        std::optional<RegistryEntry> out;
        if (step(s) == SQLITE_ROW) out = row(s);
        sqlite3_reset(s);
        return out;
    }
    std::vector<RegistryEntry> all() {
        std::scoped_lock lock(mu_);
        sqlite3_stmt* s = prepare("SELECT id, label, fingerprint, issued_at, metadata FROM fingerprints ORDER BY id");
        std::vector<RegistryEntry> out;
        while (step(s) == SQLITE_ROW) out.push_back(row(s));
        sqlite3_reset(s);
        return out;
    }

    Attribution attribute(const Fingerprint& decoded, const AttributionRule& rule = {}) {
        std::scoped_lock lock(mu_);
        refresh();
        return matcher_.attribute(decoded, rule, path_);  // its messages name the file
    }
    /// From the decoder's output: scored as rule.score says (Matcher::attribute with logits).
    Attribution attribute(const Fingerprint& decoded, std::span<const float> logits, const AttributionRule& rule) {
        std::scoped_lock lock(mu_);
        refresh();
        return matcher_.attribute(decoded, logits, rule, path_);
    }

    // ---- import / export: CSV columns label,fingerprint,issued_at,metadata; JSON an array of objects
    /// FormatError naming the entry when a text field is not UTF-8 (the file was changed by other
    /// software: sgf stores only UTF-8), since JSON cannot carry it unchanged; export_csv copies bytes.
    std::string export_json() {
        nlohmann::json j = nlohmann::json::array();
        const auto entries = all();
        for (const auto& e : entries)
            j.push_back({{"label", e.label}, {"fingerprint", e.fingerprint.hex()}, {"issued_at", e.issued_at}, {"metadata", e.metadata}});
        try {
            return j.dump(2);
        } catch (const nlohmann::json::type_error&) {
            for (std::size_t i = 0; i < entries.size(); ++i)
                for (const auto* field : {&entries[i].label, &entries[i].issued_at, &entries[i].metadata})
                    if (!is_valid_utf8(*field))
                        SGF_THROW(FormatError,
                                  "{}: entry {} (fingerprint {}) holds text that is not valid UTF-8 (written by other software), "
                                  "which JSON cannot carry unchanged; export it as CSV, which copies the bytes",
                                  path_, i + 1, entries[i].fingerprint.hex());
            throw;
        }
    }
    std::string export_csv() {
        std::string out = "label,fingerprint,issued_at,metadata\n";
        for (const auto& e : all())
            out += csv_field(e.label) + "," + e.fingerprint.hex() + "," + csv_field(e.issued_at) + "," + csv_field(e.metadata) + "\n";
        return out;
    }
    /// All-or-nothing: every row is validated and inserted in one transaction; errors name the row.
    std::int64_t import_json(const std::string& text, const std::string& source = "import") {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            SGF_THROW(FormatError, "{}: not valid JSON: {}", source, e.what());
        }
        if (!j.is_array()) SGF_THROW(FormatError, "{}: expected a JSON array of entries", source);
        if (j.size() > kMaxImportRows)
            SGF_THROW(FormatError, "{}: {} entries exceed the limit of {} per import", source, j.size(), kMaxImportRows);
        std::vector<ImportRow> rows;
        for (std::size_t i = 0; i < j.size(); ++i) {
            const auto& o = j[i];
            if (!o.is_object() || !o.contains("label") || !o.contains("fingerprint") || !o["label"].is_string() ||
                !o["fingerprint"].is_string())
                SGF_THROW(FormatError, "{}: entry {} needs string fields 'label' and 'fingerprint'", source, i + 1);
            auto optional_text = [&](const char* key) {
                if (!o.contains(key)) return std::string();
                if (!o[key].is_string()) SGF_THROW(FormatError, "{}: entry {}: '{}' must be a string", source, i + 1, key);
                return o[key].get<std::string>();
            };
            rows.push_back(make_row(o["label"].get<std::string>(), o["fingerprint"].get<std::string>(), optional_text("issued_at"),
                                    optional_text("metadata"), source, fmt::format("entry {}", i + 1)));
        }
        return import_rows(rows);
    }
    /// CSV with the header `label,fingerprint[,issued_at[,metadata]]` (exactly those names, in that
    /// order; a UTF-8 byte-order mark before it is skipped). Errors name the physical line.
    std::int64_t import_csv(const std::string& text, const std::string& source = "import") {
        static const std::vector<std::string> kColumns = {"label", "fingerprint", "issued_at", "metadata"};
        std::vector<ImportRow> rows;
        std::size_t pos = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
        int line = 1;             // physical line where the next record starts
        std::size_t columns = 0;  // from the header
        while (pos < text.size()) {
            const int record_line = line;
            const std::size_t start = pos;
            std::vector<std::string> f = parse_csv_record(text, pos, source, record_line);
            line += int(std::count(text.begin() + std::ptrdiff_t(start), text.begin() + std::ptrdiff_t(pos), '\n'));
            if (columns == 0) {
                const bool known = f.size() >= 2 && f.size() <= kColumns.size() && std::equal(f.begin(), f.end(), kColumns.begin());
                if (!known)
                    SGF_THROW(FormatError, "{}: line {}: expected the header label,fingerprint[,issued_at[,metadata]] (those names, in "
                                           "that order), got '{}'",
                              source, record_line, printable(fmt::format("{}", fmt::join(f, ",")), 200));
                columns = f.size();
                continue;
            }
            if (f.size() == 1 && f[0].empty()) continue;
            if (f.size() < 2 || f.size() > columns)
                SGF_THROW(FormatError, "{}: line {}: expected 2 to {} fields (the header's columns), got {}", source, record_line,
                          columns, f.size());
            f.resize(4);
            if (rows.size() == kMaxImportRows)
                SGF_THROW(FormatError, "{}: line {}: more than {} rows in one import", source, record_line, kMaxImportRows);
            rows.push_back(make_row(f[0], f[1], f[2], f[3], source, fmt::format("line {}", record_line)));
        }
        if (columns == 0) SGF_THROW(FormatError, "{}: empty: expected the header label,fingerprint[,issued_at[,metadata]]", source);
        return import_rows(rows);
    }

private:
    /// Finalises every cached statement first: sqlite3_close refuses (and leaks the connection)
    /// while prepared statements are alive.
    void close() noexcept {
        for (auto* s : cache_) sqlite3_finalize(s);
        cache_.clear();
        sqls_.clear();
        if (db_) sqlite3_close(db_);
        db_ = nullptr;
    }

    static void check_sqlite_header(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        if (!in) SGF_THROW(IoError, "{}: cannot open", p.string());
        char h[16] = {};
        in.read(h, 16);
        const auto got = in.gcount();
        if (got == 0) return;  // empty file: becomes a new registry
        if (got < 16 || std::memcmp(h, "SQLite format 3\0", 16) != 0)
            SGF_THROW(FormatError, "{}: not an SQLite database (so not an sgf registry); refusing to touch it", p.string());
    }

    static std::string now_utc() {
        const std::time_t t = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&t, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
    }
    static std::string csv_field(const std::string& s) {
        if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
        std::string o = "\"";
        for (char c : s) {
            if (c == '"') o += '"';
            o += c;
        }
        return o + "\"";
    }
    static std::vector<std::string> parse_csv_record(const std::string& t, std::size_t& pos, const std::string& src, int line) {
        std::vector<std::string> fields(1);
        bool quoted = false;
        while (pos < t.size()) {
            const char c = t[pos++];
            if (quoted) {
                if (c == '"') {
                    if (pos < t.size() && t[pos] == '"') {
                        fields.back() += '"';
                        ++pos;
                    } else quoted = false;
                } else fields.back() += c;
            } else if (c == '"' && fields.back().empty()) quoted = true;
            else if (c == ',') fields.emplace_back();
            else if (c == '\n') return fields;
            else if (c != '\r') fields.back() += c;
        }
        if (quoted) SGF_THROW(FormatError, "{}: line {}: unterminated quoted field", src, line);
        return fields;
    }

    struct ImportRow {
        RegistryEntry entry;
        std::string source;    ///< the input's name
        std::string position;  ///< "line 5" (CSV) / "entry 3" (JSON)
        std::string where() const { return source + ": " + position; }  ///< how messages name the row
    };
    ImportRow make_row(const std::string& label, const std::string& hex, const std::string& issued, const std::string& meta,
                       const std::string& source, std::string position) {
        ImportRow r{{}, source, std::move(position)};
        const std::string where = r.where();
        if (label.empty()) SGF_THROW(FormatError, "{}: empty label", where);
        try {
            r.entry.fingerprint = Fingerprint::parse(hex, bits_);
        } catch (const ArgumentError& err) {
            SGF_THROW(FormatError, "{}: {}", where, err.what());
        }
        r.entry.label = label;
        r.entry.issued_at = issued.empty() ? now_utc() : issued;
        r.entry.metadata = meta;
        return r;
    }

    std::int64_t import_rows(const std::vector<ImportRow>& rows) {
        return write_txn([&] {
            // entries from first_new on were inserted by this import (the matcher appends in order)
            const std::int64_t first_new = matcher_.size();
            for (const ImportRow& r : rows) {
                const RegistryEntry& e = r.entry;
                const std::int64_t near = too_close(e.fingerprint);
                if (near >= 0) {
                    const int d = distance_to(e.fingerprint, near);
                    const bool same_label = matcher_.label(near) == e.label;  // the stored bytes, not their printable form
                    const std::string label = printable(e.label), other = printable(matcher_.label(near));
                    const std::string subject = fmt::format("the fingerprint of '{}'", label);
                    if (near >= first_new) {  // two rows of this input: name the earlier one ("line 2", "entry 1")
                        const std::string& earlier = rows[std::size_t(near - first_new)].position;
                        if (same_label)
                            SGF_THROW(FormatError, "{}: '{}' is given twice (also on {}); nothing was imported", r.where(), label, earlier);
                        if (d == 0)
                            SGF_THROW(FormatError, "{}: {} is the same as that of '{}' on {}; nothing was imported", r.where(), subject,
                                      other, earlier);
                        SGF_THROW(FormatError, "{}: {}; nothing was imported", r.where(),
                                  conflict_text(subject, d, other, fmt::format("that of '{}' on {}", other, earlier)));
                    }
                    if (same_label && d == 0)  // e.g. an export of this registry imported into it again
                        SGF_THROW(FormatError, "{}: '{}' is already in the registry with this fingerprint; nothing was imported",
                                  r.where(), label);
                    if (same_label)
                        SGF_THROW(FormatError, "{}: '{}' is already in the registry, with a fingerprint {} from this one; nothing "
                                  "was imported", r.where(), label, count_of(d, "bit"));
                    SGF_THROW(FormatError, "{}: {}; nothing was imported", r.where(),
                              conflict_text(subject, d, other, fmt::format("that of '{}'", other)));
                }
                try {
                    insert(e.label, e.fingerprint, e.metadata, e.issued_at);
                } catch (const ArgumentError& err) {
                    SGF_THROW(FormatError, "{}: {}; nothing was imported", r.where(), err.what());
                }
            }
            return static_cast<std::int64_t>(rows.size());
        });
    }

    /// Hamming distance from f to the issued code at matcher index `idx`.
    int distance_to(const Fingerprint& f, std::int64_t idx) const {
        return f.hamming(Fingerprint::parse(fingerprint_hex(idx), bits_));
    }
    /// Why `subject` (a fingerprint being added) cannot be stored, `d` bits from an issued code:
    /// "<subject> is already issued, to '<holder>'" (d = 0) or "<subject> is N bits from <other>,
    /// below the minimum distance M". Shared by add() and the imports.
    std::string conflict_text(const std::string& subject, int d, const std::string& holder, const std::string& other) const {
        if (d == 0) return fmt::format("{} is already issued, to '{}'", subject, holder);
        return fmt::format("{} is {} from {}, below the minimum distance {}", subject, count_of(d, "bit"), other, min_distance_);
    }

    /// Inside a write transaction: draws until a code is at least min_distance from every issued one.
    RegistryEntry issue_one(const std::string& label, const std::string& metadata, std::optional<std::uint64_t> seed) {
        for (int attempt = 0; attempt < 10000; ++attempt) {
            const Fingerprint f =
                seed ? Fingerprint::from_seed(bits_, *seed * 1000003ull + std::uint64_t(attempt)) : Fingerprint::random(bits_);
            if (too_close(f) < 0) return insert(label, f, metadata);
        }
        SGF_THROW(ArgumentError, "{}: no new fingerprint at distance >= {} from all {} issued ones (and distinct from each) after 10000 draws: the registry is "
                                 "full for its minimum distance (set when it was created: issue --min-distance)",
                  path_, min_distance_, matcher_.size());
    }

    /// Index of an issued code closer than min_distance, or identical to f (also at min_distance 0:
    /// the file keeps fingerprints unique), or -1.
    std::int64_t too_close(const Fingerprint& f) const {
        std::int64_t i1, i2;
        int m1, m2;
        matcher_.best_two(f, i1, m1, i2, m2);
        return (i1 >= 0 && (m1 == bits_ || bits_ - m1 < min_distance_)) ? i1 : -1;
    }

    template <class F>
    std::invoke_result_t<F&> write_txn(F&& body) {
        std::scoped_lock lock(mu_);
        // issue/add/import from issue_all's before_commit (same thread, mutex held): SQLite has no
        // nested transactions, and the outer one would commit or roll back both
        SGF_CHECK(!in_txn_, ArgumentError, "{}: a registry write (issue, add, import) cannot run inside another one (e.g. from "
                                           "issue_all's before_commit)", path_);
        in_txn_ = true;
        struct Clear {
            bool& flag;
            ~Clear() { flag = false; }
        } clear{in_txn_};
        exec("BEGIN IMMEDIATE");
        try {
            refresh();
            const std::size_t n_before = matcher_.size();
            auto result = body();
            exec("COMMIT");
            (void)n_before;
            return result;
        } catch (...) {
            exec_noexcept("ROLLBACK");
            // the in-memory copy may hold rows of the rolled-back transaction: rebuild it
            matcher_ = Matcher(bits_);
            hex_.clear();
            last_id_ = 0;
            refresh();
            throw;
        }
    }

    RegistryEntry insert(const std::string& label, const Fingerprint& f, const std::string& metadata, std::string issued = "") {
        check_entry(label, metadata, path_);
        SGF_CHECK(issued.size() <= 64 && std::all_of(issued.begin(), issued.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; }),
                  ArgumentError,
                  "{}: issued_at of '{}' must be at most 64 printable ASCII characters (a time stamp such as "
                  "2026-12-05T14:00:00Z), got '{}'",
                  path_, label, printable(issued, 80));
        if (issued.empty()) issued = now_utc();
        sqlite3_stmt* s = prepare("INSERT INTO fingerprints(label, fingerprint, issued_at, metadata) VALUES(?, ?, ?, ?)");
        const std::string hex = f.hex();
        sqlite3_bind_text(s, 1, label.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, hex.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, issued.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, metadata.c_str(), -1, SQLITE_TRANSIENT);
        const int rc = sqlite3_step(s);
        const int code = sqlite3_extended_errcode(db_);
        const std::string msg = sqlite3_errmsg(db_);
        sqlite3_reset(s);
        if (rc == SQLITE_CONSTRAINT) SGF_THROW(ArgumentError, "{}: label '{}' (or its fingerprint) is already issued", path_, label);
        if (rc != SQLITE_DONE) fail(code, "insert failed", msg);  // a full disk, a lock, a read-only file: IoError
        const std::int64_t id = sqlite3_last_insert_rowid(db_);
        matcher_.add(f, label);
        hex_.push_back(hex);
        last_id_ = id;
        return RegistryEntry{id, label, f, issued, metadata};
    }

    void refresh() {
        sqlite3_stmt* s = prepare("SELECT id, label, fingerprint FROM fingerprints WHERE id > ? ORDER BY id");
        sqlite3_bind_int64(s, 1, last_id_);
        while (step(s) == SQLITE_ROW) {
            const std::int64_t id = sqlite3_column_int64(s, 0);
            const std::string label = text(s, 1), hex = text(s, 2);
            Fingerprint f;
            try {
                f = Fingerprint::parse(hex, bits_);
            } catch (const ArgumentError& e) {
                sqlite3_reset(s);
                SGF_THROW(FormatError, "{}: row {} holds a malformed fingerprint: {}", path_, id, e.what());
            }
            matcher_.add(f, label);
            hex_.push_back(hex);
            last_id_ = id;
        }
        sqlite3_reset(s);
    }
    const std::string& fingerprint_hex(std::int64_t idx) const { return hex_[std::size_t(idx)]; }

    RegistryEntry row(sqlite3_stmt* s) const {
        return RegistryEntry{sqlite3_column_int64(s, 0), text(s, 1), Fingerprint::parse(text(s, 2), bits_), text(s, 3), text(s, 4)};
    }
    static std::string text(sqlite3_stmt* s, int col) {
        const auto* p = sqlite3_column_text(s, col);
        return p ? reinterpret_cast<const char*>(p) : "";
    }
    /// SQLite's answer `rc` as sgf's error: the file cannot be read or written as asked (permissions,
    /// a read-only folder, a lock held past the busy timeout, a full disk, an I/O error: IoError, exit 3)
    /// or its content is not what a registry holds (FormatError, exit 4).
    [[noreturn]] void fail(int rc, const std::string& what, const std::string& msg) const {
        const int primary = rc & 0xff;
        std::string hint;
        if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN)
            hint = " (SQLite reads and writes a registry through its write-ahead log: its folder must be writable by this user, "
                   "for the -wal and -shm files beside it, unless it lies on read-only storage, a read-only mount or an "
                   "immutable folder, with no pending -wal file)";
        else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
            hint = " (another process holds the registry locked)";
        switch (primary) {
            case SQLITE_READONLY: case SQLITE_CANTOPEN: case SQLITE_IOERR: case SQLITE_PERM: case SQLITE_BUSY:
            case SQLITE_LOCKED: case SQLITE_FULL: case SQLITE_NOMEM: case SQLITE_AUTH:
                SGF_THROW(IoError, "{}: {}: {}{}", path_, what, msg, hint);
            case SQLITE_CORRUPT: case SQLITE_NOTADB:  // it began like SQLite (check_sqlite_header), its pages do not
                SGF_THROW(FormatError,
                          "{}: the registry file is damaged (SQLite: {}); restore it from a backup or re-create it from an "
                          "export (sgf registry import)",
                          path_, msg);
            default: SGF_THROW(FormatError, "{}: {}: {}", path_, what, msg);
        }
    }
    int step(sqlite3_stmt* s) {
        const int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            const int code = sqlite3_extended_errcode(db_);
            const std::string msg = sqlite3_errmsg(db_);
            sqlite3_reset(s);
            fail(code, "query failed", msg);
        }
        return rc;
    }
    void take(Registry& o) {  // the callers hold o's lock (assignment also this one's) and have checked in_txn_
        path_ = std::move(o.path_);
        db_ = std::exchange(o.db_, nullptr);
        bits_ = o.bits_;
        min_distance_ = o.min_distance_;
        matcher_ = std::move(o.matcher_);
        hex_ = std::move(o.hex_);
        last_id_ = std::exchange(o.last_id_, 0);
        sqls_ = std::move(o.sqls_);
        cache_ = std::move(o.cache_);
        o.sqls_.clear();
        o.cache_.clear();
    }
    void check_open() const {
        SGF_CHECK(db_ != nullptr, ArgumentError, "registry: this Registry object was moved from (use the one it was moved into)");
    }
    sqlite3_stmt* prepare(const char* sql) {
        check_open();
        for (std::size_t i = 0; i < sqls_.size(); ++i)
            if (sqls_[i] == sql) return cache_[i];
        sqlite3_stmt* s = nullptr;
        if (const int rc = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr); rc != SQLITE_OK)
            fail(sqlite3_extended_errcode(db_), "cannot prepare a query", sqlite3_errmsg(db_));
        sqls_.push_back(sql);
        cache_.push_back(s);
        return s;
    }
    void exec(const char* sql) {
        check_open();
        char* err = nullptr;
        if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
            const std::string msg = err ? err : sqlite3_errmsg(db_);
            sqlite3_free(err);
            fail(sqlite3_extended_errcode(db_), fmt::format("{} failed", sql), msg);
        }
    }
    void exec_noexcept(const char* sql) noexcept { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
    /// Switches the file to WAL (persistent, so a no-op once done). The switch needs a moment of
    /// exclusive access, and SQLite answers SQLITE_BUSY at once, without the busy handler, while another
    /// connection holds a lock (seen with two processes creating the same registry on a 16-core machine):
    /// retry until the busy timeout.
    void enable_wal(int timeout_ms) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (int attempt = 0;; ++attempt) {
            const int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
            if (rc == SQLITE_OK) return;
            const bool busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
            if (!busy || std::chrono::steady_clock::now() >= deadline)
                fail(rc, "PRAGMA journal_mode=WAL failed", sqlite3_errmsg(db_));
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 1 + attempt)));
        }
    }
    bool table_exists(const char* name) {
        sqlite3_stmt* s = prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?");
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        step(s);
        const bool yes = sqlite3_column_int(s, 0) > 0;
        sqlite3_reset(s);
        return yes;
    }
    /// The number of tables and whether sgf_registry_meta is one of them, read in one statement.
    std::pair<int, bool> table_census() {
        sqlite3_stmt* s = prepare(
            "SELECT count(*), coalesce(sum(name = 'sgf_registry_meta'), 0) FROM sqlite_master WHERE type='table'");
        step(s);
        const std::pair<int, bool> out{sqlite3_column_int(s, 0), sqlite3_column_int(s, 1) > 0};
        sqlite3_reset(s);
        return out;
    }
    void set_meta(const std::string& k, const std::string& v) {
        sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO sgf_registry_meta(key, value) VALUES(?, ?)");
        sqlite3_bind_text(s, 1, k.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, v.c_str(), -1, SQLITE_TRANSIENT);
        step(s);
        sqlite3_reset(s);
    }
    std::optional<std::string> get_meta(const std::string& k) {
        sqlite3_stmt* s = prepare("SELECT value FROM sgf_registry_meta WHERE key = ?");
        sqlite3_bind_text(s, 1, k.c_str(), -1, SQLITE_TRANSIENT);
        std::optional<std::string> out;
        if (step(s) == SQLITE_ROW) out = text(s, 0);
        sqlite3_reset(s);
        return out;
    }

    std::string path_;
    sqlite3* db_ = nullptr;
    int bits_ = 128, min_distance_ = 32;
    Matcher matcher_;
    std::recursive_mutex mu_;  ///< every public call holds it: db_, the cached statements and matcher_ are shared state
    bool in_txn_ = false;      ///< inside write_txn (a nested write is refused)
    std::vector<std::string> hex_;
    std::int64_t last_id_ = 0;
    std::vector<const char*> sqls_;
    std::vector<sqlite3_stmt*> cache_;
};

}  // namespace sgf
