// The upload events the uploader publishes (docs/interface.md, <base>/upload/events), built
// in one place from the job they report on.
#pragma once

#include <string>

#include "core/expected.h"
#include "protocol/types.h"
#include "upload/job.h"

namespace photorig::uploader {

// An event of `type` (started | progress | done | failed) about `job`; `attempt` 0 leaves
// the attempt out of the payload.
protocol::UploadEvent job_event(const upload::Job& job, const char* type, int attempt = 0);

// "failed" for a job that is not uploaded at all (refused before it reached the journal).
protocol::UploadEvent refused_event(const upload::Job& job, const std::string& code,
                                    const std::string& message);

// "failed" after an attempt; `retry_in_ms` is announced when the error is not permanent.
protocol::UploadEvent failed_event(const upload::Job& job, int attempt, const Error& error,
                                   bool retrying, int64_t retry_in_ms);

}  // namespace photorig::uploader
