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
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/expected.h"
#include "core/queue.h"
#include "mqtt/client.h"
#include "protocol/topics.h"
#include "protocol/types.h"
#include "service/systemd_notify.h"
#include "upload/job.h"
#include "upload/target.h"
#include "uploader/job_intake.h"
#include "uploader/upload_scheduler.h"

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
    void handle_event(const mqtt::Event& event);
    void accept_jobs(const std::vector<std::string>& payloads);
    // Adds a received job's payload to `payloads`, or counts it as not taken (queue full).
    void take_job(mqtt::Event&& ev, std::vector<std::string>& payloads);
    void schedule(const upload::Job& job, int attempt, int64_t not_before_ms);
    void worker_loop();
    void stop_workers();  // cancels uploads in flight and joins the workers; idempotent
    void prune_journal(int64_t now_ms);
    void upload_one_guarded(const UploadScheduler::Entry& item);
    void upload_one(const UploadScheduler::Entry& item, bool& slot_held);
    void finish_done(const upload::Job& job, protocol::UploadEvent ev,
                     const upload::UploadResult& result, int64_t elapsed_ms);
    void finish_cancelled(const upload::Job& job);
    void finish_failed(const upload::Job& job, int attempt, const Error& err);
    // After a verified upload: deletes the spool file, or keeps it per the retention
    // settings (spool.keep_uploaded_days, upload.delete_after_upload).
    void release_spool_file(const upload::Job& job);
    void sweep_kept_files();  // deletes kept photos past their days or when the disk runs low
    void release_transfer_slot(bool* held);
    // With `wait`: true once the broker acknowledged it (up to 5 s for a connection and the
    // ack). Without: true once handed to the client, which drops it when disconnected.
    bool publish_event(const protocol::UploadEvent& e, bool wait);
    void publish_availability(const char* value);
    void publish_state();
    protocol::UploaderState current_state();
    // systemd: STATUS= (on change, at most once a second, and every 10 s) and watchdog pets
    // from the service thread, the one that reads the broker's jobs and owns the journal.
    void notify_systemd(int64_t now);
    std::string status_line();

    config::Config config_;
    protocol::RigTopics topics_;
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> mqtt_;
    std::unique_ptr<upload::Journal> journal_;
    std::unique_ptr<JobIntake> intake_;
    std::atomic<bool> cancel_uploads_{false};  // set at shutdown: transfers in flight abort
    std::unique_ptr<upload::Target> target_;   // uses journal_ and cancel_uploads_
    std::unique_ptr<spool::Spool> spool_;
    std::string spool_root_;

    std::mutex mutex_;
    std::condition_variable cv_;
    // Jobs waiting or in flight, and the outage state. upload.concurrency bounds the
    // transfers whose bytes are still being sent: a worker holds a slot from picking a job
    // until the target reports every byte received (a 2xx answer to the last one) or
    // returns. A rare re-send after that (a lost answer) runs without a slot.
    UploadScheduler scheduler_;  // guarded by mutex_
    bool stopping_ = false;
    std::vector<std::thread> workers_;
    std::atomic<bool> state_dirty_{true};
    service::SystemdNotifier notifier_;
    bool status_dirty_ = true;
    int64_t next_status_ms_ = 0, status_refresh_ms_ = 0;
    int64_t next_prune_ms_ = 0;    // monotonic; owned by run()
    uint64_t jobs_not_taken_ = 0;  // owned by run(): jobs past upload.max_queued_jobs
    std::string last_error_;       // guarded by mutex_
};

}  // namespace photorig::uploader
