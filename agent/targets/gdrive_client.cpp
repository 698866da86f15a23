#include "targets/gdrive_client.h"

#include <algorithm>
#include <utility>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"

namespace photorig::targets::gdrive {
namespace {

const char* kComponent = "gdrive";

}  // namespace

http::Request Client::base_request(const std::string& method, const std::string& url) const {
    return http::request_for(opt_, method, url);
}

bool Client::cancelled() const {
    return opt_.cancel && opt_.cancel->load(std::memory_order_relaxed);
}

Status Client::sleep_ms(int64_t ms) {
    if (!clock::sleep_unless(opt_.cancel, ms))
        return make_error("cancelled", "gdrive: cancelled while waiting to retry");
    return ok();
}

// Counts a failed attempt and waits before the next one; an error once the budget is spent
// or the server asks for a longer pause than we are willing to hold the job for.
Status Client::backoff(Budget& b, const std::string& why, int64_t retry_after) {
    ++b.failures;
    if (b.failures > opt_.max_retries_per_call)
        return make_error("target_unavailable",
                          why + " (gave up after " + std::to_string(b.failures) +
                              " attempts in a row; the job is retried later)");
    const BackoffPolicy policy{opt_.backoff_initial_ms, opt_.backoff_max_ms,
                               BackoffPolicy::Jitter::half};
    int64_t delay = backoff_delay_ms(policy, b.failures);
    if (retry_after >= 0) {
        if (retry_after > opt_.retry_after_max_ms)
            return make_error("target_unavailable", why + " (Drive asks to wait " +
                                                        std::to_string(retry_after / 1000) +
                                                        " s; the job is retried later)");
        delay =
            std::max(delay, retry_after + uniform_ms(0, std::min<int64_t>(1000, retry_after / 10)));
    }
    LOG_INFO(kComponent, why << "; retry " << b.failures << "/" << opt_.max_retries_per_call
                             << " in " << delay << " ms");
    return sleep_ms(delay);
}

// -------------------------------------------------------------------------- OAuth

Expected<std::string> Client::secret(const std::string& value, const std::string& file,
                                     const char* key) const {
    if (!file.empty()) {
        auto s = files::read_secret(file);
        if (!s) return s.error().with_context(std::string("upload.gdrive.") + key);
        return std::move(s.value());
    }
    return value;
}

Expected<Token> Client::refresh_locked() {
    const std::string what = "gdrive: token refresh at " + http::redact_url(opt_.token_url);
    if (opt_.client_id.empty()) return make_error("bad_config", "upload.gdrive.client_id is empty");
    auto client_secret = secret(opt_.client_secret, opt_.client_secret_file, "client_secret_file");
    if (!client_secret) return client_secret.error();
    auto refresh = secret(opt_.refresh_token, opt_.refresh_token_file, "refresh_token_file");
    if (!refresh) return refresh.error();
    if (refresh->empty())
        return make_error("bad_config",
                          "upload.gdrive.refresh_token_file: no refresh token configured");

    http::Request r = base_request("POST", opt_.token_url);
    r.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
    r.body = "grant_type=refresh_token&client_id=" + http::url_encode(opt_.client_id) +
             "&client_secret=" + http::url_encode(*client_secret) +
             "&refresh_token=" + http::url_encode(*refresh);
    r.timeout_s = 60;
    auto resp = http::perform(r);
    if (!resp) return resp.error();  // the message holds the URL and curl's reason only
    if (resp->status == 200) {
        auto j = parse_json(resp->body);
        std::string access = j && j->is_object() ? str_field(*j, "access_token") : std::string();
        if (access.empty())
            return make_error("target_unavailable", what + ": answer without an access_token");
        int64_t expires_in = 3600;
        auto e = j->find("expires_in");
        // Whole seconds, up to a day; a float or a huge number from a hostile server must
        // not be converted out of range (undefined behaviour), so it is bounded first.
        if (e != j->end() && e->is_number()) {
            const double seconds = e->get<double>();
            if (seconds == seconds)
                expires_in = static_cast<int64_t>(std::clamp(seconds, 1.0, 86400.0));
        }
        Token t;
        t.value = access;
        int64_t life = expires_in * 1000;
        int64_t margin = std::min(opt_.token_refresh_margin_s * 1000, life / 2);
        t.refresh_at_ms = clock::monotonic_ms() + life - margin;
        LOG_DEBUG(kComponent, "access token refreshed, valid " << expires_in << " s");
        return t;
    }
    return token_refused(*resp, what, opt_.refresh_token_file);
}

Expected<Token> Client::current_token(Budget& b) {
    for (;;) {
        Error err;
        {
            std::lock_guard<std::mutex> lock(token_mutex_);
            if (!token_.value.empty() && clock::monotonic_ms() < token_.refresh_at_ms)
                return token_;
            auto t = refresh_locked();
            if (t) {
                token_ = std::move(t.value());
                token_.generation = ++generations_;
                return token_;
            }
            err = t.error();
        }
        if (err.code != "target_unavailable") return err;
        auto st = backoff(b, err.message, -1);
        if (!st) return st.error();
    }
}

void Client::invalidate_token(uint64_t generation) {
    std::lock_guard<std::mutex> lock(token_mutex_);
    if (token_.generation == generation) token_.value.clear();
}

// One API request with a bearer token: 401 refreshes the token once and repeats; with
// `retry`, transport failures and retryable answers wait (backoff) and repeat. Any other
// answer is returned for the caller to read.
Expected<http::Response> Client::call(const std::string& method, const std::string& url,
                                      const std::string& body,
                                      const std::vector<std::string>& headers, Budget& b,
                                      bool retry, bool auth) {
    const std::string what = method + " " + http::redact_url(url);
    bool refreshed = false;
    for (;;) {
        http::Request r = base_request(method, url);
        r.body = body;
        r.headers = headers;
        r.timeout_s = 120;
        uint64_t generation = 0;
        if (auth) {
            auto t = current_token(b);
            if (!t) return t.error();
            r.headers.push_back("Authorization: Bearer " + t->value);
            generation = t->generation;
        }
        auto resp = http::perform(r);
        if (!resp) {
            if (retry && resp.error().code == "target_unavailable") {
                if (auto st = backoff(b, resp.error().message, -1); !st) return st.error();
                continue;
            }
            return resp.error();
        }
        if (resp->status == 401 && auth) {
            if (refreshed) return status_error(401, resp->body, what);
            refreshed = true;
            invalidate_token(generation);
            LOG_INFO(kComponent, what << ": HTTP 401, refreshing the access token");
            continue;
        }
        if (retry && retryable(resp->status, resp->body)) {
            if (auto st = backoff(b, status_error(resp->status, resp->body, what).message,
                                  retry_after_ms(*resp));
                !st)
                return st.error();
            continue;
        }
        return resp;
    }
}

std::string Client::list_url(const std::string& q, const std::string& fields) const {
    std::string url = api_ + "/drive/v3/files?q=" + http::url_encode(q) +
                      "&fields=" + http::url_encode("files(" + fields + ")") +
                      "&pageSize=100&supportsAllDrives=true&includeItemsFromAllDrives=true";
    if (opt_.folder.compare(0, 3, "id:") == 0) url += "&corpora=allDrives";
    return url;
}

Expected<std::vector<Remote>> Client::list(Budget& b, const std::string& q,
                                           const std::string& fields) {
    auto resp = call("GET", list_url(q, fields), "", {}, b, true);
    if (!resp) return resp.error();
    if (resp->status != 200) return status_error(resp->status, resp->body, "gdrive: files.list");
    auto files = files_from_list(resp->body);
    if (!files) return make_error("target_unavailable", "gdrive: files.list: unreadable answer");
    return std::move(*files);
}
}  // namespace photorig::targets::gdrive
