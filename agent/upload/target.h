// Where photos go. A Target uploads one spooled file named by a Job and verifies it.
//
// Contract for every target:
//  - Idempotent: uploading a job whose file is already at the target (same size and
//    sha256) succeeds without sending it again (a job re-delivered after a crash).
//  - Never overwrites a different photo: a name taken by other content gets a suffix.
//  - The spool file must hash to job.sha256, else "checksum_mismatch" (permanent).
//  - Errors (Error::code): "source_missing" (spool file gone; permanent),
//    "checksum_mismatch" (permanent), "bad_template" / "invalid_name" (permanent),
//    "bad_request" (job lacks sha256...; permanent), "io_error", "disk_full",
//    "target_unavailable" (retryable), plus target-specific ones ("target_auth"...).
//  - upload() may be called from several threads at once on one Target.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/expected.h"
#include "upload/job.h"

namespace photorig::upload {

using ProgressFn = std::function<void(uint64_t bytes_done, uint64_t total)>;

struct UploadResult {
    std::string remote_ref;       // where it is now (path, URL, object key, file id)
    uint64_t bytes_sent = 0;      // 0 when it was already there
    std::string verified_sha256;  // the hash the target confirmed ("" if it cannot tell)
};

class Target {
  public:
    virtual ~Target();
    virtual Expected<UploadResult> upload(const upload::Job& job, const ProgressFn& progress) = 0;
    virtual std::string name() const = 0;
};

// Expands {rig_id}, {batch}, {name} (= job.remote_name), {capture_id} and {date}
// (YYYY-MM-DD UTC of job.captured_at_ms) into a relative path "a/b/c".
// Errors: "bad_template" for an unknown field, an unclosed '{', a stray '}', an absolute
// template, or a result with empty, "." or ".." components; "invalid_name" when a field's
// value is empty, ".", "..", or holds '/', '\\' or a control character (a hostile job).
Expected<std::string> expand_template(const std::string& tmpl, const upload::Job& job);
// Checks a template's syntax and fields without a job (for start-up config checks).
Status validate_template(const std::string& tmpl);

// The spool file the job names is there and has the job's size: else "source_missing"
// (gone), "io_error" (cannot stat) or "checksum_mismatch" (another size). `what` starts
// the message ("webdav upload <job id>").
Status check_source_size(const upload::Job& job, const std::string& what);

// True for errors that retrying cannot fix (see the contract above).
bool is_permanent_error(const Error& e);

}  // namespace photorig::upload
