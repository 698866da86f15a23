#include "spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "core/clock.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"

namespace photorig::spool {
namespace {
using files::basename_of;
using files::dirname_of;
constexpr const char* kLog = "spool";
constexpr const char* kSidecarSuffix = ".meta.json";
constexpr const char* kTempMarker = ".part-";
constexpr const char* kSidecarTempMarker = ".tmp-";  // files::write_atomic's temp suffix
constexpr int kMaxDepth = 8;

Error errno_error(const std::string& what, const std::string& path, int err) {
    std::string code = (err == ENOSPC || err == EDQUOT) ? "disk_full" : "io_error";
    return make_error(code, what + " " + path + ": " + std::strerror(err));
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t mtime_ms_of(const struct stat& st) {
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

std::string canonical_or_same(const std::string& dir) {
    char buf[PATH_MAX];
    if (::realpath(dir.c_str(), buf)) return buf;
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d;
}

// A writer's hidden temp, or the temp files::write_atomic leaves beside a sidecar
// ("<name>.meta.json.tmp-<random>") when it is cut short.
bool is_temp_name(const std::string& name) {
    if (name.find(std::string(kSidecarSuffix) + kSidecarTempMarker) != std::string::npos)
        return true;
    return !name.empty() && name[0] == '.' && name.find(kTempMarker) != std::string::npos;
}

bool is_photo_name(const std::string& name) {
    return !name.empty() && name[0] != '.' && !ends_with(name, kSidecarSuffix) &&
           !is_temp_name(name);
}

struct WalkItem {
    std::string path, relative_path, name;
    struct stat st;
};

// Visits every regular file under `root` (no symlinks followed), depth-limited.
template <typename Fn>
bool walk(const std::string& root, const std::string& rel_prefix, int depth, Fn&& fn) {
    DIR* d = ::opendir(root.c_str());
    if (!d) return false;
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        names.push_back(std::move(n));
    }
    ::closedir(d);
    for (const auto& n : names) {
        WalkItem item;
        item.path = root + "/" + n;
        item.relative_path = rel_prefix.empty() ? n : rel_prefix + "/" + n;
        item.name = n;
        if (::lstat(item.path.c_str(), &item.st) != 0) continue;  // vanished meanwhile
        if (S_ISDIR(item.st.st_mode)) {
            if (depth < kMaxDepth && n[0] != '.')
                walk(item.path, item.relative_path, depth + 1, fn);
        } else if (S_ISREG(item.st.st_mode)) {
            fn(item);
        }
    }
    return true;
}
}  // namespace

Status validate_relative_path(const std::string& rel) {
    if (rel.empty()) return make_error("bad_path", "empty relative path");
    if (rel[0] == '/') return make_error("bad_path", "absolute path not allowed: " + rel);
    if (rel.find('\0') != std::string::npos) return make_error("bad_path", "NUL in path");
    if (rel.size() > 1024) return make_error("bad_path", "path too long");
    size_t start = 0;
    for (;;) {
        size_t slash = rel.find('/', start);
        std::string comp =
            rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (comp.empty()) return make_error("bad_path", "empty path component in '" + rel + "'");
        if (comp == "..") return make_error("bad_path", "'..' not allowed in '" + rel + "'");
        if (comp == ".") return make_error("bad_path", "'.' not allowed in '" + rel + "'");
        if (comp[0] == '.')
            return make_error("bad_path", "hidden component not allowed in '" + rel + "'");
        if (comp.size() > 255) return make_error("bad_path", "component too long in '" + rel + "'");
        if (slash == std::string::npos) {
            if (ends_with(comp, kSidecarSuffix)) {
                return make_error("bad_path",
                                  "a photo name cannot end in .meta.json: '" + rel + "'");
            }
            break;
        }
        start = slash + 1;
    }
    return ok();
}

// ---------------------------------------------------------------------------- SpoolWriter

Expected<std::unique_ptr<SpoolWriter>> SpoolWriter::create(const std::string& spool_dir,
                                                           const std::string& relative_path) {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    std::unique_ptr<SpoolWriter> w(new SpoolWriter());
    w->spool_dir_ = spool_dir;
    w->relative_path_ = relative_path;
    w->final_path_ = spool_dir + "/" + relative_path;
    w->dir_ = dirname_of(w->final_path_);
    w->name_ = basename_of(w->final_path_);
    // The uploader may remove an empty batch directory between our mkdir and open: retry.
    for (int attempt = 0;; ++attempt) {
        if (auto st = files::make_dirs(w->dir_); !st) return st.error().with_context("spool");
        w->temp_path_ = w->dir_ + "/." + w->name_ + kTempMarker + ids::random_hex(12);
        w->fd_ = ::open(w->temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd_ >= 0) break;
        int err = errno;
        if ((err == ENOENT || err == EEXIST) && attempt < 5) continue;
        w->finished_ = true;
        return errno_error("spool: create", w->temp_path_, err);
    }
    return w;
}

SpoolWriter::~SpoolWriter() {
    abort();
}

uint64_t SpoolWriter::bytes_written() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return size_;
}

Status SpoolWriter::write(const void* data, size_t len) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_ || fd_ < 0)
        return make_error("io_error", "spool: write after commit/abort of " + relative_path_);
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::write(fd_, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("spool: write", temp_path_, errno);
        }
        done += static_cast<size_t>(n);
    }
    const auto hash_start = std::chrono::steady_clock::now();
    hash_.update(data, len);
    hash_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - hash_start)
                    .count();  // ns: one packet's hash takes a few us
    if (head_.size() < kKeptHeadBytes)
        head_.append(p, std::min(len, kKeptHeadBytes - head_.size()));
    size_ += len;
    return ok();
}

Expected<SpooledFile> SpoolWriter::commit(bool sync_dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_ || fd_ < 0)
        return make_error("io_error", "spool: commit after commit/abort of " + relative_path_);
    const int64_t commit_start_us = clock::monotonic_us();
    if (::fsync(fd_) != 0) {
        Error e = errno_error("spool: fsync", temp_path_, errno);
        abort_locked();
        return e;
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        Error e = errno_error("spool: fstat", temp_path_, errno);
        abort_locked();
        return e;
    }
    ::close(fd_);
    fd_ = -1;
    if (files::rename_noreplace(temp_path_, final_path_) != 0) {
        int err = errno;
        Error e = err == EEXIST
                      ? make_error("exists", "spool: " + relative_path_ + " already exists")
                      : errno_error("spool: rename to", final_path_, err);
        abort_locked();
        return e;
    }
    finished_ = true;
    if (sync_dir) {
        if (auto s = files::fsync_dir(dir_); !s) {
            // The photo is complete under its final name; only the directory entry's
            // durability is in doubt. Report it, but the file stays (it is a good file).
            LOG_WARN(kLog, "fsync of " << dir_ << " failed: " << s.error().describe());
        }
    }
    // A new batch directory must be durable in the spool root too.
    if (dir_ != spool_dir_) (void)files::fsync_dir(dirname_of(dir_));
    SpooledFile f;
    f.path = final_path_;
    f.relative_path = relative_path_;
    f.name = name_;
    f.size = size_;
    f.sha256 = hash_.hex_digest();
    f.mtime_ms = mtime_ms_of(st);
    f.head = std::move(head_);
    f.hash_us = hash_ns_ / 1000;
    f.commit_us = clock::monotonic_us() - commit_start_us;
    return f;
}

void SpoolWriter::abort() {
    std::lock_guard<std::mutex> lock(mutex_);
    abort_locked();
}

void SpoolWriter::sync_ahead() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_ || fd_ < 0) return;
    // Writeback starts now and runs while the camera's worker reads on to its
    // CaptureComplete (~1 ms); commit()'s fsync then waits only for what is left. No thread:
    // a helper's fsync waited on its own scheduling on a busy machine.
    (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void SpoolWriter::abort_locked() {
    if (finished_) return;
    finished_ = true;
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

// ---------------------------------------------------------------------------------- Spool

Spool::Spool(std::string dir) : dir_(canonical_or_same(dir)) {}

Status Spool::init(int stale_temp_age_s) {
    if (auto st = files::make_dirs(dir_); !st) return st.error().with_context("spool");
    dir_ = canonical_or_same(dir_);
    if (::access(dir_.c_str(), W_OK) != 0) return errno_error("spool: not writable:", dir_, errno);
    uint64_t removed = remove_stale_temps(stale_temp_age_s);
    if (removed > 0)
        LOG_INFO(kLog, "removed " << removed << " leftover temp/orphan file(s) from " << dir_);
    return ok();
}

uint64_t Spool::remove_stale_temps(int stale_temp_age_s) {
    int64_t cutoff_ms = (static_cast<int64_t>(std::time(nullptr)) - stale_temp_age_s) * 1000;
    uint64_t removed = 0;
    std::vector<std::string> dirs;
    walk(dir_, "", 0, [&](const WalkItem& item) {
        bool stale = mtime_ms_of(item.st) < cutoff_ms;
        if (is_temp_name(item.name)) {
            if (stale && ::unlink(item.path.c_str()) == 0) ++removed;
        } else if (ends_with(item.name, kSidecarSuffix)) {
            // A sidecar is written after its photo and removed after it: alone, it is a leftover.
            std::string photo = item.path.substr(0, item.path.size() - std::strlen(kSidecarSuffix));
            struct stat st {};
            if (stale && ::lstat(photo.c_str(), &st) != 0 && errno == ENOENT &&
                ::unlink(item.path.c_str()) == 0) {
                ++removed;
            }
        }
    });
    return removed;
}

Expected<std::unique_ptr<SpoolWriter>> Spool::create_writer(
    const std::string& relative_path) const {
    return SpoolWriter::create(dir_, relative_path);
}

bool Spool::exists(const std::string& relative_path) const {
    if (!validate_relative_path(relative_path)) return false;
    struct stat st {};
    return ::lstat(path_of(relative_path).c_str(), &st) == 0;
}

Status Spool::write_sidecar(const std::string& relative_path, const std::string& text,
                            bool sync_dir) {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    std::string path = path_of(relative_path) + kSidecarSuffix;
    if (auto st = files::make_dirs(dirname_of(path)); !st) return st.error().with_context("spool");
    return sync_dir ? files::write_atomic(path, text)
                    : files::write_atomic_unsynced_dir(path, text);
}

DirTicket Spool::renamed_into_dir_of(const std::string& relative_path) const {
    return dir_syncer_->renamed(dirname_of(path_of(relative_path)));
}

Status Spool::sync_dir_of(const std::string& relative_path) const {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    return files::fsync_dir(dirname_of(path_of(relative_path)));
}

Expected<std::string> Spool::read_sidecar(const std::string& relative_path) const {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    std::string path = path_of(relative_path) + kSidecarSuffix;
    if (::access(path.c_str(), F_OK) != 0)
        return make_error("not_found", "no sidecar for " + relative_path);
    return files::read_all(path);
}

Expected<std::vector<SpoolEntry>> Spool::list() const {
    std::vector<SpoolEntry> out;
    bool ok_dir = walk(dir_, "", 0, [&](const WalkItem& item) {
        if (!is_photo_name(item.name)) return;
        SpoolEntry e;
        e.path = item.path;
        e.relative_path = item.relative_path;
        e.name = item.name;
        e.size = static_cast<uint64_t>(item.st.st_size);
        e.mtime_ms = mtime_ms_of(item.st);
        std::string sidecar = item.path + kSidecarSuffix;
        if (::access(sidecar.c_str(), F_OK) == 0) {
            auto text = files::read_all(sidecar);
            if (text) {
                e.has_sidecar = true;
                e.sidecar = std::move(*text);
            }
        }
        out.push_back(std::move(e));
    });
    if (!ok_dir) return errno_error("spool: list", dir_, errno);
    std::sort(out.begin(), out.end(), [](const SpoolEntry& a, const SpoolEntry& b) {
        if (a.mtime_ms != b.mtime_ms) return a.mtime_ms < b.mtime_ms;
        return a.relative_path < b.relative_path;
    });
    return out;
}

Status Spool::remove(const std::string& relative_path) {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    std::string path = path_of(relative_path);
    std::string dir = dirname_of(path);
    // Photo first: a crash in between leaves an orphan sidecar (harmless, cleaned by
    // init), never a photo without its sidecar (which would get a new job id).
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return errno_error("spool: remove", path, errno);
    std::string sidecar = path + kSidecarSuffix;
    if (::unlink(sidecar.c_str()) != 0 && errno != ENOENT)
        return errno_error("spool: remove", sidecar, errno);
    (void)files::fsync_dir(dir);
    // Remove now-empty batch directories up to (not including) the spool root. rmdir
    // fails harmlessly when a writer has just put a temp file there.
    while (dir.size() > dir_.size() && dir.compare(0, dir_.size() + 1, dir_ + "/") == 0) {
        if (::rmdir(dir.c_str()) != 0) break;
        dir = dirname_of(dir);
    }
    return ok();
}

uint64_t Spool::file_count() const {
    uint64_t n = 0;
    walk(dir_, "", 0, [&](const WalkItem& item) {
        if (is_photo_name(item.name)) ++n;
    });
    return n;
}

Expected<uint64_t> Spool::disk_free_bytes() const {
    return files::disk_free_bytes(dir_);
}

Expected<std::string> Spool::keep_uploaded(const std::string& relative_path) {
    if (auto st = validate_relative_path(relative_path); !st) return st.error();
    const std::string from = path_of(relative_path);
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) {
        if (errno == ENOENT) return std::string();
        return errno_error("spool: keep", from, errno);
    }
    const std::string wanted = kept_dir() + "/" + relative_path;
    if (auto made = files::make_dirs(dirname_of(wanted)); !made)
        return made.error().with_context("spool: keep");
    // Never replace an earlier kept photo of the same name (a re-used batch name).
    std::string to = wanted;
    const std::string name = basename_of(wanted);
    const auto dot = name.rfind('.');
    const std::string stem = dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
    const std::string ext = stem.size() == name.size() ? std::string() : name.substr(dot);
    for (int n = 2;; ++n) {
        if (files::rename_noreplace(from, to) == 0) break;
        if (errno != EEXIST || n > 9999) return errno_error("spool: keep", from, errno);
        to = dirname_of(wanted) + "/" + stem + "-" + std::to_string(n) + ext;
    }
    // The sidecar follows its photo; a crash in between leaves an orphan sidecar in the
    // spool, which init() removes.
    const std::string sidecar = from + kSidecarSuffix;
    if (::rename(sidecar.c_str(), (to + kSidecarSuffix).c_str()) != 0 && errno != ENOENT)
        LOG_WARN(kLog, "keeping the sidecar of " << relative_path << ": " << std::strerror(errno));
    (void)files::fsync_dir(dirname_of(from));
    (void)files::fsync_dir(dirname_of(to));
    // The batch directory goes once empty, as after remove().
    std::string dir = dirname_of(from);
    while (dir.size() > dir_.size() && dir.compare(0, dir_.size() + 1, dir_ + "/") == 0) {
        if (::rmdir(dir.c_str()) != 0) break;
        dir = dirname_of(dir);
    }
    return to;
}

std::vector<Spool::KeptFile> Spool::kept_files() const {
    std::vector<KeptFile> kept;
    walk(kept_dir(), "", 0, [&](const WalkItem& item) {
        if (!is_photo_name(item.name)) return;
        KeptFile k;
        k.path = item.path;
        k.size = static_cast<uint64_t>(item.st.st_size);
        k.kept_at_ms =
            static_cast<int64_t>(item.st.st_ctim.tv_sec) * 1000 + item.st.st_ctim.tv_nsec / 1000000;
        kept.push_back(std::move(k));
    });
    std::sort(kept.begin(), kept.end(), [](const KeptFile& a, const KeptFile& b) {
        return a.kept_at_ms != b.kept_at_ms ? a.kept_at_ms < b.kept_at_ms : a.path < b.path;
    });
    return kept;
}

namespace {
// Deletes a kept photo, its sidecar and the directories it leaves empty (up to .uploaded).
bool remove_kept_file(const std::string& kept_root, const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        LOG_WARN(kLog, "deleting kept photo " << path << ": " << std::strerror(errno));
        return false;
    }
    (void)::unlink((path + kSidecarSuffix).c_str());
    std::string dir = dirname_of(path);
    while (dir.size() > kept_root.size() &&
           dir.compare(0, kept_root.size() + 1, kept_root + "/") == 0) {
        if (::rmdir(dir.c_str()) != 0) break;
        dir = dirname_of(dir);
    }
    return true;
}
}  // namespace

uint64_t Spool::remove_kept_before(int64_t cutoff_ms) {
    uint64_t removed = 0;
    for (const auto& k : kept_files()) {
        if (k.kept_at_ms >= cutoff_ms) break;  // oldest first
        if (remove_kept_file(kept_dir(), k.path)) ++removed;
    }
    return removed;
}

uint64_t Spool::evict_kept_until_free(uint64_t min_free_bytes) {
    uint64_t removed = 0;
    for (const auto& k : kept_files()) {
        auto free_bytes = disk_free_bytes();
        if (!free_bytes || *free_bytes >= min_free_bytes) break;
        if (remove_kept_file(kept_dir(), k.path)) ++removed;
    }
    return removed;
}

}  // namespace photorig::spool
