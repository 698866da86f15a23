// The one place that turns `upload.target` and its config section into an upload::Target:
// local, gdrive, s3 or webdav. Secrets are read from their files here (0600-checked by
// files::read_secret; Drive's are read again at every token refresh). The resumable targets
// keep their resume state (Drive session URL, S3 upload id and parts) in the job journal,
// so an uploader killed mid-upload carries on from the byte the server confirmed.
#pragma once

#include <atomic>
#include <memory>

#include "config/config.h"
#include "core/expected.h"
#include "upload/journal.h"
#include "upload/target.h"

namespace photorig::uploader {

// Errors are "bad_config" and name the key (a bad template, an unreadable secret file).
// `journal` and `cancel` must outlive the target; `cancel` set aborts transfers in flight
// ("cancelled").
Expected<std::unique_ptr<upload::Target>> target_from_config(const config::Config& config,
                                                             upload::Journal& journal,
                                                             const std::atomic<bool>* cancel);

}  // namespace photorig::uploader
