// Upload jobs as rig-uploader takes them off <base>/upload/jobs: parse_upload_job (what
// JobIntake::accept calls on each payload), the wire job mapped onto the upload module's Job,
// the spool check, the refusal event published for a job outside the spool, the events an
// upload publishes about it, and the remote path every target expands from the job's fields.
// Input: the payload.
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/wire.h"
#include "upload/target.h"
#include "uploader/job_intake.h"
#include "uploader/upload_events.h"

namespace {
using namespace photorig;

// The event must survive the trip through the wire (the agent and rigctl parse it).
void check_event(const protocol::UploadEvent& event) {
    std::string json = protocol::upload_event_json(event);
    auto back = protocol::parse_upload_event(json);
    PHOTORIG_FUZZ_CHECK(back.has_value());
    PHOTORIG_FUZZ_CHECK(back->job_id == event.job_id && back->type == event.type);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const std::string payload = in.rest();
    auto wire = protocol::parse_upload_job(payload);
    if (!wire) return 0;
    // What the agent published is what the uploader reads back.
    auto again = protocol::parse_upload_job(protocol::upload_job_json(*wire));
    PHOTORIG_FUZZ_CHECK(again.has_value() && again->job_id == wire->job_id &&
                        again->path == wire->path && again->size == wire->size);

    upload::Job job = uploader::to_upload_job(*wire);
    const std::string spool_root = "/var/spool/photorig";
    const std::string prefix = spool_root + "/";
    const bool in_spool = job.path.compare(0, prefix.size(), prefix) == 0 &&
                          job.path.find("/../") == std::string::npos;
    if (!in_spool)
        check_event(uploader::refused_event(job, "bad_request", "path is outside spool.dir"));
    check_event(uploader::job_event(job, "started", 1));
    check_event(uploader::job_event(job, "done", 1));
    check_event(
        uploader::failed_event(job, 2, make_error("target_unavailable", "HTTP 503"), true, 5000));
    for (const char* tmpl : {"{rig_id}/{batch}/{name}", "{date}/{capture_id}-{name}"}) {
        auto path = upload::expand_template(tmpl, job);
        if (!path) continue;
        // No empty, "." or ".." component: the path stays under the target's folder.
        const std::string framed = "/" + *path + "/";
        PHOTORIG_FUZZ_CHECK(!path->empty() && path->front() != '/');
        PHOTORIG_FUZZ_CHECK(framed.find("/../") == std::string::npos &&
                            framed.find("/./") == std::string::npos &&
                            framed.find("//") == std::string::npos);
    }
    return 0;
}
