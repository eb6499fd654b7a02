// The SQLite registry: issuing with a minimum distance, lookups, hostile files, import/export, and
// several processes issuing into one file at once.
#include <sgf/fingerprint.hpp>
#include "file_bytes.hpp"

#include <gtest/gtest.h>
#include "own_tmpdir.hpp"

#include "test_util.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <fstream>
#include <thread>
#include <set>

namespace sgf {
namespace {

namespace fs = std::filesystem;

fs::path fresh(const std::string& name) {
    const fs::path p = test::own_tmpdir(SGF_TEST_TMPDIR, "registry") / name;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
    return p;
}

using test::slurp;

TEST(Registry, IssueLookupAndMinimumDistance) {
    const auto p = fresh("basic.db");
    Registry r(p);
    EXPECT_EQ(r.min_distance(), 32);
    const auto a = r.issue("alice", R"({"email":"a@x"})");
    const auto b = r.issue("bob");
    EXPECT_EQ(r.size(), 2);
    EXPECT_GE(a.fingerprint.hamming(b.fingerprint), 32);
    EXPECT_THROW(r.issue("alice"), ArgumentError);
    const auto found = r.find("alice");
    ASSERT_TRUE(found);
    EXPECT_EQ(found->fingerprint, a.fingerprint);
    EXPECT_EQ(found->metadata, R"({"email":"a@x"})");
    EXPECT_FALSE(r.find("carol"));
    Fingerprint near = a.fingerprint;
    for (int i = 0; i < 10; ++i) near.set_bit(i, !near.bit(i));
    EXPECT_THROW(r.add("mallory", near), ArgumentError);
    EXPECT_EQ(r.size(), 2) << "a rejected add leaves no row";
    Registry again(p);  // reopen: everything persisted
    EXPECT_EQ(again.size(), 2);
    EXPECT_EQ(again.attribute(b.fingerprint).best_label, "bob");
}

// What a verifier opens: a registry that must exist. A mistyped path was a new, empty registry that
// attributed nothing ("not fingerprinted"); the length check names the file.
TEST(Registry, AVerifierOpensAnExistingRegistryAndChecksItsLength) {
    const auto p = fresh("verifier.db"), typo = fresh("verifer.db");
    {
        Registry r(p);
        r.issue("alice", "", 1);
    }
    try {
        Registry r(typo, RegistryOptions::existing_read_only());
        ADD_FAILURE() << "a missing registry opened";
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find(typo.string() + ": registry not found"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(typo)) << "nothing is created";
    Registry r(p, RegistryOptions::existing_read_only(64));  // the file's own length wins over the option
    EXPECT_EQ(r.bits(), 128);
    EXPECT_NO_THROW(r.require_bits(128));
    try {
        r.require_bits(64);
        ADD_FAILURE();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find(p.string() + ": the registry holds 128-bit fingerprints, but the model uses 64-bit"),
                  std::string::npos) << e.what();
    }
    EXPECT_EQ(r.attribute(r.find("alice")->fingerprint).best_label, "alice");
    try {  // a decoder of another length: named with the file, not "matcher: ..."
        r.attribute(Fingerprint::from_seed(64, 3));
        ADD_FAILURE();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find(p.string() + ": the decoded fingerprint has 64 bits, the registry holds 128-bit"),
                  std::string::npos) << e.what();
    }
    try {  // the rule's alpha is named as such ("bit threshold: alpha" did not say where it came from)
        r.attribute(r.find("alice")->fingerprint, AttributionRule{2.0, 8});
        ADD_FAILURE();
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("AttributionRule::alpha"), std::string::npos) << e.what();
    }
    EXPECT_THROW(r.issue("bob"), IoError) << "read-only";
}

TEST(Registry, AVerifierReadsARegistryOnReadOnlyStorage) {
    // a registry shipped on read-only storage: SQLite cannot create the -shm file it reads a WAL
    // database through, so sgf opens it immutable (it said "unable to open database file"). Made
    // here with the immutable attribute (chattr +i, root only); a read-only mount takes the same path.
    const fs::path base = test::own_tmpdir(SGF_TEST_TMPDIR, "registry");
    const fs::path dir = base / "read-only-folder ?#%";  // URI characters too
    const std::string q = "'" + dir.string() + "'";
    (void)std::system(("chattr -i " + q + " 2>/dev/null").c_str());  // an earlier run that crashed
    fs::create_directories(dir);
    const fs::path p = dir / "shipped.db";
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
    {
        Registry r(p);
        r.issue("alice", "{\"k\": 1}", 1);
        r.issue("bob", "", 2);
    }
    ASSERT_FALSE(fs::exists(p.string() + "-wal")) << "the last writer removes its -wal file";
    const fs::path link = base / "link-to-shipped.db";  // a link from writable storage: SQLite opens the target
    fs::remove(link);
    fs::create_symlink(p, link);
    const int chattr = std::system(("chattr +i " + q + " 2>/dev/null").c_str());
    struct Restore {
        std::string q;
        ~Restore() { (void)std::system(("chattr -i " + q + " 2>/dev/null").c_str()); }
    } restore{q};
    if (chattr != 0 || ::access(dir.c_str(), W_OK) == 0)
        GTEST_SKIP() << "cannot make " << dir << " immutable here (chattr +i needs root and a file system that has the attribute)";
    for (const fs::path& opened : {p, link}) {
        Registry r(opened, RegistryOptions::existing_read_only());
        EXPECT_EQ(r.size(), 2) << opened;
        EXPECT_EQ(r.attribute(r.find("bob")->fingerprint).best_label, "bob");
        EXPECT_EQ(r.find("alice")->metadata, "{\"k\": 1}");
        EXPECT_EQ(r.all().size(), 2u);
    }
    EXPECT_FALSE(fs::exists(p.string() + "-shm"));
    EXPECT_THROW({ Registry w(p); }, IoError) << "issuing needs a writable folder";
}

TEST(Registry, AFolderOnlyThisUserCannotWriteToIsNotReadAsImmutable) {
    // its owner may still issue: an immutable reader would miss those rows, so SQLite's own open is
    // kept and fails with the hint (a child process run as "nobody" reads root's 0755 folder)
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to run a child process as another user";
    const fs::path dir = test::own_tmpdir(SGF_TEST_TMPDIR, "registry") / "owner-only";
    fs::create_directories(dir);
    const fs::path p = dir / "reg.db";
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
    {
        Registry r(p);
        r.issue("alice", "", 1);
    }
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(20);
        if (::access(p.c_str(), R_OK) != 0) ::_exit(21);  // a folder on the way that "nobody" cannot search
        try {
            Registry r(p, RegistryOptions::existing_read_only());
            ::_exit(10);  // opened: it took the immutable path
        } catch (const IoError& e) {
            ::_exit(std::string(e.what()).find("must be writable by this user") != std::string::npos ? 0 : 11);
        } catch (...) {
            ::_exit(12);
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 20 || WEXITSTATUS(status) == 21)
        GTEST_SKIP() << "cannot run as nobody here, or nobody cannot reach " << dir;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: opened as immutable; 11: another IoError; 12: another error";
}

TEST(Registry, LabelsArePrintableUtf8AndMetadataIsUtf8) {
    // valid: ASCII, 2-, 3- and 4-byte sequences at their limits
    for (const std::string ok : {"alice", "caf\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbd", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                                 "\xc2\xa0", "\xe0\xa0\x80", "\xf0\x90\x80\x80"}) {
        EXPECT_TRUE(is_valid_utf8(ok)) << ok;
        EXPECT_NO_THROW(Registry::check_entry(ok, "", "r.db")) << ok;
    }
    EXPECT_TRUE(is_valid_utf8("\xc2\x80"));  // U+0080: valid UTF-8, but a C1 control (refused in labels below)
    // invalid: a stray continuation byte, overlong forms, surrogates, above U+10FFFF, truncated
    for (const std::string bad : {"\x80", "eve\xff", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
                                  "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82",
                                  "a\xc3"}) {
        EXPECT_FALSE(is_valid_utf8(bad));
        EXPECT_THROW(Registry::check_entry(bad, "", "r.db"), ArgumentError);
        EXPECT_THROW(Registry::check_entry("ok", bad, "r.db"), ArgumentError);
    }
    // control characters in labels (not in metadata, which is free text)
    for (const std::string ctl : {"a\tb", "a\nb", "\x1b[2J", "x\ry", "del\x7f", "csi\xc2\x9b" "31m", "nel\xc2\x85", "\xc2\x80"})
        EXPECT_THROW(Registry::check_entry(ctl, "", "r.db"), ArgumentError) << ctl;
    EXPECT_NO_THROW(Registry::check_entry("ok", "line one\nline\ttwo", "r.db"));
    const auto p = fresh("utf8.db");
    Registry r(p);
    EXPECT_THROW(r.issue("eve\xff"), ArgumentError);
    EXPECT_THROW(r.issue("ok", "meta\xff"), ArgumentError);
    EXPECT_EQ(r.size(), 0);
}

TEST(Registry, MinimumDistanceZeroStillIssuesDistinctFingerprints) {
    // at distance 0 a draw equal to an issued code was accepted and hit the UNIQUE constraint:
    // "label ... is already issued" at random. Identical codes are now redrawn; a full registry says so.
    const auto p8 = fresh("md0-8.db");
    RegistryOptions o8;
    o8.bits = 8;
    o8.min_distance = 0;
    Registry r8(p8, o8);
    std::set<std::string> codes;
    for (int i = 0; i < 200; ++i) codes.insert(r8.issue(fmt::format("u{}", i), "", std::uint64_t(i + 1)).fingerprint.hex());
    EXPECT_EQ(codes.size(), 200u);
    const auto p1 = fresh("md0-1.db");
    RegistryOptions o1;
    o1.bits = 1;
    o1.min_distance = 0;
    Registry r1(p1, o1);
    r1.issue("a", "", 1);
    r1.issue("b", "", 2);
    try {
        r1.issue("c", "", 3);
        FAIL() << "a 1-bit registry holds two fingerprints";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
    }
}

TEST(Registry, AddingAnIssuedFingerprintSaysSo) {
    // at min_distance 0 the message was "0 bits from 'a', below the minimum distance 0"
    const auto p = fresh("add-dup.db");
    RegistryOptions o;
    o.min_distance = 0;
    Registry r(p, o);
    const auto a = r.issue("a", "", 1).fingerprint;
    try {
        r.add("b", a);
        ADD_FAILURE() << "the same fingerprint was added twice";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("is already issued, to 'a'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(r.size(), 1);
}

TEST(Registry, NumberedLabelsSkipTakenNumbers) {
    const auto p = fresh("numbered.db");
    Registry r(p);
    r.issue("alice");
    r.issue("bob");  // size 2: numbering starts at 2
    // An explicit label that the numbering would produce, in the same request: the numbering skips it.
    auto out = r.issue_all({{"user000003"}, "user", 3, ""});
    ASSERT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].label, "user000003");
    EXPECT_EQ(out[1].label, "user000002");
    EXPECT_EQ(out[2].label, "user000004");
    EXPECT_EQ(out[3].label, "user000005");
    EXPECT_EQ(r.size(), 6);
    // A row added outside the numbering (e.g. imported) is skipped too.
    Fingerprint f(128);
    for (int i = 0; i < 128; i += 2) f.set_bit(i, true);
    r.add("user000006", f);
    out = r.issue_all({{}, "user", 2, ""});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].label, "user000007");
    EXPECT_EQ(out[1].label, "user000008");
    // An explicit label already issued still fails the whole request, leaving no row.
    EXPECT_THROW(r.issue_all({{"user000002"}, "user", 2, ""}), ArgumentError);
    EXPECT_EQ(r.size(), 9);
}

TEST(Registry, IssueAllRollsBackWhenTheCallerCannotUseTheNewEntries) {
    const auto p = fresh("before-commit.db");
    Registry r(p);
    r.issue("alice");
    std::vector<std::string> seen;
    EXPECT_THROW(r.issue_all({{"bob", "carol"}, "user", 1, ""},
                             [&](const std::vector<RegistryEntry>& out) {
                                 for (const auto& e : out) seen.push_back(e.label);
                                 SGF_THROW(IoError, "standard output: cannot write the result");
                             }),
                 IoError);
    EXPECT_EQ(seen, (std::vector<std::string>{"bob", "carol", "user000001"}));  // inside the transaction: all of them
    EXPECT_EQ(r.size(), 1);
    EXPECT_FALSE(r.find("bob"));
    Registry other(p);  // and so another connection
    EXPECT_EQ(other.size(), 1);
    const auto out = r.issue_all({{"bob"}, "user", 0, ""}, [](const std::vector<RegistryEntry>&) {});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(other.size(), 2);
    // a write from inside before_commit was SQLite's "cannot start a transaction within a transaction"
    // as a FormatError (a bad file?); it is misuse, an ArgumentError, and rolls the outer request back
    try {
        r.issue_all({{"dave"}, "user", 0, ""}, [&](const std::vector<RegistryEntry>&) { r.issue("eve"); });
        ADD_FAILURE() << "a nested write ran";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot run inside another one"), std::string::npos) << e.what();
    }
    EXPECT_EQ(r.size(), 2);
    EXPECT_FALSE(r.find("dave"));
    EXPECT_FALSE(r.find("eve"));
    r.issue("dave");  // the object is usable afterwards
    EXPECT_EQ(other.size(), 3);
}

TEST(Registry, MovesWithItsConnectionAndTheMovedFromObjectSaysSo) {
    const auto p = fresh("moved.db"), q = fresh("moved-other.db");
    std::optional<Registry> held;
    {
        Registry r(p);
        r.issue("alice");
        held.emplace(std::move(r));
        try {
            r.issue("bob");
            ADD_FAILURE() << "the moved-from registry issued";
        } catch (const ArgumentError& e) {
            EXPECT_NE(std::string(e.what()).find("moved from"), std::string::npos) << e.what();
        }
        EXPECT_THROW((void)r.size(), ArgumentError);
        EXPECT_THROW((void)r.find("alice"), ArgumentError);
        EXPECT_THROW((void)r.find(std::string(Registry::kMaxLabelBytes + 1, 'x')), ArgumentError) << "not 'no such label'";
    }  // the moved-from object's destructor closes nothing the new one uses
    EXPECT_EQ(held->path(), p.string());
    EXPECT_EQ(held->size(), 1);
    held->issue("bob");
    std::vector<Registry> many;
    many.push_back(std::move(*held));
    many.emplace_back(q);
    many.reserve(16);  // the vector moves its elements
    many[1].issue("carol");
    EXPECT_EQ(many[0].size(), 2);
    EXPECT_EQ(many[0].find("bob")->label, "bob");
    EXPECT_EQ(many[1].size(), 1);
    // assignment closes the old connection and takes the other's
    many[0] = std::move(many[1]);
    EXPECT_EQ(many[0].path(), q.string());
    EXPECT_EQ(many[0].size(), 1);
    EXPECT_THROW((void)many[1].all(), ArgumentError);
    EXPECT_EQ(Registry(p).size(), 2);  // nothing lost on the way
    // moving a registry from inside its own write is refused, and the write rolls back
    EXPECT_THROW(many[0].issue_all({{"dave"}, "user", 0, ""}, [&](const std::vector<RegistryEntry>&) { Registry stolen(std::move(many[0])); }),
                 ArgumentError);
    EXPECT_EQ(many[0].size(), 1);
    EXPECT_FALSE(many[0].find("dave"));
}

TEST(Registry, OneObjectSharedByThreadsWhileAnotherWriterIssues) {
    // two threads attributing through one Registry while another connection issued: a double free,
    // "row 0 holds a malformed fingerprint", or size() 253 for a file of 201 rows (the API review)
    const auto p = fresh("threads.db");
    Registry shared(p);
    const auto alice = shared.issue("alice", "", 7).fingerprint;
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    auto reader = [&] {
        std::int64_t last = 0;
        while (!done) {
            try {
                const auto a = shared.attribute(alice);
                if (a.registry_size < last || a.registry_size > 201 || a.best_label != "alice" || a.best_matching != 128) ++failures;
                last = a.registry_size;
                if (shared.size() < last) ++failures;
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
                ++failures;
                return;
            }
        }
    };
    std::thread t1(reader), t2(reader);
    {
        Registry writer(p);
        for (int i = 0; i < 200; ++i) writer.issue(fmt::format("u{}", i));
    }
    done = true;
    t1.join();
    t2.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(shared.size(), 201);
    EXPECT_EQ(shared.all().size(), 201u);
    EXPECT_EQ(shared.matcher().size(), 201);
}

TEST(Registry, PathsSqliteWouldKeepInMemoryAndFifosAreRefused) {
    // "" is a private temporary database to SQLite and ":memory:" an in-memory one: every issued
    // fingerprint was lost on close, with exit 0
    for (const char* p : {"", ":memory:", "file:reg.db?mode=memory"}) EXPECT_THROW(Registry{fs::path(p)}, ArgumentError) << p;
    const auto fifo = fresh("fifo.db");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_THROW(Registry{fifo}, IoError) << "a FIFO blocked the header check";
    fs::remove(fifo);
    RegistryOptions o;
    o.busy_timeout_ms = -1;
    EXPECT_THROW(Registry(fresh("timeout.db"), o), ArgumentError);
}

TEST(Registry, NonRegistryFilesAreRefusedAndLeftUntouched) {
    const auto p = fresh("not-a-db.db");
    { std::ofstream(p) << "hello, I am a text file with important content"; }
    const std::string before = slurp(p);
    try {
        Registry r(p);
        FAIL();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("not-a-db.db"), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(p), before);
    EXPECT_THROW(Registry(fresh("missing.db"), RegistryOptions{128, -1, false, false, 1000}), IoError);
}

// Found by a first-time-user audit of the CLI (session 28): SQLite's own words were all a user got
// for a registry in a missing folder ("unable to open database file") and for a damaged one (the
// text of the failing SQL query), and importing a registry's own export said "closer than 32 bits".
TEST(Registry, MissingFoldersDamagedFilesAndOwnExportsAreNamedAsSuch) {
    const auto dir = fresh("nofolder");
    try {
        Registry r(dir / "r.db");
        FAIL();
    } catch (const IoError& e) {
        EXPECT_NE(std::string(e.what()).find("the folder " + dir.string() + " does not exist"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir));
    const auto plain = fresh("plain-file");
    { std::ofstream(plain) << "x"; }
    EXPECT_THROW(
        try { Registry r(plain / "r.db"); } catch (const IoError& e) {
            EXPECT_NE(std::string(e.what()).find(plain.string() + " is not a folder"), std::string::npos) << e.what();
            throw;
        },
        IoError);
    EXPECT_THROW(
        try { Registry r(fs::path(dir.string() + "/")); } catch (const IoError& e) {
            EXPECT_NE(std::string(e.what()).find("names a folder"), std::string::npos) << e.what();
            throw;
        },
        IoError);
    const auto damaged = fresh("damaged.db");
    { std::ofstream(damaged, std::ios::binary) << std::string("SQLite format 3\0", 16) << std::string(200, 'x'); }
    const std::string before = slurp(damaged);
    try {
        Registry r(damaged);
        FAIL();
    } catch (const FormatError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("damaged.db: the registry file is damaged"), std::string::npos) << m;
        EXPECT_EQ(m.find("SELECT"), std::string::npos) << "the message shows SQL: " << m;
    }
    EXPECT_EQ(slurp(damaged), before);
    Registry r(fresh("own.db"));
    r.issue("alice");
    const std::string csv = r.export_csv(), json = r.export_json();
    for (const auto& [text, csv_format] : {std::pair{csv, true}, std::pair{json, false}}) {
        try {
            csv_format ? r.import_csv(text, "own.csv") : r.import_json(text, "own.json");
            ADD_FAILURE() << "imported its own export again";
        } catch (const FormatError& e) {
            EXPECT_NE(std::string(e.what()).find("'alice' is already in the registry with this fingerprint"), std::string::npos)
                << e.what();
        }
    }
    EXPECT_EQ(r.size(), 1);
    // the label is there with a fingerprint 1 bit away: said so, not "1 bits from 'alice'"
    Fingerprint moved = r.all()[0].fingerprint;
    moved.set_bit(0, !moved.bit(0));
    try {
        r.import_csv("label,fingerprint\nalice," + moved.hex() + "\n", "moved.csv");
        ADD_FAILURE() << "imported a second fingerprint for 'alice'";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("moved.csv: line 2: 'alice' is already in the registry, with a fingerprint 1 bit from this one"),
                  std::string::npos) << e.what();
    }
    EXPECT_EQ(r.size(), 1);
}

TEST(Registry, CsvAndJsonRoundTripAllOrNothing) {
    const auto p = fresh("export.db");
    Registry r(p);
    for (int i = 0; i < 20; ++i) r.issue("user," + std::to_string(i), "meta \"quoted\"\nline");
    const std::string csv = r.export_csv(), json = r.export_json();
    Registry c(fresh("from-csv.db")), j(fresh("from-json.db"));
    EXPECT_EQ(c.import_csv(csv, "x.csv"), 20);
    EXPECT_EQ(j.import_json(json, "x.json"), 20);
    const auto orig = r.all(), fc = c.all(), fj = j.all();
    ASSERT_EQ(fc.size(), 20u);
    ASSERT_EQ(fj.size(), 20u);
    for (std::size_t i = 0; i < orig.size(); ++i) {  // every field through both formats (commas, quotes, newlines)
        for (const auto* f : {&fc[i], &fj[i]}) {
            EXPECT_EQ(f->label, orig[i].label);
            EXPECT_EQ(f->fingerprint, orig[i].fingerprint);
            EXPECT_EQ(f->issued_at, orig[i].issued_at);
            EXPECT_EQ(f->metadata, orig[i].metadata);
        }
    }
    // a bad row anywhere: nothing imported, the error names the line
    Registry bad(fresh("bad.db"));
    const std::string broken = "label,fingerprint\nok1," + Fingerprint::from_seed(128, 1).hex() + "\nbroken,xyz\n";
    try {
        bad.import_csv(broken, "broken.csv");
        FAIL();
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("broken.csv: line 3"), std::string::npos) << e.what();
    }
    EXPECT_EQ(bad.size(), 0);
    EXPECT_THROW(bad.import_json("[{\"label\": 3}]"), FormatError);
    EXPECT_EQ(bad.size(), 0);
    // Failures inside the transaction (the rows parse, the registry refuses one): rows before it were
    // inserted, then rolled back. The registry, its in-memory matcher included, is as before.
    const std::string a = Fingerprint::from_seed(128, 11).hex(), b = Fingerprint::from_seed(128, 12).hex();
    Fingerprint near_a = Fingerprint::parse(a, 128);
    for (int i = 0; i < 5; ++i) near_a.set_bit(i, !near_a.bit(i));  // 5 bits from a: closer than the default 32
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"label,fingerprint\nfirst," + a + "\nsecond," + b + "\nfirst," + Fingerprint::from_seed(128, 13).hex() + "\n",
         "rows.csv: line 4: "},                            // a label repeated inside the import
        {"label,fingerprint\nfirst," + a + "\nsecond," + near_a.hex() + "\n",
         "rows.csv: line 3: the fingerprint of 'second' is 5 bits from that of 'first' on line 2, below the minimum distance 32"},
        {"label,fingerprint\nfirst," + a + "\nsecond," + a + "\n",  // the same fingerprint under another label
         "rows.csv: line 3: the fingerprint of 'second' is the same as that of 'first' on line 2"},
        {"label,fingerprint\nfirst," + a + "\nfirst," + a + "\n",  // a row given twice: nothing is "in the registry" yet
         "rows.csv: line 3: 'first' is given twice (also on line 2)"},
    };
    for (const auto& [text, message] : refused) {
        try {
            bad.import_csv(text, "rows.csv");
            ADD_FAILURE() << "imported: " << text;
        } catch (const FormatError& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("nothing was imported"), std::string::npos) << e.what();
        }
        EXPECT_EQ(bad.size(), 0);
        EXPECT_TRUE(bad.all().empty());
        EXPECT_EQ(bad.attribute(Fingerprint::parse(a, 128)).best_index, -1) << "the matcher kept a rolled-back row";
    }
    // after the rollbacks the same rows import cleanly
    EXPECT_EQ(bad.import_csv("label,fingerprint\nfirst," + a + "\nsecond," + b + "\n", "rows.csv"), 2);
    EXPECT_EQ(bad.attribute(Fingerprint::parse(b, 128)).best_label, "second");
}

// Found by a hostile-user test of the API (session 19):
// - an imported issued_at that was not UTF-8 was stored, and every later export_json threw a raw
//   nlohmann error; control characters in it were exported raw;
// - import_csv read columns by position and checked only the first two header names: a header
//   label,fingerprint,metadata,issued_at swapped the two columns silently;
// - messages counted CSV records, not lines, and JSON entries from 0 in one message and 1 in another;
// - a UTF-8 byte-order mark (as spreadsheet programs write) made the header "wrong".
TEST(Registry, ImportsCheckTheHeaderAndTimeStampsAndNameTheRealLine) {
    const std::string a = Fingerprint::from_seed(128, 21).hex(), b = Fingerprint::from_seed(128, 22).hex();
    auto message = [](auto&& f) { return sgf::test::message_of<FormatError>(f); };
    Registry r(fresh("imports.db"));
    for (const std::string& stamp : {std::string("\xff\xfe"), std::string("2024\x1b[31m"), std::string("a\x01z"), std::string(65, '1')}) {
        std::string m = message([&] { r.import_csv("label,fingerprint,issued_at,metadata\nalice," + a + "," + stamp + ",m\n", "t.csv"); });
        EXPECT_NE(m.find("t.csv: line 2"), std::string::npos) << m;
        EXPECT_NE(m.find("issued_at of 'alice' must be at most 64 printable ASCII characters"), std::string::npos) << m;
        nlohmann::json j = nlohmann::json::array();
        j.push_back({{"label", "alice"}, {"fingerprint", a}, {"issued_at", stamp.size() == 65 ? stamp : "x\ty"}});
        m = message([&] { r.import_json(j.dump(), "t.json"); });
        EXPECT_NE(m.find("t.json: entry 1: "), std::string::npos) << m;
        EXPECT_EQ(r.size(), 0);
    }
    EXPECT_NE(message([&] { r.import_json(R"([{"label": 3}])", "t.json"); }).find("t.json: entry 1 needs"), std::string::npos);
    // headers: the known columns in their order, nothing else
    for (const std::string header : {"label,fingerprint,metadata,issued_at", "label,fingerprint,metadata", "label,fingerprint,issued_at,metadata,extra",
                                      "fingerprint,label", "label"}) {
        const std::string m = message([&] { r.import_csv(header + "\nalice," + a + ",x,y\n", "h.csv"); });
        EXPECT_NE(m.find("h.csv: line 1: expected the header label,fingerprint[,issued_at[,metadata]]"), std::string::npos) << m;
        EXPECT_EQ(r.size(), 0);
    }
    EXPECT_NE(message([&] { r.import_csv("", "empty.csv"); }).find("empty.csv: empty"), std::string::npos);
    // more fields than the header's columns
    EXPECT_NE(message([&] { r.import_csv("label,fingerprint\nalice," + a + ",2024-01-01T00:00:00Z\n", "n.csv"); })
                  .find("n.csv: line 2: expected 2 to 2 fields"),
              std::string::npos);
    // physical lines: a quoted field over three lines comes before the bad row on line 5
    const std::string m = message([&] { r.import_csv("label,fingerprint,issued_at,metadata\nalice," + a + ",,\"one\ntwo\nthree\"\nbob,xyz\n", "q.csv"); });
    EXPECT_NE(m.find("q.csv: line 5"), std::string::npos) << m;
    // a byte-order mark is skipped; a 3-column header keeps the time stamps
    EXPECT_EQ(r.import_csv("\xEF\xBB\xBFlabel,fingerprint,issued_at\nalice," + a + ",2024-01-01T00:00:00Z\nbob," + b + "\n", "bom.csv"), 2);
    EXPECT_EQ(r.find("alice")->issued_at, "2024-01-01T00:00:00Z");
    EXPECT_EQ(r.find("bob")->metadata, "");
    EXPECT_NO_THROW(nlohmann::json::parse(r.export_json()));
}

// issue_all with numbered = INT64_MAX overflowed the size check (UBSan) and then issued inside one
// transaction for as long as it ran; find("alice\0evil") found alice (SQLite bound the C string).
TEST(Registry, HugeRequestsAndLabelsWithNulFindNothingAndIssueNothing) {
    Registry r(fresh("huge.db"));
    r.issue("alice");
    Registry::IssueRequest q;
    q.labels = {"x"};
    q.numbered = std::numeric_limits<std::int64_t>::max();
    EXPECT_THROW(r.issue_all(q), ArgumentError);
    q.numbered = std::int64_t(Registry::kMaxImportRows);
    EXPECT_THROW(r.issue_all(q), ArgumentError);  // one more than the limit with the explicit label
    EXPECT_EQ(r.size(), 1);
    EXPECT_FALSE(r.find(std::string("alice\0evil", 10)).has_value());
    EXPECT_FALSE(r.find(std::string(Registry::kMaxLabelBytes + 1, 'a')).has_value());
    EXPECT_TRUE(r.find("alice").has_value());
}

TEST(Registry, ConcurrentProcessesNeverDuplicateOrLoseRows) {
    const auto p = fresh("concurrent.db");
    { Registry init(p); }
    const int procs = 4, each = 50;
    std::vector<pid_t> kids;
    for (int k = 0; k < procs; ++k) {
        const pid_t pid = fork();
        if (pid == 0) {
            int rc = 0;
            try {
                Registry r(p);
                for (int i = 0; i < each; ++i) r.issue(fmt::format("p{}-{}", k, i));
            } catch (...) {
                rc = 1;
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) {
        int status = 0;
        waitpid(pid, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed";
    }
    Registry r(p);
    const auto rows = r.all();
    ASSERT_EQ(rows.size(), std::size_t(procs * each));
    std::set<std::string> labels, hexes;
    for (const auto& e : rows) {
        labels.insert(e.label);
        hexes.insert(e.fingerprint.hex());
    }
    EXPECT_EQ(labels.size(), rows.size());
    EXPECT_EQ(hexes.size(), rows.size());
    int closest = 128;
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = i + 1; j < rows.size(); ++j) closest = std::min(closest, rows[i].fingerprint.hamming(rows[j].fingerprint));
    EXPECT_GE(closest, r.min_distance());
}

// Processes that open (and so create) the same new registry at the same moment: each one's switch to
// the WAL journal can meet another's lock, which SQLite reports at once instead of waiting (seen as
// "PRAGMA journal_mode=WAL failed: database is locked" on a 16-core machine). Every opener must succeed.
TEST(Registry, ProcessesCreatingTheSameRegistryAtOnceAllSucceed) {
    for (int round = 0; round < 20; ++round) {
        const auto p = fresh(fmt::format("created-at-once-{}.db", round));
        const int procs = 8;
        int ready[2];
        ASSERT_EQ(pipe(ready), 0);
        std::vector<pid_t> kids;
        for (int k = 0; k < procs; ++k) {
            const pid_t pid = fork();
            if (pid == 0) {
                char go = 0;
                close(ready[1]);
                if (read(ready[0], &go, 1) < 0) _exit(2);  // all children start together
                int rc = 0;
                try {
                    Registry r(p);
                    r.issue(fmt::format("p{}", k));
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "opener %d: %s\n", k, e.what());
                    rc = 1;
                }
                _exit(rc);
            }
            kids.push_back(pid);
        }
        close(ready[0]);
        close(ready[1]);  // EOF releases every child at once
        for (pid_t pid : kids) {
            int status = 0;
            waitpid(pid, &status, 0);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round << ": an opener failed";
        }
        Registry r(p);
        EXPECT_EQ(r.size(), procs) << "round " << round;
        if (::testing::Test::HasFailure()) break;
    }
}

TEST(Registry, RejectionSamplingEnforcesATightMinimumDistance) {
    // 8-bit codes at distance >= 3: few fit, so rejections happen; every pair must respect it
    Registry r(fresh("tight.db"), RegistryOptions{8, 3, true, false, 1000});
    int issued = 0;
    for (int i = 0; i < 40; ++i) {
        try {
            r.issue("u" + std::to_string(i), "", 77 + i);
            ++issued;
        } catch (const Error&) {
            break;  // the code space is full
        }
    }
    EXPECT_GE(issued, 8);
    const auto rows = r.all();
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = i + 1; j < rows.size(); ++j) EXPECT_GE(rows[i].fingerprint.hamming(rows[j].fingerprint), 3);
}

}  // namespace
}  // namespace sgf
