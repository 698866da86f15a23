#include "uploader/job_intake.h"

#include <unistd.h>

#include "core/log.h"
#include "protocol/wire.h"
#include "uploader/upload_events.h"

namespace photorig::uploader {
namespace {
constexpr const char* kLog = "uploader";
}

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

JobIntake::JobIntake(upload::Journal& journal, std::string spool_root)
    : journal_(journal), spool_root_(std::move(spool_root)) {}

bool JobIntake::path_in_spool(const std::string& path) const {
    std::string prefix = spool_root_ + "/";
    return path.compare(0, prefix.size(), prefix) == 0 && path.find("/../") == std::string::npos;
}

std::vector<JobIntake::Action> JobIntake::accept(const std::vector<std::string>& payloads) {
    std::vector<Action> actions;
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
            auto event = refused_event(job, "bad_request", "path is outside spool.dir");
            actions.push_back({Action::Kind::refuse, std::move(job), std::move(event), 0});
            continue;
        }
        jobs.push_back(std::move(job));
    }
    if (jobs.empty()) return actions;
    // Durable before anything else happens: a crash from here on resumes from the journal.
    auto recs = journal_.record_all(jobs);
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
            // it, or its done event never reached the broker: say it now, then release it.
            if (::access(job.path.c_str(), F_OK) == 0) {
                LOG_INFO(kLog,
                         "job " << job.job_id << " was already uploaded; releasing its spool file");
                auto event = job_event(job, "done");
                event.bytes_done = job.size;
                event.remote_ref = rec->remote_ref;
                actions.push_back({Action::Kind::repeat_done, job, std::move(event), 0});
            }
            continue;
        }
        if (rec->state == upload::JobState::failed_permanent) continue;
        actions.push_back({Action::Kind::schedule, rec->job, {}, rec->attempts});
    }
    return actions;
}

}  // namespace photorig::uploader
