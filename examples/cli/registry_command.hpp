// `sgf registry list|lookup|export|import`: reading and moving a fingerprint registry without sqlite3
// (docs/cli.md). Thin wrappers over sgf::Registry: list and lookup open the file read-only, export
// writes atomically (or to stdout), import inserts all rows or none.
#pragma once

#include "commands.hpp"  // Common, emit, terminal_safe, exit codes

#include <sgf/fingerprint.hpp>
#include <sgf/io/atomic_file.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace sgf_cli {

struct RegistryArgs {
    std::string registry, label, file, out, format;
    std::string registry_option;  ///< --registry FILE: then the positionals are LABEL (lookup) or INPUT (import) alone
    int bits = 0, min_distance = -1;
    CLI::App *list = nullptr, *lookup = nullptr, *exp = nullptr, *imp = nullptr;
};

inline void add_registry_options(CLI::App& app, RegistryArgs& a) {
    app.require_subcommand(1);
    app.fallthrough();  // --json after the action still reaches the top level
    // FILE is the first positional or --registry FILE (as for issue and verify), in any order: the
    // positionals are read into the slots in order and shifted by resolve_registry_args
    const char* file_help = "registry file (SQLite), or give it as --registry FILE";
    a.list = app.add_subcommand("list", "every issued fingerprint: label, fingerprint, time of issue");
    a.list->add_option("registry", a.registry, file_help);
    a.lookup = app.add_subcommand("lookup", "one label's fingerprint, time of issue and metadata");
    a.lookup->add_option("registry", a.registry, file_help);
    a.lookup->add_option("label", a.label, "the label");
    a.exp = app.add_subcommand("export", "the whole registry as CSV or JSON (stdout, or --out FILE written atomically)");
    a.exp->add_option("registry", a.registry, file_help);
    a.exp->add_option("--out", a.out, "write into this file (replaced atomically) instead of stdout");
    a.exp->add_option("--format", a.format, "csv or json (default: from --out's extension, else json)")
        ->check(CLI::IsMember({"csv", "json"}));
    a.imp = app.add_subcommand("import", "add the rows of a CSV or JSON export (all or none); creates the registry when missing");
    a.imp->add_option("registry", a.registry, file_help);
    a.imp->add_option("input", a.file, "CSV (label,fingerprint[,issued_at[,metadata]]) or JSON array of entries");
    a.imp->add_option("--format", a.format, "csv or json (default: from the file's extension, else its first character)")
        ->check(CLI::IsMember({"csv", "json"}));
    a.imp->add_option("--bits", a.bits, "fingerprint length of a new registry (default 128)")->check(CLI::Range(1, 65536));
    a.imp->add_option("--min-distance", a.min_distance, "minimum Hamming distance of a new registry (default bits/4)")
        ->check(CLI::Range(0, 65536));
    for (CLI::App* sub : {a.list, a.lookup, a.exp, a.imp})
        sub->add_option("--registry", a.registry_option, "registry file (instead of the first positional)");
}

/// The registry file from the first positional or from --registry, and the second argument of lookup
/// (LABEL) and import (INPUT) from whichever positional slot holds it; a missing or doubled one is a
/// usage error naming the subcommand's synopsis.
inline RegistryArgs resolve_registry_args(RegistryArgs a) {
    const bool lookup = bool(*a.lookup), import = bool(*a.imp);
    const char* name = *a.list ? "list" : lookup ? "lookup" : *a.exp ? "export" : "import";
    const std::string second_name = lookup ? "LABEL" : "INPUT";
    std::string& second = lookup ? a.label : a.file;
    const std::string rest = lookup || import ? " " + second_name : "";
    const std::string synopsis = fmt::format("sgf registry {} FILE{} (or --registry FILE{})", name, rest, rest);
    auto usage = [&](const std::string& problem) { SGF_THROW(ArgumentError, "registry {}: {}; usage: {}", name, problem, synopsis); };
    const CLI::App* sub = *a.list ? a.list : lookup ? a.lookup : *a.exp ? a.exp : a.imp;
    if (sub->count("--registry") > 0) {
        if (a.registry_option.empty()) usage("--registry names no file");
        if (lookup || import) {
            if (!second.empty()) usage("the registry file is given twice (--registry and a positional)");
            second = a.registry;  // what the parser put in FILE's slot is LABEL / INPUT
        } else if (!a.registry.empty()) {
            usage("the registry file is given twice (--registry and a positional)");
        }
        a.registry = a.registry_option;
    }
    if (a.registry.empty()) usage("no registry file given");
    if ((lookup || import) && second.empty()) usage(fmt::format("no {} given", second_name));
    return a;
}

namespace detail {

inline nlohmann::json entry_json(const sgf::RegistryEntry& e) {
    return {{"label", e.label}, {"fingerprint", e.fingerprint.hex()}, {"issued_at", e.issued_at}, {"metadata", e.metadata}};
}

inline sgf::Registry open_existing(const std::string& path) { return sgf::Registry(path, sgf::RegistryOptions::existing_read_only()); }

/// "csv" or "json": --format, else the extension of `path`, else `fallback`.
inline std::string format_of(const std::string& format, const std::string& path, const std::string& fallback) {
    if (!format.empty()) return format;
    std::string ext = std::filesystem::path(path).extension().string();
    for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (ext == ".csv") return "csv";
    if (ext == ".json") return "json";
    return fallback;
}

/// The first non-blank position of `text`, after a UTF-8 byte-order mark.
inline std::size_t content_start(const std::string& text) {
    const std::size_t from = text.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
    const auto p = text.find_first_not_of(" \t\r\n", from);
    return p == std::string::npos ? text.size() : p;
}

/// Whether `head` (the start of a file) begins like a registry export: the CSV header line that
/// export_csv writes, or a JSON array that is empty or whose first entry opens with one of the
/// entry's keys (`[ { "fingerprint": ...`, as export_json writes it, or another key order).
inline bool looks_like_an_export(const std::string& head) {
    std::size_t i = content_start(head);
    const std::string csv_header = "label,fingerprint,issued_at,metadata";
    if (head.compare(i, csv_header.size(), csv_header) == 0) {
        const std::size_t e = i + csv_header.size();
        return e == head.size() || head[e] == '\n' || head.compare(e, 2, "\r\n") == 0;
    }
    auto skip_blank = [&](std::size_t p) { return std::min(head.find_first_not_of(" \t\r\n", p), head.size()); };
    if (i >= head.size() || head[i] != '[') return false;
    i = skip_blank(i + 1);
    if (i < head.size() && head[i] == ']') return skip_blank(i + 1) == head.size();
    if (i >= head.size() || head[i] != '{') return false;
    i = skip_blank(i + 1);
    for (const char* key : {"\"fingerprint\"", "\"issued_at\"", "\"label\"", "\"metadata\""}) {
        const std::string k(key);
        if (head.compare(i, k.size(), k) == 0 && skip_blank(i + k.size()) < head.size() && head[skip_blank(i + k.size())] == ':')
            return true;
    }
    return false;
}

/// `export --out` replaces only an earlier export (a JSON array or a CSV with the registry header),
/// never the registry itself, its -wal/-shm files or any other existing file.
inline void check_export_target(const std::string& out, const std::string& registry) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::exists(out, ec)) return;
    for (const char* suffix : {"", "-wal", "-shm"})
        if (fs::exists(registry + suffix, ec) && fs::equivalent(out, registry + suffix, ec))
            SGF_THROW(ArgumentError, "registry export --out {}: that is the registry ({}) itself; choose another output file", out,
                      registry + suffix);
    if (fs::is_directory(out, ec)) SGF_THROW(ArgumentError, "registry export --out {}: is a folder; give a file name", out);
    if (!fs::is_regular_file(out, ec)) SGF_THROW(ArgumentError, "registry export --out {}: exists and is not a regular file", out);
    std::string head(std::size_t(1) << 16, '\0');  // the start is enough to tell an export (of any size)
    std::ifstream in(out, std::ios::binary);
    if (!in) SGF_THROW(IoError, "registry export --out {}: exists and cannot be read (to tell whether it is an earlier export)", out);
    in.read(head.data(), std::streamsize(head.size()));
    head.resize(std::size_t(in.gcount()));
    if (!looks_like_an_export(head))
        SGF_THROW(ArgumentError, "registry export --out {}: the file exists and is not an earlier export (CSV or JSON); refusing to "
                                 "replace it (remove it first, or choose another name)",
                  out);
}

}  // namespace detail

inline int run_registry(const Common& c, const RegistryArgs& given) {
    namespace fs = std::filesystem;
    const RegistryArgs a = resolve_registry_args(given);
    using nlohmann::json;
    if (*a.list) {
        auto reg = detail::open_existing(a.registry);
        json arr = json::array();
        std::string text;
        for (const auto& e : reg.all()) {
            arr.push_back(detail::entry_json(e));
            text += fmt::format("{}\t{}\t{}\n", terminal_safe(e.label), e.fingerprint.hex(), terminal_safe(e.issued_at));
        }
        emit(c, json{{"registry", a.registry}, {"bits", reg.bits()}, {"min_distance", reg.min_distance()}, {"size", arr.size()}, {"entries", arr}},
             text);
        return kOk;
    }
    if (*a.lookup) {
        auto reg = detail::open_existing(a.registry);
        const auto e = reg.find(a.label);
        if (!e) SGF_THROW(ArgumentError, "{}: no fingerprint is issued under the label '{}'", a.registry, terminal_safe(a.label));
        emit(c, detail::entry_json(*e),
             fmt::format("{}\t{}\t{}\t{}\n", terminal_safe(e->label), e->fingerprint.hex(), terminal_safe(e->issued_at),
                         terminal_safe(e->metadata)));
        return kOk;
    }
    if (*a.exp) {
        const std::string fmt_name = detail::format_of(a.format, a.out, "json");
        auto reg = detail::open_existing(a.registry);
        const std::string body = fmt_name == "csv" ? reg.export_csv() : reg.export_json() + "\n";
        if (a.out.empty()) {  // the export itself is the output, also with --json
            std::cout << body;
            std::cout.flush();
            if (!std::cout) SGF_THROW(IoError, "standard output: cannot write the export (disk full or output closed?)");
            return kOk;
        }
        detail::check_export_target(a.out, a.registry);
        sgf::io::write_file_atomic(a.out, body);
        emit(c, json{{"registry", a.registry}, {"out", a.out}, {"format", fmt_name}, {"entries", reg.size()}},
             fmt::format("exported {} from {} to {} ({})\n", sgf::count_of(reg.size(), "fingerprint"), a.registry, a.out, fmt_name));
        return kOk;
    }
    // import: read and check the input before a registry is created
    const auto bytes = sgf::io::read_file(a.file);
    const std::string text(bytes.begin(), bytes.end());
    std::string fmt_name = detail::format_of(a.format, a.file, "");
    if (fmt_name.empty()) {  // no telling extension: a JSON export starts with '['
        const std::size_t first = detail::content_start(text);
        fmt_name = first < text.size() && text[first] == '[' ? "json" : "csv";
    }
    sgf::RegistryOptions opt;
    opt.bits = a.bits > 0 ? a.bits : 128;
    opt.min_distance = a.min_distance;
    const PriorFile prior = prior_file(a.registry);
    std::optional<sgf::Registry> reg;
    reg.emplace(a.registry, opt);
    check_requested_registry(*reg, a.registry, a.bits, a.min_distance);
    std::int64_t added = 0;
    try {
        added = fmt_name == "csv" ? reg->import_csv(text, a.file) : reg->import_json(text, a.file);
    } catch (const sgf::Error&) {
        remove_if_created_and_empty(reg, prior, a.registry);  // nothing imported
        throw;
    }
    if (added == 0 && prior != PriorFile::nonempty) {
        remove_if_created_and_empty(reg, prior, a.registry);
        SGF_THROW(FormatError, "{}: holds no entries; nothing was imported and {} was not created", a.file, a.registry);
    }
    const std::int64_t size = reg->size();
    emit(c, json{{"registry", a.registry}, {"file", a.file}, {"format", fmt_name}, {"imported", added}, {"registry_size", size}},
         fmt::format("imported {} from {} into {} (now {})\n", sgf::count_of(added, "fingerprint"), a.file, a.registry, size));
    return kOk;
}

}  // namespace sgf_cli
