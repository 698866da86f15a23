#include "targets/gdrive_target.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/sha256.h"
#include "core/text.h"
#include "targets/gdrive_api.h"
#include "targets/gdrive_client.h"
#include "targets/http.h"

namespace photorig::targets {
namespace {

using namespace gdrive;

const char* kComponent = "gdrive";
constexpr uint64_t kUnit = 256 * 1024;  // Drive's chunk granularity
const char* kFolderMime = "application/vnd.google-apps.folder";
const char* kFileFields = "id,name,size,md5Checksum,sha256Checksum,appProperties,trashed";

using text::lower;

// While alive, sets `abort` whenever `cancel` is set (checked every 50 ms), so a transfer
// that only watches `abort` notices the caller's cancel flag too.
class CancelMirror {
  public:
    CancelMirror(const std::atomic<bool>* cancel, std::atomic<bool>& abort) {
        if (!cancel) return;
        watcher_ = std::thread([this, cancel, &abort] {
            while (running_.load()) {
                if (cancel->load(std::memory_order_relaxed)) abort.store(true);
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~CancelMirror() {
        running_.store(false);
        if (watcher_.joinable()) watcher_.join();
    }

  private:
    std::atomic<bool> running_{true};
    std::thread watcher_;
};

}  // namespace

// ------------------------------------------------------------------------------------------

struct GdriveTarget::Impl {
    // Where a resumable session stands.
    struct SessionState {
        enum Kind { in_progress, done, expired } kind = in_progress;
        uint64_t offset = 0;
        Remote file;
    };

    explicit Impl(Options o) : opt(std::move(o)) {
        api = opt.api_url;
        while (!api.empty() && api.back() == '/') api.pop_back();
        uint64_t c = opt.chunk_size - opt.chunk_size % kUnit;
        opt.chunk_size = std::max<uint64_t>(c, kUnit);
        if (opt.max_retries_per_call < 0) opt.max_retries_per_call = 0;
        if (opt.backoff_initial_ms < 1) opt.backoff_initial_ms = 1;
        if (opt.backoff_max_ms < opt.backoff_initial_ms)
            opt.backoff_max_ms = opt.backoff_initial_ms;
    }

    Options opt;
    std::string api;
    // Token, retries and files.list; it reads `opt` and `api`, so it is declared after them.
    Client client{opt, api};

    std::mutex folder_cache_mutex;
    std::map<std::string, std::string> folders;  // "<parent id>/<name>" or "id:<x>" -> id
    std::mutex folder_create_mutex;              // one find-or-create at a time

    // ---------------------------------------------------------------------- folders

    std::optional<std::string> cached(const std::string& key) {
        std::lock_guard<std::mutex> lock(folder_cache_mutex);
        auto it = folders.find(key);
        if (it == folders.end()) return std::nullopt;
        return it->second;
    }

    void remember(const std::string& key, const std::string& id) {
        std::lock_guard<std::mutex> lock(folder_cache_mutex);
        folders[key] = id;
    }

    void forget_folders() {
        std::lock_guard<std::mutex> lock(folder_cache_mutex);
        folders.clear();
    }

    Expected<std::string> check_folder_id(Budget& b, const std::string& id) {
        const std::string key = "id:" + id;
        if (auto hit = cached(key)) return *hit;
        auto resp = client.call("GET",
                                api + "/drive/v3/files/" + http::url_encode(id) +
                                    "?fields=id,mimeType,trashed&supportsAllDrives=true",
                                "", {}, b, true);
        if (!resp) return resp.error();
        if (resp->status == 404)
            return make_error("bad_config",
                              "upload.gdrive.folder id:" + id +
                                  ": no such folder visible to this app (with the drive.file "
                                  "scope the app sees only folders it created or was given)");
        if (resp->status != 200)
            return status_error(resp->status, resp->body, "gdrive: folder id:" + id);
        auto j = parse_json(resp->body);
        if (!j || str_field(*j, "mimeType") != kFolderMime)
            return make_error("bad_config", "upload.gdrive.folder id:" + id + " is not a folder");
        remember(key, id);
        return id;
    }

    // The folder `name` inside `parent` (an id or "root"): found with files.list or created.
    // "parent_missing" when Drive no longer knows the parent (deleted since it was cached).
    Expected<std::string> find_or_create(Budget& b, const std::string& name,
                                         const std::string& parent) {
        const std::string key = parent + "/" + name;
        if (auto hit = cached(key)) return *hit;
        std::lock_guard<std::mutex> create_lock(folder_create_mutex);
        if (auto hit = cached(key)) return *hit;  // another thread just made it
        const std::string q = "name=" + GdriveTarget::q_literal(name) + " and mimeType='" +
                              kFolderMime + "' and " + GdriveTarget::q_literal(parent) +
                              " in parents and trashed=false";
        for (;;) {
            auto found = client.list(b, q, "id,name");
            if (!found) return found.error().with_context("gdrive: find folder '" + name + "'");
            if (!found->empty() && !found->front().id.empty()) {
                remember(key, found->front().id);
                return found->front().id;
            }
            json meta = {
                {"name", name}, {"mimeType", kFolderMime}, {"parents", json::array({parent})}};
            // Not retried blindly: a create whose answer got lost is found by the next list.
            auto resp =
                client.call("POST", api + "/drive/v3/files?fields=id&supportsAllDrives=true",
                            meta.dump(-1, ' ', false, json::error_handler_t::replace),
                            {"Content-Type: application/json; charset=UTF-8"}, b, false);
            if (!resp) {
                if (resp.error().code != "target_unavailable") return resp.error();
                if (auto st = client.backoff(b, resp.error().message, -1); !st) return st.error();
                continue;
            }
            if (retryable(resp->status, resp->body)) {
                if (auto st = client.backoff(
                        b, status_error(resp->status, resp->body, "gdrive: create folder").message,
                        retry_after_ms(*resp));
                    !st)
                    return st.error();
                continue;
            }
            if (resp->status == 404)
                return make_error("parent_missing", "gdrive: folder " + parent + " is gone");
            if (resp->status != 200)
                return status_error(resp->status, resp->body,
                                    "gdrive: create folder '" + name + "'");
            auto j = parse_json(resp->body);
            std::string id = j ? str_field(*j, "id") : std::string();
            if (id.empty())
                return make_error("target_unavailable",
                                  "gdrive: create folder: answer without an id");
            LOG_INFO(kComponent, "created folder '" << name << "' (" << id << ")");
            remember(key, id);
            return id;
        }
    }

    Expected<std::string> resolve_folder(Budget& b, const std::string& rig,
                                         const std::string& batch) {
        for (int attempt = 0;; ++attempt) {
            Expected<std::string> parent = std::string();
            if (opt.folder.compare(0, 3, "id:") == 0) {
                parent = check_folder_id(b, opt.folder.substr(3));
            } else {
                if (opt.folder.empty())
                    return make_error("bad_config", "upload.gdrive.folder is empty");
                parent = find_or_create(b, opt.folder, "root");
            }
            for (const std::string* level : {&rig, &batch}) {
                if (!parent || level->empty()) continue;
                parent = find_or_create(b, *level, *parent);
            }
            if (parent || parent.error().code != "parent_missing" || attempt > 0) return parent;
            forget_folders();  // someone deleted a cached folder: look everything up again
        }
    }

    // ---------------------------------------------------------------------- uploads

    std::vector<std::string> session_headers(Budget& b, const std::string& session,
                                             uint64_t* generation, Error* err) {
        // The session URI is the credential for its PUTs; a bearer token goes along (as Google's
        // own clients do) but only to the API's own origin.
        std::vector<std::string> h;
        if (origin_of(session) != origin_of(api)) return h;
        auto t = client.current_token(b);
        if (!t) {
            *err = t.error();
            return h;
        }
        h.push_back("Authorization: Bearer " + t->value);
        *generation = t->generation;
        return h;
    }

    Expected<SessionState> session_answer(const http::Response& resp, const std::string& what) {
        SessionState s;
        if (resp.status == 200 || resp.status == 201) {
            auto j = parse_json(resp.body);
            if (!j) return make_error("target_unavailable", what + ": unreadable file resource");
            s.kind = SessionState::done;
            s.file = remote_from(*j);
            return s;
        }
        if (resp.status == 308) {
            auto n = confirmed_bytes(resp.header("range"));
            if (!n)
                return make_error(
                    "target_unavailable",
                    what + ": unreadable Range '" + printable(resp.header("range"), 60) + "'");
            s.offset = *n;
            return s;
        }
        if (resp.status == 404 || resp.status == 410) {
            s.kind = SessionState::expired;
            return s;
        }
        return status_error(resp.status, resp.body, what);
    }

    // Asks a session where it stands (an empty PUT with "Content-Range: bytes */size").
    Expected<SessionState> query(Budget& b, const std::string& session, uint64_t size) {
        const std::string what = "gdrive: upload status " + http::redact_url(session);
        bool auth = origin_of(session) == origin_of(api);
        auto resp = client.call("PUT", session, "",
                                {"Content-Range: bytes */" + std::to_string(size)}, b, true, auth);
        if (!resp) return resp.error();
        return session_answer(*resp, what);
    }

    std::string resume_text(const std::string& session, const upload::Job& job) const {
        json j = {
            {"v", 1}, {"session", session}, {"size", job.size}, {"sha256", lower(job.sha256)}};
        return j.dump(-1, ' ', false, json::error_handler_t::replace);
    }

    std::string resumed_session(const upload::Job& job) const {
        if (!opt.load_resume) return std::string();
        auto j = parse_json(opt.load_resume(job.job_id));
        if (!j || !j->is_object()) return std::string();
        auto size = j->find("size");
        if (size == j->end() || !size->is_number_unsigned() || size->get<uint64_t>() != job.size ||
            str_field(*j, "sha256") != lower(job.sha256))
            return std::string();  // a state for other bytes: start afresh
        std::string session = str_field(*j, "session");
        if (origin_of(session) != origin_of(api)) return std::string();  // not the API's
        return session;
    }

    void save(const upload::Job& job, const std::string& text) {
        if (opt.save_resume) opt.save_resume(job.job_id, text);
    }

    Expected<std::string> create_session(Budget& b, const upload::Job& job,
                                         const std::string& parent) {
        json props = {{"job_id", job_key(job.job_id)}, {"sha256", lower(job.sha256)}};
        if (!job.capture_id.empty() && job.capture_id.size() + 10 <= kMaxPropertyBytes)
            props["capture_id"] = job.capture_id;
        json meta = {{"name", job.remote_name},
                     {"parents", json::array({parent})},
                     {"appProperties", props}};
        if (!job.mime.empty()) meta["mimeType"] = job.mime;
        std::vector<std::string> headers = {"Content-Type: application/json; charset=UTF-8",
                                            "X-Upload-Content-Length: " + std::to_string(job.size)};
        if (!job.mime.empty()) headers.push_back("X-Upload-Content-Type: " + job.mime);
        auto resp = client.call(
            "POST",
            api + "/upload/drive/v3/files?uploadType=resumable&supportsAllDrives=true&fields=" +
                http::url_encode(kFileFields),
            meta.dump(-1, ' ', false, json::error_handler_t::replace), headers, b, true);
        if (!resp) return resp.error();
        if (resp->status == 404)
            return make_error("parent_missing", "gdrive: the batch folder is gone");
        if (resp->status != 200 && resp->status != 201)
            return status_error(resp->status, resp->body, "gdrive: start resumable upload");
        std::string location = resp->header("location");
        if (location.empty())
            return make_error("target_unavailable",
                              "gdrive: start resumable upload: answer without Location");
        // The session URI receives the photo (and may be asked with the bearer token): only
        // the API's own origin (scheme, host and port) is trusted with it.
        if (origin_of(location) != origin_of(api))
            return make_error("target_unavailable",
                              "gdrive: start resumable upload: refused a session URI on "
                              "another origin (" +
                                  printable(origin_of(location), 80) + ", not " + origin_of(api) +
                                  ")");
        return location;
    }

    // The PUT of bytes [offset, offset + len) of the job's file into a resumable session.
    http::Request chunk_request(const std::string& session, const upload::Job& job, uint64_t offset,
                                uint64_t len, std::vector<std::string> headers,
                                const std::atomic<bool>* abort) const {
        http::Request r = client.base_request("PUT", session);
        r.headers = std::move(headers);
        r.headers.push_back("Content-Range: bytes " + std::to_string(offset) + "-" +
                            std::to_string(offset + len - 1) + "/" + std::to_string(job.size));
        if (!job.mime.empty()) r.headers.push_back("Content-Type: " + job.mime);
        r.body_file = job.path;
        r.body_offset = offset;
        r.body_length = len;
        r.max_send_speed = opt.max_send_speed;
        r.limiter = opt.limiter.get();
        r.cancel = abort;
        return r;
    }

    // One send() call: the session, its job and what its chunk PUTs share.
    struct Sending {
        Budget& b;
        const upload::Job& job;
        const std::string& session;
        const upload::ProgressFn& progress;
        uint64_t* bytes_sent;
        std::string what;  // names the session in messages
        // The link's gate: held from the first chunk's body to the last one's (a failed chunk
        // gives it back, so no retry wait holds the link).
        LinkGate::Turn turn;
        // Each chunk PUT can be aborted by its own flag: set when the caller's cancel flag is
        // (a watcher thread mirrors it, so a stalled transfer notices too) and when libcurl
        // rewinds the body to send it again on a fresh connection (it does that by itself when
        // a reused connection dies mid-request): that whole-chunk resend would start at a byte
        // Drive already has; asking the session where it stands costs nothing instead.
        std::atomic<bool> abort_chunk{false};
        // Setbacks since the last progress; each kind has its own allowance.
        int bad_requests = 0;    // 400 answers: out of step with the session
        bool refreshed = false;  // the access token was refreshed after a 401
    };

    // What a chunk PUT tells: where the session stands, or nullopt when it has to be asked.
    using PutOutcome = std::optional<SessionState>;

    // Sends the file from `offset` on; ends when Drive returns the file or the session is gone.
    Expected<SessionState> send(Budget& b, const upload::Job& job, const std::string& session,
                                uint64_t offset, const upload::ProgressFn& progress,
                                uint64_t* bytes_sent) {
        Sending s{b,
                  job,
                  session,
                  progress,
                  bytes_sent,
                  "gdrive: upload " + http::redact_url(session),
                  LinkGate::Turn(opt.gate.get())};
        const std::string& what = s.what;
        CancelMirror mirror(opt.cancel, s.abort_chunk);
        for (;;) {
            if (client.cancelled()) return make_error("cancelled", what + ": cancelled");
            if (offset > job.size)
                return make_error("io_error", what + ": Drive confirms " + std::to_string(offset) +
                                                  " bytes of a " + std::to_string(job.size) +
                                                  "-byte file");
            if (offset == job.size) {
                // Everything is there (or the file is empty): the status answer finishes it.
                s.turn.release();
                auto q = query_after_last_byte(b, session, job.size, what);
                if (!q) return q.error();
                if (q->kind != SessionState::in_progress) return q;
                offset = q->offset;
                continue;
            }
            auto outcome = put_chunk(s, offset);
            if (!outcome) return outcome.error();
            const bool asked = !outcome->has_value();
            auto state = asked ? query(b, session, job.size) : Expected<SessionState>(**outcome);
            if (!state) return state.error();
            if (state->kind != SessionState::in_progress) return state;
            if (state->offset > offset) {
                b.failures = 0;  // progress: the retry budget is for failures in a row
                s.bad_requests = 0;
                s.refreshed = false;
            } else if (!asked) {
                if (auto st = client.backoff(
                        b, what + ": no progress at byte " + std::to_string(offset), -1);
                    !st)
                    return st.error();
            }
            offset = state->offset;
        }
    }

    // Asks a session that has every byte where it stands. Its answer should hold the file;
    // an answer without one yet counts as a failed attempt (a wait) before the next question.
    Expected<SessionState> query_after_last_byte(Budget& b, const std::string& session,
                                                 uint64_t size, const std::string& what) {
        auto q = query(b, session, size);
        if (!q) return q.error();
        if (q->kind == SessionState::in_progress && q->offset == size) {
            if (auto st = client.backoff(b, what + ": all bytes confirmed but no file yet", -1);
                !st)
                return st.error();
        }
        return q;
    }

    // PUTs the chunk that starts at `offset`, counting the bytes that go out.
    Expected<PutOutcome> put_chunk(Sending& s, uint64_t offset) {
        const uint64_t len = std::min<uint64_t>(opt.chunk_size, s.job.size - offset);
        Error token_error;
        uint64_t generation = 0;
        auto headers = session_headers(s.b, s.session, &generation, &token_error);
        if (!token_error.code.empty()) return token_error;
        const bool with_token = !headers.empty();
        s.abort_chunk.store(false);
        http::Request r =
            chunk_request(s.session, s.job, offset, len, std::move(headers), &s.abort_chunk);
        r.link_turn = &s.turn;
        uint64_t last = 0;
        bool rewound = false;
        r.progress = [&](uint64_t done, uint64_t) {
            if (done < last) {  // libcurl started the body again: stop it (Sending::abort_chunk)
                rewound = true;
                s.abort_chunk.store(true);
                last = done;
                return;
            }
            *s.bytes_sent += done - last;
            last = done;
            if (s.progress) s.progress(offset + done, s.job.size);
        };
        auto resp = http::perform(r);
        if (!resp) {
            if (auto st = after_failed_put(s, resp.error(), rewound, offset); !st)
                return st.error();
            return PutOutcome();
        }
        if (resp->bytes_sent > last) *s.bytes_sent += resp->bytes_sent - last;
        return read_put_answer(s, *resp, with_token, generation);
    }

    // A chunk PUT without an answer: the error to give up with, or ok() when the session is
    // worth asking where it stands (after a wait, unless the connection just dropped).
    Status after_failed_put(Sending& s, const Error& e, bool rewound, uint64_t offset) {
        if (e.code == "cancelled" && client.cancelled())
            return make_error("cancelled", s.what + ": cancelled");
        if (e.code == "source_missing") return e.with_context("gdrive: upload " + s.job.job_id);
        if (e.code != "target_unavailable" && !(e.code == "cancelled" && rewound)) return e;
        LOG_INFO(kComponent, "chunk at " << offset << " of job " << s.job.job_id << " failed: "
                                         << (rewound ? "connection lost" : e.message));
        if (!rewound) return client.backoff(s.b, e.message, -1);
        ++s.b.failures;  // the connection died: ask at once, the next failure waits
        if (s.b.failures > opt.max_retries_per_call)
            return make_error("target_unavailable", s.what + ": the connection keeps dropping");
        return ok();
    }

    // Drive's answer to a chunk PUT. 401 (once per progress), 400 (twice) and retryable
    // answers (after their wait) leave the session to be asked; other errors end the upload.
    Expected<PutOutcome> read_put_answer(Sending& s, const http::Response& resp, bool with_token,
                                         uint64_t generation) {
        const long status = resp.status;
        const std::string& what = s.what;
        if (status == 401 && with_token) {
            if (s.refreshed) return status_error(401, resp.body, what);
            s.refreshed = true;
            client.invalidate_token(generation);
            LOG_INFO(kComponent, what << ": HTTP 401, refreshing the access token");
            return PutOutcome();
        }
        if (status == 400) {
            // Out of step with the server (offset, chunk size): ask where it stands.
            if (++s.bad_requests > 2) return status_error(status, resp.body, what);
            LOG_WARN(kComponent,
                     status_error(status, resp.body, what).message << "; re-synchronising");
            return PutOutcome();
        }
        if (retryable(status, resp.body)) {
            auto err = status_error(status, resp.body, what);
            if (auto st = client.backoff(s.b, err.message, retry_after_ms(resp)); !st)
                return st.error();
            return PutOutcome();
        }
        auto state = session_answer(resp, what);
        if (!state) return state.error();
        return PutOutcome(*state);
    }

    Status trash(Budget& b, const std::string& id) {
        auto resp = client.call(
            "PATCH", api + "/drive/v3/files/" + http::url_encode(id) + "?supportsAllDrives=true",
            json({{"trashed", true}}).dump(-1, ' ', false, json::error_handler_t::replace),
            {"Content-Type: application/json; charset=UTF-8"}, b, true);
        if (!resp) return resp.error();
        if (resp->status != 200 && resp->status != 404)
            return status_error(resp->status, resp->body, "gdrive: trash " + id);
        return ok();
    }

    Expected<upload::UploadResult> finish(Budget& b, const upload::Job& job, const Digests& d,
                                          const Remote& file, uint64_t bytes_sent) {
        const std::string what = "gdrive upload " + job.job_id;
        bool hash_checked = false;
        if (!file.id.empty() && same_content(file, job, d, &hash_checked)) {
            LOG_DEBUG(kComponent, "job " << job.job_id << " stored as " << file.id << " ("
                                         << bytes_sent << " bytes sent)");
            return upload::UploadResult{file.id, bytes_sent,
                                        hash_checked ? lower(job.sha256) : std::string()};
        }
        // Drive holds other bytes than the spool file: never leave that copy behind.
        LOG_WARN(kComponent, what << ": Drive stored " << describe(file) << ", expected size "
                                  << job.size << ", md5 " << d.md5
                                  << "; moving the copy to the trash");
        save(job, "");
        if (!file.id.empty()) {
            if (auto st = trash(b, file.id); !st) LOG_WARN(kComponent, st.error().describe());
        }
        auto now = digest_file(job.path);
        if (!now) return now.error().with_context(what);
        if (now->sha256 != lower(job.sha256))
            return make_error("checksum_mismatch",
                              what + ": " + job.path +
                                  " changed while it was uploaded (no longer the job's sha256)");
        // The spool file is intact: the bytes got damaged on the way. Retrying can fix that.
        return make_error("target_unavailable",
                          what + ": Drive reports " + describe(file) + " for a " +
                              std::to_string(job.size) + "-byte file with md5 " + d.md5 +
                              "; the copy was trashed and the upload will be retried");
    }

    // Checks the job's fields and its spool file (it must hash to job.sha256, else nothing is
    // sent) and returns the file's digests.
    Expected<Digests> source_digests(const upload::Job& job, const std::string& what) {
        if (api.empty()) return make_error("bad_config", "upload.gdrive.api_url is empty");
        if (job.job_id.empty() || job.sha256.empty())
            return make_error("bad_request", what + ": the job has no job_id or sha256");
        if (job.remote_name.empty())
            return make_error("invalid_name", what + ": the job has no remote_name");

        if (auto st = upload::check_source_size(job, what); !st) return st.error();
        auto digests = digest_file(job.path);
        if (!digests) return digests.error().with_context(what);
        if (digests->sha256 != lower(job.sha256))
            return make_error("checksum_mismatch",
                              what + ": " + job.path + " does not hash to the job's sha256");
        return digests;
    }

    // The result for a file of this job already on Drive with the spool file's bytes, or
    // nullopt. Files of the job with other bytes are broken copies: moved to the trash.
    Expected<std::optional<upload::UploadResult>> already_uploaded(Budget& b,
                                                                   const upload::Job& job,
                                                                   const Digests& digests,
                                                                   const std::string& what) {
        auto found =
            client.list(b,
                        "appProperties has { key='job_id' and value=" +
                            GdriveTarget::q_literal(job_key(job.job_id)) + " } and trashed=false",
                        kFileFields);
        if (!found) return found.error().with_context(what);
        for (const auto& f : *found) {
            bool hash_checked = false;
            if (!f.id.empty() && same_content(f, job, digests, &hash_checked)) {
                LOG_INFO(kComponent, "job " << job.job_id << " is already on Drive as " << f.id);
                return std::optional<upload::UploadResult>(upload::UploadResult{
                    f.id, 0, hash_checked ? lower(job.sha256) : std::string()});
            }
        }
        for (const auto& f : *found) {  // our job id, other bytes: a broken copy
            LOG_WARN(kComponent, "job " << job.job_id << ": Drive file " << f.id << " has "
                                        << describe(f)
                                        << ", not the spool file's; moving it to the trash");
            if (auto t = trash(b, f.id); !t) return t.error().with_context(what);
        }
        return std::optional<upload::UploadResult>();
    }

    // A new resumable session in the job's batch folder (looked up again once if a cached
    // folder is gone), saved for resuming before the first byte leaves.
    Expected<std::string> start_session(Budget& b, const upload::Job& job,
                                        const std::string& what) {
        const std::string rig = opt.rig_id.empty() ? job.rig_id : opt.rig_id;
        auto parent = resolve_folder(b, rig, job.batch);
        if (!parent) return parent.error().with_context(what);
        auto created = create_session(b, job, *parent);
        if (!created && created.error().code == "parent_missing") {
            forget_folders();
            parent = resolve_folder(b, rig, job.batch);
            if (!parent) return parent.error().with_context(what);
            created = create_session(b, job, *parent);
        }
        if (!created) return created.error().with_context(what);
        save(job, resume_text(*created, job));  // before the first byte leaves
        LOG_DEBUG(kComponent, "job " << job.job_id << ": session " << http::redact_url(*created));
        return created;
    }

    Expected<upload::UploadResult> upload(const upload::Job& job,
                                          const upload::ProgressFn& progress) {
        const std::string what = "gdrive upload " + job.job_id;
        auto digests = source_digests(job, what);
        if (!digests) return digests.error();

        Budget b;
        uint64_t bytes_sent = 0;
        std::string session = resumed_session(job);
        int sessions_started = 0;
        for (;;) {
            if (client.cancelled()) return make_error("cancelled", what + ": cancelled");
            uint64_t offset = 0;
            if (!session.empty()) {
                auto q = query(b, session, job.size);
                if (!q) return q.error().with_context(what);
                if (q->kind == SessionState::done)
                    return finish(b, job, *digests, q->file, bytes_sent);
                if (q->kind == SessionState::expired) {
                    LOG_INFO(kComponent,
                             "job " << job.job_id << ": upload session expired; starting again");
                    save(job, "");
                    session.clear();
                } else {
                    offset = q->offset;
                    LOG_INFO(kComponent, "job " << job.job_id << ": resuming at byte " << offset
                                                << " of " << job.size);
                }
            }
            if (session.empty()) {
                // Already there? (a crash after the last chunk, before the journal heard of it)
                auto existing = already_uploaded(b, job, *digests, what);
                if (!existing) return existing.error();
                if (*existing) {
                    if (progress) progress(job.size, job.size);
                    return **existing;
                }
                if (++sessions_started > 3)
                    return make_error("target_unavailable",
                                      what + ": upload sessions keep expiring");
                auto started = start_session(b, job, what);
                if (!started) return started.error();
                session = *started;
            }
            auto result = send(b, job, session, offset, progress, &bytes_sent);
            if (!result) return result.error().with_context(what);
            if (result->kind == SessionState::expired) {
                LOG_INFO(kComponent,
                         "job " << job.job_id << ": upload session gone (404); starting again");
                save(job, "");
                session.clear();
                continue;
            }
            return finish(b, job, *digests, result->file, bytes_sent);
        }
    }
};

// ------------------------------------------------------------------------------------------

GdriveTarget::GdriveTarget(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

GdriveTarget::~GdriveTarget() = default;

Expected<upload::UploadResult> GdriveTarget::upload(const upload::Job& job,
                                                    const upload::ProgressFn& progress) {
    return impl_->upload(job, progress);
}

Expected<std::string> GdriveTarget::access_token() {
    gdrive::Budget b;
    auto t = impl_->client.current_token(b);
    if (!t) return t.error();
    return t->value;
}

Expected<std::string> GdriveTarget::folder_id(const std::string& rig, const std::string& batch) {
    gdrive::Budget b;
    return impl_->resolve_folder(b, rig, batch);
}

std::string GdriveTarget::q_literal(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\\' || c == '\'') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

}  // namespace photorig::targets
