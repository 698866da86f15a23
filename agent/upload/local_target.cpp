#include "upload/local_target.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "core/digest.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/text.h"

namespace photorig::upload {
namespace {
using files::basename_of;
using files::dirname_of;
constexpr const char* kLog = "local-target";
constexpr const char* kTempMarker = ".part-";
constexpr int kMaxCandidates = 100;
constexpr int64_t kStaleTempAgeS = 3600;

// Errors writing to the destination: a full disk, a target that is not there or not
// writable (unmounted, read-only), or another I/O error. All retryable.
Error dest_error(const std::string& what, const std::string& path, int err) {
    std::string code = "io_error";
    if (err == ENOSPC || err == EDQUOT)
        code = "disk_full";
    else if (err == EROFS || err == EACCES || err == EPERM || err == ENODEV || err == ENOTCONN ||
             err == ESTALE || err == ENXIO || err == EIO || err == ENOENT)
        code = "target_unavailable";
    return make_error(code, "local target: " + what + " " + path + ": " + std::strerror(err));
}

using text::lower;

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// "<stem>-<tail><ext>", "<stem>-<tail>-2<ext>", ... for collisions; index 0 is the name.
std::string candidate_name(const std::string& name, const upload::Job& job, int i) {
    if (i == 0) return name;
    std::string id = !job.capture_id.empty() ? job.capture_id
                     : !job.job_id.empty()   ? job.job_id
                                             : lower(job.sha256);
    std::string tail;
    for (char c : id) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') tail.push_back(c);
    }
    // Time-ordered ids start with the time: their random end tells captures apart.
    if (tail.size() > 8) tail = tail.substr(tail.size() - 8);
    if (tail.empty()) tail = "dup";
    auto dot = name.rfind('.');
    std::string stem = (dot == std::string::npos || dot == 0) ? name : name.substr(0, dot);
    std::string ext = (dot == std::string::npos || dot == 0) ? "" : name.substr(dot);
    std::string suffix = "-" + tail + (i >= 2 ? "-" + std::to_string(i) : "");
    return stem + suffix + ext;
}

enum class Existing { none, same, different };

// What occupies `path`: nothing, the job's bytes (size and sha256), or something else.
Expected<Existing> examine(const std::string& path, uint64_t size,
                           const std::string& sha256_lower) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return Existing::none;
        return dest_error("stat", path, errno);
    }
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != size)
        return Existing::different;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return dest_error("open", path, errno);
    Sha256 h;
    std::vector<char> buf(LocalTarget::kChunkBytes);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            return dest_error("read", path, err);
        }
        if (n == 0) break;
        h.update(buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    return h.hex_digest() == sha256_lower ? Existing::same : Existing::different;
}

// Deletes hidden temps of crashed copies (older than an hour) in `dir`.
void remove_stale_temps(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    time_t cutoff = ::time(nullptr) - kStaleTempAgeS;
    std::vector<std::string> stale;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.size() < 2 || n[0] != '.' || n.find(kTempMarker) == std::string::npos) continue;
        struct stat st {};
        std::string p = dir + "/" + n;
        if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < cutoff)
            stale.push_back(p);
    }
    ::closedir(d);
    for (const auto& p : stale) {
        if (::unlink(p.c_str()) == 0) LOG_INFO(kLog, "removed stale temp " << p);
    }
}

// Closes a file descriptor and removes a temp file unless released.
struct TempFile {
    std::string path;
    int fd = -1;
    bool keep = false;
    ~TempFile() {
        if (fd >= 0) ::close(fd);
        if (!keep && !path.empty()) ::unlink(path.c_str());
    }
};

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Makes the subdirectories of `rel` under `root` (never `root` itself: a missing mount must
// not be papered over), adding each directory that gained an entry to `dirty_dirs`.
Status make_subdirs(const std::string& root, const std::string& rel,
                    std::vector<std::string>* dirty_dirs) {
    std::string partial = root;
    std::string rest = dirname_of(rel);
    size_t start = 0;
    while (rest != "." && start <= rest.size()) {
        size_t slash = rest.find('/', start);
        std::string comp =
            rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        std::string parent = partial;
        partial += "/" + comp;
        if (::mkdir(partial.c_str(), 0755) == 0) {
            dirty_dirs->push_back(parent);
        } else if (errno != EEXIST) {
            return dest_error("mkdir", partial, errno);
        }
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return ok();
}

// Opens the job's spool file into `src`, checking it is there and has the job's size.
Status open_source(const upload::Job& job, const std::string& what, Fd* src) {
    src->fd = ::open(job.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (src->fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return make_error("source_missing", what + ": spool file " + job.path + " is gone");
        return make_error("io_error", what + ": open " + job.path + ": " + std::strerror(err));
    }
    struct stat sst {};
    if (::fstat(src->fd, &sst) != 0)
        return make_error("io_error", what + ": fstat " + job.path + ": " + std::strerror(errno));
    uint64_t total = static_cast<uint64_t>(sst.st_size);
    if (total != job.size) {
        return make_error("checksum_mismatch", what + ": spool file " + job.path + " has " +
                                                   std::to_string(total) + " bytes, the job says " +
                                                   std::to_string(job.size));
    }
    (void)::posix_fadvise(src->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return ok();
}

// The copy's share of the link: its budget (null: unlimited) and its gate (null: none).
struct Link {
    BandwidthLimiter* limiter = nullptr;
    LinkGate* gate = nullptr;
    const std::atomic<bool>* cancel = nullptr;
};

// Streams `src_fd` into the temp, hashing as it goes: the hex sha256 of what was read
// (`*done` bytes of it).
Expected<std::string> copy_hashing(int src_fd, const TempFile& tmp, const upload::Job& job,
                                   const std::string& what, BandwidthLimiter* limiter,
                                   const ProgressFn& progress, uint64_t total, uint64_t* done) {
    // Smaller steps under a low limit keep the pace smooth; the buffer stays 256 KiB.
    const size_t step =
        limiter ? limiter->step(LocalTarget::kChunkBytes) : LocalTarget::kChunkBytes;
    std::vector<char> buf(LocalTarget::kChunkBytes);
    Sha256 hash;
    for (;;) {
        ssize_t n = ::read(src_fd, buf.data(), step);
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error("io_error",
                              what + ": read " + job.path + ": " + std::strerror(errno));
        }
        if (n == 0) break;
        hash.update(buf.data(), static_cast<size_t>(n));
        if (limiter) limiter->acquire(static_cast<uint64_t>(n));
        size_t off = 0;
        while (off < static_cast<size_t>(n)) {
            ssize_t w = ::write(tmp.fd, buf.data() + off, static_cast<size_t>(n) - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                return dest_error("write", tmp.path, errno);
            }
            off += static_cast<size_t>(w);
        }
        *done += static_cast<uint64_t>(n);
        if (progress) progress(*done, std::max(total, *done));
    }
    return hash.hex_digest();
}

// Where one job's copy goes.
struct Destination {
    std::string dir;                      // the destination's directory
    std::string name;                     // the template's file name
    std::vector<std::string> dirty_dirs;  // directories that gained an entry: fsync them
};

// The first candidate name that is free (holds_job false), or that already holds the job's
// bytes (holds_job true); index -1 when all of them hold other content.
struct Slot {
    int index = -1;
    bool holds_job = false;
    std::string path;
};

Expected<Slot> first_slot(const Destination& dest, const upload::Job& job,
                          const std::string& want) {
    for (int i = 0; i < kMaxCandidates; ++i) {
        std::string path = dest.dir + "/" + candidate_name(dest.name, job, i);
        auto ex = examine(path, job.size, want);
        if (!ex) return ex.error();
        if (*ex == Existing::same) return Slot{i, true, path};
        if (*ex == Existing::none) return Slot{i, false, path};
    }
    return Slot{};
}

// Creates the hidden temp ".<name>.part-<random>" beside the destination.
Status create_temp(const Destination& dest, TempFile* tmp) {
    tmp->path = dest.dir + "/." + dest.name + kTempMarker + ids::random_hex(12);
    tmp->fd = ::open(tmp->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (tmp->fd < 0) {
        int err = errno;
        tmp->path.clear();
        return dest_error("create", dest.dir + "/." + dest.name + kTempMarker + "*", err);
    }
    return ok();
}

// Copies the spool file into a new temp, hashing as it streams; the temp, synced and
// closed, then holds exactly the job's bytes. The bytes copied.
Expected<uint64_t> copy_to_temp(const upload::Job& job, const std::string& what,
                                const Destination& dest, const std::string& want, const Link& link,
                                const ProgressFn& progress, TempFile* tmp) {
    Fd src;
    if (auto st = open_source(job, what, &src); !st) return st.error();
    const uint64_t total = job.size;  // open_source checked it

    remove_stale_temps(dest.dir);
    if (auto st = create_temp(dest, tmp); !st) return st.error();

    // Right before the first byte: with the gate, wait until no other copy is on the link;
    // give it back after the last one (syncing and placing the temp do not use the link).
    LinkGate::Turn turn(link.gate);
    if (!turn.hold(link.cancel))
        return make_error("cancelled", what + ": cancelled while waiting for the link");
    uint64_t done = 0;
    auto copied = copy_hashing(src.fd, *tmp, job, what, link.limiter, progress, total, &done);
    turn.release();
    if (!copied) return copied.error();
    const std::string& got = *copied;
    if (got != want || done != job.size) {
        return make_error("checksum_mismatch", what + ": spool file " + job.path + " hashes to " +
                                                   got + ", the job says " + want);
    }
    if (::fsync(tmp->fd) != 0) return dest_error("fsync", tmp->path, errno);
    if (::close(tmp->fd) != 0) {
        tmp->fd = -1;
        return dest_error("close", tmp->path, errno);
    }
    tmp->fd = -1;
    return done;
}

// Renames the temp to the first name from `first_free` on, never replacing anything, and
// fsyncs the directories that gained an entry. A name taken meanwhile by the same bytes is
// success, by other bytes moves on to the next name.
Expected<UploadResult> place_temp(const upload::Job& job, const std::string& what,
                                  const Destination& dest, const std::string& want, int first_free,
                                  uint64_t done, TempFile* tmp) {
    for (int i = first_free; i < kMaxCandidates; ++i) {
        std::string path = dest.dir + "/" + candidate_name(dest.name, job, i);
        if (files::rename_noreplace(tmp->path, path) == 0) {
            tmp->keep = true;
            for (const auto& d : dest.dirty_dirs) {
                if (auto st = files::fsync_dir(d); !st) return st.error().with_context(what);
            }
            if (i > 0)
                LOG_INFO(kLog, dest.name << " exists with other content; stored as "
                                         << basename_of(path));
            return UploadResult{path, done, want};
        }
        int err = errno;
        if (err != EEXIST) return dest_error("rename to", path, err);
        auto ex = examine(path, job.size, want);
        if (!ex) return ex.error();
        if (*ex == Existing::same)
            return UploadResult{path, done, want};  // tmp removed by its guard
    }
    return make_error("io_error", what + ": too many different files named " + dest.name);
}
}  // namespace

LocalTarget::LocalTarget(std::string dir, Options options)
    : dir_(std::move(dir)), options_(std::move(options)) {
    limiter_ = options_.limiter;
    if (!limiter_ && options_.bandwidth_limit_bytes_per_s > 0)
        limiter_ = std::make_shared<BandwidthLimiter>(options_.bandwidth_limit_bytes_per_s);
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

Expected<std::string> LocalTarget::destination(const upload::Job& job) const {
    auto rel = expand_template(options_.path_template, job);
    if (!rel) return rel.error();
    return dir_ + "/" + *rel;
}

Expected<UploadResult> LocalTarget::upload(const upload::Job& job, const ProgressFn& progress) {
    const std::string what = "local target: job " + job.job_id;
    if (!is_hex64(job.sha256))
        return make_error("bad_request", what + ": the job has no valid sha256");
    const std::string want = lower(job.sha256);

    auto rel = expand_template(options_.path_template, job);
    if (!rel) return rel.error().with_context(what);
    struct stat root {};
    if (::stat(dir_.c_str(), &root) != 0 || !S_ISDIR(root.st_mode)) {
        return make_error("target_unavailable",
                          "local target: directory " + dir_ + " is missing (not mounted?)");
    }
    const std::string dest_path = dir_ + "/" + *rel;
    Destination dest{dirname_of(dest_path), basename_of(dest_path), {}};

    // Subdirectories under dir_ (never dir_ itself: a missing mount must not be papered
    // over). Remember which directories gained an entry, to fsync them.
    dest.dirty_dirs.push_back(dest.dir);
    if (auto st = make_subdirs(dir_, *rel, &dest.dirty_dirs); !st) return st.error();

    // 1. Already there (a re-delivered job), or the first free name.
    auto slot = first_slot(dest, job, want);
    if (!slot) return slot.error();
    if (slot->holds_job) {
        LOG_DEBUG(kLog, "job " << job.job_id << " already at " << slot->path);
        if (progress) progress(job.size, job.size);
        return UploadResult{slot->path, 0, want};
    }
    if (slot->index < 0)
        return make_error("io_error", what + ": too many different files named " + dest.name);

    // 2. Copy into a hidden temp, hashing as it streams.
    TempFile tmp;
    const Link link{limiter_.get(), options_.gate.get(), options_.cancel};
    auto done = copy_to_temp(job, what, dest, want, link, progress, &tmp);
    if (!done) return done.error();

    // 3. Into place without replacing anything; a name taken meanwhile by the same bytes
    // is success, by other bytes moves on to the next name.
    return place_temp(job, what, dest, want, slot->index, *done, &tmp);
}

}  // namespace photorig::upload
