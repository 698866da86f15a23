#include "spool/dir_syncer.h"

#include "core/files.h"

namespace photorig::spool {

DirSyncer::DirSyncer(FsyncDir fsync_dir)
    : fsync_dir_(fsync_dir ? std::move(fsync_dir) : FsyncDir(files::fsync_dir)) {}

DirTicket DirSyncer::renamed(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mutex_);
    dirs_[dir].renamed = ++last_ticket_;
    return DirTicket{dir, last_ticket_};
}

Status DirSyncer::sync(const DirTicket& ticket) {
    if (ticket.seq == 0) return ok();
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = dirs_.find(ticket.dir);
    // Not listed: every rename into it is known durable (or it was never renamed into).
    if (it == dirs_.end()) return ok();
    Dir& d = it->second;  // stays put: std::map, and not erased while anyone waits
    ++d.waiting;
    Status result = ok();
    for (;;) {
        if (d.synced >= ticket.seq) break;
        if (d.syncing) {
            // Its fsync may have begun before this rename: wait, then look again.
            synced_cv_.wait(lock);
            continue;
        }
        d.syncing = true;
        const uint64_t covers = d.renamed;  // every rename so far is in what the fsync sees
        lock.unlock();
        result = fsync_dir_(ticket.dir);
        lock.lock();
        d.syncing = false;
        ++fsyncs_;
        if (result && covers > d.synced) d.synced = covers;
        synced_cv_.notify_all();
        break;
    }
    // Forget a directory with nothing left to sync (a finished batch's).
    if (--d.waiting == 0 && d.synced >= d.renamed && !d.syncing) dirs_.erase(it);
    return result;
}

uint64_t DirSyncer::fsyncs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fsyncs_;
}

}  // namespace photorig::spool
