// The request layer under GdriveTarget: Drive API requests with a bearer token (the OAuth
// refresh-token flow, one refresh at a time, the token refreshed before it expires and once
// more after a 401), the retry budget of one call (backoff with jitter, at least Retry-After)
// and files.list. What an upload does with these requests (folders, resumable sessions,
// verification) stays in gdrive_target.cpp; stateless helpers are in gdrive_api.h.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/expected.h"
#include "targets/gdrive_api.h"
#include "targets/gdrive_target.h"
#include "targets/http.h"

namespace photorig::targets::gdrive {

// The retry allowance of one upload() (or diagnostic) call.
struct Budget {
    int failures = 0;  // consecutive, reset by progress
};

struct Token {
    std::string value;
    int64_t refresh_at_ms = 0;  // monotonic
    uint64_t generation = 0;
};

class Client {
  public:
    // `opt` (already normalised) and `api` (the API base URL without a trailing '/') belong to
    // the owner and must outlive the client.
    Client(const GdriveTarget::Options& opt, const std::string& api) : opt_(opt), api_(api) {}

    // A request with the configured timeouts and cancel flag, nothing else.
    http::Request base_request(const std::string& method, const std::string& url) const;
    bool cancelled() const;

    // Counts a failed attempt and waits before the next one (retry_after: ms, -1 = none).
    Status backoff(Budget& b, const std::string& why, int64_t retry_after);

    // A valid access token, refreshed when needed (transient refresh failures wait and retry).
    Expected<Token> current_token(Budget& b);
    // Forgets the token that drew a 401 (not a newer one another thread already fetched).
    void invalidate_token(uint64_t generation);

    Expected<http::Response> call(const std::string& method, const std::string& url,
                                  const std::string& body, const std::vector<std::string>& headers,
                                  Budget& b, bool retry, bool auth = true);

    // files.list with query `q`, asking for `fields` of each file.
    Expected<std::vector<Remote>> list(Budget& b, const std::string& q, const std::string& fields);

  private:
    Status sleep_ms(int64_t ms);
    Expected<std::string> secret(const std::string& value, const std::string& file,
                                 const char* key) const;
    Expected<Token> refresh_locked();
    std::string list_url(const std::string& q, const std::string& fields) const;

    const GdriveTarget::Options& opt_;
    const std::string& api_;

    std::mutex token_mutex_;  // held while refreshing: one refresh at a time
    Token token_;
    uint64_t generations_ = 0;
};

}  // namespace photorig::targets::gdrive
