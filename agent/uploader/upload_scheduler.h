// Which upload starts next, and when a failed one is retried: the uploader's scheduling
// decisions without threads, MQTT or a clock of its own (every call takes `now_ms`, epoch
// ms), so they can be tested as plain values.
//
// Jobs wait until their not-before time and start oldest first, at most `concurrency`
// transfers at once (a transfer slot is held from the start until every byte is at the
// server). In an outage (see OutageDetector) only one probe runs: the job due soonest.
//
// Not thread-safe: UploaderService calls it under its mutex.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/backoff.h"
#include "upload/job.h"
#include "uploader/outage_detector.h"

namespace photorig::uploader {

class UploadScheduler {
  public:
    struct Entry {
        upload::Job job;
        int attempt = 0;  // attempts made so far
        int64_t not_before_ms = 0;
        bool in_flight = false;
        uint64_t order = 0;  // arrival order: the backlog drains oldest first
    };

    // What a worker does now: start `start` (its slot already taken), or wait `wait_ms`.
    struct Decision {
        std::optional<Entry> start;
        bool probe = false;   // `start` is the one probe of an outage
        int64_t wait_ms = 0;  // when nothing starts: an upper bound, a new job or slot wakes
    };

    // `retry`: the backoff between attempts (upload.retry_max_backoff_s caps it).
    UploadScheduler(int concurrency, BackoffPolicy retry);

    // False when the job is already waiting or in flight (a repeat).
    bool add(const upload::Job& job, int attempt, int64_t not_before_ms);
    Decision next(int64_t now_ms);
    // The transfer picked by next() sent its last byte (or ended): the slot is free again.
    void release_slot() { ++free_slots_; }

    // Outcomes of a started job. succeeded() returns true when it ended an outage.
    bool succeeded(const std::string& job_id);
    void cancelled(const std::string& job_id);
    // The wait before retrying a job whose attempt number `attempt` just failed: in an
    // outage the link's failure count sets the pace, not this job's attempts.
    int64_t retry_delay_ms(int attempt, bool permanent) const;
    // Returns true when this failure began an outage.
    bool failed(const std::string& job_id, bool permanent, int attempt, int64_t delay_ms,
                int64_t now_ms);

    size_t size() const { return entries_.size(); }
    bool in_outage() const { return outage_.in_outage(); }
    const OutageDetector& outage() const { return outage_; }

  private:
    Entry* pick(int64_t now_ms, bool outage, int64_t* earliest);

    BackoffPolicy retry_;
    std::map<std::string, Entry> entries_;  // job_id -> job waiting or in flight
    uint64_t next_order_ = 0;
    int free_slots_;
    OutageDetector outage_;
};

}  // namespace photorig::uploader
