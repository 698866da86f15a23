#include "targets/webdav_target.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/text.h"
#include "targets/http.h"
#include "targets/remote_path.h"

namespace photorig::targets {
namespace {

const char* kComponent = "webdav";
// MKCOLs answered 423 (another request holds the path) asked again after 25, 50, .. 400 ms.
constexpr int kLockedRetries = 5;

using text::lower;

// Minimal XML scanning (no regex: GCC 12's <regex> trips -Wmaybe-uninitialized under the
// sanitizers). A tag's local name drops any namespace prefix ("D:getcontentlength").
struct Tag {
    std::string local;  // lower-case
    bool closing = false, self_closing = false;
    size_t end = 0;  // index after '>'
};

bool next_tag(const std::string& xml, size_t from, size_t* at, Tag* tag) {
    for (size_t lt = xml.find('<', from); lt != std::string::npos; lt = xml.find('<', lt + 1)) {
        size_t gt = xml.find('>', lt);
        if (gt == std::string::npos) return false;
        size_t i = lt + 1;
        tag->closing = i < gt && xml[i] == '/';
        if (tag->closing) ++i;
        if (i < gt && (xml[i] == '?' || xml[i] == '!')) continue;
        size_t name_end = i;
        while (name_end < gt && !std::isspace(static_cast<unsigned char>(xml[name_end])) &&
               xml[name_end] != '/')
            ++name_end;
        std::string name = xml.substr(i, name_end - i);
        auto colon = name.find(':');
        tag->local = lower(colon == std::string::npos ? name : name.substr(colon + 1));
        tag->self_closing = gt > lt && xml[gt - 1] == '/';
        tag->end = gt + 1;
        *at = lt;
        return true;
    }
    return false;
}

// The text of the first element with this local name, or nullopt.
std::optional<std::string> xml_element(const std::string& xml, const std::string& local) {
    size_t pos = 0, at = 0;
    Tag tag;
    while (next_tag(xml, pos, &at, &tag)) {
        pos = tag.end;
        if (tag.closing || tag.local != local) continue;
        if (tag.self_closing) return std::string();
        size_t lt = xml.find('<', tag.end);
        return xml.substr(tag.end, (lt == std::string::npos ? xml.size() : lt) - tag.end);
    }
    return std::nullopt;
}

bool xml_has_collection(const std::string& xml) {
    size_t pos = 0, at = 0;
    Tag tag;
    while (next_tag(xml, pos, &at, &tag)) {
        pos = tag.end;
        if (!tag.closing && tag.local == "collection") return true;
    }
    return false;
}

// "SHA1:ab.. MD5:cd.. SHA256:ef.." (ownCloud/Nextcloud oc:checksums) -> the sha256, if any.
std::string sha256_from_checksums(const std::string& text) {
    const std::string t = lower(text);
    for (const char* label : {"sha256:", "sha-256:"}) {
        auto p = t.find(label);
        if (p == std::string::npos) continue;
        p += std::strlen(label);
        if (p + 64 > t.size()) continue;
        std::string hex = t.substr(p, 64);
        if (hex.find_first_not_of("0123456789abcdef") == std::string::npos) return hex;
    }
    return std::string();
}

Error status_error(long status, const std::string& what) {
    std::string s = what + ": HTTP " + std::to_string(status);
    if (status == 401 || status == 403)
        return make_error("target_auth",
                          s + " (the WebDAV server refused the credentials or the path: check "
                              "upload.webdav.username and password_file)");
    if (status == 507) return make_error("disk_full", s + " (the WebDAV server has no space left)");
    // 423: a lock still held, e.g. by the server's handler of a PUT whose link was cut.
    if (http::is_retryable_status(status) || status == 423)
        return make_error("target_unavailable", s);
    return make_error("io_error", s);
}

// "name.jpg" + "-ab12cd34" -> "name-ab12cd34.jpg" (a leading dot is not an extension).
std::string with_suffix(const std::string& name, const std::string& suffix) {
    auto dot = name.rfind('.');
    if (dot == std::string::npos || dot == 0) return name + suffix;
    return name.substr(0, dot) + suffix + name.substr(dot);
}

const char* kPropfindBody =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<D:propfind xmlns:D=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\"><D:prop>"
    "<D:resourcetype/><D:getcontentlength/><oc:checksums/>"
    "</D:prop></D:propfind>";

}  // namespace

// Every WebDAV request: the target's credentials, timeouts and cancel flag on one method + URL.
http::Request WebdavTarget::request(const std::string& method, const std::string& url) const {
    http::Request r = http::request_for(opt_, method, url);
    r.basic_user = opt_.username;
    r.basic_password = opt_.password;
    return r;
}

WebdavTarget::WebdavTarget(Options options) : opt_(std::move(options)) {
    base_ = opt_.url;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

WebdavTarget::~WebdavTarget() = default;

Expected<WebdavTarget::Remote> WebdavTarget::stat(const std::string& url) const {
    http::Request r = request("PROPFIND", url);
    r.headers = {"Depth: 0", "Content-Type: application/xml; charset=utf-8"};
    r.body = kPropfindBody;
    auto resp = http::perform(r);
    if (!resp) return resp.error();
    Remote out;
    if (resp->status == 404) return out;
    if (resp->status != 207 && resp->status != 200)
        return status_error(resp->status, "PROPFIND " + http::redact_url(url));
    out.exists = true;
    out.collection = xml_has_collection(resp->body);
    if (auto len = xml_element(resp->body, "getcontentlength")) {
        try {
            out.size = std::stoull(*len);
            out.has_size = true;
        } catch (...) {
        }
    }
    if (auto sums = xml_element(resp->body, "checksums")) out.sha256 = sha256_from_checksums(*sums);
    if (out.sha256.empty())
        if (auto sum = xml_element(resp->body, "checksum"))
            out.sha256 = sha256_from_checksums(*sum);
    return out;
}

Expected<std::string> WebdavTarget::remote_sha256(const std::string& url,
                                                  uint64_t max_bytes) const {
    http::Request r = request("GET", url);
    Sha256 hash;
    uint64_t got = 0;
    r.body_sink = [&](const char* data, size_t len) {
        got += len;
        if (got > max_bytes) return false;  // longer than what we sent: no need to read on
        hash.update(data, len);
        return true;
    };
    auto resp = http::perform(r);
    if (!resp && got > max_bytes)
        return make_error("checksum_mismatch", "GET " + http::redact_url(url) +
                                                   ": the server sends more than the " +
                                                   std::to_string(max_bytes) + " bytes stored");
    if (!resp) return resp.error();
    if (resp->status != 200) return status_error(resp->status, "GET " + http::redact_url(url));
    return hash.hex_digest();
}

Expected<WebdavTarget::Checked> WebdavTarget::compare(const std::string& url, const Remote& remote,
                                                      const upload::Job& job) const {
    Checked c;
    if (!remote.exists || remote.collection) return c;
    if (remote.has_size && remote.size != job.size) return c;
    if (!remote.sha256.empty()) {
        c.same = remote.sha256 == lower(job.sha256);
        c.verified_hash = c.same;
        return c;
    }
    if (job.size <= opt_.verify_download_max && !job.sha256.empty()) {
        auto sha = remote_sha256(url, job.size);
        if (!sha && sha.error().code == "checksum_mismatch") return c;  // other, longer bytes
        if (!sha) return sha.error();
        c.same = *sha == lower(job.sha256);
        c.verified_hash = c.same;
        return c;
    }
    // Too big to read back and no checksum from the server: the size is all we can check.
    c.same = remote.has_size;
    return c;
}

Expected<bool> WebdavTarget::make_folder(const std::string& coll) {
    const http::Request r = request("MKCOL", coll);
    for (int attempt = 0;; ++attempt) {
        auto resp = http::perform(r);
        if (!resp) return resp.error();
        // 201 created; 405 "already there" (RFC 4918); rclone answers 201 for both. Some
        // servers answer 301 to a collection URL without the slash: ours has one.
        if (resp->status == 201 || resp->status == 405 || resp->status == 200 ||
            resp->status == 204)
            return true;
        if (resp->status == 409) return false;  // RFC 4918: the parent is missing
        if (resp->status == 423) {
            // Another client's request holds the path (x/net/webdav, behind rclone serve,
            // locks it for as long as one request runs). What matters is whether the
            // collection exists now. If the other MKCOL is still at work, ask again shortly:
            // failing the job would cost it a backoff and count towards an outage.
            auto there = stat(coll);
            if (there && there->exists && there->collection) return true;
            if (attempt < kLockedRetries) {
                if (!clock::sleep_unless(opt_.cancel, 25 << attempt))
                    return make_error("cancelled",
                                      "MKCOL " + http::redact_url(coll) + ": cancelled");
                continue;
            }
        }
        return status_error(resp->status, "MKCOL " + http::redact_url(coll));
    }
}

Status WebdavTarget::make_folders(const std::string& base,
                                  const std::vector<std::string>& folders) {
    for (bool cache_was_stale = false;;) {
        std::string url = base;
        bool parent_missing = false;
        for (const auto& f : folders) {
            url = join_remote(url, http::url_encode(f));
            const std::string coll = url + "/";
            {
                // Never two MKCOLs of one folder from this target at once: the second would
                // meet the server's per-request lock of the first (423 on rclone).
                std::unique_lock<std::mutex> lock(folders_mutex_);
                folder_settled_.wait(lock, [&] { return folders_in_flight_.count(coll) == 0; });
                if (folders_.count(coll)) continue;
                folders_in_flight_.insert(coll);
            }
            auto made = make_folder(coll);
            {
                std::lock_guard<std::mutex> lock(folders_mutex_);
                folders_in_flight_.erase(coll);
                if (made && *made) folders_.insert(coll);
            }
            folder_settled_.notify_all();
            if (!made) return made.error();
            if (!*made) {
                parent_missing = true;
                break;
            }
        }
        if (!parent_missing) return ok();
        // A parent we had cached was deleted on the server: without forgetting it, every
        // later attempt would skip its MKCOL and fail the same way.
        if (cache_was_stale)
            return make_error(
                "io_error", "MKCOL " + http::redact_url(url + "/") + ": HTTP 409 (parent missing)");
        cache_was_stale = true;
        forget_folders();
    }
}

void WebdavTarget::forget_folders() {
    std::lock_guard<std::mutex> lock(folders_mutex_);
    folders_.clear();
}

Status WebdavTarget::remove(const std::string& url) const {
    http::Request r = request("DELETE", url);
    r.cancel = nullptr;  // a clean-up: runs even when the upload was cancelled
    auto resp = http::perform(r);
    if (!resp) return resp.error();
    if (resp->status >= 300 && resp->status != 404)
        return status_error(resp->status, "DELETE " + http::redact_url(url));
    return ok();
}

namespace {
// The i-th name tried for a file: its own, then "-<capture_id first 8>" before the
// extension, then "-2", "-3"... after that.
std::string name_candidate(const std::string& file_name, const std::string& capture_id, int i) {
    const std::string suffix = "-" + capture_id.substr(0, 8);
    if (i == 0) return file_name;
    if (i == 1 || capture_id.empty())
        return with_suffix(file_name, i == 1 ? suffix : "-" + std::to_string(i));
    return with_suffix(file_name, suffix + "-" + std::to_string(i));
}
}  // namespace

struct WebdavTarget::Destination {
    std::vector<std::string> folders;  // the template's folder names under base_
    std::string folder_url;            // base_ and the folders, percent-encoded
    std::string file_name;             // the template's last segment
    int index = 0;                     // of the name candidate in use
    std::string final_url;             // folder_url and that candidate

    void use_candidate(int i, const std::string& capture_id) {
        index = i;
        final_url =
            join_remote(folder_url, http::url_encode(name_candidate(file_name, capture_id, i)));
    }
};

Expected<upload::UploadResult> WebdavTarget::upload(const upload::Job& job,
                                                    const upload::ProgressFn& progress) {
    const std::string what = "webdav upload " + job.job_id;
    if (base_.empty()) return make_error("bad_config", what + ": upload.webdav.url is empty");

    if (auto st = upload::check_source_size(job, what); !st) return st.error();

    auto dest = destination(job);
    if (!dest) return dest.error();

    // 1. Is it there already (an earlier attempt that finished, or someone else's file)?
    auto existing = find_name(job, *dest);
    if (!existing) return existing.error();
    if (existing->same) {
        if (progress) progress(job.size, job.size);
        return upload::UploadResult{http::redact_url(dest->final_url), 0,
                                    existing->verified_hash ? lower(job.sha256) : ""};
    }

    // 2. Folders.
    auto folders = make_folders(base_, dest->folders);
    if (!folders) return folders.error().with_context(what);

    // 3. PUT under a temporary name next to the final one.
    const std::string temp_url = join_remote(
        dest->folder_url, http::url_encode("." + dest->file_name + ".part-" + job.job_id));
    LinkGate::Turn turn(opt_.gate.get());
    auto bytes_sent = put_temp(job, dest->folders, temp_url, progress, turn);
    if (!bytes_sent) return bytes_sent.error();
    turn.release();  // the body is there: the next transfer's may start

    // 4. Verify the temporary file before it gets its real name.
    auto verified = verify_temp(job, temp_url);
    if (!verified) return verified.error();

    // 5. MOVE into place without ever overwriting.
    return move_into_place(job, *dest, temp_url, *bytes_sent, *verified);
}

Expected<WebdavTarget::Destination> WebdavTarget::destination(const upload::Job& job) const {
    const std::string what = "webdav upload " + job.job_id;
    auto rel = upload::expand_template(opt_.path_template, job);
    if (!rel) return rel.error().with_context(what);
    Destination dest;
    size_t start = 0;
    const std::string& p = *rel;
    while (start <= p.size()) {
        size_t slash = p.find('/', start);
        std::string seg =
            p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (!seg.empty()) {
            if (seg == "." || seg == "..")
                return make_error("bad_template", what + ": the path template gave '" + p + "'");
            dest.folders.push_back(seg);
        }
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    if (dest.folders.empty())
        return make_error("bad_template", what + ": the path template gave an empty name");
    dest.file_name = dest.folders.back();
    dest.folders.pop_back();
    dest.folder_url = base_;
    for (const auto& f : dest.folders)
        dest.folder_url = join_remote(dest.folder_url, http::url_encode(f));
    return dest;
}

Expected<WebdavTarget::Checked> WebdavTarget::find_name(const upload::Job& job,
                                                        Destination& dest) const {
    const std::string what = "webdav upload " + job.job_id;
    for (int i = 0;; ++i) {
        if (i > 20) return make_error("io_error", what + ": no free name for " + dest.file_name);
        dest.use_candidate(i, job.capture_id);
        auto remote = stat(dest.final_url);
        if (!remote) return remote.error().with_context(what);
        if (!remote->exists) return Checked{};
        auto same = compare(dest.final_url, *remote, job);
        if (!same) return same.error().with_context(what);
        if (same->same) {
            LOG_INFO(kComponent,
                     "job " << job.job_id << " already at " << http::redact_url(dest.final_url));
            return *same;
        }
        LOG_INFO(kComponent, "job " << job.job_id << ": " << http::redact_url(dest.final_url)
                                    << " holds other content; trying another name");
    }
}

Expected<uint64_t> WebdavTarget::put_temp(const upload::Job& job,
                                          const std::vector<std::string>& folders,
                                          const std::string& temp_url,
                                          const upload::ProgressFn& progress,
                                          LinkGate::Turn& turn) {
    const std::string what = "webdav upload " + job.job_id;
    http::Request put = request("PUT", temp_url);
    put.headers = {"Content-Type: " +
                   (job.mime.empty() ? std::string("application/octet-stream") : job.mime)};
    put.body_file = job.path;
    put.body_length = job.size;
    put.max_send_speed = opt_.max_send_speed;
    put.limiter = opt_.limiter.get();
    put.link_turn = &turn;
    if (progress) put.progress = [&](uint64_t sent, uint64_t total) { progress(sent, total); };
    uint64_t bytes_sent = 0;
    for (int attempt = 0;; ++attempt) {
        auto resp = http::perform(put);
        if (!resp) return resp.error().with_context(what);
        bytes_sent += resp->bytes_sent;
        if (resp->status == 200 || resp->status == 201 || resp->status == 204) return bytes_sent;
        if ((resp->status == 404 || resp->status == 409) && attempt == 0) {
            // The folder went away since we cached it (rclone answers 404, RFC 4918 409).
            forget_folders();
            auto again = make_folders(base_, folders);
            if (!again) return again.error().with_context(what);
            continue;
        }
        return status_error(resp->status, what + ": PUT " + http::redact_url(temp_url));
    }
}

Expected<WebdavTarget::Checked> WebdavTarget::verify_temp(const upload::Job& job,
                                                          const std::string& temp_url) const {
    const std::string what = "webdav upload " + job.job_id;
    auto temp = stat(temp_url);
    if (!temp) return temp.error().with_context(what);
    if (!temp->exists)
        return make_error("target_unavailable", what + ": the uploaded file vanished before MOVE");
    auto same = compare(temp_url, *temp, job);
    if (!same) return same.error().with_context(what);
    if (!same->same) {
        (void)remove(temp_url);
        auto local = Sha256::of_file(job.path);
        if (local && *local != lower(job.sha256))
            return make_error("checksum_mismatch",
                              what + ": " + job.path + " no longer hashes to the job's sha256");
        return make_error("target_unavailable",
                          what + ": the server holds other bytes than were sent (" +
                              std::to_string(temp->size) + " of " + std::to_string(job.size) +
                              " bytes); will retry");
    }
    return *same;
}

Expected<upload::UploadResult> WebdavTarget::move_into_place(const upload::Job& job,
                                                             Destination& dest,
                                                             const std::string& temp_url,
                                                             uint64_t bytes_sent,
                                                             const Checked& verified) const {
    const std::string what = "webdav upload " + job.job_id;
    for (int moves = 0;; ++moves) {
        if (moves > 20) return make_error("io_error", what + ": MOVE keeps failing with 412");
        http::Request mv = request("MOVE", temp_url);
        mv.headers = {"Destination: " + http::redact_url(dest.final_url), "Overwrite: F"};
        auto resp = http::perform(mv);
        if (!resp) return resp.error().with_context(what);
        if (resp->status == 201 || resp->status == 204 || resp->status == 200) break;
        if (resp->status != 412)
            return status_error(resp->status,
                                what + ": MOVE to " + http::redact_url(dest.final_url));
        // Taken since step 1: ours (a parallel duplicate) or another file.
        auto remote = stat(dest.final_url);
        if (!remote) return remote.error().with_context(what);
        if (remote->exists) {
            auto cmp = compare(dest.final_url, *remote, job);
            if (!cmp) return cmp.error().with_context(what);
            if (cmp->same) {
                (void)remove(temp_url);
                return upload::UploadResult{http::redact_url(dest.final_url), bytes_sent,
                                            cmp->verified_hash ? lower(job.sha256) : ""};
            }
            if (dest.index + 1 > 20)
                return make_error("io_error", what + ": no free name for " + dest.file_name);
            dest.use_candidate(dest.index + 1, job.capture_id);
        }
    }
    LOG_DEBUG(kComponent,
              "job " << job.job_id << " stored at " << http::redact_url(dest.final_url));
    return upload::UploadResult{http::redact_url(dest.final_url), bytes_sent,
                                verified.verified_hash ? lower(job.sha256) : ""};
}

}  // namespace photorig::targets
