// Re-offers spooled files the uploader has not finished: a file still in the spool (so
// not yet uploaded and removed) older than spool.reoffer_after_s gets its upload job again.
// Each file backs off on its own (reoffer_after_s, doubling up to an hour), so a long
// uploader outage does not flood the broker's queue with the same jobs.
//
// Threads: the service thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "rig/job_publisher.h"
#include "rig/publisher.h"
#include "rig/rig_stats.h"
#include "spool/spool.h"

namespace photorig::rig {

class SpoolReconciler {
  public:
    SpoolReconciler(spool::Spool& spool, Publisher& publisher, JobPublisher& jobs, RigStats& stats,
                    std::string rig_id, int reoffer_after_s)
        : spool_(spool),
          publisher_(publisher),
          jobs_(jobs),
          stats_(stats),
          rig_id_(std::move(rig_id)),
          age_limit_ms_(reoffer_after_s * 1000LL) {}

    // At start-up every spooled file is offered at once; later only those old enough and
    // due by their backoff. Returns how many jobs went out.
    size_t reconcile(bool at_startup, int64_t now_ms);

    // Files currently tracked (for tests): job id -> when it may be offered next.
    const std::map<std::string, int64_t>& next_offers() const { return next_offer_ms_; }

  private:
    // The file's metadata from its sidecar, or (a crash between commit and sidecar) from
    // the file itself, writing the sidecar now so its job id stays stable.
    bool describe(const spool::SpoolEntry& entry, protocol::CaptureMetadata* meta);
    int64_t next_backoff_ms(const std::string& job_id);
    void forget_gone(const std::map<std::string, bool>& still_there);

    spool::Spool& spool_;
    Publisher& publisher_;
    JobPublisher& jobs_;
    RigStats& stats_;
    const std::string rig_id_;
    const int64_t age_limit_ms_;
    std::map<std::string, int64_t> next_offer_ms_;  // job id -> next time it may be offered
    std::map<std::string, int> offers_;             // job id -> offers so far
};

}  // namespace photorig::rig
