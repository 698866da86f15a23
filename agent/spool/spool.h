// The spool: captured photos on local disk until the uploader has them.
//
// A file under its final name is complete and durable: SpoolWriter writes a hidden temp
// (".<name>.part-<random>") in the final directory, hashes while writing, and commit()
// does fsync -> rename (never over an existing file) -> fsync dir. A crash leaves at most
// a hidden temp, which Spool::init() deletes once it is stale. Each photo may have a
// sidecar "<name>.meta.json" (opaque text; the agent keeps its metadata JSON there).
//
// Relative paths ("batch1/SIM0001_0001_IMG_0001.JPG") must not be absolute, contain "..",
// "." or empty components, start a component with '.', or end in ".meta.json"
// (error "bad_path"). Errors: "bad_path", "exists", "disk_full", "io_error", "not_found".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/digest.h"
#include "core/expected.h"
#include "core/files.h"  // callers use files:: next to the spool
#include "spool/dir_syncer.h"

namespace photorig::spool {

// A committed photo.
struct SpooledFile {
    std::string path;           // absolute when the spool dir is (Spool makes it so)
    std::string relative_path;  // "batch1/IMG_0001.JPG"
    std::string name;           // "IMG_0001.JPG"
    uint64_t size = 0;
    std::string sha256;  // lowercase hex
    int64_t mtime_ms = 0;
    // The file's first bytes as written (up to SpoolWriter::kKeptHeadBytes): whatever reads
    // the photo's header (EXIF) reads them from memory instead of from the disk again.
    std::string head;
    int64_t hash_us = 0;    // spent hashing while the file was written
    int64_t commit_us = 0;  // commit(): fsyncs and rename
};

// One finished photo found by Spool::list().
struct SpoolEntry {
    std::string path, relative_path, name;
    uint64_t size = 0;
    int64_t mtime_ms = 0;
    bool has_sidecar = false;
    std::string sidecar;  // the sidecar's text; empty when there is none
};

// ok() or "bad_path" with the reason.
Status validate_relative_path(const std::string& relative_path);

class SpoolWriter {
  public:
    // Makes the subdirectories and opens the hidden temp file.
    static Expected<std::unique_ptr<SpoolWriter>> create(const std::string& spool_dir,
                                                         const std::string& relative_path);
    ~SpoolWriter();  // aborts unless committed
    SpoolWriter(const SpoolWriter&) = delete;
    SpoolWriter& operator=(const SpoolWriter&) = delete;

    // Enough of a photo's start for its EXIF (media::kExifReadBytes).
    static constexpr size_t kKeptHeadBytes = 128 * 1024;

    Status write(const void* data, size_t len);  // "disk_full" on ENOSPC/EDQUOT
    // fsync, rename into place ("exists" if the final name is taken), fsync dir. On error
    // the temp is removed and the writer is finished. With `sync_dir` false the directory's
    // fsync is left to the caller, who makes one fsync serve this rename and the sidecar's
    // (Spool::renamed_into_dir_of + sync_renamed: a group commit; or Spool::sync_dir_of). The batch
    // directory's own entry in the spool root is synced either way (cheap once it is: an unchanged
    // directory's fsync commits nothing).
    Expected<SpooledFile> commit(bool sync_dir = true);
    void abort();  // removes the temp; idempotent; no-op after commit
    // Once every byte is written: starts the file's writeback (sync_file_range, no wait), so
    // commit()'s fsync finds the data on its way to the disk. Errors stay fsync's to report.
    void sync_ahead();

    uint64_t bytes_written() const;
    const std::string& relative_path() const { return relative_path_; }
    const std::string& final_path() const { return final_path_; }
    const std::string& temp_path() const { return temp_path_; }

  private:
    SpoolWriter() = default;
    void abort_locked();

    mutable std::mutex mutex_;
    std::string spool_dir_, relative_path_, final_path_, temp_path_, dir_, name_;
    int fd_ = -1;
    bool finished_ = false;
    uint64_t size_ = 0;
    Sha256 hash_;
    std::string head_;
    int64_t hash_ns_ = 0;
};

class Spool {
  public:
    // `dir` is made absolute and symlink-free (realpath) as soon as it exists, so the
    // paths this class returns compare equal to the uploader's realpath of spool.dir.
    explicit Spool(std::string dir);

    // Creates the directory, deletes crash leftovers (hidden writer temps and sidecar
    // temps older than `stale_temp_age_s`, sidecars whose photo is gone).
    Status init(int stale_temp_age_s = 300);
    // The same clean-up alone, for periodic housekeeping. Returns how many were deleted.
    uint64_t remove_stale_temps(int stale_temp_age_s);

    Expected<std::unique_ptr<SpoolWriter>> create_writer(const std::string& relative_path) const;
    bool exists(const std::string& relative_path) const;  // a finished photo by that name
    std::string path_of(const std::string& relative_path) const {
        return dir_ + "/" + relative_path;
    }

    // Atomic, replaces. With `sync_dir` false the directory's fsync is left to the caller,
    // as with SpoolWriter::commit.
    Status write_sidecar(const std::string& relative_path, const std::string& text,
                         bool sync_dir = true);
    // fsync of the directory holding `relative_path`: makes its renames durable.
    Status sync_dir_of(const std::string& relative_path) const;
    // Group commit (dir_syncer.h): after renames into the directory of `relative_path`,
    // the ticket; sync_renamed(ticket) makes them durable, sharing a directory fsync with
    // every other rename it covers.
    DirTicket renamed_into_dir_of(const std::string& relative_path) const;
    Status sync_renamed(const DirTicket& ticket) const { return dir_syncer_->sync(ticket); }
    uint64_t dir_fsyncs() const { return dir_syncer_->fsyncs(); }  // by sync_renamed
    Expected<std::string> read_sidecar(
        const std::string& relative_path) const;  // "not_found" if none

    // Every finished photo (no temps, no sidecars), oldest mtime first (ties: by path).
    Expected<std::vector<SpoolEntry>> list() const;
    // Removes photo, then sidecar, then the batch directory if it is now empty.
    // A photo that is already gone is not an error.
    Status remove(const std::string& relative_path);
    uint64_t file_count() const;  // finished photos; 0 if the dir cannot be read

    // Retention of uploaded photos (spool.keep_uploaded_days, upload.delete_after_upload).
    // A kept photo moves with its sidecar to "<dir>/.uploaded/<relative_path>": out of the
    // agent's sight (it is never offered again and not counted as waiting) but on the
    // same disk, so the move is a rename. A name already kept gets "-2", "-3"... before its
    // extension; a photo already gone is not an error. Returns where it went ("" if gone).
    Expected<std::string> keep_uploaded(const std::string& relative_path);
    struct KeptFile {
        std::string path;
        uint64_t size = 0;
        int64_t kept_at_ms = 0;  // when it moved (the inode's change time)
    };
    std::vector<KeptFile> kept_files() const;  // oldest first
    // Deletes kept photos kept before `cutoff_ms` (epoch ms), with their sidecars, and
    // then empty directories. Returns how many photos went.
    uint64_t remove_kept_before(int64_t cutoff_ms);
    // Deletes kept photos oldest first until `min_free_bytes` are free on the spool's disk
    // or none are left. Returns how many photos went.
    uint64_t evict_kept_until_free(uint64_t min_free_bytes);
    std::string kept_dir() const { return dir_ + "/.uploaded"; }
    Expected<uint64_t> disk_free_bytes() const;
    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    std::shared_ptr<DirSyncer> dir_syncer_ = std::make_shared<DirSyncer>();
};

}  // namespace photorig::spool
