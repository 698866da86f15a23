// Tells the broker about a spooled file: its capture metadata (base/capture) and its
// upload job (base/upload/jobs). A job counts as delivered only on the broker's PUBACK;
// when that fails the file stays in the spool and SpoolReconciler offers it again.
#pragma once

#include <chrono>
#include <functional>

#include "protocol/topics.h"
#include "protocol/types.h"
#include "rig/publisher.h"
#include "rig/rig_stats.h"

namespace photorig::rig {

class JobPublisher {
  public:
    JobPublisher(Publisher& publisher, protocol::RigTopics topics, RigStats& stats)
        : publisher_(publisher), topics_(std::move(topics)), stats_(stats) {}

    // How long a publish may wait for the client: a reconnection, or a place in its window
    // of unacknowledged messages (max_inflight) and its buffer behind it; and, with
    // `wait_for_ack`, for the broker's PUBACK.
    static constexpr std::chrono::milliseconds kPublishTimeout{10000};

    // Metadata, then the upload job (waiting for its PUBACK). `job_taken`, when set, runs once
    // the client has the job, before that wait: a response published from then on follows
    // the job on the wire (and reaches the broker after it). Not run when the job never got
    // to the client.
    // Without `wait_for_ack` the job is only handed to the client: for a job with another
    // behind it, whose PUBACK on the same connection vouches for this one. A full window or
    // buffer is waited out (up to `queue_timeout`), never dropped: the client's window is
    // what bounds the jobs a burst leaves unacknowledged.
    void publish_photo(const protocol::CaptureMetadata& meta,
                       const std::function<void()>& job_taken = {}, bool wait_for_ack = true);
    // The upload job alone; true once the broker has it (or, without the wait, the client).
    bool publish_job(const protocol::CaptureMetadata& meta, bool wait_for_ack = true,
                     const std::function<void()>& job_taken = {},
                     std::chrono::milliseconds queue_timeout = kPublishTimeout);

  private:
    Publisher& publisher_;
    const protocol::RigTopics topics_;
    RigStats& stats_;
};

// The upload job that describes a spooled file.
protocol::UploadJob upload_job_for(const protocol::CaptureMetadata& meta);

}  // namespace photorig::rig
