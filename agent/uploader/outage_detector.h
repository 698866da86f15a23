// Tells a target outage from one bad job. Retryable failures of two or more different jobs
// with no success between them mean the target itself is down: instead of every job
// retrying on its own clock (hammering the server, then draining in whatever order the
// timers fire), uploads pause, one probe at a time goes out on a capped exponential
// backoff, and the first success releases the whole backlog, oldest first. A single job
// failing among successes (a poisoned file) keeps its own backoff and blocks nobody.
//
// Not thread-safe: the UploadScheduler that owns it is guarded by the service's mutex.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace photorig::uploader {

class OutageDetector {
  public:
    bool in_outage() const { return failing_jobs_.size() >= 2; }
    // Some job failed retryably since the last success (an outage may be starting).
    bool any_failing() const { return !failing_jobs_.empty(); }
    bool is_failing(const std::string& job_id) const { return failing_jobs_.count(job_id) > 0; }
    int consecutive_failures() const { return consecutive_failures_; }

    // A retryable failure of `job_id`, to be retried after `delay_ms`. True when this
    // failure began an outage; in an outage no upload starts before now + delay.
    bool note_retryable_failure(const std::string& job_id, int64_t delay_ms, int64_t now_ms);
    // An upload succeeded: true when this ended an outage.
    bool note_success();

    // While in an outage: nothing starts before this (epoch ms).
    int64_t paused_until_ms() const { return outage_until_ms_; }
    int64_t started_ms() const { return outage_started_ms_; }

    // At most one probe runs in an outage.
    bool probe_in_flight() const { return probe_in_flight_; }
    void set_probe_in_flight(bool in_flight) { probe_in_flight_ = in_flight; }

  private:
    std::set<std::string> failing_jobs_;  // retryable failures since the last success
    int consecutive_failures_ = 0;
    int64_t outage_until_ms_ = 0;
    bool probe_in_flight_ = false;
    int64_t outage_started_ms_ = 0;
};

}  // namespace photorig::uploader
