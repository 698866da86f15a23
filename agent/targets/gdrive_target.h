// Google Drive upload target (Drive API v3, OAuth 2.0 refresh token, resumable uploads).
//
// Files go to <folder>/<rig_id>/<batch>/<remote_name>, where <folder> is a folder name under
// "My Drive" (found or created) or "id:<folderId>" (an existing folder, e.g. in a shared
// drive). Folders are found with files.list or created once, then cached (thread-safe).
//
// One upload, every step safe to repeat after a crash, a cut link or a rate limit:
//  0. Read the spool file once: it must hash to job.sha256 (else "checksum_mismatch",
//     permanent, nothing sent); its MD5 is kept to check Drive's md5Checksum at the end.
//  1. A saved session (load_resume) is asked where it stands (empty PUT, "Content-Range:
//     bytes */N"): finished -> verify, done; 308 -> carry on from the confirmed byte;
//     404/410 (expired, about a week) -> forgotten, go on with step 2.
//  2. files.list q="appProperties has { key='job_id' and value='<job_id>' }": a file with the
//     job's size and checksums -> done, nothing sent (a crash between the last chunk and the
//     journal update never makes a second copy). One with other bytes is a broken copy of
//     ours: moved to the trash.
//  3. Resumable session: POST /upload/drive/v3/files?uploadType=resumable with metadata
//     {name, parents, mimeType, appProperties {job_id, sha256, capture_id}}; the session URI
//     goes to save_resume BEFORE any byte is sent.
//  4. PUT chunks of chunk_size (a multiple of 256 KiB, the last one shorter) streamed from
//     the file (memory does not grow with the file). After any failure the session is asked
//     where it stands and the upload continues from the byte Drive confirms (Range header),
//     so at most the unconfirmed part of one chunk is sent twice. (libcurl by itself re-sends
//     a whole request when a reused connection dies; such a rewind is stopped at once and the
//     session asked instead.)
//  5. Verify the file resource Drive returns: size == job.size, md5Checksum == the file's
//     MD5, sha256Checksum (when reported) == job.sha256. remote_ref = the Drive file id.
//     Other bytes on Drive: the copy goes to the trash; "checksum_mismatch" if the spool file
//     changed meanwhile, else "target_unavailable" (damaged in transit: retry).
// Memory stays flat: the hashing pass and the chunks stream from the file (1 MiB buffers).
//
// Retries inside one upload() call: 403 userRateLimitExceeded/rateLimitExceeded, 429, 408,
// 5xx and transport failures wait (exponential backoff with jitter, at least Retry-After)
// and try again; after max_retries_per_call consecutive failures without progress the call
// ends with "target_unavailable" and the uploader reschedules the job. 401 refreshes the
// access token once and retries (tokens are also refreshed token_refresh_margin_s before
// they expire).
//
// Errors: "target_auth" (refresh token expired/revoked -- invalid_grant, with the 7-day
// "Testing" app hint --, client rejected, 401 with a fresh token, 403 permission errors),
// "disk_full" (storageQuotaExceeded), "bad_config" (missing options, id:<folder> not found),
// "target_unavailable" (retryable), "source_missing", "checksum_mismatch" (the spool file no
// longer hashes to job.sha256), "bad_request" (job without sha256), "io_error",
// "cancelled". Messages never hold the client secret, the refresh token or access tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/bandwidth_limiter.h"
#include "upload/target.h"

namespace photorig::targets {

class GdriveTarget : public upload::Target {
  public:
    struct Options {
        std::string client_id;
        // Secrets: given directly, or as files (files::read_secret: 0600, trailing newline
        // dropped) that are read again at every token refresh, so a replaced refresh token
        // takes effect without a restart. A file wins over a value.
        std::string client_secret, client_secret_file;
        std::string refresh_token, refresh_token_file;
        std::string folder = "photorig";  // root folder name under My Drive, or "id:<folderId>"
        std::string token_url = "https://oauth2.googleapis.com/token";
        std::string api_url =
            "https://www.googleapis.com";  // base of /drive/v3 and /upload/drive/v3
        std::string rig_id;                // the second folder level; empty = the job's rig_id
        uint64_t chunk_size = 8ull << 20;  // rounded down to a multiple of 256 KiB (min 256 KiB)
        uint64_t max_send_speed = 0;       // bytes/s, 0 = no cap
        std::shared_ptr<BandwidthLimiter> limiter;  // the link budget shared with other uploads
        std::shared_ptr<LinkGate> gate;  // one body on the link at a time; null = parallel bodies
        long connect_timeout_s = 10;
        long low_speed_time_s = 60;    // abandon a transfer under 1 byte/s for this long
        std::string ca_file;           // TLS: trust only this CA (PEM); "" = the system's store
        int max_retries_per_call = 6;  // consecutive failed attempts without progress
        int64_t backoff_initial_ms = 1000;          // first wait; doubles per failure
        int64_t backoff_max_ms = 32000;             // cap of one computed wait
        int64_t retry_after_max_ms = 300000;        // a longer Retry-After ends the call instead
        int64_t token_refresh_margin_s = 60;        // refresh this long before the token expires
        const std::atomic<bool>* cancel = nullptr;  // aborts transfers and waits ("cancelled")
        // Resume across restarts (wire to Journal::set_resume_state / resume_state). The state
        // is opaque text (the session URI and what it belongs to); "" clears it.
        std::function<void(const std::string& job_id, const std::string& state)> save_resume;
        std::function<std::string(const std::string& job_id)> load_resume;
    };

    explicit GdriveTarget(Options options);
    ~GdriveTarget() override;

    Expected<upload::UploadResult> upload(const upload::Job& job,
                                          const upload::ProgressFn& progress) override;
    std::string name() const override { return "gdrive"; }

    // Exposed for tests and diagnostics.
    Expected<std::string> access_token();  // a valid token, refreshed when needed
    // The Drive folder id of <folder>/<rig>/<batch> (empty levels skipped), found or created.
    Expected<std::string> folder_id(const std::string& rig, const std::string& batch);
    // A string literal for the files.list q language: it's -> 'it\'s'.
    static std::string q_literal(const std::string& text);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace photorig::targets
