// Google Drive API v3 plumbing of GdriveTarget that needs no target state: its error JSON,
// status codes and Retry-After, resumable-session Range answers, file resources and the
// spool file's digests.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"
#include "targets/http.h"
#include "upload/job.h"

namespace photorig::targets::gdrive {

using json = nlohmann::json;

constexpr size_t kMaxPropertyBytes = 124;  // Drive: key + value of one property, UTF-8

// Text from a server made safe for a log line or an error message: printable, bounded.
std::string printable(const std::string& s, size_t max = 200);

std::optional<json> parse_json(const std::string& body);

std::string str_field(const json& j, const char* key);

// Drive's error JSON: {"error":{"code":403,"message":"...","errors":[{"reason":"..."}]}}.
struct DriveError {
    std::string reason, message;
};

DriveError drive_error(const std::string& body);

bool rate_limited(const std::string& reason);

bool retryable(long status, const std::string& body);

// Retry-After: delta-seconds or an HTTP date; -1 when absent or unreadable.
int64_t retry_after_ms(const http::Response& resp);

Error status_error(long status, const std::string& body, const std::string& what);

// "bytes=0-N" -> N + 1; "" -> 0 (nothing received); nullopt when unreadable.
std::optional<uint64_t> confirmed_bytes(const std::string& range);

std::string origin_of(const std::string& url);

// The job id as stored in appProperties (key + value must fit 124 bytes).
std::string job_key(const std::string& job_id);

struct Digests {
    std::string sha256, md5;  // lower-case hex
};

Expected<Digests> digest_file(const std::string& path);

// A Drive file resource, as far as an upload cares.
struct Remote {
    std::string id, name, md5, sha256;
    uint64_t size = 0;
    bool has_size = false;
};

Remote remote_from(const json& j);

// Same bytes as the spool file, as far as Drive lets us tell. `hash_checked` says whether a
// checksum (not only the size) was compared.
bool same_content(const Remote& r, const upload::Job& job, const Digests& d, bool* hash_checked);

std::string describe(const Remote& r);

// Where a resumable session stands, from its answer to a chunk PUT or a status query:
// 200/201 done (the file resource), 308 in progress (Range: what Drive holds), 404/410
// expired; any other status is an Error.
struct SessionState {
    enum Kind { in_progress, done, expired } kind = in_progress;
    uint64_t offset = 0;
    Remote file;
};
Expected<SessionState> session_answer(const http::Response& resp, const std::string& what);

// The session URI of a resume state saved for this job's bytes, else "" (start afresh).
std::string session_from_resume(const std::string& text, const upload::Job& job);

// A files.list answer's files; nullopt when it is no {"files":[...]}.
std::optional<std::vector<Remote>> files_from_list(const std::string& body);

// The token endpoint's refusal of a refresh, as an Error that says what to fix (never
// echoing Google's descriptions); `what` names the request.
Error token_refused(const http::Response& resp, const std::string& what,
                    const std::string& refresh_token_file);

}  // namespace photorig::targets::gdrive
