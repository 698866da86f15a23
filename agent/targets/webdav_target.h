// WebDAV upload target (RFC 4918): rclone serve webdav, nginx dav, Nextcloud, Apache...
//
// One upload, every step safe to repeat after a crash or a cut link:
//  1. PROPFIND (Depth 0) the final name. Present with the job's size, and the job's sha256
//     when that can be checked (server checksum, or a GET of files up to
//     verify_download_max) -> done, nothing is sent. Present with other content -> the name
//     gets "-<capture_id first 8>" before its extension (then "-2", "-3"... if that is
//     taken by something else too).
//  2. MKCOL every folder level of the template (201 and 405 both mean "there"; created
//     folders are cached per target). One MKCOL per folder at a time per target: uploads
//     that need a folder another thread is creating wait for that answer. Servers built on
//     Go's x/net/webdav (rclone) lock the path for the duration of each MKCOL/PUT and
//     answer 423 to a second request for the same path meanwhile; a 423 from someone else's
//     MKCOL is settled by a PROPFIND (a collection there now is as good as created).
//  3. PUT to ".<name>.part-<job_id>" in the destination folder: a cut PUT can only ever
//     leave that temporary name behind, and the retry overwrites it.
//  4. Verify the temporary file: PROPFIND getcontentlength == job size; a sha256 the server
//     reports (oc:checksums "SHA256:<hex>") must match; otherwise, for files up to
//     verify_download_max, GET it and hash it. A mismatch deletes the temp file.
//  5. MOVE it to the final name with "Overwrite: F" (412 = the name got taken meanwhile:
//     back to step 1's comparison).
// Errors: 401/403 "target_auth" (retryable; says to check the credentials), 507
// "disk_full", 5xx/408/423/429 and transport failures "target_unavailable", a missing spool file
// "source_missing", a spool file whose bytes no longer hash to the job's sha256
// "checksum_mismatch" (permanent); the server storing other bytes than were sent is
// "target_unavailable" (retryable). Messages never hold the password.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/bandwidth_limiter.h"
#include "targets/http.h"
#include "upload/target.h"

namespace photorig::targets {

class WebdavTarget : public upload::Target {
  public:
    struct Options {
        std::string url;  // collection URL, e.g. https://host/remote.php/dav/files/me/photos
        std::string username, password;
        std::string path_template = "{rig_id}/{batch}/{name}";
        uint64_t max_send_speed = 0;                // bytes/s, 0 = no cap
        std::shared_ptr<BandwidthLimiter> limiter;  // the link budget shared with other uploads
        std::shared_ptr<LinkGate> gate;  // one body on the link at a time; null = parallel bodies
        // Files up to this size are read back (GET + sha256) when the server reports no
        // checksum; larger ones are verified by size only. 0 = never read back.
        uint64_t verify_download_max = 16ull << 20;
        long connect_timeout_s = 10;
        long low_speed_time_s = 60;  // abandon a transfer under 1 byte/s for this long
        std::string ca_file;         // TLS: trust only this CA (PEM); "" = the system's store
        const std::atomic<bool>* cancel = nullptr;  // aborts a transfer in flight ("cancelled")
    };

    explicit WebdavTarget(Options options);
    ~WebdavTarget() override;

    Expected<upload::UploadResult> upload(const upload::Job& job,
                                          const upload::ProgressFn& progress) override;
    std::string name() const override { return "webdav"; }

    // What the server says about one resource (exposed for tests).
    struct Remote {
        bool exists = false;
        bool collection = false;
        uint64_t size = 0;
        bool has_size = false;
        std::string sha256;  // lower-case hex, when the server reports one
    };
    Expected<Remote> stat(const std::string& url) const;

  private:
    struct Checked {
        bool same = false;           // holds exactly the job's bytes (as far as checkable)
        bool verified_hash = false;  // by sha256, not only by size
    };
    Expected<Checked> compare(const std::string& url, const Remote& remote,
                              const upload::Job& job) const;
    // GET + hash; a body longer than max_bytes is cut off ("checksum_mismatch").
    Expected<std::string> remote_sha256(const std::string& url, uint64_t max_bytes) const;
    Status make_folders(const std::string& base, const std::vector<std::string>& folders);
    // One MKCOL: true = the collection is there, false = its parent is missing (409).
    Expected<bool> make_folder(const std::string& collection_url);
    void forget_folders();
    Status remove(const std::string& url) const;
    http::Request request(const std::string& method, const std::string& url) const;

    // The steps of upload() (see the top of this file), on where the job's file goes.
    struct Destination;
    // The template's folders and file name for the job ("bad_template" for "." or "..").
    Expected<Destination> destination(const upload::Job& job) const;
    // Step 1: the first name candidate that is free (same = false) or already holds the
    // job's bytes; dest.final_url is set to it.
    Expected<Checked> find_name(const upload::Job& job, Destination& dest) const;
    // Step 3: PUT to the temporary name, holding `turn` of the link's gate; the bytes sent.
    Expected<uint64_t> put_temp(const upload::Job& job, const std::vector<std::string>& folders,
                                const std::string& temp_url, const upload::ProgressFn& progress,
                                LinkGate::Turn& turn);
    // Step 4: the temporary file holds the job's bytes, else it is deleted and an error
    // returned.
    Expected<Checked> verify_temp(const upload::Job& job, const std::string& temp_url) const;
    // Step 5: MOVE to dest.final_url, or the next free name when that got taken.
    Expected<upload::UploadResult> move_into_place(const upload::Job& job, Destination& dest,
                                                   const std::string& temp_url, uint64_t bytes_sent,
                                                   const Checked& verified) const;

    Options opt_;
    std::string base_;  // url without trailing '/'
    std::mutex folders_mutex_;
    std::condition_variable folder_settled_;   // a MKCOL in flight got its answer
    std::set<std::string> folders_;            // collection URLs known to exist
    std::set<std::string> folders_in_flight_;  // collection URLs some thread is MKCOLing now
};

}  // namespace photorig::targets
