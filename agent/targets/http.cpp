#include "targets/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <utility>

#include "core/clock.h"
#include "core/sha256.h"
#include "core/text.h"

namespace photorig::targets::http {
namespace {

using text::lower;

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
        --e;
    return s.substr(b, e - b);
}

// Splits "Name: value" into lower-case name and trimmed value; false if there is no colon.
bool split_header(const std::string& line, std::string* name, std::string* value) {
    auto colon = line.find(':');
    if (colon == std::string::npos) return false;
    *name = lower(trim(line.substr(0, colon)));
    *value = trim(line.substr(colon + 1));
    return true;
}

bool has_header(const std::vector<std::string>& headers, const std::string& lower_name) {
    std::string n, v;
    for (const auto& h : headers)
        if (split_header(h, &n, &v) && n == lower_name) return true;
    return false;
}

std::string header_value(const std::vector<std::string>& headers, const std::string& lower_name) {
    std::string n, v;
    for (const auto& h : headers)
        if (split_header(h, &n, &v) && n == lower_name) return v;
    return std::string();
}

// Percent-decoding, as libcurl does it (a '%' without two hex digits stays as it is).
std::string url_decode(const std::string& s) {
    int len = 0;
    char* raw = curl_easy_unescape(nullptr, s.data(), static_cast<int>(s.size()), &len);
    if (!raw) return s;
    std::string out(raw, static_cast<size_t>(len));
    curl_free(raw);
    return out;
}

std::string escape_segment(const std::string& text) {
    char* raw = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
    if (!raw) return std::string();
    std::string out(raw);
    curl_free(raw);
    return out;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
    return std::string(reinterpret_cast<const char*>(md), len);
}

struct UrlParts {
    std::string scheme, host, port, path, query;
};

Expected<UrlParts> parse_url(const std::string& url) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
    if (!u) return make_error("io_error", "out of memory");
    if (curl_url_set(u.get(), CURLUPART_URL, url.c_str(),
                     CURLU_PATH_AS_IS | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        return make_error("bad_config", "malformed URL: " + redact_url(url));
    auto get = [&](CURLUPart part, std::string* out) {
        char* v = nullptr;
        if (curl_url_get(u.get(), part, &v, 0) == CURLUE_OK && v) {
            *out = v;
            curl_free(v);
        }
    };
    UrlParts p;
    get(CURLUPART_SCHEME, &p.scheme);
    get(CURLUPART_HOST, &p.host);
    get(CURLUPART_PORT, &p.port);
    get(CURLUPART_PATH, &p.path);
    get(CURLUPART_QUERY, &p.query);
    p.scheme = lower(p.scheme);
    if (p.path.empty()) p.path = "/";
    return p;
}

std::string utc_amz_date() {
    int64_t ms = clock::now_ms();
    time_t t = static_cast<time_t>(ms / 1000);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One easy handle per thread, reset before each use: keeps the connection cache (keep-alive)
// and DNS cache across calls from the same thread.
struct HandleDeleter {
    void operator()(CURL* h) const { curl_easy_cleanup(h); }
};

CURL* thread_handle() {
    thread_local std::unique_ptr<CURL, HandleDeleter> handle;
    if (!handle) {
        global_init();
        handle.reset(curl_easy_init());
    } else {
        curl_easy_reset(handle.get());
    }
    return handle.get();
}

struct Transfer {
    const Request* req = nullptr;
    Response* resp = nullptr;
    // request body
    const char* mem = nullptr;
    int fd = -1;
    uint64_t body_length = 0;
    uint64_t pos = 0;  // bytes of the body handed to curl so far
    bool source_short = false;
    std::string source_error;
    // response
    bool sink_refused = false;
    bool too_big = false;
    bool cancelled = false;
    uint64_t last_progress = UINT64_MAX;
    ~Transfer() {
        if (fd >= 0) ::close(fd);
    }
};

size_t read_cb(char* buffer, size_t size, size_t nitems, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    uint64_t want =
        std::min<uint64_t>(static_cast<uint64_t>(size) * nitems, t->body_length - t->pos);
    if (want == 0) return 0;
    if (t->req->limiter) {
        // Waiting here delays the bytes on the wire (curl sends what this returns at once);
        // the shared bucket keeps the sum of all transfers under the configured limit.
        want = std::min<uint64_t>(want, t->req->limiter->step(static_cast<size_t>(want)));
        if (!t->req->limiter->acquire(want, t->req->cancel)) {
            t->cancelled = true;
            return CURL_READFUNC_ABORT;
        }
    }
    if (t->mem) {
        std::memcpy(buffer, t->mem + t->pos, want);
        t->pos += want;
        return static_cast<size_t>(want);
    }
    for (;;) {
        ssize_t n = ::pread(t->fd, buffer, static_cast<size_t>(want),
                            static_cast<off_t>(t->req->body_offset + t->pos));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            t->source_error = std::strerror(errno);
            return CURL_READFUNC_ABORT;
        }
        if (n == 0) {  // the file is shorter than announced: never send a short body
            t->source_short = true;
            return CURL_READFUNC_ABORT;
        }
        t->pos += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
    }
}

int seek_cb(void* userp, curl_off_t offset, int origin) {
    auto* t = static_cast<Transfer*>(userp);
    if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->body_length)
        return CURL_SEEKFUNC_CANTSEEK;
    t->pos = static_cast<uint64_t>(offset);
    return CURL_SEEKFUNC_OK;
}

size_t write_cb(char* data, size_t size, size_t nmemb, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    size_t n = size * nmemb;
    if (t->req->body_sink) {
        if (!t->req->body_sink(data, n)) {
            t->sink_refused = true;
            return 0;
        }
        return n;
    }
    if (t->resp->body.size() + n > t->req->max_response_body) {
        t->too_big = true;
        return 0;
    }
    t->resp->body.append(data, n);
    return n;
}

size_t header_cb(char* data, size_t size, size_t nmemb, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    size_t n = size * nmemb;
    std::string line(data, n);
    if (line.compare(0, 5, "HTTP/") == 0) {
        t->resp->headers.clear();  // a new response (after 100 Continue): forget the old one
        return n;
    }
    std::string name, value;
    if (split_header(line, &name, &value) && !name.empty()) {
        auto it = t->resp->headers.find(name);
        if (it == t->resp->headers.end())
            t->resp->headers.emplace(name, value);
        else
            it->second += ", " + value;
    }
    return n;
}

int xferinfo_cb(void* userp, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t ultotal,
                curl_off_t ulnow) {
    auto* t = static_cast<Transfer*>(userp);
    if (t->req->cancel && t->req->cancel->load(std::memory_order_relaxed)) {
        t->cancelled = true;
        return 1;
    }
    // The last byte counts as sent only once the server has answered (perform() reports it
    // then): socket buffers take megabytes the server has not read yet, and a caller that
    // starts its next transfer at 100% (the uploader does) would start it too early.
    uint64_t sent = static_cast<uint64_t>(ulnow);
    if (ultotal > 0 && sent >= static_cast<uint64_t>(ultotal))
        sent = static_cast<uint64_t>(ultotal) - 1;
    if (t->req->progress && ultotal > 0 && sent != t->last_progress) {
        t->last_progress = sent;
        t->req->progress(sent, static_cast<uint64_t>(ultotal));
    }
    return 0;
}

}  // namespace

std::string url_encode(const std::string& text, bool keep_slash) {
    if (!keep_slash) return escape_segment(text);
    std::string out;
    size_t start = 0;
    for (size_t slash = text.find('/'); slash != std::string::npos;
         start = slash + 1, slash = text.find('/', start))
        out += escape_segment(text.substr(start, slash - start)) + "/";
    return out + escape_segment(text.substr(start));
}

std::string redact_url(const std::string& url) {
    std::string u = url;
    auto cut = u.find_first_of("?#");
    if (cut != std::string::npos) u.resize(cut);
    auto scheme = u.find("://");
    size_t start = scheme == std::string::npos ? 0 : scheme + 3;
    auto slash = u.find('/', start);
    auto at = u.rfind('@', slash == std::string::npos ? u.size() : slash);
    if (at != std::string::npos && at >= start) u.erase(start, at + 1 - start);
    return u;
}

bool is_retryable_status(long status) {
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

namespace {

// SigV4 signs a header's value with inner runs of spaces collapsed.
std::string collapse_spaces(const std::string& value) {
    std::string collapsed;
    for (char c : value) {
        if (c == ' ' && !collapsed.empty() && collapsed.back() == ' ') continue;
        collapsed.push_back(c);
    }
    return collapsed;
}

struct CanonicalHeaders {
    std::string lines;         // "name:value\n" for each signed header
    std::string signed_names;  // "name;name;..."
};

// Canonical headers: every header that has a value, lower-case names, sorted, inner runs
// of spaces collapsed. (A "Name:" with no value tells curl to drop a header: not sent.)
CanonicalHeaders canonical_headers(const std::vector<std::string>& headers) {
    std::map<std::string, std::string> canon;
    for (const auto& h : headers) {
        std::string n, v;
        if (!split_header(h, &n, &v) || v.empty()) continue;
        std::string collapsed = collapse_spaces(v);
        auto it = canon.find(n);
        if (it == canon.end())
            canon.emplace(n, collapsed);
        else
            it->second += "," + collapsed;
    }
    CanonicalHeaders out;
    for (const auto& [n, v] : canon) {
        out.lines += n + ":" + v + "\n";
        if (!out.signed_names.empty()) out.signed_names += ";";
        out.signed_names += n;
    }
    return out;
}

// Canonical query: each name and value decoded then encoded once, sorted.
std::string canonical_query(const std::string& q) {
    std::vector<std::pair<std::string, std::string>> params;
    size_t start = 0;
    while (start <= q.size() && !q.empty()) {
        size_t amp = q.find('&', start);
        std::string item =
            q.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
        if (!item.empty()) {
            auto eq = item.find('=');
            std::string k = eq == std::string::npos ? item : item.substr(0, eq);
            std::string v = eq == std::string::npos ? std::string() : item.substr(eq + 1);
            params.emplace_back(url_encode(url_decode(k)), url_encode(url_decode(v)));
        }
        if (amp == std::string::npos) break;
        start = amp + 1;
    }
    std::sort(params.begin(), params.end());
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty()) out += "&";
        out += k + "=" + v;
    }
    return out;
}

// The Host header as SigV4 signs it: the port only when it is not the scheme's default.
std::string host_header_value(const UrlParts& parts) {
    std::string host = parts.host;
    bool default_port = parts.port.empty() || (parts.scheme == "http" && parts.port == "80") ||
                        (parts.scheme == "https" && parts.port == "443");
    if (!default_port) host += ":" + parts.port;
    return host;
}

// HMAC chain secret -> date -> region -> service -> "aws4_request".
std::string signing_key(const SigV4& key, const std::string& date) {
    std::string k = hmac_sha256("AWS4" + key.secret_key, date);
    k = hmac_sha256(k, key.region);
    k = hmac_sha256(k, key.service);
    return hmac_sha256(k, "aws4_request");
}

}  // namespace

Expected<SigV4Signed> sigv4_sign(const std::string& method, const std::string& url,
                                 const std::vector<std::string>& headers, const SigV4& key,
                                 const std::string& amz_date) {
    auto parts = parse_url(url);
    if (!parts) return parts.error();
    if (amz_date.size() != 16) return make_error("bad_request", "sigv4: bad date");
    std::string payload_hash = header_value(headers, "x-amz-content-sha256");
    if (payload_hash.empty())
        return make_error("bad_request", "sigv4: x-amz-content-sha256 header missing");

    SigV4Signed out;
    out.headers = headers;
    if (!has_header(headers, "host")) out.headers.push_back("Host: " + host_header_value(*parts));
    if (!has_header(headers, "x-amz-date")) out.headers.push_back("x-amz-date: " + amz_date);

    const CanonicalHeaders canon = canonical_headers(out.headers);
    std::string canonical_uri = url_encode(url_decode(parts->path), true);
    out.canonical_request = method + "\n" + canonical_uri + "\n" + canonical_query(parts->query) +
                            "\n" + canon.lines + "\n" + canon.signed_names + "\n" + payload_hash;
    std::string date = amz_date.substr(0, 8);
    std::string scope = date + "/" + key.region + "/" + key.service + "/aws4_request";
    out.string_to_sign = "AWS4-HMAC-SHA256\n" + header_value(out.headers, "x-amz-date") + "\n" +
                         scope + "\n" + Sha256::of(out.canonical_request);
    std::string sig = hmac_sha256(signing_key(key, date), out.string_to_sign);
    out.signature = hex::encode(sig);
    out.headers.push_back("Authorization: AWS4-HMAC-SHA256 Credential=" + key.access_key + "/" +
                          scope + ", SignedHeaders=" + canon.signed_names +
                          ", Signature=" + out.signature);
    return out;
}

namespace {

using HeaderList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

// Points the transfer at the request body: the byte range of a file (opened and checked to be
// long enough) or the in-memory body.
Status open_body(const Request& request, const std::string& where, Transfer& t) {
    if (request.body_file.empty()) {
        t.mem = request.body.data();
        t.body_length = request.body.size();
        return ok();
    }
    t.fd = ::open(request.body_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (t.fd < 0) {
        int err = errno;
        return make_error(err == ENOENT ? "source_missing" : "io_error",
                          where + ": open " + request.body_file + ": " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(t.fd, &st) != 0 ||
        static_cast<uint64_t>(st.st_size) < request.body_offset + request.body_length)
        return make_error("io_error",
                          where + ": " + request.body_file + " is shorter than the range to send");
    t.body_length = request.body_length;
    return ok();
}

// The caller's headers plus "Expect:" for a body and, with sigv4, the payload hash and the
// signature headers.
Expected<std::vector<std::string>> headers_to_send(const Request& request, bool has_body,
                                                   const std::string& where) {
    std::vector<std::string> headers = request.headers;
    if (has_body && !has_header(headers, "expect"))
        headers.push_back("Expect:");  // no 100-continue stall
    if (!request.sigv4) return headers;
    if (!has_header(headers, "x-amz-content-sha256")) {
        if (!request.body_file.empty())
            return make_error("bad_request",
                              where + ": sigv4 with a file body needs x-amz-content-sha256");
        headers.push_back("x-amz-content-sha256: " + Sha256::of(request.body));
    }
    auto signed_req =
        sigv4_sign(request.method, request.url, headers, *request.sigv4, utc_amz_date());
    if (!signed_req) return signed_req.error().with_context(where);
    return std::move(signed_req->headers);
}

Expected<HeaderList> header_list(const std::vector<std::string>& headers,
                                 const std::string& where) {
    struct curl_slist* list = nullptr;
    for (const auto& hdr : headers) {
        auto* next = curl_slist_append(list, hdr.c_str());
        if (!next) {
            curl_slist_free_all(list);
            return make_error("io_error", where + ": out of memory");
        }
        list = next;
    }
    return HeaderList(list, &curl_slist_free_all);
}

// Timeouts, limits, buffers and authentication: everything but the method and the callbacks.
void set_connection_options(CURL* h, const Request& request, curl_slist* headers, char* errbuf) {
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, request.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, request.low_speed_time_s);
    if (request.timeout_s > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT, request.timeout_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    // Redirects are never followed: a 3xx is an answer the target reads, so credentials
    // (basic auth, a bearer token, a SigV4 signature) never go to a host it did not choose.
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!request.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, request.ca_file.c_str());
    if (request.max_send_speed > 0)
        curl_easy_setopt(h, CURLOPT_MAX_SEND_SPEED_LARGE,
                         static_cast<curl_off_t>(request.max_send_speed));
    // Large socket buffers cost nothing on loopback and help on fast links.
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024L);

    if (!request.basic_user.empty()) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        curl_easy_setopt(h, CURLOPT_USERNAME, request.basic_user.c_str());
        curl_easy_setopt(h, CURLOPT_PASSWORD, request.basic_password.c_str());
    }
}

// The method, the request body's read/seek callbacks and the response callbacks.
void set_transfer_options(CURL* h, const Request& request, bool has_body, Transfer& t) {
    if (request.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.body_length));
        curl_easy_setopt(h, CURLOPT_READFUNCTION, &read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &t);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
        if (request.method != "PUT")
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    } else if (request.method == "GET") {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &xferinfo_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
}

// Why a transfer failed: what our callbacks saw first, then curl's own reason.
Error transfer_error(CURLcode rc, const Transfer& t, const Request& request, const char* errbuf,
                     const std::string& where) {
    if (t.cancelled) return make_error("cancelled", where + ": cancelled");
    if (t.source_short)
        return make_error("io_error",
                          where + ": " + request.body_file + " shrank while it was being sent");
    if (!t.source_error.empty())
        return make_error("io_error",
                          where + ": read " + request.body_file + ": " + t.source_error);
    if (t.sink_refused)
        return make_error("io_error", where + ": response body refused by the receiver");
    if (t.too_big)
        return make_error("io_error", where + ": response body cut off at " +
                                          std::to_string(request.max_response_body) +
                                          " bytes (larger than an answer can be)");
    std::string reason = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
    switch (rc) {
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_SSL_CACERT_BADFILE:  // upload.ca_file is not a readable PEM CA
            return make_error("bad_config", where + ": " + reason);
        case CURLE_OUT_OF_MEMORY:
            return make_error("io_error", where + ": " + reason);
        default:
            // Refused, reset, DNS, timeouts, TLS, a response cut short: the peer or the path
            // to it is at fault; worth retrying later.
            return make_error("target_unavailable", where + ": " + reason);
    }
}

}  // namespace

Expected<Response> perform(const Request& request) {
    const std::string where = request.method + " " + redact_url(request.url);
    Response resp;
    Transfer t;
    t.req = &request;
    t.resp = &resp;

    const bool has_body = !request.body_file.empty() || !request.body.empty() ||
                          request.method == "PUT" || request.method == "POST";
    if (auto st = open_body(request, where, t); !st) return st.error();
    auto headers = headers_to_send(request, has_body, where);
    if (!headers) return headers.error();

    CURL* h = thread_handle();
    if (!h) return make_error("io_error", where + ": curl_easy_init failed");
    auto list = header_list(*headers, where);
    if (!list) return list.error();

    char errbuf[CURL_ERROR_SIZE] = {0};
    set_connection_options(h, request, list->get(), errbuf);
    set_transfer_options(h, request, has_body, t);

    // Right before the first body byte: with the gate, wait until no other body is on the link.
    const bool gated = request.link_turn && has_body && t.body_length > 0;
    if (gated && !request.link_turn->hold(request.cancel)) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
        return make_error("cancelled", where + ": cancelled while waiting for the link");
    }
    CURLcode rc = curl_easy_perform(h);

    curl_off_t uploaded = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &uploaded);
    resp.bytes_sent = static_cast<uint64_t>(uploaded);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp.status = status;
    // Nothing of this request may leak into the next use of the thread's handle.
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);

    if (gated && (rc != CURLE_OK || status >= 400)) request.link_turn->release();
    if (rc != CURLE_OK) return transfer_error(rc, t, request, errbuf, where);
    if (request.progress && has_body && t.body_length > 0 && t.last_progress != t.body_length &&
        status < 300)
        request.progress(resp.bytes_sent, t.body_length);
    return resp;
}

}  // namespace photorig::targets::http
