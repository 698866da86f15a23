#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/ids.h"

namespace photorig::files {
namespace {
Error io_error(const std::string& what, const std::string& path) {
    return make_error("io_error", what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

std::string dirname_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

int rename_noreplace(const std::string& from, const std::string& to) {
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return -1;
#endif
    if (::link(from.c_str(), to.c_str()) != 0) return -1;
    ::unlink(from.c_str());
    return 0;
}

Status fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_error("open dir", dir);
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return io_error("fsync dir", dir);
    return ok();
}

Status make_dirs(const std::string& dir) {
    if (dir.empty()) return ok();
    struct stat existing {};
    // The usual case (a spool batch directory for its next photo): one stat, no mkdir per level.
    if (::stat(dir.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) return ok();
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        partial = dir.substr(0, pos);
        if (partial.empty()) continue;
        if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
            return io_error("mkdir", partial);
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return make_error("io_error", "not a directory: " + dir);
    }
    return ok();
}

Status write_atomic(const std::string& path, const std::string& data) {
    if (auto st = write_atomic_unsynced_dir(path, data); !st) return st;
    return fsync_dir(dirname_of(path));
}

Status write_atomic_unsynced_dir(const std::string& path, const std::string& data) {
    std::string tmp = path + ".tmp-" + ids::random_hex(8);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_error("create", tmp);
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            Error e = io_error("write", tmp);
            ::close(fd);
            ::unlink(tmp.c_str());
            return e;
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        Error e = io_error("fsync", tmp);
        ::close(fd);
        ::unlink(tmp.c_str());
        return e;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        Error e = io_error("rename to", path);
        ::unlink(tmp.c_str());
        return e;
    }
    return ok();
}

Expected<std::string> read_all(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("open", path);
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            Error e = io_error("read", path);
            ::close(fd);
            return e;
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

Expected<std::string> read_secret(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return io_error("cannot read secret file", path);
    if (!S_ISREG(st.st_mode)) return make_error("bad_secret_file", path + " is not a regular file");
    if (st.st_mode & S_IROTH) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
        return make_error("insecure_secret_file", path + " is readable by every user (mode " +
                                                      mode + "); run: chmod 600 " + path);
    }
    auto content = read_all(path);
    if (!content) return content.error();
    std::string s = std::move(content.value());
    if (!s.empty() && s.back() == '\n') s.pop_back();
    if (!s.empty() && s.back() == '\r') s.pop_back();
    return s;
}

Expected<uint64_t> disk_free_bytes(const std::string& path) {
    struct statvfs vfs {};
    if (::statvfs(path.c_str(), &vfs) != 0) return io_error("statvfs", path);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

}  // namespace photorig::files
