// Whole-file reads and atomic writes. A write goes to a temporary file in the target's directory,
// is flushed to disk (fsync), then renamed over the target and the directory is fsynced: a reader
// (or a crash) sees either the old file or the new one, never a partial write.
#pragma once

#include <sgf/core/error.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sgf::io {

namespace detail {
inline std::string errno_text() { return std::strerror(errno); }

inline void write_all(int fd, const void* data, std::size_t n, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            SGF_THROW(IoError, "{}: write failed: {}", path, errno_text());
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}
}  // namespace detail

/// A writer killed between creating its temporary file and renaming it (SIGKILL, power loss)
/// leaves ".<name>.tmp.<pid>.<random>" behind. The first atomic write into a directory in each
/// process removes such files whose process no longer exists (found by tests/crash, where every
/// killed checkpoint write left a checkpoint-sized file); files of live processes are left alone.
inline void remove_stale_temporaries(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    static std::mutex m;
    static std::set<std::string> done;
    {
        std::lock_guard<std::mutex> lock(m);
        if (!done.insert(fs::absolute(dir).lexically_normal().string()).second) return;
    }
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string n = it->path().filename().string();
        const auto t = n.rfind(".tmp.");
        if (n.empty() || n[0] != '.' || t == std::string::npos) continue;
        const auto dot = n.find('.', t + 5);
        if (dot == std::string::npos || dot == t + 5 || n.size() - dot - 1 != 8) continue;
        const std::string pid_text = n.substr(t + 5, dot - t - 5);
        if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
        if (n.find_first_not_of("0123456789abcdef", dot + 1) != std::string::npos) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
        if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer may still be at work
        std::error_code rm;
        fs::remove(it->path(), rm);
    }
}

/// Sink handed to the writer callback of write_file_atomic.
class FileSink {
public:
    FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    void write(const void* data, std::size_t n) {
        if (n) detail::write_all(fd_, data, n, path_);
    }
    void write(std::string_view s) { write(s.data(), s.size()); }

private:
    int fd_;
    std::string path_;
};

/// Writes a file atomically; `writer` streams the content into the sink. On any failure the
/// temporary file is removed, the old file (if any) is left as it was, and IoError names the path.
inline void write_file_atomic(const std::filesystem::path& path, const std::function<void(FileSink&)>& writer) {
    namespace fs = std::filesystem;
    SGF_CHECK(!path.empty() && path.has_filename(), ArgumentError, "'{}': an output file needs a file name", path.string());
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::random_device rd;
    const fs::path tmp = dir / fmt::format(".{}.tmp.{}.{:08x}", path.filename().string(), ::getpid(), rd());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) SGF_THROW(IoError, "{}: cannot create temporary file in '{}': {}", path.string(), dir.string(), detail::errno_text());
    try {
        FileSink sink(fd, path.string());
        writer(sink);
        if (::fsync(fd) != 0) SGF_THROW(IoError, "{}: fsync failed: {}", path.string(), detail::errno_text());
        if (::close(fd) != 0) {
            SGF_THROW(IoError, "{}: close failed: {}", path.string(), detail::errno_text());
        }
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = detail::errno_text();
        ::unlink(tmp.c_str());
        SGF_THROW(IoError, "{}: cannot rename temporary file into place: {}", path.string(), why);
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    remove_stale_temporaries(dir);
}

/// Creates `dir` and its parents when missing. IoError names the folder when it cannot be created
/// (permissions, a file in the way) or when it exists but is not a folder.
inline void ensure_directory(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    SGF_CHECK(!dir.empty(), ArgumentError, "an output folder name must not be empty");
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return;
    if (fs::exists(dir, ec)) SGF_THROW(IoError, "{}: exists and is not a folder", dir.string());
    fs::create_directories(dir, ec);
    if (ec) SGF_THROW(IoError, "{}: cannot create folder: {}", dir.string(), ec.message());
}

inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
    write_file_atomic(path, [&](FileSink& s) { s.write(bytes); });
}

/// A regular file opened for reading, read front to back; IoError names the path when it is
/// missing, unreadable, not a regular file (a FIFO would block, a folder is no file) or ends early.
class InputFile {
public:
    explicit InputFile(const std::filesystem::path& path) : path_(path) {
        // O_NONBLOCK: opening a FIFO without a writer would block forever; it is refused below.
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd_ < 0) SGF_THROW(IoError, "{}: cannot open: {}", path.string(), detail::errno_text());
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd_);
            SGF_THROW(IoError, "{}: not a regular file", path.string());
        }
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
        size_ = static_cast<std::uint64_t>(st.st_size);
    }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    ~InputFile() { ::close(fd_); }

    std::uint64_t size() const { return size_; }  ///< at opening
    const std::filesystem::path& path() const { return path_; }

    /// The next n bytes into dst; IoError when the file ends first.
    void read(void* dst, std::size_t n) {
        auto* p = static_cast<std::uint8_t*>(dst);
        while (n > 0) {
            const ssize_t r = ::read(fd_, p, n);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) SGF_THROW(IoError, "{}: read failed: {}", path_.string(), r < 0 ? detail::errno_text() : "unexpected end of file");
            p += r;
            n -= static_cast<std::size_t>(r);
        }
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

/// Reads a whole file; IoError names the path when it is missing or unreadable, FormatError when it
/// is larger than max_bytes (checked before anything is read or allocated).
inline std::vector<std::uint8_t> read_file(const std::filesystem::path& path, std::uint64_t max_bytes = std::uint64_t(1) << 36) {
    InputFile in(path);
    if (in.size() > max_bytes)
        SGF_THROW(FormatError, "{}: file is {} bytes, above the limit of {}", path.string(), in.size(), max_bytes);
    std::vector<std::uint8_t> out(static_cast<std::size_t>(in.size()));
    in.read(out.data(), out.size());
    return out;
}

}  // namespace sgf::io
