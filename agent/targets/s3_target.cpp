#include "targets/s3_target.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/log.h"
#include "core/sha256.h"
#include "core/text.h"
#include "targets/http.h"
#include "targets/remote_path.h"
#include "targets/s3_wire.h"

namespace photorig::targets {
namespace {

const char* kComponent = "s3";
const char* kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

using text::lower;

std::string base64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

// One read of the file: sha256 and md5 of the whole, and of each part when part_size > 0.
Expected<S3Target::Digests> digest_file(const std::string& path, uint64_t size,
                                        uint64_t part_size) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return make_error(err == ENOENT ? "source_missing" : "io_error",
                          "open " + path + ": " + std::strerror(err));
    }
    S3Target::Digests d;
    Sha256 whole_sha;
    Digest whole_md5(Digest::Algorithm::md5);
    std::unique_ptr<Sha256> part_sha;
    std::unique_ptr<Digest> part_md5;
    uint64_t in_part = 0, total = 0;
    std::vector<char> buf(1 << 20);
    auto finish_part = [&] {
        d.part_sha256.push_back(part_sha->hex_digest());
        d.part_md5.push_back(part_md5->hex_digest());
        part_sha.reset();
        part_md5.reset();
        in_part = 0;
    };
    for (;;) {
        size_t want = buf.size();
        if (part_size > 0) {
            if (!part_sha) {
                part_sha = std::make_unique<Sha256>();
                part_md5 = std::make_unique<Digest>(Digest::Algorithm::md5);
            }
            want = static_cast<size_t>(std::min<uint64_t>(want, part_size - in_part));
        }
        ssize_t n = ::read(fd, buf.data(), want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            Error e = make_error("io_error", "read " + path + ": " + std::strerror(errno));
            ::close(fd);
            return e;
        }
        if (n == 0) break;
        whole_sha.update(buf.data(), static_cast<size_t>(n));
        whole_md5.update(buf.data(), static_cast<size_t>(n));
        total += static_cast<uint64_t>(n);
        if (part_size > 0) {
            part_sha->update(buf.data(), static_cast<size_t>(n));
            part_md5->update(buf.data(), static_cast<size_t>(n));
            in_part += static_cast<uint64_t>(n);
            if (in_part == part_size) finish_part();
        }
    }
    ::close(fd);
    if (part_size > 0 && part_sha && in_part > 0) finish_part();
    d.sha256 = whole_sha.hex_digest();
    d.md5 = whole_md5.hex_digest();
    if (total != size)
        return make_error("checksum_mismatch", path + " holds " + std::to_string(total) +
                                                   " bytes, the job says " + std::to_string(size));
    return d;
}

std::string strip_etag(std::string e) {
    for (const char* q : {"&quot;", "&#34;"}) {
        for (auto p = e.find(q); p != std::string::npos; p = e.find(q)) e.erase(p, std::strlen(q));
    }
    std::string out;
    for (char c : e)
        if (c != '"' && c != ' ') out.push_back(c);
    if (out.rfind("W/", 0) == 0) out.erase(0, 2);
    return lower(out);
}

std::string xml_text(const std::string& xml, const std::string& tag) {
    const std::string open = "<" + tag + ">", close = "</" + tag + ">";
    auto b = xml.find(open);
    if (b == std::string::npos) return std::string();
    b += open.size();
    auto e = xml.find(close, b);
    return e == std::string::npos ? std::string() : xml.substr(b, e - b);
}

// The inner text of every <tag>...</tag>, in order.
std::vector<std::string> xml_blocks(const std::string& xml, const std::string& tag) {
    const std::string open = "<" + tag + ">", close = "</" + tag + ">";
    std::vector<std::string> out;
    for (auto b = xml.find(open); b != std::string::npos; b = xml.find(open, b)) {
        b += open.size();
        auto e = xml.find(close, b);
        if (e == std::string::npos) break;
        out.push_back(xml.substr(b, e - b));
        b = e + close.size();
    }
    return out;
}

std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

// The S3 error code in an answer body ("" when none).
std::string s3_code(const http::Response& r) {
    // Server text: valid UTF-8 and bounded before it reaches a message or an event.
    return text::printable(xml_text(r.body, "Code"), 100);
}

Error s3_error(const http::Response& r, const std::string& what) {
    std::string code = s3_code(r);
    std::string s = what + ": HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code);
    if (code == "RequestTimeTooSkewed")
        return make_error("target_auth", s + " (this machine's clock is off: sync it)");
    if (r.status == 401 || r.status == 403 || code == "SignatureDoesNotMatch" ||
        code == "InvalidAccessKeyId" || code == "AccessDenied")
        return make_error("target_auth",
                          s + " (check upload.s3.access_key_id_file, secret_access_key_file, "
                              "region, and the key's permissions on the bucket)");
    if (code == "NoSuchBucket")
        return make_error("bad_config", s + " (upload.s3.bucket does not exist at this endpoint)");
    if (r.status == 507 || code == "QuotaExceeded") return make_error("disk_full", s);
    if (http::is_retryable_status(r.status) || code == "SlowDown" || code == "RequestTimeout" ||
        code == "InternalError")
        return make_error("target_unavailable", s);
    return make_error("io_error", s);
}

std::string with_suffix(const std::string& key, const std::string& suffix) {
    auto slash = key.rfind('/');
    auto dot = key.rfind('.');
    size_t base = slash == std::string::npos ? 0 : slash + 1;
    if (dot == std::string::npos || dot <= base) return key + suffix;
    return key.substr(0, dot) + suffix + key.substr(dot);
}

std::string composite_etag(const std::vector<std::string>& part_md5) {
    Digest md(Digest::Algorithm::md5);
    for (const auto& p : part_md5) {
        std::string raw = hex::decode(p);
        md.update(raw.data(), raw.size());
    }
    return md.hex_digest() + "-" + std::to_string(part_md5.size());
}

bool md5_shaped(const std::string& etag) {  // "<32 hex>" or "<32 hex>-<parts>"
    if (etag.size() < 32 || etag.find_first_not_of("0123456789abcdef") < 32) return false;
    if (etag.size() == 32) return true;
    return etag.size() > 33 && etag[32] == '-' &&
           etag.find_first_not_of("0123456789", 33) == std::string::npos;
}

// The ETag S3 gives an object of these bytes: their MD5, or after a multipart upload
// md5(part md5s)-N.
bool etag_matches(const std::string& etag, const S3Target::Digests& d, bool multipart) {
    return etag == d.md5 || (multipart && etag == composite_etag(d.part_md5));
}

// The spool file's digests, provided it still hashes to the job's sha256.
Expected<S3Target::Digests> spool_digests(const upload::Job& job, uint64_t part_size) {
    auto digests = digest_file(job.path, job.size, part_size);
    if (digests && digests->sha256 != lower(job.sha256))
        return make_error("checksum_mismatch", job.path + " no longer hashes to the job's sha256");
    return digests;
}

// The i-th key tried for a job: the template's, then "-<capture_id first 8>" before the
// extension, then "-2", "-3"... after that.
std::string candidate_key(const std::string& base_key, const std::string& capture_id, int i) {
    if (i == 0) return base_key;
    const std::string suffix = "-" + capture_id.substr(0, 8);
    if (i == 1 && !capture_id.empty()) return with_suffix(base_key, suffix);
    return with_suffix(base_key, (capture_id.empty() ? "" : suffix) + "-" + std::to_string(i));
}

using s3::Resume;

std::string encode_resume(const std::string& key, const std::string& upload_id,
                          const upload::Job& job, uint64_t part_size,
                          const std::vector<std::pair<int, std::string>>& parts) {
    nlohmann::json j;
    j["v"] = 1;
    j["kind"] = "s3-multipart";
    j["key"] = key;
    j["upload_id"] = upload_id;
    j["size"] = job.size;
    j["sha256"] = job.sha256;
    j["part_size"] = part_size;
    j["parts"] = nlohmann::json::array();
    for (const auto& [n, etag] : parts) j["parts"].push_back({n, etag});
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A whole number >= 0 stored under `key`, else nothing: a float or a negative number in a
// damaged record must not be converted (out of range, that is undefined behaviour).
std::optional<uint64_t> unsigned_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
}

// The journal's resume record is ours, but read as untrusted (a damaged journal): anything
// unexpected means starting the upload afresh, never a resume from wrong parts.
std::optional<Resume> decode_resume(const std::string& text, const upload::Job& job,
                                    uint64_t part_size) {
    if (text.empty()) return std::nullopt;
    try {
        auto j = nlohmann::json::parse(text);
        if (!j.is_object()) return std::nullopt;
        if (unsigned_field(j, "v") != 1u || j.value("kind", "") != "s3-multipart")
            return std::nullopt;
        if (unsigned_field(j, "size") != job.size || j.value("sha256", "") != job.sha256 ||
            unsigned_field(j, "part_size") != part_size)
            return std::nullopt;
        Resume r;
        r.key = j.value("key", "");
        r.upload_id = j.value("upload_id", "");
        for (const auto& p : j.at("parts")) {
            // S3 part numbers run 1..10000.
            const auto& number = p.at(0);
            if (!number.is_number_unsigned() || number.get<uint64_t>() < 1 ||
                number.get<uint64_t>() > 10000)
                return std::nullopt;
            r.parts.emplace_back(static_cast<int>(number.get<uint64_t>()),
                                 p.at(1).get<std::string>());
        }
        if (r.key.empty()) return std::nullopt;
        return r;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

S3Target::S3Target(Options options) : opt_(std::move(options)) {
    std::string e = opt_.endpoint;
    auto sep = e.find("://");
    scheme_ = sep == std::string::npos ? "https" : lower(e.substr(0, sep));
    std::string rest = sep == std::string::npos ? e : e.substr(sep + 3);
    while (!rest.empty() && rest.back() == '/') rest.pop_back();
    host_ = rest;  // host[:port][/prefix]
    if (opt_.part_size == 0) opt_.part_size = 8ull << 20;
}

S3Target::~S3Target() = default;

std::string S3Target::object_url(const std::string& key) const {
    std::string k = http::url_encode(key, true);
    if (opt_.path_style)
        return join_remote(join_remote(scheme_ + "://" + host_, http::url_encode(opt_.bucket)), k);
    return join_remote(scheme_ + "://" + opt_.bucket + "." + host_, k);
}

namespace {
http::Request s3_request(const S3Target::Options& o, const std::string& method,
                         const std::string& url) {
    http::Request r = http::request_for(o, method, url);
    r.sigv4 = http::SigV4{o.region, "s3", o.access_key, o.secret_key};
    return r;
}
}  // namespace

Expected<S3Target::Head> S3Target::head(const std::string& key) const {
    auto r = s3_request(opt_, "HEAD", object_url(key));
    r.headers = {std::string("x-amz-content-sha256: ") + kEmptySha};
    auto resp = http::perform(r);
    if (!resp) return resp.error();
    Head h;
    if (resp->status == 404) return h;
    if (resp->status != 200) return s3_error(*resp, "HEAD " + http::redact_url(r.url));
    return s3::head_from(*resp);
}

void S3Target::abort_multipart(const std::string& key, const std::string& upload_id) const {
    if (upload_id.empty()) return;
    auto r =
        s3_request(opt_, "DELETE", object_url(key) + "?uploadId=" + http::url_encode(upload_id));
    r.headers = {std::string("x-amz-content-sha256: ") + kEmptySha};
    r.cancel = nullptr;
    auto resp = http::perform(r);
    if (!resp || (resp->status != 204 && resp->status != 200 && resp->status != 404))
        LOG_WARN(kComponent,
                 "could not abort multipart upload of "
                     << key << " (the bucket's lifecycle rule "
                     << "for incomplete uploads will reclaim it): "
                     << (resp ? "HTTP " + std::to_string(resp->status) : resp.error().describe()));
}

Expected<upload::UploadResult> S3Target::upload(const upload::Job& job,
                                                const upload::ProgressFn& progress) {
    std::string resume = opt_.load_resume ? opt_.load_resume(job.job_id) : std::string();
    std::function<void(const std::string&)> save;
    if (opt_.save_resume) save = [&](const std::string& s) { opt_.save_resume(job.job_id, s); };
    return upload(job, progress, resume, save);
}

Expected<upload::UploadResult> S3Target::upload(
    const upload::Job& job, const upload::ProgressFn& progress, const std::string& resume_text,
    const std::function<void(const std::string&)>& save_in) {
    const std::string what = "s3 upload " + job.job_id;
    auto save = [&](const std::string& s) {
        if (save_in) save_in(s);
    };
    if (opt_.bucket.empty()) return make_error("bad_config", what + ": upload.s3.bucket is empty");
    const bool multipart = job.size >= opt_.multipart_threshold;
    auto resume = multipart ? decode_resume(resume_text, job, opt_.part_size) : std::nullopt;

    // 0. The spool file must still be the job's bytes.
    auto digests = spool_digests(job, multipart ? opt_.part_size : 0);
    if (!digests) {
        const Error& e = digests.error();
        if (resume && (e.code == "source_missing" || e.code == "checksum_mismatch")) {
            abort_multipart(resume->key, resume->upload_id);
            save("");
        }
        return e.with_context(what);
    }
    const Digests& d = *digests;
    auto done = [&](const std::string& key, const Head& h) {
        save("");
        if (progress) progress(job.size, job.size);
        return upload::UploadResult{http::redact_url(object_url(key)), 0,
                                    etag_matches(h.etag, d, multipart) ? lower(job.sha256) : ""};
    };

    // A multipart upload that an earlier run started: its key was chosen then.
    if (resume) {
        auto h = head(resume->key);
        if (!h) return h.error().with_context(what);
        if (holds_job(*h, job, d, multipart)) return done(resume->key, *h);
        if (!h->exists)
            return put_multipart(job, resume->key, d, progress, resume->upload_id, resume->parts,
                                 save);
        abort_multipart(resume->key, resume->upload_id);  // the key got taken meanwhile
        save("");
    }

    // 1. Choose the key: the template's, or a suffixed one if that holds another photo.
    auto chosen = choose_key(job, d, multipart);
    if (!chosen) return chosen.error();
    if (chosen->holds_job) return done(chosen->key, chosen->head);

    if (!multipart) return put_single(job, chosen->key, d, progress);
    return put_multipart(job, chosen->key, d, progress, "", {}, save);
}

bool S3Target::holds_job(const Head& h, const upload::Job& job, const Digests& d, bool multipart) {
    if (!h.exists || h.size != job.size) return false;
    if (md5_shaped(h.etag) && !etag_matches(h.etag, d, multipart)) return false;
    return h.meta_sha256 == lower(job.sha256) ||
           (h.meta_sha256.empty() && etag_matches(h.etag, d, multipart));
}

Expected<S3Target::KeyChoice> S3Target::choose_key(const upload::Job& job, const Digests& d,
                                                   bool multipart) const {
    const std::string what = "s3 upload " + job.job_id;
    auto base = upload::expand_template(opt_.key_template, job);
    if (!base) return base.error().with_context(what);
    std::string base_key = *base;
    while (!base_key.empty() && base_key.front() == '/') base_key.erase(0, 1);
    if (base_key.empty() || base_key.back() == '/')
        return make_error("bad_template", what + ": the key template gave '" + *base + "'");
    KeyChoice choice;
    for (int i = 0;; ++i) {
        if (i > 20) return make_error("io_error", what + ": no free key for " + base_key);
        choice.key = candidate_key(base_key, job.capture_id, i);
        auto h = head(choice.key);
        if (!h) return h.error().with_context(what);
        if (!h->exists) return choice;
        if (holds_job(*h, job, d, multipart)) {
            LOG_INFO(kComponent, "job " << job.job_id << " already at " << choice.key);
            choice.holds_job = true;
            choice.head = *h;
            return choice;
        }
        LOG_INFO(kComponent, "job " << job.job_id << ": " << choice.key
                                    << " holds other content; trying another key");
    }
}

Expected<upload::UploadResult> S3Target::put_single(const upload::Job& job, const std::string& key,
                                                    const Digests& d,
                                                    const upload::ProgressFn& progress) {
    const std::string what = "s3 upload " + job.job_id;
    auto r = s3_request(opt_, "PUT", object_url(key));
    r.headers = {
        "x-amz-content-sha256: " + d.sha256,
        "Content-MD5: " + base64(hex::decode(d.md5)),
        "Content-Type: " + (job.mime.empty() ? std::string("application/octet-stream") : job.mime),
        "x-amz-meta-sha256: " + d.sha256,
        "x-amz-meta-job-id: " + http::url_encode(job.job_id),
        "x-amz-meta-capture-id: " + http::url_encode(job.capture_id)};
    r.body_file = job.path;
    r.body_length = job.size;
    r.max_send_speed = opt_.max_send_speed;
    r.limiter = opt_.limiter.get();
    LinkGate::Turn turn(opt_.gate.get());
    r.link_turn = &turn;
    if (progress) r.progress = [&](uint64_t sent, uint64_t total) { progress(sent, total); };
    auto resp = http::perform(r);
    turn.release();  // the body is there (or failed): the next transfer's may start
    if (!resp) return resp.error().with_context(what);
    if (resp->status != 200) {
        std::string code = s3_code(*resp);
        if (code == "XAmzContentSHA256Mismatch" || code == "BadDigest") {
            auto now = Sha256::of_file(job.path);
            if (now && *now != d.sha256)
                return make_error("checksum_mismatch",
                                  what + ": " + job.path + " changed while it was sent");
            return make_error("target_unavailable",
                              what + ": the server received other bytes than were sent (" + code +
                                  "); will retry");
        }
        return s3_error(*resp, what + ": PUT " + key);
    }
    return verify(job, key, d, false, resp->bytes_sent);
}

struct S3Target::Multipart {
    std::string key, url;
    std::string upload_id;             // "" until CreateMultipartUpload answered
    std::map<int, std::string> parts;  // part number -> etag the server holds
    uint64_t bytes_sent = 0;
    LinkGate::Turn* turn = nullptr;  // held from the first part's body to the last one's
};

namespace {
// Bytes in part n (from 1) of a file of `size` bytes cut into parts of `part_size`.
uint64_t part_length(uint64_t size, uint64_t part_size, int n) {
    return std::min<uint64_t>(part_size, size - static_cast<uint64_t>(n - 1) * part_size);
}
}  // namespace

Expected<upload::UploadResult> S3Target::put_multipart(
    const upload::Job& job, const std::string& key, const Digests& d,
    const upload::ProgressFn& progress, const std::string& upload_id_in,
    std::vector<std::pair<int, std::string>> parts_in, const SaveResume& save) {
    LinkGate::Turn turn(opt_.gate.get());
    Multipart mp{key, object_url(key), upload_id_in, {}, 0, &turn};
    // A second round when the server forgot the upload (NoSuchUpload) in the first one.
    for (int round = 0; round < 2; ++round) {
        const bool first_round = round == 0;
        if (!mp.upload_id.empty())
            if (auto st = find_stored_parts(job, d, parts_in, mp); !st) return st.error();
        if (mp.upload_id.empty()) {
            if (auto st = create_multipart(job, d, mp); !st) return st.error();
            save_resume_state(job, mp, save);
        }
        auto sent = send_parts(job, d, progress, first_round, save, mp);
        turn.release();  // every part's body is there: the next transfer's may start
        if (!sent) return sent.error();
        if (*sent == Step::done) {
            auto completed = complete_multipart(job, d, first_round, mp);
            if (!completed) return completed.error();
            if (*completed == Step::done) break;
        }
        mp.upload_id.clear();
        parts_in.clear();
    }
    if (save) save("");
    return verify(job, key, d, true, mp.bytes_sent);
}

void S3Target::save_resume_state(const upload::Job& job, const Multipart& mp,
                                 const SaveResume& save) const {
    if (save)
        save(encode_resume(mp.key, mp.upload_id, job, opt_.part_size,
                           {mp.parts.begin(), mp.parts.end()}));
}

Status S3Target::find_stored_parts(const upload::Job& job, const Digests& d,
                                   const std::vector<std::pair<int, std::string>>& saved,
                                   Multipart& mp) const {
    const std::string what = "s3 upload " + job.job_id;
    const int part_count = static_cast<int>(d.part_md5.size());
    mp.parts.clear();
    for (const auto& [n, etag] : saved)
        if (n >= 1 && n <= part_count && strip_etag(etag) == d.part_md5[n - 1])
            mp.parts[n] = strip_etag(etag);
    // Ask the server what it has (ListParts); servers without it: trust our record.
    auto lr = s3_request(opt_, "GET", mp.url + "?uploadId=" + http::url_encode(mp.upload_id));
    lr.headers = {std::string("x-amz-content-sha256: ") + kEmptySha};
    auto listed = http::perform(lr);
    if (!listed) return listed.error().with_context(what);
    if (listed->status == 404 && s3_code(*listed) == "NoSuchUpload") {
        LOG_INFO(kComponent,
                 "job " << job.job_id << ": the multipart upload expired; starting over");
        mp.upload_id.clear();
        mp.parts.clear();
    } else if (listed->status == 200) {
        mp.parts.clear();
        for (const auto& [n, etag] : s3::listed_parts(listed->body))
            if (n >= 1 && n <= part_count && etag == d.part_md5[n - 1]) mp.parts[n] = etag;
    }  // else: ListParts not implemented here (s3rver): keep the saved parts
    return ok();
}

Status S3Target::create_multipart(const upload::Job& job, const Digests& d, Multipart& mp) const {
    const std::string what = "s3 upload " + job.job_id;
    auto cr = s3_request(opt_, "POST", mp.url + "?uploads");
    cr.headers = {
        std::string("x-amz-content-sha256: ") + kEmptySha,
        "Content-Type: " + (job.mime.empty() ? std::string("application/octet-stream") : job.mime),
        "x-amz-meta-sha256: " + d.sha256, "x-amz-meta-job-id: " + http::url_encode(job.job_id),
        "x-amz-meta-capture-id: " + http::url_encode(job.capture_id)};
    auto created = http::perform(cr);
    if (!created) return created.error().with_context(what);
    if (created->status != 200)
        return s3_error(*created, what + ": CreateMultipartUpload " + mp.key);
    mp.upload_id = s3::upload_id_from(created->body);
    if (mp.upload_id.empty())
        return make_error("target_unavailable",
                          what + ": CreateMultipartUpload answered no UploadId");
    mp.parts.clear();
    return ok();
}

Expected<S3Target::Step> S3Target::send_parts(const upload::Job& job, const Digests& d,
                                              const upload::ProgressFn& progress, bool first_round,
                                              const SaveResume& save, Multipart& mp) const {
    uint64_t done_bytes = 0;
    for (const auto& part : mp.parts)
        done_bytes += part_length(job.size, opt_.part_size, part.first);
    if (progress) progress(done_bytes, job.size);
    const int part_count = static_cast<int>(d.part_md5.size());
    for (int n = 1; n <= part_count; ++n) {
        if (mp.parts.count(n)) continue;
        auto sent = send_part(job, d, n, done_bytes, progress, first_round, save, mp);
        if (!sent || *sent == Step::upload_gone) return sent;
        done_bytes += part_length(job.size, opt_.part_size, n);
        save_resume_state(job, mp, save);
    }
    return Step::done;
}

Expected<S3Target::Step> S3Target::send_part(const upload::Job& job, const Digests& d, int n,
                                             uint64_t done_bytes,
                                             const upload::ProgressFn& progress, bool first_round,
                                             const SaveResume& save, Multipart& mp) const {
    const std::string what = "s3 upload " + job.job_id;
    auto pr = s3_request(opt_, "PUT",
                         mp.url + "?partNumber=" + std::to_string(n) +
                             "&uploadId=" + http::url_encode(mp.upload_id));
    pr.headers = {"x-amz-content-sha256: " + d.part_sha256[n - 1],
                  "Content-MD5: " + base64(hex::decode(d.part_md5[n - 1]))};
    pr.body_file = job.path;
    pr.body_offset = static_cast<uint64_t>(n - 1) * opt_.part_size;
    pr.body_length = part_length(job.size, opt_.part_size, n);
    pr.max_send_speed = opt_.max_send_speed;
    pr.limiter = opt_.limiter.get();
    pr.link_turn = mp.turn;
    if (progress)
        pr.progress = [&](uint64_t sent, uint64_t) { progress(done_bytes + sent, job.size); };
    auto resp = http::perform(pr);
    if (!resp) {
        Error e = resp.error();
        if (e.code == "source_missing" || e.code == "io_error")
            if (auto intact = source_intact(job, d, mp, save); !intact) return intact.error();
        return e.with_context(what);
    }
    mp.bytes_sent += resp->bytes_sent;
    if (resp->status == 404 && s3_code(*resp) == "NoSuchUpload" && first_round)
        return Step::upload_gone;
    if (resp->status != 200) {
        std::string code = s3_code(*resp);
        if (code == "XAmzContentSHA256Mismatch" || code == "BadDigest") {
            if (auto intact = source_intact(job, d, mp, save); !intact) return intact.error();
            return make_error("target_unavailable", what + ": part " + std::to_string(n) +
                                                        " arrived damaged (" + code + ")");
        }
        return s3_error(*resp, what + ": UploadPart " + std::to_string(n) + " of " + mp.key);
    }
    std::string etag = strip_etag(resp->header("etag"));
    if (md5_shaped(etag) && etag != d.part_md5[n - 1])
        return make_error("target_unavailable", what + ": part " + std::to_string(n) +
                                                    " stored with another MD5 than was sent");
    mp.parts[n] = etag.empty() ? d.part_md5[n - 1] : etag;
    return Step::done;
}

Status S3Target::source_intact(const upload::Job& job, const Digests& d, const Multipart& mp,
                               const SaveResume& save) const {
    auto now = Sha256::of_file(job.path);
    if (now && *now == d.sha256) return ok();
    abort_multipart(mp.key, mp.upload_id);
    if (save) save("");
    return make_error(now ? "checksum_mismatch" : "source_missing",
                      "s3 upload " + job.job_id + ": " + job.path +
                          (now ? " changed" : " vanished") + " during the upload");
}

Expected<S3Target::Step> S3Target::complete_multipart(const upload::Job& job, const Digests& d,
                                                      bool first_round, Multipart& mp) const {
    const std::string what = "s3 upload " + job.job_id;
    std::string xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (const auto& [n, etag] : mp.parts)
        xml += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>\"" +
               xml_escape(etag) + "\"</ETag></Part>";
    xml += "</CompleteMultipartUpload>";
    auto cr = s3_request(opt_, "POST", mp.url + "?uploadId=" + http::url_encode(mp.upload_id));
    cr.headers = {"Content-Type: application/xml"};
    cr.body = xml;
    auto completed = http::perform(cr);
    if (!completed) return completed.error().with_context(what);
    // S3 may answer 200 and still report an error in the body.
    const bool failed =
        completed->status != 200 || completed->body.find("<Error>") != std::string::npos;
    if (!failed) return Step::done;
    std::string code = s3_code(*completed);
    if (code == "NoSuchUpload" || completed->status == 404) {
        // Completed by an earlier attempt whose answer was lost? Then the key is ours.
        auto h = head(mp.key);
        if (!h) return h.error().with_context(what);
        if (h->exists && h->size == job.size && h->meta_sha256 == d.sha256) return Step::done;
        if (first_round) return Step::upload_gone;
    }
    if (completed->status == 200) completed->status = 500;  // an error inside a 200
    return s3_error(*completed, what + ": CompleteMultipartUpload " + mp.key);
}

Expected<upload::UploadResult> S3Target::verify(const upload::Job& job, const std::string& key,
                                                const Digests& d, bool multipart,
                                                uint64_t bytes_sent) const {
    const std::string what = "s3 upload " + job.job_id + ": verify " + key;
    auto h = head(key);
    if (!h) return h.error().with_context(what);
    std::string problem;
    if (!h->exists)
        problem = "the object is not there after the upload";
    else if (h->size != job.size)
        problem = "the object holds " + std::to_string(h->size) + " bytes, not " +
                  std::to_string(job.size);
    else if (h->meta_sha256 != d.sha256)
        problem = "x-amz-meta-sha256 is not the file's";
    else if (md5_shaped(h->etag) && !etag_matches(h->etag, d, multipart))
        problem = "the ETag is not the MD5 of what was sent";
    if (!problem.empty()) {
        // Never leave a wrong object under a key that a repeat would take as done.
        if (h->exists && h->meta_sha256 == d.sha256) {
            auto r = s3_request(opt_, "DELETE", object_url(key));
            r.headers = {std::string("x-amz-content-sha256: ") + kEmptySha};
            (void)http::perform(r);
        }
        return make_error("target_unavailable", what + ": " + problem + "; will retry");
    }
    // ETags that are no MD5 (SSE-KMS, some gateways): the server checked each payload's
    // sha256 against x-amz-content-sha256 as it arrived.
    return upload::UploadResult{http::redact_url(object_url(key)), bytes_sent, lower(job.sha256)};
}

// ------------------------------------------------------------------ s3_wire.h: the parsers

namespace s3 {

ObjectHead head_from(const http::Response& resp) {
    ObjectHead h;
    h.exists = true;
    try {
        h.size = std::stoull(resp.header("content-length"));
    } catch (...) {
        h.size = 0;
    }
    h.etag = strip_etag(resp.header("etag"));
    h.meta_sha256 = lower(resp.header("x-amz-meta-sha256"));
    return h;
}

std::string strip_etag(std::string etag) {
    return targets::strip_etag(std::move(etag));
}

bool md5_shaped(const std::string& etag) {
    return targets::md5_shaped(etag);
}

std::string error_code(const std::string& body) {
    http::Response r;
    r.body = body;
    return s3_code(r);
}

Error error_from(const http::Response& r, const std::string& what) {
    return s3_error(r, what);
}

std::string upload_id_from(const std::string& body) {
    return xml_text(body, "UploadId");
}

std::vector<std::pair<int, std::string>> listed_parts(const std::string& body) {
    std::vector<std::pair<int, std::string>> out;
    for (const auto& block : xml_blocks(body, "Part"))
        out.emplace_back(std::atoi(xml_text(block, "PartNumber").c_str()),
                         strip_etag(xml_text(block, "ETag")));
    return out;
}

std::string encode_resume(const std::string& key, const std::string& upload_id,
                          const upload::Job& job, uint64_t part_size,
                          const std::vector<std::pair<int, std::string>>& parts) {
    return targets::encode_resume(key, upload_id, job, part_size, parts);
}

std::optional<Resume> decode_resume(const std::string& text, const upload::Job& job,
                                    uint64_t part_size) {
    return targets::decode_resume(text, job, part_size);
}

}  // namespace s3
}  // namespace photorig::targets
