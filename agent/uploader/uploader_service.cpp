#include "uploader/uploader_service.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <random>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "mqtt/from_config.h"
#include "protocol/wire.h"
#include "spool/spool.h"
#include "upload/journal.h"
#include "upload/target.h"
#include "uploader/target_from_config.h"

namespace photorig::uploader {
namespace {
// The wire's job (what the agent published) as the upload module's own type.
upload::Job to_upload_job(const protocol::UploadJob& w) {
    upload::Job j;
    j.job_id = w.job_id;
    j.capture_id = w.capture_id;
    j.rig_id = w.rig_id;
    j.batch = w.batch;
    j.path = w.path;
    j.remote_name = w.remote_name;
    j.mime = w.mime;
    j.sha256 = w.sha256;
    j.size = w.size;
    j.captured_at_ms = w.captured_at_ms;
    return j;
}

constexpr const char* kLog = "uploader";

std::string real_dir(const std::string& dir) {
    char buf[PATH_MAX];
    if (::realpath(dir.c_str(), buf)) return buf;
    return dir;
}
}  // namespace

UploaderService::UploaderService(config::Config config)
    : config_(std::move(config)), base_(config_.base_topic()) {}

UploaderService::~UploaderService() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cancel_uploads_ = true;
    cv_.notify_all();
    for (auto& t : workers_) {
        if (t.joinable()) t.join();
    }
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
    mo.will = mqtt::Will{base_ + "/uploader/availability", "offline", 1, true};
    mqtt_ = std::make_unique<mqtt::Client>(mo, events_);
    mqtt_->set_subscriptions({{base_ + "/upload/jobs", 1}});

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
    free_transfer_slots_ = n;
    for (int i = 0; i < 2 * n; ++i) workers_.emplace_back([this] { worker_loop(); });

    auto st = mqtt_->connect(std::chrono::seconds(5));
    if (!st) {
        if (st.error().code == "not_authorized") return st.error().with_context("mqtt");
        LOG_WARN(kLog, "broker not reachable yet (" << st.error().describe()
                                                    << "); retrying in the background");
    }
    return ok();
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
                std::vector<std::string> payloads{std::move(ev->message.payload)};
                std::optional<mqtt::Event> other;
                while (payloads.size() < 256) {
                    auto more = events_.pop_for(std::chrono::milliseconds(0));
                    if (!more) break;
                    if (more->kind != mqtt::Event::Kind::message) {
                        other = std::move(more);
                        break;
                    }
                    payloads.push_back(std::move(more->message.payload));
                }
                accept_jobs(payloads);
                if (other) handle_event(*other);
            }
        }
        int64_t now = clock::monotonic_ms();
        if (now >= next_sweep) {
            sweep_kept_files();
            next_sweep = now + 60 * 1000;
        }
        if (state_dirty_ && now >= next_state && mqtt_->connected()) {
            state_dirty_ = false;
            publish_state();
            next_state = now + 500;
        }
    }
    LOG_INFO(kLog, "stopping");
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    // Uploads in flight stop now rather than after minutes of a big file: their jobs stay
    // queued in the journal, and Drive and S3 resume from the byte the server confirmed.
    cancel_uploads_ = true;
    cv_.notify_all();
    for (auto& t : workers_) {
        if (t.joinable()) t.join();
    }
    workers_.clear();
    if (mqtt_->connected()) {
        mqtt_->publish_nowait(
            mqtt::Message{base_ + "/uploader/availability", "offline", 1, true, "", ""}, true);
        mqtt_->disconnect(std::chrono::seconds(2));
    }
}

void UploaderService::handle_event(const mqtt::Event& event) {
    switch (event.kind) {
        case mqtt::Event::Kind::connected:
            LOG_INFO(kLog,
                     "connected to broker" << (event.session_present ? " (session present)" : ""));
            mqtt_->publish_nowait(
                mqtt::Message{base_ + "/uploader/availability", "online", 1, true, "", ""}, true);
            state_dirty_ = true;
            break;
        case mqtt::Event::Kind::connection_lost:
            LOG_WARN(kLog, "lost the broker: " << event.reason);
            break;
        case mqtt::Event::Kind::message:
            accept_jobs({event.message.payload});
            break;
    }
}

bool UploaderService::path_in_spool(const std::string& path) const {
    std::string prefix = spool_root_ + "/";
    return path.compare(0, prefix.size(), prefix) == 0 && path.find("/../") == std::string::npos;
}

void UploaderService::accept_jobs(const std::vector<std::string>& payloads) {
    std::vector<upload::Job> jobs;
    for (const auto& payload : payloads) {
        auto wire_job = protocol::parse_upload_job(payload);
        if (!wire_job) {
            LOG_WARN(kLog, "ignoring a malformed upload job: " << wire_job.error().describe());
            continue;
        }
        upload::Job job = to_upload_job(*wire_job);
        if (!path_in_spool(job.path)) {
            // Only files the agent spooled are ours to upload and delete.
            protocol::UploadEvent e;
            e.type = "failed";
            e.job_id = job.job_id;
            e.capture_id = job.capture_id;
            e.batch = job.batch;
            e.name = job.remote_name;
            e.error_code = "bad_request";
            e.error_message = "path is outside spool.dir";
            publish_event(e, false);
            continue;
        }
        jobs.push_back(std::move(job));
    }
    if (jobs.empty()) return;
    // Durable before anything else happens: a crash from here on resumes from the journal.
    auto recs = journal_->record_all(jobs);
    for (size_t i = 0; i < jobs.size(); ++i) {
        const auto& job = jobs[i];
        auto& rec = recs[i];
        if (!rec) {
            LOG_ERROR(kLog, "journal: " << rec.error().describe()
                                        << "; the agent will offer the job again");
            continue;
        }
        if (rec->state == upload::JobState::done) {
            // Uploaded before; if its spool file is still there we crashed before releasing
            // it, or its done event never reached the broker (see upload_one): say it now,
            // then release the file.
            if (::access(job.path.c_str(), F_OK) == 0) {
                LOG_INFO(kLog,
                         "job " << job.job_id << " was already uploaded; releasing its spool file");
                protocol::UploadEvent e;
                e.type = "done";
                e.job_id = job.job_id;
                e.capture_id = job.capture_id;
                e.batch = job.batch;
                e.name = job.remote_name;
                e.bytes_total = job.size;
                e.bytes_done = job.size;
                e.remote_ref = rec->remote_ref;
                if (publish_event(e, true)) release_spool_file(job);
            }
            continue;
        }
        if (rec->state == upload::JobState::failed_permanent) continue;
        schedule(rec->job, rec->attempts, 0);
    }
}

void UploaderService::schedule(const upload::Job& job, int attempt, int64_t not_before_ms) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = scheduled_.find(job.job_id);
        if (it != scheduled_.end()) return;  // already waiting or in flight: a repeat
        Scheduled s;
        s.job = job;
        s.attempt = attempt;
        s.not_before_ms = not_before_ms;
        s.order = next_order_++;
        scheduled_.emplace(job.job_id, std::move(s));
    }
    state_dirty_ = true;
    cv_.notify_one();
}

void UploaderService::worker_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        int64_t now = clock::now_ms();
        const bool outage = in_outage_locked();
        if (outage && (probe_in_flight_ || now < outage_until_ms_)) {
            // Everyone waits for the probe, or for its time.
            auto wait =
                probe_in_flight_
                    ? std::chrono::milliseconds(1000)
                    : std::chrono::milliseconds(std::max<int64_t>(1, outage_until_ms_ - now));
            cv_.wait_for(lock, wait);
            continue;
        }
        Scheduled* next = nullptr;
        int64_t earliest = INT64_MAX;
        for (auto& [id, s] : scheduled_) {
            if (s.in_flight) continue;
            if (outage) {
                // The probe: the job due soonest (failed probes push theirs back, so the
                // probes rotate and one bad file cannot hold the link down).
                if (!next || s.not_before_ms < next->not_before_ms ||
                    (s.not_before_ms == next->not_before_ms && s.order < next->order))
                    next = &s;
            } else if (s.not_before_ms <= now) {
                if (!next || s.order < next->order) next = &s;
            } else {
                earliest = std::min(earliest, s.not_before_ms);
            }
        }
        if (!next || free_transfer_slots_ == 0) {
            // A slot given back or a new job notifies the condition variable.
            auto wait = earliest == INT64_MAX || next
                            ? std::chrono::milliseconds(1000)
                            : std::chrono::milliseconds(std::max<int64_t>(1, earliest - now));
            cv_.wait_for(lock, wait);
            continue;
        }
        --free_transfer_slots_;
        next->in_flight = true;
        if (outage) probe_in_flight_ = true;
        Scheduled item = *next;
        // Announced under the lock, so "started" events come in the order jobs are picked
        // (oldest first) whichever worker thread runs first; publish_nowait only queues.
        publish_event(job_event(item.job, "started", item.attempt + 1), false);
        lock.unlock();
        upload_one(item);
        lock.lock();
    }
}

void UploaderService::note_success_locked() {
    if (in_outage_locked()) {
        // The target is back: the jobs held up by the outage go now, in their order.
        for (auto& [id, s] : scheduled_) {
            if (failing_jobs_.count(id) && !s.in_flight) s.not_before_ms = 0;
        }
        LOG_INFO(kLog, "upload target reachable again after "
                           << (clock::now_ms() - outage_started_ms_) / 1000 << " s; "
                           << scheduled_.size() << " job(s) waiting drain oldest first");
    }
    failing_jobs_.clear();
    consecutive_failures_ = 0;
    outage_until_ms_ = 0;
}

void UploaderService::note_retryable_failure_locked(const std::string& job_id, int64_t delay_ms) {
    const bool was_outage = in_outage_locked();
    failing_jobs_.insert(job_id);
    ++consecutive_failures_;
    if (!in_outage_locked()) return;
    if (!was_outage) {
        outage_started_ms_ = clock::now_ms();
        LOG_WARN(kLog, "upload target unreachable ("
                           << last_error_ << "); uploads pause and one probe at a time "
                           << "retries, backing off up to " << config_.upload.retry_max_backoff_s
                           << " s");
    }
    outage_until_ms_ = clock::now_ms() + delay_ms;
}

protocol::UploadEvent UploaderService::job_event(const upload::Job& job, const char* type,
                                                 int attempt) {
    protocol::UploadEvent ev;
    ev.type = type;
    ev.job_id = job.job_id;
    ev.capture_id = job.capture_id;
    ev.batch = job.batch;
    ev.name = job.remote_name;
    ev.bytes_total = job.size;
    ev.attempt = attempt;
    return ev;
}

void UploaderService::release_transfer_slot(bool* held) {
    if (!*held) return;
    *held = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++free_transfer_slots_;
    }
    cv_.notify_all();
}

void UploaderService::upload_one(Scheduled item) {
    const auto& job = item.job;
    bool slot_held = true;  // taken by worker_loop for this job
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
        (void)journal_->mark_done(job.job_id, result->remote_ref);
        ev.type = "done";
        ev.bytes_done = job.size;
        ev.bytes_sent = result->bytes_sent;
        // This attempt's pace on the link: a resumed upload sent only its remainder.
        ev.rate_bytes_per_s = static_cast<double>(result->bytes_sent) * 1000.0 / elapsed;
        ev.remote_ref = result->remote_ref;
        LOG_INFO(kLog, "uploaded " << job.remote_name << " (" << job.size << " bytes, " << elapsed
                                   << " ms)");
        // The done event is the only news that the photo is safe (rigctl and dashboards wait
        // for it), and publish_nowait drops what it cannot send: an upload resumed from the
        // journal can finish before the broker connection is up, or inside a broker outage.
        // So wait for the broker's ack, and without one keep the spool file: the agent offers
        // the job again, and accept_jobs() repeats the done event before releasing the file.
        if (publish_event(ev, true)) {
            release_spool_file(job);
        } else {
            LOG_WARN(kLog, "done event for "
                               << job.remote_name
                               << " not acknowledged by the broker; keeping the spool file "
                                  "until the job is offered again");
        }
        std::lock_guard<std::mutex> lock(mutex_);
        scheduled_.erase(job.job_id);
        probe_in_flight_ = false;
        note_success_locked();
    } else if (result.error().code == "cancelled" && cancel_uploads_) {
        // Shutting down, not a failure: the job waits in the journal for the next start.
        (void)journal_->mark_failed(job.job_id, "interrupted by shutdown", false, 0);
        LOG_INFO(kLog, "upload of " << job.remote_name
                                    << " interrupted by shutdown; it resumes at the next start");
        std::lock_guard<std::mutex> lock(mutex_);
        scheduled_.erase(job.job_id);
        probe_in_flight_ = false;
    } else {
        const Error& err = result.error();
        bool permanent = upload::is_permanent_error(err);
        // Exponential backoff with jitter, capped: an outage of any length just waits. In an
        // outage the link's failure count sets the pace, not this job's attempts.
        int failures = attempt;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!permanent && !failing_jobs_.empty())
                failures = std::max(failures, consecutive_failures_ + 1);
        }
        double base_ms = std::min<double>(config_.upload.retry_max_backoff_s * 1000.0,
                                          1000.0 * std::pow(2.0, std::min(failures - 1, 20)));
        static thread_local std::mt19937 rng{std::random_device{}()};
        int64_t delay =
            static_cast<int64_t>(base_ms * std::uniform_real_distribution<double>(0.5, 1.0)(rng));
        (void)journal_->mark_failed(job.job_id, err.describe(), permanent, clock::now_ms() + delay);
        LOG_WARN(kLog, "upload of "
                           << job.remote_name << " failed (attempt " << attempt
                           << "): " << err.describe()
                           << (permanent ? "; giving up"
                                         : "; retrying in " + std::to_string(delay) + " ms"));
        ev.type = "failed";
        ev.error_code = err.code;
        ev.error_message = err.message;
        ev.retrying = !permanent;
        ev.next_attempt_in_ms = delay;
        publish_event(ev, false);
        std::lock_guard<std::mutex> lock(mutex_);
        last_error_ = err.describe();
        probe_in_flight_ =
            false;  // whether or not this was the probe: at most one runs in an outage
        if (permanent) {
            scheduled_.erase(job.job_id);
        } else {
            note_retryable_failure_locked(job.job_id, delay);
            auto it = scheduled_.find(job.job_id);
            if (it != scheduled_.end()) {
                it->second.in_flight = false;
                it->second.attempt = attempt;
                it->second.not_before_ms = clock::now_ms() + delay;
            }
        }
    }
    state_dirty_ = true;
    cv_.notify_all();
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
    mqtt::Message m{base_ + "/upload/events", protocol::upload_event_json(e), 1, false, "", ""};
    if (wait) return static_cast<bool>(mqtt_->publish(m, false, std::chrono::seconds(5)));
    mqtt_->publish_nowait(m, false);
    return true;
}

void UploaderService::publish_state() {
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
        s.target_reachable = !in_outage_locked();
        if (!s.target_reachable)
            s.retry_in_ms = std::max<int64_t>(0, outage_until_ms_ - clock::now_ms());
    }
    mqtt_->publish_nowait(
        mqtt::Message{base_ + "/uploader/state", protocol::uploader_state_json(s), 1, true, "", ""},
        true);
}

}  // namespace photorig::uploader
