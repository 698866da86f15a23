#include "uploader/outage_detector.h"

namespace photorig::uploader {

bool OutageDetector::note_retryable_failure(const std::string& job_id, int64_t delay_ms,
                                            int64_t now_ms) {
    const bool was_outage = in_outage();
    failing_jobs_.insert(job_id);
    ++consecutive_failures_;
    if (!in_outage()) return false;
    if (!was_outage) outage_started_ms_ = now_ms;
    outage_until_ms_ = now_ms + delay_ms;
    return !was_outage;
}

bool OutageDetector::note_success() {
    const bool was_outage = in_outage();
    failing_jobs_.clear();
    consecutive_failures_ = 0;
    outage_until_ms_ = 0;
    return was_outage;
}

}  // namespace photorig::uploader
