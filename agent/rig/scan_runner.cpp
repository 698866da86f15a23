#include "rig/scan_runner.h"

#include <unistd.h>

#include <algorithm>

#include "core/clock.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"
#include "protocol/wire.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "scan";

bool active(const protocol::ScanRecord& r) {
    return r.state == "running" || r.state == "paused";
}
}  // namespace

ScanRunner::ScanRunner(std::string record_path, protocol::RigTopics topics, Hooks hooks)
    : record_path_(std::move(record_path)), topics_(std::move(topics)), hooks_(std::move(hooks)) {}

ScanRunner::~ScanRunner() {
    stop();
}

void ScanRunner::start() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (::access(record_path_.c_str(), F_OK) == 0) {
            auto text = files::read_all(record_path_);
            auto rec = text ? protocol::parse_scan_record(*text)
                            : Expected<protocol::ScanRecord>(text.error());
            if (!rec) {
                LOG_WARN(kLog, "ignoring the scan record " << record_path_ << ": "
                                                           << rec.error().describe());
            } else {
                record_ = *rec;
                if (active(*record_)) {
                    LOG_INFO(kLog, "scan " << record_->scan_id << " " << record_->state
                                           << " after a restart at step " << record_->steps_done
                                           << " of " << record_->request.positions);
                    progress_locked("restored");
                }
            }
        }
        stopping_ = false;
    }
    thread_ = std::thread([this] { loop(); });
}

void ScanRunner::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

Expected<std::string> ScanRunner::handle(const protocol::ScanRequest& request,
                                         const std::string& batch_if_none) {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::string& action = request.action;
    if (action == "start") {
        if (record_ && active(*record_)) {
            return make_error(
                protocol::codes::scan_active,
                "scan " + record_->scan_id + " is " + record_->state + "; abort it first");
        }
        protocol::ScanRecord r;
        int64_t now = clock::now_ms();
        r.scan_id = "scan-" + ids::time_ordered_id(now);
        r.batch = request.batch.empty() ? batch_if_none : request.batch;
        r.state = "running";
        r.request = request;
        r.request.batch = r.batch;
        r.started_at_ms = now;
        record_ = r;
        pause_requested_ = abort_requested_ = false;
        persist_locked();
        progress_locked("started");
        LOG_INFO(kLog, "scan " << r.scan_id << ": " << request.positions << " positions, batch "
                               << r.batch);
        cv_.notify_all();
        return protocol::scan_progress_json(*record_, "started", eta_s_locked());
    }
    if (action == "status") {
        if (!record_) return std::string(R"({"state":"idle"})");
        return protocol::scan_progress_json(*record_, "status", eta_s_locked());
    }
    if (!record_ || !active(*record_)) {
        return make_error(protocol::codes::no_scan, "no scan is running or paused");
    }
    if (action == "pause") {
        if (record_->state == "running") pause_requested_ = true;
    } else if (action == "resume") {
        if (record_->state == "paused") {
            record_->state = "running";
            record_->error_code.clear();
            record_->error_message.clear();
            pause_requested_ = false;
            persist_locked();
            progress_locked("resumed");
        }
    } else if (action == "abort") {
        if (record_->state == "paused") {
            finish_locked("aborted");
        } else {
            abort_requested_ = true;
        }
    }
    cv_.notify_all();
    return protocol::scan_progress_json(*record_, action, eta_s_locked());
}

void ScanRunner::on_ready(const std::string& payload) {
    LOG_DEBUG(kLog, "ready received");
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!record_ || record_->state != "running" || record_->waiting_for != "turntable") return;
        if (!protocol::scan_ready_matches(payload, *record_, ready_step_)) {
            LOG_DEBUG(kLog, "ignoring a ready that is not for step " << ready_step_);
            return;
        }
        ready_ = true;
    }
    cv_.notify_all();
}

ScanRunner::Wake ScanRunner::wait_locked(std::unique_lock<std::mutex>& lock, int64_t deadline_ms,
                                         bool for_ready) {
    for (;;) {
        if (stopping_) return Wake::stop;
        if (abort_requested_) return Wake::abort;
        if (pause_requested_) return Wake::pause;
        if (for_ready && ready_) return Wake::ready;
        int64_t left = deadline_ms - clock::monotonic_ms();
        if (left <= 0) return Wake::timeout;
        cv_.wait_for(lock, std::chrono::milliseconds(left));
    }
}

void ScanRunner::loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        if (!record_ || record_->state != "running") {
            cv_.wait(lock);
            continue;
        }
        if (record_->steps_done >= record_->request.positions) {
            finish_locked("completed");
            continue;
        }
        // No exception ends the scan thread: the scan pauses with internal_error (it can be
        // resumed) and the thread waits for the next command.
        try {
            run_step_locked(lock);
        } catch (const std::exception& e) {
            if (!lock.owns_lock()) lock.lock();
            LOG_ERROR(kLog, "scan step failed with an exception: " << e.what());
            if (record_ && record_->state == "running")
                pause_locked(protocol::codes::internal_error, "scan step failed: internal error");
        }
    }
}

bool ScanRunner::interrupted_locked(Wake w) {
    switch (w) {
        case Wake::stop:
            return true;
        case Wake::abort:
            finish_locked("aborted");
            return true;
        case Wake::pause:
            pause_locked("", "");
            return true;
        default:
            return false;
    }
}

bool ScanRunner::turntable_ready_locked(std::unique_lock<std::mutex>& lock, int step,
                                        int64_t step_start) {
    protocol::ScanRecord& r = *record_;
    ready_ = false;
    ready_step_ = step;
    r.waiting_for = "turntable";
    hooks_.publish(topics_.scan_move(), protocol::scan_move_json(r, step), false);
    progress_locked("move");
    LOG_DEBUG(kLog, "step " << step << ": move requested");
    Wake w = wait_locked(lock, step_start + r.request.move_timeout_ms, true);
    if (interrupted_locked(w)) return false;
    if (w == Wake::timeout) {
        pause_locked(protocol::codes::timeout, "the turntable did not answer ready for step " +
                                                   std::to_string(step) + " within " +
                                                   std::to_string(r.request.move_timeout_ms) +
                                                   " ms; resume to ask again, or abort");
        return false;
    }
    return true;
}

std::optional<ScanRunner::CaptureOutcome> ScanRunner::capture_step_locked(
    std::unique_lock<std::mutex>& lock, int step) {
    protocol::ScanRecord& r = *record_;
    r.waiting_for = "capture";
    protocol::CaptureRequest capture;
    capture.camera = r.request.camera;
    capture.count = r.request.count;
    capture.batch = r.batch;
    const int seq_offset = (step - 1) * r.request.count;
    LOG_DEBUG(kLog, "step " << step << ": capture");
    lock.unlock();
    auto outcome = hooks_.capture(capture, seq_offset);
    lock.lock();
    LOG_DEBUG(kLog, "step " << step << ": captured");
    return outcome;
}

bool ScanRunner::record_step_locked(int step, int64_t step_start, CaptureOutcome outcome) {
    protocol::ScanRecord& rec = *record_;
    if (outcome.photos.empty()) {
        const Error e = outcome.errors.empty() ? make_error("camera_error", "no photo")
                                               : outcome.errors.front();
        pause_locked(e.code, "step " + std::to_string(step) + ": " + e.message +
                                 "; resume to retry, or abort");
        return false;
    }
    for (auto& p : outcome.photos) rec.captures.push_back(std::move(p));
    rec.steps_done = step;
    rec.busy_ms += clock::monotonic_ms() - step_start;
    rec.waiting_for.clear();
    if (!outcome.errors.empty()) {
        // Some cameras failed: their photos of this position are missing; say so, go on.
        rec.error_code = outcome.errors.front().code;
        rec.error_message = "step " + std::to_string(step) + ": " + outcome.errors.front().message;
    }
    persist_locked();
    progress_locked("step");
    LOG_DEBUG(kLog, "step " << step << ": recorded");
    return true;
}

void ScanRunner::run_step_locked(std::unique_lock<std::mutex>& lock) {
    protocol::ScanRecord& r = *record_;
    const int step = r.steps_done + 1;
    const int64_t step_start = clock::monotonic_ms();

    // 1. The turntable goes to this step's absolute position (so a step redone after a
    // restart or a resume asks for the same place again) and says when it is there.
    if (r.request.turntable && !turntable_ready_locked(lock, step, step_start)) return;
    LOG_DEBUG(kLog, "step " << step << ": turntable ready");
    // 2. Let vibrations die down.
    if (r.request.settle_ms > 0) {
        r.waiting_for = "settle";
        Wake w = wait_locked(lock, clock::monotonic_ms() + r.request.settle_ms, false);
        if (interrupted_locked(w)) return;
    }
    // 3. Capture, without the lock: pause/abort requests wait for the step to end.
    auto outcome = capture_step_locked(lock, step);
    if (!outcome || stopping_) return;  // not recorded: the step is done again after a restart
    if (!record_step_locked(step, step_start, std::move(*outcome))) return;
    // 4. A minimum period per position, when asked for.
    const protocol::ScanRecord& rec = *record_;
    if (rec.request.interval_ms > 0 && rec.steps_done < rec.request.positions) {
        Wake w = wait_locked(lock, step_start + rec.request.interval_ms, false);
        interrupted_locked(w);
    }
}

void ScanRunner::pause_locked(const std::string& code, const std::string& message) {
    record_->state = "paused";
    record_->waiting_for.clear();
    record_->error_code = code;
    record_->error_message = message;
    pause_requested_ = false;
    if (!code.empty()) LOG_WARN(kLog, "scan " << record_->scan_id << " paused: " << message);
    persist_locked();
    progress_locked("paused");
}

void ScanRunner::finish_locked(const std::string& state) {
    protocol::ScanRecord& r = *record_;
    r.state = state;
    r.waiting_for.clear();
    r.finished_at_ms = clock::now_ms();
    abort_requested_ = pause_requested_ = false;
    // The manifest first: a crash before the record says "completed" delivers it again,
    // and delivery is idempotent per scan.
    if (auto st = hooks_.deliver_manifest(r); !st) {
        LOG_WARN(kLog, "scan " << r.scan_id << " manifest: " << st.error().describe());
        if (r.error_code.empty()) {
            r.error_code = st.error().code;
            r.error_message = "manifest: " + st.error().message;
        }
    }
    persist_locked();
    progress_locked(state);
    LOG_INFO(kLog, "scan " << r.scan_id << " " << state << " after " << r.steps_done << " of "
                           << r.request.positions << " steps, " << r.captures.size() << " photos");
}

void ScanRunner::persist_locked() {
    if (auto st = files::write_atomic(record_path_, protocol::scan_record_json(*record_)); !st) {
        LOG_WARN(kLog, "saving the scan record: " << st.error().describe());
    }
}

void ScanRunner::progress_locked(const std::string& event) {
    std::string payload = protocol::scan_progress_json(*record_, event, eta_s_locked());
    hooks_.publish(topics_.scan_progress(), payload, false);
    // The retained copy skips "move": every retained message makes mosquitto (autosave on
    // changes) rewrite its database, and a late subscriber loses nothing by it.
    if (event != "move") hooks_.publish(topics_.scan_state(), payload, true);
}

int64_t ScanRunner::eta_s_locked() const {
    const protocol::ScanRecord& r = *record_;
    if (r.state != "running" && r.state != "paused") return r.state == "completed" ? 0 : -1;
    int remaining = r.request.positions - r.steps_done;
    if (r.steps_done == 0) return -1;
    return (r.busy_ms / r.steps_done) * remaining / 1000;
}

}  // namespace photorig::rig
