#include "uploader/upload_scheduler.h"

#include <algorithm>
#include <climits>

namespace photorig::uploader {

UploadScheduler::UploadScheduler(int concurrency, BackoffPolicy retry)
    : retry_(retry), free_slots_(std::max(1, concurrency)) {}

bool UploadScheduler::add(const upload::Job& job, int attempt, int64_t not_before_ms) {
    if (entries_.count(job.job_id)) return false;
    Entry e;
    e.job = job;
    e.attempt = attempt;
    e.not_before_ms = not_before_ms;
    e.order = next_order_++;
    entries_.emplace(job.job_id, std::move(e));
    return true;
}

UploadScheduler::Entry* UploadScheduler::pick(int64_t now_ms, bool outage, int64_t* earliest) {
    Entry* next = nullptr;
    for (auto& [id, s] : entries_) {
        if (s.in_flight) continue;
        if (outage) {
            // The probe: the job due soonest (failed probes push theirs back, so the
            // probes rotate and one bad file cannot hold the link down).
            if (!next || s.not_before_ms < next->not_before_ms ||
                (s.not_before_ms == next->not_before_ms && s.order < next->order))
                next = &s;
        } else if (s.not_before_ms <= now_ms) {
            if (!next || s.order < next->order) next = &s;
        } else {
            *earliest = std::min(*earliest, s.not_before_ms);
        }
    }
    return next;
}

UploadScheduler::Decision UploadScheduler::next(int64_t now_ms) {
    Decision d;
    const bool outage = outage_.in_outage();
    if (outage && (outage_.probe_in_flight() || now_ms < outage_.paused_until_ms())) {
        // Everyone waits for the probe, or for its time.
        d.wait_ms = outage_.probe_in_flight()
                        ? 1000
                        : std::max<int64_t>(1, outage_.paused_until_ms() - now_ms);
        return d;
    }
    int64_t earliest = INT64_MAX;
    Entry* next = pick(now_ms, outage, &earliest);
    if (!next || free_slots_ == 0) {
        d.wait_ms = earliest == INT64_MAX || next ? 1000 : std::max<int64_t>(1, earliest - now_ms);
        return d;
    }
    --free_slots_;
    next->in_flight = true;
    if (outage) outage_.set_probe_in_flight(true);
    d.start = *next;
    d.probe = outage;
    return d;
}

bool UploadScheduler::succeeded(const std::string& job_id) {
    entries_.erase(job_id);
    outage_.set_probe_in_flight(false);
    if (outage_.in_outage()) {
        // The target is back: the jobs held up by the outage go now, in their order.
        for (auto& [id, s] : entries_) {
            if (outage_.is_failing(id) && !s.in_flight) s.not_before_ms = 0;
        }
    }
    return outage_.note_success();
}

void UploadScheduler::cancelled(const std::string& job_id) {
    entries_.erase(job_id);
    outage_.set_probe_in_flight(false);
}

int64_t UploadScheduler::retry_delay_ms(int attempt, bool permanent) const {
    int failures = attempt;
    if (!permanent && outage_.any_failing())
        failures = std::max(failures, outage_.consecutive_failures() + 1);
    return backoff_delay_ms(retry_, failures);
}

bool UploadScheduler::failed(const std::string& job_id, bool permanent, int attempt,
                             int64_t delay_ms, int64_t now_ms) {
    // Whether or not this was the probe: at most one runs in an outage.
    outage_.set_probe_in_flight(false);
    if (permanent) {
        entries_.erase(job_id);
        return false;
    }
    const bool began = outage_.note_retryable_failure(job_id, delay_ms, now_ms);
    auto it = entries_.find(job_id);
    if (it != entries_.end()) {
        it->second.in_flight = false;
        it->second.attempt = attempt;
        it->second.not_before_ms = now_ms + delay_ms;
    }
    return began;
}

}  // namespace photorig::uploader
