#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <system_error>

#include "error.h"

namespace limn::core {
namespace {

[[noreturn]] void fail_errno(const std::string& what, int err) {
    fail(LIMN_ERR_IO, what + ": " + std::error_code(err, std::generic_category()).message());
}

// 8 characters that differ between calls, threads and processes.
std::string temp_suffix() {
    static std::atomic<uint64_t> counter{0};
    const auto now = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    uint64_t x = (static_cast<uint64_t>(::getpid()) << 32) ^ now ^
                 (counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull);
    // splitmix64's finalizer spreads the bits.
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    static const char kDigits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s(8, '0');
    for (char& c : s) {
        c = kDigits[x % 36];
        x /= 36;
    }
    return s;
}

std::string folder_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Makes a rename in `folder` durable; failing to is not worth failing the write for.
void sync_folder(const std::string& folder) {
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

}  // namespace

TempFile::TempFile(const std::string& folder, const std::string& what, unsigned mode, const std::string& extension)
    : what_(what) {
    for (int attempt = 0;; ++attempt) {
        name_ = (folder.empty() ? std::string(".") : folder) + (folder.empty() || folder.back() != '/' ? "/" : "") +
                ".limn-tmp-" + temp_suffix() + extension;
        fd_ = ::open(name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
        if (fd_ >= 0) return;
        const int err = errno;
        if (err != EEXIST || attempt == 100) {
            name_.clear();
            fail_errno(what_, err);
        }
    }
}

TempFile::~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!name_.empty()) ::unlink(name_.c_str());
}

void TempFile::write(const void* data, size_t size) {
    const auto* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::write(fd_, p + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_errno(what_, errno);
        }
        done += static_cast<size_t>(n);
    }
}

void TempFile::close() {
    if (fd_ < 0) return;
    if (::fsync(fd_) != 0 && errno != EINVAL) fail_errno(what_, errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_errno(what_, errno);
}

void TempFile::commit(const std::string& target) {
    close();
    if (::rename(name_.c_str(), target.c_str()) != 0) fail_errno(what_, errno);
    name_.clear();
    sync_folder(folder_of(target));
}

std::string write_target(const std::string& path, const std::string& what) {
    std::string target = path;
    for (int hops = 0; hops < 40; ++hops) {
        struct stat st {};
        if (::lstat(target.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return target;
        std::string link(static_cast<size_t>(st.st_size > 0 ? st.st_size : PATH_MAX), '\0');
        const ssize_t n = ::readlink(target.c_str(), link.data(), link.size());
        if (n < 0) return target;
        link.resize(static_cast<size_t>(n));
        target = link.front() == '/' ? link : folder_of(target) + "/" + link;
    }
    // A loop of links (or a chain longer than the system follows): renaming onto it would replace
    // the link by a file, so it fails as open(2) would.
    fail_errno(what, ELOOP);
}

void write_file_atomic(const std::string& path, const void* data, size_t size, const std::string& what) {
    const std::string target = write_target(path, what);
    TempFile temp(folder_of(target), what);
    temp.write(data, size);
    temp.commit(target);
}

}  // namespace limn::core
