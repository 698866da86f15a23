// The uploader service: consumes upload jobs over a persistent MQTT session, journals each
// one durably (SQLite) before acting, uploads through the configured Target with bounded
// concurrency and retries, publishes upload events, and deletes the spool file only after
// a verified upload.
//
// Why the journal and not MQTT is the truth: Paho acknowledges a QoS1 message before the
// application sees it, so a crash can lose a delivered job. The agent re-offers spooled
// files; the journal turns every repeat into a no-op.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/expected.h"
#include "core/queue.h"
#include "mqtt/client.h"
#include "protocol/types.h"
#include "upload/job.h"

namespace photorig::upload {
class Journal;
class Target;
}  // namespace photorig::upload
namespace photorig::spool {
class Spool;
}

namespace photorig::uploader {

class UploaderService {
  public:
    explicit UploaderService(config::Config config);
    ~UploaderService();

    Status start();
    void run(const std::atomic<bool>& stop);

  private:
    struct Scheduled {
        upload::Job job;
        int64_t not_before_ms = 0;
        int attempt = 0;
        bool in_flight = false;
        uint64_t order = 0;  // arrival order: the backlog drains oldest first
    };

    void handle_event(const mqtt::Event& event);
    void accept_jobs(const std::vector<std::string>& payloads);
    void schedule(const upload::Job& job, int attempt, int64_t not_before_ms);
    void worker_loop();
    void note_success_locked();
    void note_retryable_failure_locked(const std::string& job_id, int64_t delay_ms);
    void upload_one(Scheduled item);
    // After a verified upload: deletes the spool file, or keeps it per the retention
    // settings (spool.keep_uploaded_days, upload.delete_after_upload).
    void release_spool_file(const upload::Job& job);
    void sweep_kept_files();  // deletes kept photos past their days or when the disk runs low
    void release_transfer_slot(bool* held);
    static protocol::UploadEvent job_event(const upload::Job& job, const char* type, int attempt);
    // With `wait`: true once the broker acknowledged it (up to 5 s for a connection and the
    // ack). Without: true once handed to the client, which drops it when disconnected.
    bool publish_event(const protocol::UploadEvent& e, bool wait);
    void publish_state();
    bool path_in_spool(const std::string& path) const;

    config::Config config_;
    std::string base_;
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> mqtt_;
    std::unique_ptr<upload::Journal> journal_;
    std::atomic<bool> cancel_uploads_{false};  // set at shutdown: transfers in flight abort
    std::unique_ptr<upload::Target> target_;   // uses journal_ and cancel_uploads_
    std::unique_ptr<spool::Spool> spool_;
    std::string spool_root_;

    std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, Scheduled> scheduled_;  // job_id -> job waiting or in flight
    uint64_t next_order_ = 0;
    bool stopping_ = false;
    // upload.concurrency bounds the transfers whose bytes are still being sent: a worker
    // holds a slot from picking a job until the target reports every byte received (a 2xx
    // answer to the last one) or returns. A rare re-send after that (a lost answer) runs
    // without a slot.
    int free_transfer_slots_ = 0;
    std::vector<std::thread> workers_;
    std::atomic<bool> state_dirty_{true};
    std::string last_error_;  // guarded by mutex_

    // Outage handling (guarded by mutex_). Retryable failures of two or more different jobs
    // with no success between them mean the target itself is down: instead of every job
    // retrying on its own clock (hammering the server, then draining in whatever order the
    // timers fire), uploads pause, one probe at a time goes out on a capped exponential
    // backoff, and the first success releases the whole backlog, oldest first. A single job
    // failing among successes (a poisoned file) keeps its own backoff and blocks nobody.
    std::set<std::string> failing_jobs_;  // retryable failures since the last success
    int consecutive_failures_ = 0;
    int64_t outage_until_ms_ = 0;  // no upload starts before this while in an outage
    bool probe_in_flight_ = false;
    int64_t outage_started_ms_ = 0;
    bool in_outage_locked() const { return failing_jobs_.size() >= 2; }
};

}  // namespace photorig::uploader
