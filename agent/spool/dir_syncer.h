// Group commit of directory entries (issue 12). A photo's rename (and its sidecar's) is
// durable once its directory is fsynced, and its upload job must not be published before.
// Each rename takes a ticket; sync(ticket) fsyncs the directory unless a fsync that began
// after the rename already covered it, and a caller arriving while another's fsync runs
// waits for that one, then needs a fsync only if it was not covered. So photos committed
// faster than the disk syncs (a burst onto an SD card) share one directory fsync per group
// instead of paying one each, and on a fast disk nothing changes.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "core/expected.h"

namespace photorig::spool {

struct DirTicket {
    std::string dir;   // absolute
    uint64_t seq = 0;  // 0: nothing to sync
};

class DirSyncer {
  public:
    using FsyncDir = std::function<Status(const std::string& dir)>;
    // `fsync_dir`: files::fsync_dir when empty (tests pass their own).
    explicit DirSyncer(FsyncDir fsync_dir = {});

    // After a rename into `dir`: the ticket sync() takes.
    DirTicket renamed(const std::string& dir);
    // Returns once a directory fsync that began after the ticket's rename has succeeded
    // (doing one itself when none did); its error otherwise (no one else's).
    Status sync(const DirTicket& ticket);
    // Directory fsyncs done so far (succeeded or not).
    uint64_t fsyncs() const;

  private:
    struct Dir {
        uint64_t renamed = 0;  // its last ticket
        uint64_t synced = 0;   // every ticket of it up to this one is durable
        bool syncing = false;
        int waiting = 0;  // callers in sync(): the entry stays while they need it
    };
    FsyncDir fsync_dir_;
    mutable std::mutex mutex_;
    std::condition_variable synced_cv_;
    std::map<std::string, Dir> dirs_;  // directories with renames not known durable
    uint64_t last_ticket_ = 0;         // one sequence for all directories
    uint64_t fsyncs_ = 0;
};

}  // namespace photorig::spool
