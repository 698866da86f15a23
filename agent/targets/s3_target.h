// S3 upload target (AWS S3 and compatibles: MinIO, Ceph RGW, Garage, s3rver...), SigV4
// signed by targets::http.
//
// One upload, every step safe to repeat after a crash or a cut link:
//  0. Read the spool file once: its sha256 must be the job's (else "checksum_mismatch",
//     permanent, nothing sent), and its MD5 (and per-part sha256/MD5) are kept to sign
//     parts and to check the server's ETag afterwards.
//  1. HEAD the key. Present with x-amz-meta-sha256 == the job's sha256 -> done, nothing
//     sent. Present with other content -> key gets "-<capture_id first 8>" before its
//     extension (then "-2", "-3"...).
//  2a. Below multipart_threshold: one PUT with x-amz-content-sha256 = the file's sha256
//     (S3 then refuses a body that does not hash to it) and x-amz-meta-sha256,
//     x-amz-meta-job-id, x-amz-meta-capture-id (ids percent-encoded: S3 metadata is ASCII).
//  2b. From multipart_threshold up: CreateMultipartUpload, UploadPart for each part (each
//     with its own payload sha256), CompleteMultipartUpload. The upload id and the finished
//     parts go to save_resume after every step; a restart hands that state back through
//     load_resume and carries on (ListParts when the server has it, else the saved parts).
//     A permanent failure (source gone or changed) aborts the multipart upload.
//  3. Verify: HEAD -> content-length == size, x-amz-meta-sha256 == job sha256, and the
//     ETag equals the MD5 we computed (single PUT), or the multipart form
//     md5(part md5s)-N (AWS) or the whole MD5 (s3rver and some others).
// Errors: SignatureDoesNotMatch / InvalidAccessKeyId / AccessDenied / RequestTimeTooSkewed
// "target_auth" (message names the S3 code and what to check); NoSuchBucket "bad_config";
// 5xx/408/429/SlowDown and transport failures "target_unavailable". Note: S3 answers HEAD
// of a missing key with 403 when the key lacks s3:ListBucket: grant it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/bandwidth_limiter.h"
#include "upload/target.h"

namespace photorig::targets {

class S3Target : public upload::Target {
  public:
    struct Options {
        std::string endpoint = "https://s3.amazonaws.com";  // scheme://host[:port]
        std::string region = "us-east-1";
        std::string bucket;
        bool path_style = false;  // endpoint/bucket/key, else bucket.endpoint-host/key
        std::string access_key, secret_key;
        std::string key_template = "{rig_id}/{batch}/{name}";
        uint64_t multipart_threshold = 16ull << 20;
        uint64_t part_size = 8ull << 20;            // >= 5 MiB on AWS (but the last part)
        uint64_t max_send_speed = 0;                // bytes/s, 0 = no cap
        std::shared_ptr<BandwidthLimiter> limiter;  // the link budget shared with other uploads
        std::shared_ptr<LinkGate> gate;  // one body on the link at a time; null = parallel bodies
        long connect_timeout_s = 10;
        long low_speed_time_s = 60;  // abandon a transfer under 1 byte/s for this long
        std::string ca_file;         // TLS: trust only this CA (PEM); "" = the system's store
        const std::atomic<bool>* cancel = nullptr;  // aborts a transfer in flight ("cancelled")
        // Resume of multipart uploads across restarts (wire to Journal::resume_state and
        // Journal::set_resume_state). The state is opaque text; "" clears it.
        std::function<std::string(const std::string& job_id)> load_resume;
        std::function<void(const std::string& job_id, const std::string& state)> save_resume;
    };

    explicit S3Target(Options options);
    ~S3Target() override;

    Expected<upload::UploadResult> upload(const upload::Job& job,
                                          const upload::ProgressFn& progress) override;
    // The same with the resume state passed in and out explicitly (overrides the options'
    // hooks for this call).
    Expected<upload::UploadResult> upload(
        const upload::Job& job, const upload::ProgressFn& progress, const std::string& resume,
        const std::function<void(const std::string& state)>& save_resume);
    std::string name() const override { return "s3"; }

    std::string object_url(const std::string& key) const;  // exposed for tests

    struct Digests {  // of the spool file, one read
        std::string sha256, md5;
        std::vector<std::string> part_sha256, part_md5;
    };

  private:
    struct Head {
        bool exists = false;
        uint64_t size = 0;
        std::string etag, meta_sha256;
    };
    Expected<Head> head(const std::string& key) const;
    // The object `h` describes holds the job's bytes: size, and x-amz-meta-sha256 or an ETag
    // that is the MD5 of what we would send.
    static bool holds_job(const Head& h, const upload::Job& job, const Digests& d, bool multipart);
    struct KeyChoice {
        std::string key;
        bool holds_job = false;  // the key already holds the job's bytes, as `head` says
        Head head;
    };
    // Step 1: the template's key, or the first suffixed one that is free or already holds
    // the job's bytes.
    Expected<KeyChoice> choose_key(const upload::Job& job, const Digests& d, bool multipart) const;
    Expected<upload::UploadResult> put_single(const upload::Job& job, const std::string& key,
                                              const Digests& d, const upload::ProgressFn& progress);
    using SaveResume = std::function<void(const std::string& state)>;
    Expected<upload::UploadResult> put_multipart(const upload::Job& job, const std::string& key,
                                                 const Digests& d,
                                                 const upload::ProgressFn& progress,
                                                 const std::string& upload_id_in,
                                                 std::vector<std::pair<int, std::string>> parts_in,
                                                 const SaveResume& save);

    // The steps of put_multipart, on one multipart upload as far as it got (s3_target.cpp).
    struct Multipart;
    // Where a step ended when it did not fail: upload_gone = the server forgot the upload id
    // (NoSuchUpload); put_multipart then starts one fresh upload.
    enum class Step { done, upload_gone };
    // A resumed upload: the saved parts that match this file, replaced by the server's list
    // when it has ListParts. An upload the server forgot clears mp.upload_id.
    Status find_stored_parts(const upload::Job& job, const Digests& d,
                             const std::vector<std::pair<int, std::string>>& saved,
                             Multipart& mp) const;
    // CreateMultipartUpload, with the object's metadata: a new upload id, no parts yet.
    Status create_multipart(const upload::Job& job, const Digests& d, Multipart& mp) const;
    // UploadPart for every part the server does not hold yet; the state is saved after each.
    Expected<Step> send_parts(const upload::Job& job, const Digests& d,
                              const upload::ProgressFn& progress, bool first_round,
                              const SaveResume& save, Multipart& mp) const;
    // UploadPart n; `done_bytes` were sent before it (for progress).
    Expected<Step> send_part(const upload::Job& job, const Digests& d, int n, uint64_t done_bytes,
                             const upload::ProgressFn& progress, bool first_round,
                             const SaveResume& save, Multipart& mp) const;
    // CompleteMultipartUpload. NoSuchUpload with the object in place is done: an earlier
    // attempt completed it and its answer was lost.
    Expected<Step> complete_multipart(const upload::Job& job, const Digests& d, bool first_round,
                                      Multipart& mp) const;
    // The spool file still holds the job's bytes. Gone or changed under us is permanent: the
    // upload is aborted, its saved state cleared, and the error returned.
    Status source_intact(const upload::Job& job, const Digests& d, const Multipart& mp,
                         const SaveResume& save) const;
    void save_resume_state(const upload::Job& job, const Multipart& mp,
                           const SaveResume& save) const;
    Expected<upload::UploadResult> verify(const upload::Job& job, const std::string& key,
                                          const Digests& d, bool multipart,
                                          uint64_t bytes_sent) const;
    void abort_multipart(const std::string& key, const std::string& upload_id) const;

    Options opt_;
    std::string scheme_, host_;  // from the endpoint
};

}  // namespace photorig::targets
