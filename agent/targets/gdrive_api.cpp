#include "targets/gdrive_api.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/clock.h"
#include "core/sha256.h"
#include "core/text.h"

namespace photorig::targets::gdrive {

using text::lower;

// Text from a server made safe for a log line or an error message: printable, bounded.
std::string printable(const std::string& s, size_t max) {
    return text::printable(s, max);
}

std::optional<json> parse_json(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

std::string str_field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::string();
    return it->get<std::string>();
}

DriveError drive_error(const std::string& body) {
    DriveError e;
    auto j = parse_json(body);
    if (!j || !j->is_object()) return e;
    auto err = j->find("error");
    if (err == j->end()) return e;
    if (err->is_string()) {  // OAuth style: {"error":"invalid_grant","error_description":"..."}
        e.reason = err->get<std::string>();
        e.message = str_field(*j, "error_description");
        return e;
    }
    if (!err->is_object()) return e;
    e.message = str_field(*err, "message");
    auto errors = err->find("errors");
    if (errors != err->end() && errors->is_array() && !errors->empty() && (*errors)[0].is_object())
        e.reason = str_field((*errors)[0], "reason");
    if (e.reason.empty()) e.reason = str_field(*err, "status");
    return e;
}

bool rate_limited(const std::string& reason) {
    return reason == "userRateLimitExceeded" || reason == "rateLimitExceeded" ||
           reason == "sharingRateLimitExceeded";
}

bool retryable(long status, const std::string& body) {
    if (http::is_retryable_status(status)) return true;
    return status == 403 && rate_limited(drive_error(body).reason);
}

// Retry-After: delta-seconds or an HTTP date; -1 when absent or unreadable.
int64_t retry_after_ms(const http::Response& resp) {
    std::string v = resp.header("retry-after");
    if (v.empty()) return -1;
    if (v.find_first_not_of("0123456789") == std::string::npos && v.size() < 10)
        return std::stoll(v) * 1000;
    struct tm tm {};
    if (strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return -1;
    int64_t at = static_cast<int64_t>(timegm(&tm)) * 1000;
    return std::max<int64_t>(0, at - clock::now_ms());
}

Error status_error(long status, const std::string& body, const std::string& what) {
    DriveError e = drive_error(body);
    std::string s = what + ": HTTP " + std::to_string(status);
    if (!e.reason.empty()) s += " " + printable(e.reason, 60);
    if (!e.message.empty()) s += " (" + printable(e.message) + ")";
    if (status == 401)
        return make_error("target_auth",
                          s + ": Drive refused a freshly refreshed access token; check that "
                              "upload.gdrive.client_id, the client secret and the refresh token "
                              "belong together and that the Drive API is enabled");
    if (status == 403) {
        if (e.reason == "storageQuotaExceeded" || e.reason == "quotaExceeded")
            return make_error("disk_full", s + ": the Drive account has no storage left");
        if (e.reason == "dailyLimitExceeded" || rate_limited(e.reason))
            return make_error("target_unavailable", s);
        return make_error("target_auth",
                          s + ": the account or app may not write there; check that the Drive "
                              "API is enabled for the OAuth client and the folder is writable");
    }
    if (http::is_retryable_status(status)) return make_error("target_unavailable", s);
    return make_error("io_error", s);
}

// "bytes=0-N" -> N + 1; "" -> 0 (nothing received); nullopt when unreadable.
std::optional<uint64_t> confirmed_bytes(const std::string& range) {
    if (range.empty()) return 0;
    auto dash = range.find('-');
    if (range.compare(0, 6, "bytes=") != 0 || dash == std::string::npos) return std::nullopt;
    std::string last = range.substr(dash + 1);
    auto comma = last.find(',');  // only one range is ever sent; be lenient
    if (comma != std::string::npos) last.resize(comma);
    if (last.empty() || last.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    try {
        return std::stoull(last) + 1;
    } catch (...) {
        return std::nullopt;
    }
}

std::string origin_of(const std::string& url) {
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return std::string();
    auto slash = url.find_first_of("/?#", scheme + 3);
    return lower(url.substr(0, slash));
}

// The job id as stored in appProperties (key + value must fit 124 bytes).
std::string job_key(const std::string& job_id) {
    if (std::string("job_id").size() + job_id.size() <= kMaxPropertyBytes) return job_id;
    return "sha256:" + Sha256::of(job_id);
}

Expected<Digests> digest_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return make_error(err == ENOENT ? "source_missing" : "io_error",
                          path + ": " + std::strerror(err));
    }
    Digest md5(Digest::Algorithm::md5);
    Sha256 sha;
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return make_error("io_error", "read " + path + ": " + std::strerror(err));
        }
        if (n == 0) break;
        md5.update(buf.data(), static_cast<size_t>(n));
        sha.update(buf.data(), static_cast<size_t>(n));
    }
    ::close(fd);
    Digests d;
    d.md5 = md5.hex_digest();
    d.sha256 = sha.hex_digest();
    return d;
}

Remote remote_from(const json& j) {
    Remote r;
    if (!j.is_object()) return r;
    r.id = str_field(j, "id");
    r.name = str_field(j, "name");
    r.md5 = lower(str_field(j, "md5Checksum"));
    r.sha256 = lower(str_field(j, "sha256Checksum"));
    auto size = j.find("size");
    if (size != j.end()) {
        try {
            if (size->is_string()) {  // int64 fields are JSON strings in Drive v3
                r.size = std::stoull(size->get<std::string>());
                r.has_size = true;
            } else if (size->is_number_unsigned()) {
                r.size = size->get<uint64_t>();
                r.has_size = true;
            }
        } catch (...) {
        }
    }
    return r;
}

// Same bytes as the spool file, as far as Drive lets us tell. `hash_checked` says whether a
// checksum (not only the size) was compared.
bool same_content(const Remote& r, const upload::Job& job, const Digests& d, bool* hash_checked) {
    *hash_checked = false;
    if (!r.has_size || r.size != job.size) return false;
    if (!r.md5.empty() && r.md5 != d.md5) return false;
    if (!r.sha256.empty() && r.sha256 != d.sha256) return false;
    *hash_checked = !r.md5.empty() || !r.sha256.empty();
    return true;
}

std::string describe(const Remote& r) {
    return "size " + (r.has_size ? std::to_string(r.size) : std::string("?")) + ", md5 " +
           (r.md5.empty() ? std::string("?") : r.md5);
}

Error token_refused(const http::Response& resp, const std::string& what,
                    const std::string& refresh_token_file) {
    DriveError e = drive_error(resp.body);
    std::string s = what + ": HTTP " + std::to_string(resp.status);
    if (e.reason == "invalid_grant") {
        std::string fix = refresh_token_file.empty()
                              ? std::string("and configure it")
                              : "and write it to upload.gdrive.refresh_token_file (" +
                                    refresh_token_file + ", read again at the next attempt)";
        return make_error(
            "target_auth",
            s +
                " invalid_grant: Google refused the refresh token: it has expired or been "
                "revoked. Refresh tokens of OAuth apps whose publishing status is \"Testing\" "
                "expire after 7 days: publish the app (Google Cloud console, OAuth consent "
                "screen, \"Publish app\") or create a new refresh token " +
                fix);
    }
    if (e.reason == "invalid_client" || e.reason == "unauthorized_client")
        return make_error("target_auth",
                          s + " " + e.reason +
                              ": Google refused the OAuth client; check upload.gdrive.client_id "
                              "and upload.gdrive.client_secret_file");
    if (http::is_retryable_status(resp.status)) return make_error("target_unavailable", s);
    std::string code;  // the OAuth error code only: descriptions are not ours to echo
    for (char c : e.reason)
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') code.push_back(c);
    return make_error("target_auth",
                      s + (code.empty() ? "" : " " + code.substr(0, 40)) +
                          ": the token endpoint refused the refresh; check the OAuth client "
                          "and refresh token");
}

}  // namespace photorig::targets::gdrive
