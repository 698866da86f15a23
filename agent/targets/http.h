// A small synchronous HTTP client over libcurl for the upload targets (S3, WebDAV, Google
// Drive). One call = one request/response. Bodies are sent from memory or streamed from a
// byte range of a file (memory never grows with the file size); response bodies are kept in
// memory (API answers) or streamed to a sink (e.g. hashing a download).
//
// Connection reuse: each thread keeps one libcurl easy handle (thread_local) and resets its
// options per call, so consecutive requests from the same thread to the same host reuse the
// TCP/TLS connection (keep-alive) and the DNS cache. Nothing is shared across threads.
//
// Errors: a transport failure (refused, reset, DNS, timeout, TLS) is an Error with code
// "target_unavailable"; an HTTP status is never an error here: callers read Response::status.
// Error messages hold the method, the URL without its query string, and curl's reason; never
// credentials, signatures or bodies.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/bandwidth_limiter.h"
#include "core/expected.h"

namespace photorig::targets::http {

// AWS Signature Version 4. The request must also carry "x-amz-content-sha256: <hex sha256
// of the body>" (or "UNSIGNED-PAYLOAD"); perform() adds the hash of an in-memory body when
// the caller did not, and refuses a file body without it (hashing a file here would read it
// twice).
struct SigV4 {
    std::string region, service = "s3", access_key, secret_key;
};

struct Request {
    std::string method = "GET", url;
    std::vector<std::string> headers;  // "Name: value"
    std::string body;                  // small in-memory body, or:
    std::string body_file;             // stream [body_offset, body_offset + body_length) of a file
    uint64_t body_offset = 0, body_length = 0;
    long connect_timeout_s = 10;
    long low_speed_time_s = 60;   // abort when < 1 byte/s moves for that long
    uint64_t max_send_speed = 0;  // bytes/s cap of this transfer alone, 0 = none
    // The link's budget shared with other transfers (upload.bandwidth_limit_bytes_per_s);
    // the request body is paced through it. Null = no shared cap.
    BandwidthLimiter* limiter = nullptr;
    // The link's body gate (upload.parallel_bodies: false): a request with a body holds this
    // turn (waiting for it, cancel-aware) before it starts, so its body has the link to
    // itself. perform() leaves it held for the caller's next body request of the same file
    // (S3 parts, Drive chunks) and the caller releases it after the last one; a request that
    // fails (transport error or HTTP >= 400) releases it, so no retry wait holds the link.
    // Null = no gate.
    LinkGate::Turn* link_turn = nullptr;
    std::optional<SigV4> sigv4;
    std::string basic_user, basic_password;  // basic auth when basic_user is not empty
    // Upload progress; must not block. `sent` reaches `total` only when a 2xx response has
    // arrived, never while the last bytes may still sit in socket buffers.
    std::function<void(uint64_t sent, uint64_t total)> progress;

    // Extensions (all optional):
    // Streams the response body here instead of Response::body (return false to abort the
    // transfer: perform() then answers "io_error"). Called only for the final response.
    std::function<bool(const char* data, size_t len)> body_sink;
    // Response bodies kept in memory larger than this are cut off and fail with "io_error"
    // (a guard against a hostile or broken server sending an endless body: API answers are
    // kilobytes; use body_sink for big downloads).
    uint64_t max_response_body = 4ull << 20;
    // Set to true from another thread to abort the transfer promptly (Error "cancelled").
    const std::atomic<bool>* cancel = nullptr;
    // TLS: the server's certificate and name are always verified, against the system's CA
    // store or, when set, this PEM file only. There is no switch to turn verification off.
    std::string ca_file;
    // Overall deadline in seconds (CURLOPT_TIMEOUT), 0 = none; low_speed_time_s guards stalls.
    long timeout_s = 0;
};

struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;  // lower-case names; repeats joined with ", "
    std::string body;
    uint64_t bytes_sent = 0;  // request body bytes that went out
    std::string header(const std::string& lower_name) const {
        auto it = headers.find(lower_name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// A request with a target's connection settings: every target's Options has
// connect_timeout_s, low_speed_time_s, ca_file and cancel, and each of its requests carries
// them.
template <typename TargetOptions>
Request request_for(const TargetOptions& o, std::string method, std::string url) {
    Request r;
    r.method = std::move(method);
    r.url = std::move(url);
    r.connect_timeout_s = o.connect_timeout_s;
    r.low_speed_time_s = o.low_speed_time_s;
    r.ca_file = o.ca_file;
    r.cancel = o.cancel;
    return r;
}

Expected<Response> perform(const Request& request);

bool is_retryable_status(long status);  // 408, 429, 5xx

// SigV4 as perform() applies it, exposed so tests can check it against AWS's published
// examples. Takes the caller's headers (which must hold x-amz-content-sha256 for S3), adds
// "Host" and "x-amz-date" (= amz_date, "20130524T000000Z") unless present, signs every
// header that has a value, and returns them all plus "Authorization". S3 rules: the path is
// encoded once (not twice), the query is sorted and re-encoded.
struct SigV4Signed {
    std::vector<std::string> headers;  // what to send
    std::string canonical_request, string_to_sign, signature;
};
Expected<SigV4Signed> sigv4_sign(const std::string& method, const std::string& url,
                                 const std::vector<std::string>& headers, const SigV4& key,
                                 const std::string& amz_date);

// Percent-encodes per RFC 3986 (unreserved A-Z a-z 0-9 - _ . ~ stay); keep_slash leaves '/'.
std::string url_encode(const std::string& text, bool keep_slash = false);

// The URL without userinfo, query and fragment: safe for logs and error messages.
std::string redact_url(const std::string& url);

}  // namespace photorig::targets::http
