#include "rig/job_publisher.h"

#include "core/log.h"
#include "protocol/wire.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
}  // namespace

protocol::UploadJob upload_job_for(const protocol::CaptureMetadata& m) {
    protocol::UploadJob job;
    job.job_id = m.job_id;
    job.capture_id = m.capture_id;
    job.rig_id = m.rig_id;
    job.batch = m.batch;
    job.path = m.file_path;
    job.remote_name = m.file_name;
    job.mime = m.mime;
    job.sha256 = m.sha256;
    job.size = m.size;
    job.captured_at_ms = m.captured_at_ms;
    return job;
}

void JobPublisher::publish_photo(const protocol::CaptureMetadata& m,
                                 const std::function<void()>& job_taken, bool wait_for_ack) {
    // No wait for this ack: the job's PUBACK that follows on the same connection covers it.
    mqtt::Message capture_msg{
        topics_.capture(), protocol::capture_metadata_json(m), 1, false, "", ""};
    if (auto pst = publisher_.publish_queued(capture_msg, false, kPublishTimeout); !pst) {
        LOG_WARN(kLog, "publishing metadata of " << m.file_name << ": " << pst.error().describe());
    }
    publish_job(m, wait_for_ack, job_taken);
}

bool JobPublisher::publish_job(const protocol::CaptureMetadata& m, bool wait_for_ack,
                               const std::function<void()>& job_taken,
                               std::chrono::milliseconds queue_timeout) {
    mqtt::Message msg{
        topics_.upload_jobs(), protocol::upload_job_json(upload_job_for(m)), 1, false, "", ""};
    // Wait for the broker's PUBACK: only then is the job the broker's to keep. If it fails
    // the file stays in the spool and the reconciler offers it again.
    Status st = ok();
    if (!wait_for_ack) {
        st = publisher_.publish_queued(msg, false, queue_timeout);
        if (st && job_taken) job_taken();
    } else if (job_taken) {
        st = publisher_.publish_then_wait(msg, false, kPublishTimeout, job_taken);
    } else {
        st = publisher_.publish(msg, false, kPublishTimeout);
    }
    if (!st) {
        LOG_WARN(kLog, "upload job for " << m.file_name << " not acknowledged ("
                                         << st.error().describe() << "); it will be offered again");
        return false;
    }
    ++stats_.jobs_published;
    return true;
}

}  // namespace photorig::rig
