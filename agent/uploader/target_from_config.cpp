#include "uploader/target_from_config.h"

#include <unistd.h>

#include <algorithm>
#include <memory>

#include "core/files.h"
#include "core/log.h"
#include "targets/gdrive_target.h"
#include "targets/s3_target.h"
#include "targets/webdav_target.h"
#include "upload/local_target.h"

namespace photorig::uploader {
namespace {
constexpr const char* kLog = "uploader";

Expected<std::string> secret_from(const std::string& key, const std::string& path) {
    auto secret = files::read_secret(path);
    if (!secret) return make_error("bad_config", key + ": " + secret.error().message);
    return secret;
}

Status check_template(const std::string& key, const std::string& tmpl) {
    if (auto st = upload::validate_template(tmpl); !st)
        return make_error("bad_config", key + ": " + st.error().message);
    return ok();
}

// Resume state lives in the journal row of the job; a failure to write it only costs the
// ability to resume (the upload itself goes on), so it is logged, not fatal.
void save_resume(upload::Journal& journal, const std::string& job_id, const std::string& state) {
    if (auto st = journal.set_resume_state(job_id, state); !st)
        LOG_WARN(kLog, "job " << job_id << ": resume state not saved: " << st.error().describe());
}

std::string load_resume(upload::Journal& journal, const std::string& job_id) {
    auto state = journal.resume_state(job_id);
    if (state) return *state;
    LOG_WARN(kLog, "job " << job_id << ": resume state not readable: " << state.error().describe());
    return std::string();
}

using TargetPtr = Expected<std::unique_ptr<upload::Target>>;

// What every target is built with besides its own section of the config.
struct Shared {
    const config::Config& config;
    upload::Journal& journal;
    const std::atomic<bool>* cancel;
    std::shared_ptr<BandwidthLimiter> limiter;  // one budget for the whole uplink
    std::shared_ptr<LinkGate> gate;             // one body on the uplink at a time
};

// Every target's options share the uplink budget, its gate and the shutdown flag.
template <typename Options>
void share_with(Options& o, const Shared& shared) {
    o.limiter = shared.limiter;
    o.gate = shared.gate;
    o.cancel = shared.cancel;
}

// The remote targets' connection settings (upload.stall_timeout_s, upload.ca_file).
template <typename Options>
void connect_with(Options& o, const Shared& shared) {
    o.low_speed_time_s = shared.config.upload.stall_timeout_s;
    o.ca_file = shared.config.upload.ca_file;
}

// Resumable targets keep their session (Drive upload URL, S3 upload id) in the journal.
template <typename Options>
void resume_through_journal(Options& o, upload::Journal& journal) {
    o.save_resume = [&journal](const std::string& id, const std::string& s) {
        save_resume(journal, id, s);
    };
    o.load_resume = [&journal](const std::string& id) { return load_resume(journal, id); };
}

TargetPtr make_local(const Shared& shared) {
    const auto& u = shared.config.upload;
    if (auto st = check_template("upload.local.path_template", u.local.path_template); !st)
        return st.error();
    if (auto st = files::make_dirs(u.local.dir); !st)
        return st.error().with_context("upload.local.dir");
    upload::LocalTarget::Options o;
    share_with(o, shared);
    o.path_template = u.local.path_template;
    return std::unique_ptr<upload::Target>(std::make_unique<upload::LocalTarget>(u.local.dir, o));
}

TargetPtr make_gdrive(const Shared& shared) {
    const auto& u = shared.config.upload;
    targets::GdriveTarget::Options o;
    o.client_id = u.gdrive.client_id;
    // Paths, not contents: the target reads them at every refresh, so a renewed refresh
    // token (the 7-day "Testing" expiry) takes effect without a restart.
    o.client_secret_file = u.gdrive.client_secret_file;
    o.refresh_token_file = u.gdrive.refresh_token_file;
    // Readable now, or the start fails naming the key (not the first upload, hours later).
    if (auto s = secret_from("upload.gdrive.client_secret_file", o.client_secret_file); !s)
        return s.error();
    if (auto s = secret_from("upload.gdrive.refresh_token_file", o.refresh_token_file); !s)
        return s.error();
    o.folder = u.gdrive.folder;
    o.token_url = u.gdrive.token_url;
    o.api_url = u.gdrive.api_url;
    o.rig_id = shared.config.rig_id;
    o.chunk_size = u.gdrive.chunk_size_bytes;
    share_with(o, shared);
    connect_with(o, shared);
    resume_through_journal(o, shared.journal);
    return std::unique_ptr<upload::Target>(std::make_unique<targets::GdriveTarget>(std::move(o)));
}

TargetPtr make_s3(const Shared& shared) {
    const auto& u = shared.config.upload;
    if (auto st = check_template("upload.s3.key_template", u.s3.key_template); !st)
        return st.error();
    targets::S3Target::Options o;
    o.endpoint = u.s3.endpoint;
    o.region = u.s3.region;
    o.bucket = u.s3.bucket;
    o.path_style = u.s3.path_style;
    auto key_id = secret_from("upload.s3.access_key_id_file", u.s3.access_key_id_file);
    if (!key_id) return key_id.error();
    auto secret = secret_from("upload.s3.secret_access_key_file", u.s3.secret_access_key_file);
    if (!secret) return secret.error();
    o.access_key = *key_id;
    o.secret_key = *secret;
    o.key_template = u.s3.key_template;
    o.multipart_threshold = u.s3.multipart_threshold_bytes;
    o.part_size = u.s3.part_size_bytes;
    share_with(o, shared);
    connect_with(o, shared);
    resume_through_journal(o, shared.journal);
    return std::unique_ptr<upload::Target>(std::make_unique<targets::S3Target>(std::move(o)));
}

TargetPtr make_webdav(const Shared& shared) {
    const auto& u = shared.config.upload;
    targets::WebdavTarget::Options o;
    o.url = u.webdav.url;
    o.username = u.webdav.username;
    if (!u.webdav.password_file.empty()) {
        auto pw = secret_from("upload.webdav.password_file", u.webdav.password_file);
        if (!pw) return pw.error();
        o.password = *pw;
    }
    share_with(o, shared);
    connect_with(o, shared);
    return std::unique_ptr<upload::Target>(std::make_unique<targets::WebdavTarget>(std::move(o)));
}

}  // namespace

Expected<std::unique_ptr<upload::Target>> target_from_config(const config::Config& config,
                                                             upload::Journal& journal,
                                                             const std::atomic<bool>* cancel) {
    const auto& u = config.upload;
    // One budget for the whole uplink, whatever the number of parallel uploads.
    Shared shared{config, journal, cancel, nullptr, nullptr};
    if (u.bandwidth_limit_bytes_per_s > 0)
        shared.limiter = std::make_shared<BandwidthLimiter>(u.bandwidth_limit_bytes_per_s);
    // Bodies one at a time, each with the whole link (see LinkGate); with one transfer at a
    // time there is nothing to order.
    if (u.concurrency > 1 && !u.parallel_bodies) shared.gate = std::make_shared<LinkGate>();
    if (u.target == "local") return make_local(shared);
    if (!u.ca_file.empty() && ::access(u.ca_file.c_str(), R_OK) != 0)
        return make_error("bad_config", "upload.ca_file: cannot read " + u.ca_file);
    if (u.target == "gdrive") return make_gdrive(shared);
    if (u.target == "s3") return make_s3(shared);
    if (u.target == "webdav") return make_webdav(shared);
    return make_error(
        "bad_config",
        "upload.target: must be one of local, gdrive, s3, webdav; got '" + u.target + "'");
}

}  // namespace photorig::uploader
