#include "uploader/uploader_service.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <optional>

#include "broker_link/from_config.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "protocol/wire.h"
#include "spool/spool.h"
#include "upload/journal.h"
#include "uploader/target_from_config.h"
#include "uploader/upload_events.h"

namespace photorig::uploader {
namespace {
constexpr const char* kLog = "uploader";
// The largest upload job the broker may send us (MQTT v5 Maximum Packet Size): a job is well
// under 4 KiB; this bounds what upload.max_queued_jobs queued jobs can hold.
constexpr uint32_t kMaxJobPacketBytes = 64 * 1024;

std::string real_dir(const std::string& dir) {
    char buf[PATH_MAX];
    if (::realpath(dir.c_str(), buf)) return buf;
    return dir;
}

// Retries start at 1 s and double up to upload.retry_max_backoff_s, each a uniform draw
// from [d/2, d]: an outage of any length just waits, and rigs do not come back in step.
BackoffPolicy retry_policy(const config::UploadConfig& upload) {
    return BackoffPolicy{1000, upload.retry_max_backoff_s * 1000LL, BackoffPolicy::Jitter::half};
}
}  // namespace

UploaderService::UploaderService(config::Config config)
    : config_(std::move(config)),
      topics_(config_.topic_prefix, config_.rig_id),
      scheduler_(config_.upload.concurrency, retry_policy(config_.upload)) {}

UploaderService::~UploaderService() {
    stop_workers();
}

// Uploads in flight stop now rather than after minutes of a big file: their jobs stay
// queued in the journal, and Drive and S3 resume from the byte the server confirmed.
void UploaderService::stop_workers() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cancel_uploads_ = true;
    cv_.notify_all();
    for (auto& t : workers_) {
        if (t.joinable()) t.join();
    }
    workers_.clear();
}

Status UploaderService::start() {
    spool_ = std::make_unique<spool::Spool>(config_.spool.dir);
    if (auto st = files::make_dirs(config_.spool.dir); !st)
        return st.error().with_context("spool.dir");
    spool_root_ = real_dir(config_.spool.dir);

    auto slash = config_.upload.journal.find_last_of('/');
    if (auto st = files::make_dirs(config_.upload.journal.substr(0, slash)); !st) {
        return st.error().with_context("upload.journal");
    }
    auto journal = upload::Journal::open(config_.upload.journal);
    if (!journal) return journal.error().with_context("upload.journal");
    journal_ = std::move(*journal);
    intake_ = std::make_unique<JobIntake>(*journal_, spool_root_);

    const auto& u = config_.upload;
    auto target = target_from_config(config_, *journal_, &cancel_uploads_);
    if (!target) return target.error();
    target_ = std::move(*target);
    LOG_INFO(kLog, "upload target: " << target_->name());

    auto options = mqtt::options_from_config(config_, "uploader");
    if (!options) return options.error();
    mqtt::Options mo = *options;
    // A persistent session: jobs published while this process is down wait at the broker.
    mo.clean_start = false;
    mo.session_expiry_s = 14 * 24 * 3600;
    mo.will = mqtt::Will{topics_.uploader_availability(), "offline", 1, true};
    // Bounded: received jobs waiting for the journal (past it: not taken, see run()), and
    // each one's size (a job is well under 4 KiB; v5 only).
    mo.max_queued_messages = static_cast<size_t>(u.max_queued_jobs);
    mo.max_packet_size = kMaxJobPacketBytes;
    mqtt_ = std::make_unique<mqtt::Client>(mo, events_);
    mqtt_->set_subscriptions({{topics_.upload_jobs(), 1}});

    // Jobs journaled before a crash or restart go first, in their original order.
    auto pending = journal_->pending();
    if (!pending) return pending.error().with_context("journal");
    for (const auto& rec : *pending) schedule(rec.job, rec.attempts, 0);
    if (!pending->empty()) LOG_INFO(kLog, "resuming " << pending->size() << " journaled job(s)");

    // Twice as many workers as transfer slots: a job whose bytes are all sent gives its slot
    // back before its finishing work (the target's verify and rename round trips, journal
    // commit, events), so the next job's bytes start at once. With only `concurrency`
    // workers, transfers sharing one link end together and the link idled while all of
    // them finished (about 25 ms per round on a loopback WebDAV server: 4% of the link at
    // 4 MB per file and 20 MB/s).
    int n = std::max(1, u.concurrency);
    for (int i = 0; i < 2 * n; ++i) workers_.emplace_back([this] { worker_loop(); });

    auto st = mqtt_->connect(std::chrono::seconds(5));
    if (!st) {
        if (st.error().code == "not_authorized") return st.error().with_context("mqtt");
        LOG_WARN(kLog, "broker not reachable yet (" << st.error().describe()
                                                    << "); retrying in the background");
    }
    return ok();
}

// Done rows are what recognises a job offered again (no second upload), so they are kept
// for upload.journal_keep_days: far longer than any re-offer (the agent re-offers only
// files still in its spool, which the uploader releases at done) or broker redelivery.
void UploaderService::prune_journal(int64_t now_ms) {
    next_prune_ms_ = now_ms + 3600 * 1000;
    const int64_t keep_ms = int64_t{config_.upload.journal_keep_days} * 24 * 3600 * 1000;
    auto forgot = journal_->forget_done_older_than(keep_ms);
    if (!forgot) {
        LOG_WARN(kLog, "journal pruning failed: " << forgot.error().describe());
    } else if (*forgot > 0) {
        LOG_INFO(kLog, "journal: forgot " << *forgot << " done job(s) older than "
                                          << config_.upload.journal_keep_days << " days");
    }
}

void UploaderService::run(const std::atomic<bool>& stop) {
    int64_t next_state = 0;
    int64_t next_sweep = 0;
    while (!stop) {
        if (auto ev = events_.pop_for(std::chrono::milliseconds(100))) {
            if (ev->kind != mqtt::Event::Kind::message) {
                handle_event(*ev);
            } else {
                // Jobs that arrived together are journaled together (one fsync): in a burst,
                // a commit per job held the journal for ~4 ms each and kept the workers'
                // own journal writes, and so the first upload, waiting.
                std::vector<std::string> payloads;
                take_job(std::move(*ev), payloads);
                std::optional<mqtt::Event> other;
                while (payloads.size() < 256) {
                    auto more = events_.pop_for(std::chrono::milliseconds(0));
                    if (!more) break;
                    if (more->kind != mqtt::Event::Kind::message) {
                        other = std::move(more);
                        break;
                    }
                    take_job(std::move(*more), payloads);
                }
                accept_jobs(payloads);
                if (other) handle_event(*other);
            }
        }
        int64_t now = clock::monotonic_ms();
        notify_systemd(now);
        if (now >= next_sweep) {
            sweep_kept_files();
            if (now >= next_prune_ms_) prune_journal(now);
            next_sweep = now + 60 * 1000;
        }
        if (state_dirty_ && now >= next_state && mqtt_->connected()) {
            state_dirty_ = false;
            publish_state();
            next_state = now + 500;
        }
    }
    LOG_INFO(kLog, "stopping");
    notifier_.stopping("stopping: cancelling uploads in flight (they resume at the next start)");
    stop_workers();
    if (mqtt_->connected()) {
        publish_availability("offline");
        mqtt_->disconnect(std::chrono::seconds(2));
    }
}

void UploaderService::handle_event(const mqtt::Event& event) {
    switch (event.kind) {
        case mqtt::Event::Kind::connected:
            LOG_INFO(kLog,
                     "connected to broker" << (event.session_present ? " (session present)" : ""));
            publish_availability("online");
            state_dirty_ = true;
            // Subscribed to the jobs (the event comes after the subscriptions), journal open.
            notifier_.ready(status_line());
            break;
        case mqtt::Event::Kind::connection_lost:
            LOG_WARN(kLog, "lost the broker: " << event.reason);
            break;
        case mqtt::Event::Kind::message:
            accept_jobs({event.message.payload});
            break;
    }
}

// A job that found upload.max_queued_jobs waiting (the client kept only its topic) is not
// taken. Paho has acknowledged it already, so the broker will not send it again; the agent
// does, after spool.reoffer_after_s, since the photo stays in its spool until done.
void UploaderService::take_job(mqtt::Event&& ev, std::vector<std::string>& payloads) {
    if (!ev.overflow) {
        payloads.push_back(std::move(ev.message.payload));
        return;
    }
    uint64_t n = ++jobs_not_taken_;
    if (n == 1 || n % 1000 == 0) {
        LOG_WARN(kLog, "job queue full (upload.max_queued_jobs " << config_.upload.max_queued_jobs
                                                                 << "): " << n
                                                                 << " job(s) not taken so far; "
                                                                    "the agent offers them again");
    }
}

void UploaderService::accept_jobs(const std::vector<std::string>& payloads) {
    for (auto& action : intake_->accept(payloads)) {
        switch (action.kind) {
            case JobIntake::Action::Kind::refuse:
                publish_event(action.event, false);
                break;
            case JobIntake::Action::Kind::repeat_done:
                // Its done event may never have reached the broker (see finish_done).
                if (publish_event(action.event, true)) release_spool_file(action.job);
                break;
            case JobIntake::Action::Kind::schedule:
                schedule(action.job, action.attempts, 0);
                break;
        }
    }
}

void UploaderService::schedule(const upload::Job& job, int attempt, int64_t not_before_ms) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!scheduler_.add(job, attempt, not_before_ms)) return;  // waiting or in flight
    }
    state_dirty_ = true;
    cv_.notify_one();
}

void UploaderService::worker_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        auto decision = scheduler_.next(clock::now_ms());
        if (!decision.start) {
            // A slot given back or a new job notifies the condition variable.
            cv_.wait_for(lock, std::chrono::milliseconds(decision.wait_ms));
            continue;
        }
        const auto& item = *decision.start;
        // Announced under the lock, so "started" events come in the order jobs are picked
        // (oldest first) whichever worker thread runs first; publish_nowait only queues.
        publish_event(job_event(item.job, "started", item.attempt + 1), false);
        lock.unlock();
        upload_one_guarded(item);
        lock.lock();
    }
}

void UploaderService::release_transfer_slot(bool* held) {
    if (!*held) return;
    *held = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        scheduler_.release_slot();
    }
    cv_.notify_all();
}

// No exception ends an upload worker: the job fails with internal_error (retried like
// any failure, its event says so) and the worker takes the next one.
void UploaderService::upload_one_guarded(const UploadScheduler::Entry& item) {
    bool slot_held = true;  // taken by worker_loop for this job
    std::string what;
    try {
        upload_one(item, slot_held);
        return;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    LOG_ERROR(kLog, "upload of " << item.job.remote_name << " failed with an exception: " << what);
    release_transfer_slot(&slot_held);
    try {
        finish_failed(item.job, item.attempt + 1,
                      make_error("internal_error", "upload failed: internal error"));
    } catch (const std::exception& e) {
        LOG_ERROR(kLog, "could not record the failed upload: " << e.what());
    }
    state_dirty_ = true;
    cv_.notify_all();
}

void UploaderService::upload_one(const UploadScheduler::Entry& item, bool& slot_held) {
    const auto& job = item.job;
    int attempt = item.attempt + 1;
    (void)journal_->mark_uploading(job.job_id);
    protocol::UploadEvent ev = job_event(job, "started", attempt);  // announced by worker_loop

    int64_t started = clock::monotonic_ms();
    int64_t last_progress = started;
    auto progress = [&](uint64_t done, uint64_t total) {
        // Every byte is at the server (the targets report 100% only with its answer): what
        // is left (verifying, renaming, the journal) no longer uses the uplink, so the
        // next job may start sending.
        if (total > 0 && done >= total && total == job.size) release_transfer_slot(&slot_held);
        int64_t now = clock::monotonic_ms();
        if (now - last_progress < 1000 || done >= total) return;  // at most once a second
        last_progress = now;
        protocol::UploadEvent p = ev;
        p.type = "progress";
        p.bytes_done = done;
        p.bytes_total = total;
        p.rate_bytes_per_s =
            static_cast<double>(done) * 1000.0 / std::max<int64_t>(1, now - started);
        publish_event(p, false);
    };
    auto result = target_->upload(job, progress);
    release_transfer_slot(&slot_held);
    int64_t elapsed = std::max<int64_t>(1, clock::monotonic_ms() - started);

    if (result) {
        finish_done(job, ev, *result, elapsed);
    } else if (result.error().code == "cancelled" && cancel_uploads_) {
        finish_cancelled(job);
    } else {
        finish_failed(job, attempt, result.error());
    }
    state_dirty_ = true;
    cv_.notify_all();
}

void UploaderService::finish_done(const upload::Job& job, protocol::UploadEvent ev,
                                  const upload::UploadResult& result, int64_t elapsed_ms) {
    (void)journal_->mark_done(job.job_id, result.remote_ref);
    ev.type = "done";
    ev.bytes_done = job.size;
    ev.bytes_sent = result.bytes_sent;
    // This attempt's pace on the link: a resumed upload sent only its remainder.
    ev.rate_bytes_per_s = static_cast<double>(result.bytes_sent) * 1000.0 / elapsed_ms;
    ev.remote_ref = result.remote_ref;
    LOG_INFO(kLog, "uploaded " << job.remote_name << " (" << job.size << " bytes, " << elapsed_ms
                               << " ms)");
    // The done event is the only news that the photo is safe (rigctl and dashboards wait
    // for it), and publish_nowait drops what it cannot send: an upload resumed from the
    // journal can finish before the broker connection is up, or inside a broker outage.
    // So wait for the broker's ack, and without one keep the spool file: the agent offers
    // the job again, and accept_jobs() repeats the done event before releasing the file.
    if (publish_event(ev, true)) {
        release_spool_file(job);
    } else {
        LOG_WARN(kLog, "done event for " << job.remote_name
                                         << " not acknowledged by the broker; keeping the spool "
                                            "file until the job is offered again");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t outage_started = scheduler_.outage().started_ms();
    if (scheduler_.succeeded(job.job_id)) {
        LOG_INFO(kLog, "upload target reachable again after "
                           << (clock::now_ms() - outage_started) / 1000 << " s; "
                           << scheduler_.size() << " job(s) waiting drain oldest first");
    }
}

void UploaderService::finish_cancelled(const upload::Job& job) {
    // Shutting down, not a failure: the job waits in the journal for the next start.
    (void)journal_->mark_failed(job.job_id, "interrupted by shutdown", false, 0);
    LOG_INFO(kLog, "upload of " << job.remote_name
                                << " interrupted by shutdown; it resumes at the next start");
    std::lock_guard<std::mutex> lock(mutex_);
    scheduler_.cancelled(job.job_id);
}

void UploaderService::finish_failed(const upload::Job& job, int attempt, const Error& err) {
    bool permanent = upload::is_permanent_error(err);
    int64_t delay = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        delay = scheduler_.retry_delay_ms(attempt, permanent);
    }
    (void)journal_->mark_failed(job.job_id, err.describe(), permanent, clock::now_ms() + delay);
    LOG_WARN(kLog, "upload of " << job.remote_name << " failed (attempt " << attempt
                                << "): " << err.describe()
                                << (permanent ? "; giving up"
                                              : "; retrying in " + std::to_string(delay) + " ms"));
    publish_event(failed_event(job, attempt, err, !permanent, delay), false);
    std::lock_guard<std::mutex> lock(mutex_);
    last_error_ = err.describe();
    if (scheduler_.failed(job.job_id, permanent, attempt, delay, clock::now_ms())) {
        LOG_WARN(kLog, "upload target unreachable ("
                           << last_error_ << "); uploads pause and one probe at a time "
                           << "retries, backing off up to " << config_.upload.retry_max_backoff_s
                           << " s");
    }
}

void UploaderService::release_spool_file(const upload::Job& job) {
    std::string relative = job.path.substr(spool_root_.size() + 1);
    const bool keep = !config_.upload.delete_after_upload || config_.spool.keep_uploaded_days > 0;
    if (!keep) {
        if (auto st = spool_->remove(relative); !st)
            LOG_WARN(kLog, "removing spool file " << relative << ": " << st.error().describe());
        return;
    }
    // Kept copies move out of the agent's sight, or it would offer them again forever.
    if (auto kept = spool_->keep_uploaded(relative); !kept)
        LOG_WARN(kLog, "keeping spool file " << relative << ": " << kept.error().describe());
    // Room for the next captures now, not at the next minute's sweep (only kept-for-N-days
    // copies give way; the disk is asked only then).
    if (config_.spool.keep_uploaded_days <= 0) return;
    auto free_bytes = spool_->disk_free_bytes();
    if (free_bytes && *free_bytes < config_.spool.min_free_bytes) sweep_kept_files();
}

void UploaderService::sweep_kept_files() {
    const int days = config_.spool.keep_uploaded_days;
    if (days <= 0) return;  // delete_after_upload: false keeps photos until the user removes them
    uint64_t expired = spool_->remove_kept_before(clock::now_ms() - days * 86400000LL);
    if (expired > 0)
        LOG_INFO(kLog, "deleted " << expired << " uploaded photo(s) kept longer than " << days
                                  << " day(s)");
    // Before the agent has to refuse captures (disk_full), uploaded copies make room.
    uint64_t evicted = spool_->evict_kept_until_free(config_.spool.min_free_bytes);
    if (evicted > 0)
        LOG_WARN(kLog, "spool disk under spool.min_free_bytes: deleted "
                           << evicted << " uploaded photo(s) before their " << days
                           << " day(s) were up");
}

bool UploaderService::publish_event(const protocol::UploadEvent& e, bool wait) {
    mqtt::Message m{topics_.upload_events(), protocol::upload_event_json(e), 1, false, "", ""};
    if (wait) return static_cast<bool>(mqtt_->publish(m, false, std::chrono::seconds(5)));
    mqtt_->publish_nowait(m, false);
    return true;
}

void UploaderService::notify_systemd(int64_t now) {
    if (!notifier_.enabled()) return;
    if (state_dirty_) status_dirty_ = true;
    if ((status_dirty_ && now >= next_status_ms_) || now >= status_refresh_ms_) {
        status_dirty_ = false;
        next_status_ms_ = now + 1000;
        status_refresh_ms_ = now + 10000;
        notifier_.status(status_line());
    }
    notifier_.tick(true);
}

std::string UploaderService::status_line() {
    protocol::UploaderState s = current_state();
    std::string line = (mqtt_->connected() ? "" : "broker unreachable; ") + std::string("queued ") +
                       std::to_string(s.queued) + ", in flight " + std::to_string(s.uploading) +
                       ", done " + std::to_string(s.done) + ", failed " + std::to_string(s.failed) +
                       " (target " + s.target + ")";
    if (!s.target_reachable)
        line += ", target unreachable, retry in " + std::to_string(s.retry_in_ms / 1000) + " s";
    if (!s.last_error.empty()) line += ", last error: " + s.last_error;
    return line;
}

void UploaderService::publish_state() {
    mqtt_->publish_nowait(
        mqtt::Message{topics_.uploader_state(), protocol::uploader_state_json(current_state()), 1,
                      true, "", ""},
        true);
}

protocol::UploaderState UploaderService::current_state() {
    protocol::UploaderState s;
    auto counts = journal_->counts();
    if (counts) {
        s.queued = counts->queued;
        s.uploading = counts->uploading;
        s.done = counts->done;
        s.failed = counts->failed_permanent;
    }
    s.target = config_.upload.target;
    s.version = PHOTORIG_VERSION;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        s.last_error = last_error_;
        s.target_reachable = !scheduler_.in_outage();
        if (!s.target_reachable)
            s.retry_in_ms =
                std::max<int64_t>(0, scheduler_.outage().paused_until_ms() - clock::now_ms());
    }
    return s;
}

void UploaderService::publish_availability(const char* value) {
    mqtt_->publish_nowait(mqtt::Message{topics_.uploader_availability(), value, 1, true, "", ""},
                          true);
}

}  // namespace photorig::uploader
