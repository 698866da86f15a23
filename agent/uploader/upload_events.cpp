#include "uploader/upload_events.h"

namespace photorig::uploader {

protocol::UploadEvent job_event(const upload::Job& job, const char* type, int attempt) {
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

protocol::UploadEvent refused_event(const upload::Job& job, const std::string& code,
                                    const std::string& message) {
    protocol::UploadEvent ev = job_event(job, "failed");
    ev.error_code = code;
    ev.error_message = message;
    return ev;
}

protocol::UploadEvent failed_event(const upload::Job& job, int attempt, const Error& error,
                                   bool retrying, int64_t retry_in_ms) {
    protocol::UploadEvent ev = job_event(job, "failed", attempt);
    ev.error_code = error.code;
    ev.error_message = error.message;
    ev.retrying = retrying;
    ev.next_attempt_in_ms = retry_in_ms;
    return ev;
}

}  // namespace photorig::uploader
