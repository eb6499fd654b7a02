// The tables quoted in docs/verification.md, docs/model-format.md and docs/cli.md, computed from the code, with
// checks of the facts those pages state. Each test compares what it computes with the page it is
// quoted in, line by line, and fails with a diff when the page has drifted. Print them with
//
//   cmake --build build --target test_doc_tables
//   ./build/tests/cli/test_doc_tables --gtest_filter='DocTables.*'
//
// (each test prints a markdown table between "----- BEGIN" and "----- END" lines; paste the block
// over the doc's copy to update it).
#include <sgf/sgf.hpp>
#include <sgf/nets.hpp>
#include <sgf/io.hpp>
#include <sgf/fingerprint.hpp>
#include <sgf/backends/eigen.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../examples/common/exit_codes.hpp"  // the programs' exit codes (docs/cli.md)

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace sgf {
namespace {

namespace fs = std::filesystem;
using B = EigenCpu;

// ------------------------------------------------------------------------------------------ reading the docs
std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.push_back(line);
    }
    return out;
}

/// A markdown page of the repository (path relative to the source tree, e.g. "docs/model-format.md").
struct Doc {
    std::string name;
    std::vector<std::string> lines;
    bool ok = false;
};

Doc read_doc(const std::string& rel) {
    Doc d{rel, {}, false};
    std::ifstream in(fs::path(SGF_SOURCE_DIR) / rel, std::ios::binary);
    if (!in) return d;
    std::stringstream ss;
    ss << in.rdbuf();
    d.lines = split_lines(ss.str());
    d.ok = true;
    return d;
}

bool is_fence(const std::string& line) { return line.rfind("```", 0) == 0; }

int heading_level(const std::string& line) {
    std::size_t n = 0;
    while (n < line.size() && line[n] == '#') ++n;
    return n > 0 && n < line.size() && line[n] == ' ' ? int(n) : 0;
}

/// Lines [first, last) of the section under the heading line `heading` (exact text), up to the next
/// heading of the same or a higher level; nullopt when the page has no such heading.
struct Section {
    std::size_t first, last;
};
std::optional<Section> find_section(const Doc& d, const std::string& heading) {
    bool fence = false;
    std::optional<std::size_t> start;
    int level = 0;
    for (std::size_t i = 0; i < d.lines.size(); ++i) {
        const std::string& l = d.lines[i];
        if (is_fence(l)) fence = !fence;
        if (fence) continue;
        const int h = heading_level(l);
        if (!start && h > 0 && l == heading) {
            start = i + 1;
            level = h;
        } else if (start && h > 0 && h <= level) {
            return Section{*start, i};
        }
    }
    if (start) return Section{*start, d.lines.size()};
    return std::nullopt;
}

/// Consecutive lines of a page; `line` is the 1-based number of the first.
struct Block {
    std::size_t line = 0;
    std::vector<std::string> lines;
};

/// The markdown tables (maximal runs of lines starting with '|', outside code fences) of a section.
std::vector<Block> tables_in(const Doc& d, Section s) {
    std::vector<Block> out;
    bool fence = false, in_table = false;
    for (std::size_t i = s.first; i < s.last; ++i) {
        const std::string& l = d.lines[i];
        if (is_fence(l)) fence = !fence;
        const bool row = !fence && !l.empty() && l[0] == '|';
        if (row && !in_table) out.push_back(Block{i + 1, {}});
        if (row) out.back().lines.push_back(l);
        in_table = row;
    }
    return out;
}

/// The body of the first fenced code block opened with ```lang in a section.
std::optional<Block> fenced_block(const Doc& d, Section s, const std::string& lang) {
    for (std::size_t i = s.first; i < s.last; ++i) {
        if (d.lines[i] != "```" + lang) continue;
        Block b{i + 2, {}};
        for (std::size_t j = i + 1; j < s.last && !is_fence(d.lines[j]); ++j) b.lines.push_back(d.lines[j]);
        return b;
    }
    return std::nullopt;
}

/// The paragraph of a section whose first line starts with `prefix`, its lines joined by spaces.
std::optional<Block> paragraph(const Doc& d, Section s, const std::string& prefix) {
    for (std::size_t i = s.first; i < s.last; ++i) {
        if (d.lines[i].rfind(prefix, 0) != 0) continue;
        std::string text;
        for (std::size_t j = i; j < s.last && !d.lines[j].empty(); ++j) text += (j == i ? "" : " ") + d.lines[j];
        return Block{i + 1, {text}};
    }
    return std::nullopt;
}

/// A unified diff of `want` (what the code computes) against `have` (the doc's copy, whose first line
/// is line `first_line` of `have_name`), hunks with `context` lines around each change, cut after
/// `max_lines` lines of output.
std::string unified_diff(const std::vector<std::string>& have, const std::vector<std::string>& want, std::size_t first_line,
                         const std::string& have_name, const std::string& want_name, std::size_t context = 2,
                         std::size_t max_lines = 40) {
    const std::size_t n = have.size(), m = want.size();
    // lcs[i][j]: the longest common subsequence of have[i..] and want[j..]
    std::vector<std::vector<std::size_t>> lcs(n + 1, std::vector<std::size_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;)
        for (std::size_t j = m; j-- > 0;)
            lcs[i][j] = have[i] == want[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    struct Op {
        char tag;  // ' ', '-' (only in the doc), '+' (only in the code)
        std::size_t i, j;
    };
    std::vector<Op> ops;
    std::size_t i = 0, j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && have[i] == want[j]) ops.push_back({' ', i++, j++});
        else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push_back({'-', i++, j});
        else ops.push_back({'+', i, j++});
    }
    std::string out = fmt::format("--- {}\n+++ {}\n", have_name, want_name);
    std::size_t printed = 0, k = 0;
    while (k < ops.size()) {
        if (ops[k].tag == ' ') {
            ++k;
            continue;
        }
        // one hunk: from `context` lines before this change to `context` lines after the last change
        // that is at most 2 * context lines further on
        const std::size_t begin = k >= context ? k - context : 0;
        std::size_t end = k;
        for (std::size_t q = k; q < ops.size(); ++q) {
            if (ops[q].tag != ' ') end = q + 1;
            else if (q - end + 1 > 2 * context) break;
        }
        end = std::min(ops.size(), end + context);
        std::size_t hi = ops[begin].i, hn = 0, wj = ops[begin].j, wn = 0;
        for (std::size_t q = begin; q < end; ++q) {
            hn += ops[q].tag != '+';
            wn += ops[q].tag != '-';
        }
        out += fmt::format("@@ -{},{} +{},{} @@\n", first_line + hi, hn, first_line + wj, wn);
        for (std::size_t q = begin; q < end; ++q) {
            if (printed++ == max_lines) return out + "... (diff cut here)\n";
            const std::string& text = ops[q].tag == '+' ? want[ops[q].j] : have[ops[q].i];
            out += fmt::format("{}{}\n", ops[q].tag, text);
        }
        k = end;
    }
    return out;
}

/// Where a generated block lives in the docs, for the failure message.
struct DocCopy {
    std::string doc;      // "docs/model-format.md"
    std::string heading;  // the section it is in
    std::string what;     // "the meta-model tensor table"
    std::string test;     // the DocTables test that prints it
    std::string block;    // the title of the printed "----- BEGIN" block
    std::string update;   // how to update the doc from it; empty: paste the block over the doc's copy
};

std::string regenerate(const DocCopy& c) {
    return fmt::format(
        "To update the doc, run\n"
        "  cmake --build build --target test_doc_tables\n"
        "  ./build/tests/cli/test_doc_tables --gtest_filter='DocTables.{}'\n"
        "and {} ({}, section \"{}\").\n",
        c.test,
        c.update.empty() ? fmt::format("paste the lines between \"----- BEGIN {}\" and \"----- END\" over {}", c.block, c.what)
                         : c.update,
        c.doc, c.heading);
}

/// EXPECTs the doc's copy `have` of a generated block to equal `want`, line for line.
void expect_same_lines(const DocCopy& c, const Block& have, const std::vector<std::string>& want,
                       const std::string& unit = "line") {
    EXPECT_TRUE(have.lines == want) << c.doc << ": " << c.what << " (from " << unit << " " << have.line
                                    << ") differs from what the code generates ('-' the doc, '+' the code; numbers are "
                                    << unit << "s of the doc):\n"
                                    << unified_diff(have.lines, want, have.line, c.doc, "generated by the code") << regenerate(c);
}

/// The section of `doc` under `c.heading`, or a failure naming what is missing.
std::optional<Section> section_of(const Doc& d, const DocCopy& c) {
    if (!d.ok) {
        ADD_FAILURE() << "cannot read " << (fs::path(SGF_SOURCE_DIR) / d.name).string() << " to compare " << c.what;
        return std::nullopt;
    }
    auto s = find_section(d, c.heading);
    if (!s) ADD_FAILURE() << d.name << " has no heading \"" << c.heading << "\" (where " << c.what << " belongs)\n" << regenerate(c);
    return s;
}

/// Compares the `index`-th table under c.heading with `table` (the generated markdown, '\n'-terminated lines).
void expect_doc_table(const Doc& d, const DocCopy& c, std::size_t index, const std::string& table) {
    const auto s = section_of(d, c);
    if (!s) return;
    const auto tables = tables_in(d, *s);
    if (tables.size() <= index) {
        ADD_FAILURE() << d.name << ": section \"" << c.heading << "\" has " << tables.size() << " table(s), " << c.what
                      << " should be table " << index + 1 << "\n"
                      << regenerate(c);
        return;
    }
    expect_same_lines(c, tables[index], split_lines(table));
}

// ------------------------------------------------------------------------------------------ docs/verification.md
TEST(DocTables, VerificationThresholds) {
    const int n = 128;
    // algorithm.md 6: n = 128, alpha 1e-2 -> 78 bits, 1e-6 -> 92, 1e-9 -> 98, 1e-12 -> 103.
    EXPECT_EQ(stats::bit_threshold(n, 1e-2), 78);
    EXPECT_EQ(stats::bit_threshold(n, 1e-6), 92);
    EXPECT_EQ(stats::bit_threshold(n, 1e-9), 98);
    EXPECT_EQ(stats::bit_threshold(n, 1e-12), 103);
    EXPECT_EQ(Registry::default_min_distance(n), 32);
    EXPECT_EQ(AttributionRule{}.alpha, 1e-6);
    EXPECT_EQ(AttributionRule{}.min_margin, 8);

    const std::vector<double> alphas{1e-2, 1e-3, 1e-6, 1e-9, 1e-12};
    const std::vector<std::int64_t> sizes{1, 10, 100, 1000, 10000, 100000, 1000000};
    std::string t = "| registry size N |";
    for (double a : alphas) t += fmt::format(" alpha = {:g} |", a);
    t += "\n|---:|";
    for (std::size_t i = 0; i < alphas.size(); ++i) t += "---:|";
    t += "\n";
    for (std::int64_t N : sizes) {
        t += fmt::format("| {} |", N);
        for (double a : alphas) {
            const int k = stats::family_bit_threshold(n, a, N);
            // k* is the smallest k whose tail is <= alpha/N
            EXPECT_LE(stats::log_p_value(k, n), std::log(a / double(N)) + 1e-12);
            EXPECT_GT(stats::log_p_value(k - 1, n), std::log(a / double(N)));
            t += fmt::format(" {} |", k);
        }
        t += "\n";
    }
    // Per-comparison p-values of k matching bits (the "log10_p_value" field of sgf verify).
    std::string p = "| matching bits k | 64 | 70 | 78 | 85 | 92 | 98 | 103 | 112 | 120 | 128 |\n|---|";
    for (int i = 0; i < 10; ++i) p += "---:|";
    p += "\n| log10 P[X >= k] |";
    for (int k : {64, 70, 78, 85, 92, 98, 103, 112, 120, 128}) p += fmt::format(" {:.2f} |", stats::log10_p_value(k, n));
    p += "\n";
    std::cout << "----- BEGIN thresholds k* (n = 128)\n" << t << "----- END\n";
    std::cout << "----- BEGIN p-values (n = 128)\n" << p << "----- END\n";

    // docs/verification.md quotes both, in this order, under "## Thresholds for n = 128".
    const Doc doc = read_doc("docs/verification.md");
    const std::string heading = "## Thresholds for n = 128";
    expect_doc_table(doc, {doc.name, heading, "the k* table", "VerificationThresholds", "thresholds k* (n = 128)", ""}, 0, t);
    expect_doc_table(doc, {doc.name, heading, "the p-value table", "VerificationThresholds", "p-values (n = 128)", ""}, 1, p);
    EXPECT_NEAR(stats::log10_p_value(128, 128), -128 * std::log10(2.0), 1e-9);
    EXPECT_NEAR(stats::log10_p_value(64, 128), std::log10(0.5 + 0.5 * std::exp(stats::log_binom(128, 64) - 128 * std::log(2.0))),
                1e-9);
}

// The figures docs/verification.md states in prose ("Minimum issuance distance", "Capacity"),
// recomputed; each must appear in the page exactly as written here.
/// x as the docs write it: 2.1e-9, 3.4e32 (no "+", no leading zeros in the exponent).
std::string sci(double x) {
    std::string t = fmt::format("{:.1e}", x);
    const auto e = t.find('e');
    std::string exp = t.substr(e + 1);
    const bool neg = exp[0] == '-';
    exp.erase(0, (exp[0] == '-' || exp[0] == '+') ? 1 : 0);
    exp.erase(0, std::min(exp.find_first_not_of('0'), exp.size() - 1));
    return t.substr(0, e + 1) + (neg ? "-" : "") + exp;
}

TEST(DocTables, VerificationProseFigures) {
    const int n = 128;
    const double sd = std::sqrt(n * 0.25);                                      // Bin(128, 1/2): 5.657
    const double within31 = stats::p_value(n - 31, n);                          // P[distance <= 31] = P[X >= 97]
    const double rejected = 1.0 - std::pow(1.0 - within31, 1e6);                // at 10^6 issued codes
    const double pairs = 1e6 * (1e6 - 1) / 2;                                   // expected pairs within d bits
    auto pairs_within = [&](int d) { return pairs * stats::p_value(n - d, n); };
    int closest = 0;
    while (pairs_within(closest) < 1.0) ++closest;                              // first d with >= 1 expected pair
    const std::vector<std::string> figures = {
        fmt::format("64 +- {:.1f} bits apart", sd),
        fmt::format("closest pair is only about {} bits apart", closest),
        "probability " + sci(within31),
        fmt::format("about {:.1f}% of draws are rejected", 100 * rejected),
        fmt::format("one fingerprint of 20 bits, {} of 24 bits, about {} of 128 bits", std::floor(std::ldexp(1e-6, 24)),
                    sci(std::ldexp(1e-6, 128))),
    };
    const Doc doc = read_doc("docs/verification.md");
    ASSERT_TRUE(doc.ok);
    std::string text;  // the page with every run of whitespace (line breaks too) as one space
    for (const auto& l : doc.lines) {
        std::istringstream words(l);
        for (std::string w; words >> w;) text += w + " ";
    }
    for (const auto& f : figures) {
        std::cout << f << "\n";
        EXPECT_NE(text.find(f), std::string::npos) << "docs/verification.md should say: " << f;
    }
    EXPECT_TRUE(attribution_capacity_problem(20, 1e-6, 1).empty());
    EXPECT_FALSE(attribution_capacity_problem(20, 1e-6, 2).empty());
}

// docs/verification.md, "What the fingerprint survives": the shipped models' rows of
// docs/eval-default/robustness.csv (bit accuracy, detection rate by the bit count and by the
// weighted score), quoted with 3 decimals. The first two cells (attack and strength as in the CSV,
// and their meaning) are the doc's own.
TEST(DocTables, VerificationShippedModelRobustness) {
    std::ifstream csv(fs::path(SGF_SOURCE_DIR) / "docs/eval-default/robustness.csv");
    ASSERT_TRUE(csv) << "docs/eval-default/robustness.csv";
    std::map<std::string, std::array<double, 3>> measured;  // "model attack strength" -> (bit accuracy, detected: bits, weighted)
    std::string line;
    std::getline(csv, line);
    const std::string head = "model,kind,attack,strength,identity,images,bit_accuracy,worst_image_accuracy,detection_rate,"
                             "mean_neg_log10_p,detection_rate_weighted,";
    ASSERT_EQ(line.rfind(head, 0), 0u) << line;
    while (std::getline(csv, line)) {
        std::vector<std::string> f;  // the fields before `parameter`, which may be quoted
        std::istringstream fields(line);
        for (std::string x; f.size() < 11 && std::getline(fields, x, ',');) f.push_back(x);
        ASSERT_EQ(f.size(), 11u) << line;
        measured[f[0] + " " + f[2] + " " + f[3]] = {std::stod(f[6]), std::stod(f[8]), std::stod(f[10])};
    }
    const DocCopy c{"docs/verification.md", "### What the fingerprint survives and what it does not",
                    "the table of the shipped models' robustness", "VerificationShippedModelRobustness", "shipped-model robustness", ""};
    const Doc doc = read_doc(c.doc);
    const auto s = section_of(doc, c);
    if (!s) return;
    const auto tables = tables_in(doc, *s);
    ASSERT_EQ(tables.size(), 1u) << c.doc << ": one table in \"" << c.heading << "\"";
    const Block& have = tables[0];
    ASSERT_GE(have.lines.size(), 3u);
    std::vector<std::string> want{have.lines[0], have.lines[1]};
    const std::regex row(R"(^\| `([a-z_]+)` ([0-9.]+) \| ([^|]+) \|.*$)");
    for (std::size_t i = 2; i < have.lines.size(); ++i) {
        std::smatch m;
        ASSERT_TRUE(std::regex_match(have.lines[i], m, row)) << c.doc << " line " << have.line + i << ": " << have.lines[i];
        std::string cells = fmt::format("| `{}` {} | {} |", m[1].str(), m[2].str(), m[3].str());
        for (const char* model : {"original", "immunised"}) {
            const auto it = measured.find(fmt::format("{} {} {}", model, m[1].str(), m[2].str()));
            ASSERT_NE(it, measured.end()) << "no " << model << " row for " << m[1] << " " << m[2] << " in robustness.csv";
            cells += fmt::format(" {:.3f} | {:.3f} | {:.3f} |", it->second[0], it->second[1], it->second[2]);
        }
        want.push_back(cells);
    }
    std::cout << "----- BEGIN " << c.block << "\n";
    for (const auto& l : want) std::cout << l << "\n";
    std::cout << "----- END\n";
    expect_same_lines(c, have, want);
}

// docs/architecture.md, "Random numbers": the generator written again from that text alone, checked
// against the library's and against Random123's published known-answer vectors for Philox4x32-10.
struct DocPhilox {
    static std::array<std::uint32_t, 4> rounds(std::array<std::uint32_t, 4> c, std::uint32_t k0, std::uint32_t k1) {
        for (int r = 0; r < 10; ++r) {
            const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * c[0], p1 = std::uint64_t(0xCD9E8D57u) * c[2];
            const auto hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0), hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
            c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        return c;
    }
    static std::array<std::uint32_t, 4> draw(std::uint64_t seed, std::uint64_t stream, std::uint64_t offset, std::uint64_t i) {
        const std::uint64_t c = offset + i;
        return rounds({std::uint32_t(c), std::uint32_t(c >> 32), std::uint32_t(stream), std::uint32_t(stream >> 32)},
                      std::uint32_t(seed), std::uint32_t(seed >> 32));
    }
    static double unit(std::uint32_t r) { return (double(r) + 0.5) * std::ldexp(1.0, -32); }
};

TEST(DocTables, RandomNumbersAsDocumented) {
    using A = std::array<std::uint32_t, 4>;
    // Random123 kat_vectors, philox4x32 10 rounds: (counter, key) -> output
    EXPECT_EQ(DocPhilox::rounds({0, 0, 0, 0}, 0, 0), (A{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
    EXPECT_EQ(DocPhilox::rounds({~0u, ~0u, ~0u, ~0u}, ~0u, ~0u), (A{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
    EXPECT_EQ(DocPhilox::rounds({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u, 0x299f31d0u),
              (A{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
    for (const RngKey k : {RngKey{0, 0, 0}, RngKey{7, 1000, 0}, RngKey{0x123456789abcdefull, name_hash("G.b8.conv0.weight"), 5},
                           RngKey{~0ull, ~0ull, ~0ull}})
        for (std::uint64_t i : {0ull, 1ull, 12345ull, (1ull << 32) + 3}) {
            const A doc = DocPhilox::draw(k.seed, k.stream, k.offset, i);
            const auto lib = philox::draw(k, i);
            EXPECT_EQ(doc, (A{lib.v[0], lib.v[1], lib.v[2], lib.v[3]})) << k.seed << " " << k.stream << " " << i;
            EXPECT_EQ(philox::uniform(k, i), DocPhilox::unit(doc[0]));
            EXPECT_EQ(philox::normal(k, i),
                      std::sqrt(-2.0 * std::log(DocPhilox::unit(doc[0]))) * std::cos(2 * 3.141592653589793 * DocPhilox::unit(doc[1])));
            EXPECT_EQ(philox::bit(k, i), int(doc[0] >> 31));
        }
    // fnv1a64 with sgf's start value (not the standard offset basis; see the page)
    auto doc_fnv = [](std::string_view s) {
        std::uint64_t h = 1469598103934665603ull;
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ull;
        }
        return h;
    };
    for (std::string_view n : {"", "G.b8.conv0.weight", "F.b4.out.bias"}) EXPECT_EQ(name_hash(n), doc_fnv(n)) << n;
}

// ------------------------------------------------------------------------------------------ docs/model-format.md
struct Scale {
    std::string formula;
    double value;
};

/// The run-time factor applied to a stored tensor of a META model or checkpoint (docs/model-format.md):
/// the layer uses stored * factor.
Scale runtime_scale(const ModelConfig& cfg, const std::string& name, const std::vector<std::int64_t>& shape) {
    auto ends = [&](const char* s) { return name.size() >= std::strlen(s) && name.compare(name.size() - std::strlen(s), std::string::npos, s) == 0; };
    const bool embed = name.rfind("G.embed.", 0) == 0;
    const double lr = embed ? cfg.embed_lr_mult : 1.0;
    if (ends(".noise_strength")) return {"1", 1.0};
    if (ends(".bias")) return embed ? Scale{fmt::format("{:g}", lr), lr} : Scale{"1", 1.0};
    if (!ends(".weight")) return {"?", 0.0};
    if (shape.size() == 2) {  // dense [out, in] (E, G.input, affines, F/D b4.fc / b4.out)
        const double v = lr / std::sqrt(double(shape[1]));
        return {embed ? fmt::format("{:g}/sqrt({})", lr, shape[1]) : fmt::format("1/sqrt({})", shape[1]), v};
    }
    const std::int64_t k2 = shape[2] * shape[3];
    const bool up = name.rfind("G.b", 0) == 0 && ends(".conv0.weight") && name.rfind("G.b4.", 0) != 0;
    const std::int64_t c_in = up ? shape[0] : shape[1];  // up layers are stored [C_in, C_out, 3, 3]
    return {fmt::format("1/sqrt({}*{})", c_in, k2), 1.0 / std::sqrt(double(c_in * k2))};
}

std::string layout_of(const std::string& name, const std::vector<std::int64_t>& shape) {
    const bool affine = name.find(".affine.") != std::string::npos;
    const bool dense = affine || shape.size() == 2 || name.rfind("G.embed.", 0) == 0 || name.rfind("G.input.", 0) == 0 ||
                       name.find(".b4.fc.") != std::string::npos || name.find(".b4.out.") != std::string::npos;
    if (shape.size() == 1) {
        if (name.find("noise_strength") != std::string::npos) return "scalar";
        return affine ? "[C_in] (one style per input channel)" : dense ? "[out]" : "[C_out]";
    }
    if (shape.size() == 2) return affine ? "[C_in, w_dim]" : "[out, in]";
    const bool up = name.rfind("G.b", 0) == 0 && name.find(".conv0.weight") != std::string::npos && name.rfind("G.b4.", 0) != 0;
    return up ? "[C_in, C_out, kh, kw]" : "[C_out, C_in, kh, kw]";
}

TEST(DocTables, ModelFormatSmallPreset) {
    B b(1);
    const ModelConfig cfg = ModelConfig::small();
    MetaGenerator<B> G(b, cfg, kNoInit);
    auto F = make_decoder(b, cfg, kNoInit);
    auto D = make_discriminator(b, cfg, kNoInit);
    const fs::path dir = fs::path(SGF_TEST_TMPDIR);
    fs::create_directories(dir);
    const fs::path meta = dir / "small-meta.safetensors", baked = dir / "small-baked.safetensors";
    io::save_meta_model(b, meta, G, F, D);
    Tensor<B> c(b, Shape{1, cfg.fingerprint_bits}, 1.0f);
    auto Gu = instantiate(b, G, c);
    io::save_baked_generator(b, baked, Gu);

    // The run-time scales claimed by the doc agree with the layers' own.
    EXPECT_FLOAT_EQ(runtime_scale(cfg, "G.input.weight", G.input_layer().weight().dims).value, G.input_layer().weight_scale());
    auto check_modconv = [&](ModConv<B>& m) {
        EXPECT_FLOAT_EQ(runtime_scale(cfg, m.weight().name, m.weight().dims).value, m.weight_scale()) << m.name();
        EXPECT_FLOAT_EQ(runtime_scale(cfg, m.affine().weight().name, m.affine().weight().dims).value, m.affine().weight_scale())
            << m.name();
    };
    for (auto& m : G.up_convs()) check_modconv(m);
    for (auto& m : G.convs()) check_modconv(m);
    for (auto& m : G.torgbs()) check_modconv(m);
    for (auto& m : Gu.convs()) EXPECT_EQ(m.weight_scale(), 1.0f) << "baked weights carry their scale";
    // ... and those of every other layer: the embedding (lr multiplier 0.01 on weight and bias), F, D
    auto check_dense = [&](Dense<B>& l) {
        EXPECT_FLOAT_EQ(runtime_scale(cfg, l.weight().name, l.weight().dims).value, l.weight_scale()) << l.weight().name;
        const std::string bias = l.weight().name.substr(0, l.weight().name.size() - 6) + "bias";
        EXPECT_FLOAT_EQ(runtime_scale(cfg, bias, {l.config().out}).value, float(l.config().lr_mult)) << bias;
    };
    auto check_conv = [&](Conv2d<B>& l) {
        EXPECT_FLOAT_EQ(runtime_scale(cfg, l.weight().name, l.weight().dims).value, l.weight_scale()) << l.weight().name;
    };
    int layers = 0;
    for (auto& l : G.embedding().layers()) check_dense(l), ++layers;
    for (auto* net : {&F, &D}) {
        check_conv(net->fromrgb());
        for (auto& blk : net->blocks()) check_conv(blk.conv0()), check_conv(blk.conv1()), check_conv(blk.skip()), layers += 3;
        check_conv(net->conv4());
        check_dense(net->fc());
        check_dense(net->out());
        layers += 4;
    }
    EXPECT_EQ(layers, int(cfg.embed_layers) + 2 * (4 + 3 * 3));  // small: 32 px -> blocks at 32, 16, 8

    // Every tensor name follows one of the patterns docs/model-format.md lists.
    const std::vector<std::regex> patterns{
        std::regex(R"(G\.embed\.fc\d+\.(weight|bias))"),
        std::regex(R"(G\.input\.(weight|bias))"),
        std::regex(R"(G\.b\d+\.(conv0|conv1|torgb)\.(weight|bias|noise_strength|affine\.weight|affine\.bias))"),
        std::regex(R"([FD]\.fromrgb\.(weight|bias))"),
        std::regex(R"([FD]\.b\d+\.(conv0|conv1)\.(weight|bias))"),
        std::regex(R"([FD]\.b\d+\.skip\.weight)"),
        std::regex(R"([FD]\.b4\.(conv|fc|out)\.(weight|bias))"),
    };
    const auto f = io::SafetensorsFile::load(meta);
    for (const auto& [name, t] : f.tensors()) {
        bool ok = false;
        for (const auto& re : patterns) ok = ok || std::regex_match(name, re);
        EXPECT_TRUE(ok) << name << " is not covered by docs/model-format.md";
        EXPECT_EQ(t.dtype, "F32");
    }
    EXPECT_EQ(f.metadata.size(), 5u);  // format_version, kind, config, checksum, config_checksum
    for (const char* k : {"sgf.format_version", "sgf.kind", "sgf.config", "sgf.checksum", "sgf.config_checksum"})
        EXPECT_TRUE(f.metadata.count(k)) << k;

    // The listing: in G's forward order, then F and D (files store them sorted by name).
    std::string t = "| tensor | shape | layout | run-time factor |\n|---|---|---|---|\n";
    std::int64_t total = 0;
    auto row = [&](const std::string& name, const std::vector<std::int64_t>& dims) {
        const Scale s = runtime_scale(cfg, name, dims);
        t += fmt::format("| `{}` | [{}] | {} | {} |\n", name, fmt::join(dims, ", "), layout_of(name, dims), s.formula);
        std::int64_t n = 1;
        for (auto d : dims) n *= d;
        total += n;
        EXPECT_TRUE(f.has(name)) << name;
        EXPECT_EQ(f.tensors().at(name).shape, dims) << name;
    };
    for (auto* p : G.parameters()) row(p->name, p->dims);
    for (auto* p : F.parameters()) row(p->name, p->dims);
    for (auto* p : D.parameters()) row(p->name, p->dims);
    EXPECT_EQ(std::size_t(G.parameters().size() + F.parameters().size() + D.parameters().size()), f.size());
    const auto fb = io::SafetensorsFile::load(baked);
    std::vector<std::string> baked_items;  // "`name` [dims]", in G's forward order
    for (auto* p : Gu.parameters()) {
        baked_items.push_back(fmt::format("`{}` [{}]", p->name, fmt::join(p->dims, ", ")));
        EXPECT_EQ(fb.tensors().at(p->name).shape, p->dims);
    }
    EXPECT_EQ(Gu.parameters().size(), fb.size());
    const std::string config = nlohmann::json(cfg).dump();
    const std::string meta_counts = fmt::format("{} tensors, {} values, {} bytes", f.size(), total, fs::file_size(meta));
    const std::string baked_counts = fmt::format("{} tensors, {} bytes", fb.size(), fs::file_size(baked));
    std::cout << "----- BEGIN small preset config\n" << config << "\n----- END\n";
    std::cout << "----- BEGIN small preset meta-model tensors (" << meta_counts << ")\n" << t << "----- END\n";
    std::cout << "----- BEGIN small preset baked-generator tensors (" << baked_counts << ")\n"
              << fmt::format("{}", fmt::join(baked_items, ", ")) << ".\n----- END\n";

    // docs/model-format.md quotes all of it under "## Every tensor of the `small` preset": the config
    // (the first json block), the counts in the "Meta model (" paragraph, the table, and the counts
    // and the tensors of the "Baked generator (" paragraph.
    const Doc doc = read_doc("docs/model-format.md");
    const std::string heading = "## Every tensor of the `small` preset";
    const std::string test = "ModelFormatSmallPreset";
    const DocCopy config_copy{doc.name, heading, "the ```json config block", test, "small preset config", ""};
    const DocCopy meta_copy{doc.name, heading, "the meta-model tensor table", test, "small preset meta-model tensors (...)", ""};
    const DocCopy counts_copy{doc.name, heading, "the counts in the paragraph \"Meta model (...\"", test, "",
                              "copy the three counts of the line \"----- BEGIN small preset meta-model tensors (N tensors, "
                              "V values, S bytes)\" into the paragraph \"Meta model (N tensors, V values; the file the "
                              "test writes, ..., is S bytes; ...\""};
    const DocCopy baked_copy{doc.name, heading, "the paragraph \"Baked generator (...\"", test, "",
                             "in the paragraph \"Baked generator (N tensors, S bytes), ...: `G.input.weight` ...\", replace "
                             "N and S with the counts of the line \"----- BEGIN small preset baked-generator tensors (N "
                             "tensors, S bytes)\" and the list of tensors with the line that follows it"};
    if (const auto s = section_of(doc, config_copy)) {
        if (const auto b = fenced_block(doc, *s, "json")) expect_same_lines(config_copy, *b, {config});
        else ADD_FAILURE() << doc.name << ": no ```json block under \"" << heading << "\"\n" << regenerate(config_copy);

        expect_doc_table(doc, meta_copy, 0, t);

        // "Meta model (103 tensors, 1989292 values; the file the test writes, ..., is 7966424 bytes; ..."
        if (const auto para = paragraph(doc, *s, "Meta model (")) {
            std::smatch m;
            const std::regex re(R"(^Meta model \((\d+) tensors, (\d+) values; the file the test writes[^;]*? is (\d+) bytes)");
            if (std::regex_search(para->lines[0], m, re))
                EXPECT_EQ(fmt::format("{} tensors, {} values, {} bytes", m.str(1), m.str(2), m.str(3)), meta_counts)
                    << doc.name << " line " << para->line << ": the meta model's counts differ from the code's\n"
                    << regenerate(counts_copy);
            else
                ADD_FAILURE() << doc.name << " line " << para->line
                              << ": the paragraph does not read \"Meta model (N tensors, V values; the file the test "
                                 "writes ... is S bytes; ...\"\n"
                              << regenerate(counts_copy);
        } else {
            ADD_FAILURE() << doc.name << ": no paragraph \"Meta model (...\" under \"" << heading << "\"\n" << regenerate(counts_copy);
        }

        // "Baked generator (31 tensors, 1119588 bytes), ...: `G.input.weight` [1024, 64], ..., `G.b32.torgb.bias` [1]."
        if (const auto para = paragraph(doc, *s, "Baked generator (")) {
            const std::string& text = para->lines[0];
            std::smatch m;
            if (std::regex_search(text, m, std::regex(R"(^Baked generator \((\d+) tensors, (\d+) bytes\))")))
                EXPECT_EQ(fmt::format("{} tensors, {} bytes", m.str(1), m.str(2)), baked_counts)
                    << doc.name << " line " << para->line << ": the baked generator's counts differ from the code's\n"
                    << regenerate(baked_copy);
            else
                ADD_FAILURE() << doc.name << " line " << para->line
                              << ": the paragraph does not start with \"Baked generator (N tensors, S bytes)\"\n"
                              << regenerate(baked_copy);
            // its tensors, one per diff line
            Block listed{1, {}};
            const std::regex item(R"(`[^`]+` \[[^\]]*\])");
            for (auto it = std::sregex_iterator(text.begin(), text.end(), item); it != std::sregex_iterator(); ++it)
                listed.lines.push_back(it->str());
            expect_same_lines(baked_copy, listed, baked_items, "tensor");
        } else {
            ADD_FAILURE() << doc.name << ": no paragraph \"Baked generator (...\" under \"" << heading << "\"\n" << regenerate(baked_copy);
        }
    }

    // The first 8 bytes: the JSON header's length, little-endian.
    const auto bytes = io::read_file(meta);
    std::uint64_t hl = 0;
    for (int i = 7; i >= 0; --i) hl = (hl << 8) | bytes[std::size_t(i)];
    EXPECT_EQ(hl % 8, 0u);
    EXPECT_EQ(bytes[8], '{');
}

TEST(DocTables, ExitCodesAsDocumented) {
    // docs/cli.md's table lists every exit code of sgf, sgf_train and sgf_train_cuda with the enumerator
    // that names it: the same set of (code, name) pairs as examples/common/exit_codes.hpp
    using namespace sgf_examples;
    const std::vector<std::pair<int, std::string>> code = {
        {kOk, "kOk"}, {kInternal, "kInternal"}, {kUsage, "kUsage"}, {kIoError, "kIoError"},
        {kFormatError, "kFormatError"}, {kNumeric, "kNumeric"}, {kBackend, "kBackend"},
        {kNotFingerprinted, "kNotFingerprinted"}, {kInconclusive, "kInconclusive"}, {kInterrupted, "kInterrupted"}};
    const Doc doc = read_doc("docs/cli.md");
    ASSERT_TRUE(doc.ok) << "cannot read docs/cli.md";
    std::vector<std::pair<int, std::string>> listed;
    bool in_section = false;
    const std::regex row(R"(^\| *(\d+) *\| *`(k[A-Za-z]+)` *\|)");
    for (const auto& line : doc.lines) {
        if (heading_level(line) > 0) in_section = line == "## Exit codes";
        std::smatch m;
        if (in_section && std::regex_search(line, m, row)) listed.emplace_back(std::stoi(m.str(1)), m.str(2));
    }
    EXPECT_EQ(listed, code) << "docs/cli.md's exit-code table (section \"## Exit codes\") differs from the Exit enum";
    // and the codes are distinct
    std::vector<int> values;
    for (const auto& [v, name] : code) values.push_back(v);
    std::sort(values.begin(), values.end());
    EXPECT_EQ(std::adjacent_find(values.begin(), values.end()), values.end());
}

// ------------------------------------------------------------------------------------------ docs/library.md
// docs/library.md quotes examples/library_tour/main.cpp: every region of the tour between the lines
// "// [tour:NAME]" and "// [/tour:NAME]" (marker lines left out, the common indentation removed) is the
// body of a ```cpp block of the page, and every ```cpp block of the page is such a region. The C++
// excerpt of README.md is made of lines of the tour.
TEST(DocTables, LibraryTourAsDocumented) {
    const std::string tour_name = "examples/library_tour/main.cpp";
    const Doc tour = read_doc(tour_name);
    const Doc doc = read_doc("docs/library.md");
    ASSERT_TRUE(tour.ok) << "cannot read " << (fs::path(SGF_SOURCE_DIR) / tour_name).string();
    ASSERT_TRUE(doc.ok) << "cannot read " << (fs::path(SGF_SOURCE_DIR) / doc.name).string();

    // The regions, in the order they open; `line` is the 1-based line of the first line after the marker.
    struct Region {
        std::string name;
        Block body;
    };
    std::vector<Region> regions;
    std::vector<std::size_t> open;  // indices of the regions open at this line (regions may nest)
    const std::regex marker(R"(^\s*// \[(/?)tour:([A-Za-z0-9_-]+)\]\s*$)");
    for (std::size_t i = 0; i < tour.lines.size(); ++i) {
        std::smatch m;
        if (!std::regex_match(tour.lines[i], m, marker)) {
            for (std::size_t r : open) regions[r].body.lines.push_back(tour.lines[i]);
            continue;
        }
        const std::string name = m.str(2);
        const auto named = [&](std::size_t r) { return regions[r].name == name; };
        if (m.str(1).empty()) {
            for (const auto& r : regions)
                ASSERT_NE(r.name, name) << tour_name << " line " << i + 1 << ": a second region [tour:" << name << "]";
            regions.push_back({name, Block{i + 2, {}}});
            open.push_back(regions.size() - 1);
        } else {
            const auto it = std::find_if(open.begin(), open.end(), named);
            ASSERT_NE(it, open.end()) << tour_name << " line " << i + 1 << ": [/tour:" << name << "] closes no open region";
            open.erase(it);
        }
    }
    for (std::size_t r : open) ADD_FAILURE() << tour_name << ": region [tour:" << regions[r].name << "] is never closed";
    ASSERT_FALSE(regions.empty()) << tour_name << " has no [tour:NAME] regions";
    for (auto& r : regions) {  // remove the indentation all non-empty lines share
        std::size_t indent = std::string::npos;
        for (const auto& l : r.body.lines)
            if (l.find_first_not_of(' ') != std::string::npos) indent = std::min(indent, l.find_first_not_of(' '));
        for (auto& l : r.body.lines) l = l.size() >= indent && indent != std::string::npos ? l.substr(indent) : "";
    }

    // The ```cpp blocks of the page.
    std::vector<Block> blocks;
    for (std::size_t i = 0; i < doc.lines.size(); ++i) {
        if (!is_fence(doc.lines[i])) continue;
        Block b{i + 2, {}};
        std::size_t j = i + 1;
        for (; j < doc.lines.size() && !is_fence(doc.lines[j]); ++j) b.lines.push_back(doc.lines[j]);
        if (doc.lines[i] == "```cpp") blocks.push_back(b);
        i = j;  // past the closing fence
    }

    // Each region is one block, line for line; a drifted one is shown against the block closest to it.
    std::vector<bool> quoted(blocks.size(), false);
    for (const auto& r : regions) {
        std::optional<std::size_t> closest;
        std::size_t shared_most = 0;
        for (std::size_t k = 0; k < blocks.size(); ++k) {
            if (blocks[k].lines == r.body.lines) {
                closest = k;
                break;
            }
            std::size_t shared = 0;
            for (const auto& l : r.body.lines)
                shared += !l.empty() && std::find(blocks[k].lines.begin(), blocks[k].lines.end(), l) != blocks[k].lines.end();
            if (shared > shared_most) {
                shared_most = shared;
                closest = k;
            }
        }
        if (closest && blocks[*closest].lines == r.body.lines) {
            quoted[*closest] = true;
            continue;
        }
        const std::string what = fmt::format("region [tour:{}] of {} (line {})", r.name, tour_name, r.body.line);
        if (!closest) {
            ADD_FAILURE() << doc.name << " quotes no part of the " << what << ": add it as a ```cpp block";
            continue;
        }
        quoted[*closest] = true;  // reported here, not again below
        ADD_FAILURE() << doc.name << ": the ```cpp block at line " << blocks[*closest].line << " differs from the " << what
                      << ", the region it quotes ('-' the doc, '+' the tour; numbers are lines of the doc):\n"
                      << unified_diff(blocks[*closest].lines, r.body.lines, blocks[*closest].line, doc.name,
                                      fmt::format("{} [tour:{}]", tour_name, r.name))
                      << "Copy the region, without its marker lines and indentation, over the block.";
    }
    for (std::size_t k = 0; k < blocks.size(); ++k)
        EXPECT_TRUE(quoted[k]) << doc.name << ": the ```cpp block at line " << blocks[k].line << " is no [tour:NAME] region of "
                               << tour_name << " (every C++ block of the page is a region of the tour)";

    // README.md's C++ excerpt (its first ```cpp block): every line, indentation aside, is a line of the
    // tour, and the README points to the page.
    const Doc readme = read_doc("README.md");
    ASSERT_TRUE(readme.ok) << "cannot read README.md";
    const auto excerpt = fenced_block(readme, Section{0, readme.lines.size()}, "cpp");
    ASSERT_TRUE(excerpt) << "README.md has no ```cpp block";
    auto trimmed = [](const std::string& l) {
        const auto a = l.find_first_not_of(' '), b = l.find_last_not_of(' ');
        return a == std::string::npos ? std::string() : l.substr(a, b - a + 1);
    };
    std::vector<std::string> tour_lines;
    for (const auto& l : tour.lines) tour_lines.push_back(trimmed(l));
    for (std::size_t k = 0; k < excerpt->lines.size(); ++k) {
        const std::string l = trimmed(excerpt->lines[k]);
        EXPECT_TRUE(l.empty() || std::find(tour_lines.begin(), tour_lines.end(), l) != tour_lines.end())
            << "README.md line " << excerpt->line + k << " is not a line of " << tour_name << ": " << excerpt->lines[k];
    }
    bool links = false;
    for (const auto& l : readme.lines) links = links || l.find("(docs/library.md)") != std::string::npos;
    EXPECT_TRUE(links) << "README.md should link docs/library.md";
}

}  // namespace
}  // namespace sgf
