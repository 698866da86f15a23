// The uploader's durable memory: one row per upload job, keyed by job_id, in SQLite
// (WAL, synchronous=FULL: a call that returned has reached the disk and survives SIGKILL
// and power loss; mark_uploading() alone only survives SIGKILL, see there). A job is recorded
// before anything is done with it; a repeated job_id finds its row, so a re-offered or re-delivered
// job is recognised (done: nothing to do).
//
// States: queued -> uploading -> done
//                      |-> queued (retryable failure, next_attempt_ms set)
//                      '-> failed_permanent
// Jobs left "uploading" by a crash are put back to "queued" by open().
// Thread-safe: one connection behind a mutex. Errors: "journal_error", "not_found".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/expected.h"
#include "upload/job.h"

struct sqlite3;

namespace photorig::upload {

enum class JobState { queued, uploading, done, failed_permanent };
const char* to_string(JobState s);

struct JobRecord {
    upload::Job job;  // as first recorded
    JobState state = JobState::queued;
    int attempts = 0;             // attempts started (mark_uploading calls)
    std::string last_error;       // reason given to the last mark_failed
    int64_t next_attempt_ms = 0;  // epoch ms; 0 = now
    std::string remote_ref;       // set by mark_done
    std::string resume_state;     // opaque, see set_resume_state
    int64_t created_ms = 0, updated_ms = 0, done_ms = 0;
    bool inserted = false;  // record(): true if this call created the row
};

struct JobCounts {
    uint64_t queued = 0, uploading = 0, done = 0, failed_permanent = 0;
};

class Journal {
  public:
    // Creates the file (not its directory) and schema if needed.
    static Expected<std::unique_ptr<Journal>> open(const std::string& path);
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    // Inserts the job as queued if its job_id is new; otherwise returns the existing row
    // unchanged (inserted = false). Durable when it returns.
    Expected<JobRecord> record(const upload::Job& job);
    // record() for each job in one transaction: one fsync for a burst of jobs (a backlog
    // delivered after a reconnect, a fast series of captures) instead of one per job.
    // Durable when it returns; the answers are in the order of `jobs`.
    std::vector<Expected<JobRecord>> record_all(const std::vector<upload::Job>& jobs);
    Expected<JobRecord> get(const std::string& job_id);  // "not_found"

    // attempts += 1. The one write that skips the fsync (it survives SIGKILL, and the next
    // durable commit carries it): open() turns "uploading" back into "queued" anyway, so a
    // power cut can cost one attempt count, and the next upload's first byte no longer
    // waits for the disk behind other workers' commits.
    Status mark_uploading(const std::string& job_id);
    Status mark_done(const std::string& job_id,
                     const std::string& remote_ref);  // clears resume state
    // permanent: failed_permanent; else back to queued with next_attempt_ms.
    Status mark_failed(const std::string& job_id, const std::string& reason, bool permanent,
                       int64_t next_attempt_ms);

    // Opaque per-job text for resumable uploads (a Drive session URL, S3 upload id).
    Status set_resume_state(const std::string& job_id, const std::string& text);
    Expected<std::string> resume_state(const std::string& job_id);  // "" if none

    // Not done and not permanently failed, in the order first recorded.
    Expected<std::vector<JobRecord>> pending();
    Expected<JobCounts> counts();

    // Housekeeping: deletes done rows whose done time is more than `age_ms` ago. A job
    // forgotten this way is uploaded again if offered again (targets are idempotent).
    Expected<uint64_t> forget_done_older_than(int64_t age_ms);

    const std::string& path() const { return path_; }

  private:
    Journal() = default;
    Status exec_locked(const char* sql);
    Expected<JobRecord> get_locked(const std::string& job_id);
    Expected<JobRecord> record_locked(const upload::Job& job);

    std::mutex mutex_;
    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace photorig::upload
