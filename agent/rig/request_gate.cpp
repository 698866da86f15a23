#include "rig/request_gate.h"

#include <algorithm>

#include "core/log.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
constexpr size_t kMaxVerbLength = 64;  // as RequestRouter: longer verbs answer on "unknown"
}  // namespace

bool RequestGate::admit(const mqtt::Event& event, const std::string& raw_verb, size_t queued,
                        int64_t now_ms) {
    if (event.overflow) {
        ++stats_.requests_queue_full_total;
        refuse(event.message, raw_verb,
               make_error(protocol::codes::queue_full,
                          "request queue is full: " + std::to_string(queued) +
                              " messages waiting for the agent; the request was not read"),
               now_ms);
        return false;
    }
    const auto& verbs = protocol::known_verbs();
    const bool known = std::find(verbs.begin(), verbs.end(), raw_verb) != verbs.end();
    auto bucket = requests_.try_emplace(known ? raw_verb : "", kRequestsPerS, kRequestBurst).first;
    if (bucket->second.take(now_ms)) return true;
    ++stats_.requests_rate_limited_total;
    refuse(event.message, raw_verb,
           make_error(protocol::codes::rate_limited,
                      "too many requests: the agent serves " + std::to_string(int(kRequestsPerS)) +
                          " a second (bursts of " + std::to_string(int(kRequestBurst)) +
                          "); try again shortly"),
           now_ms);
    return false;
}

void RequestGate::refuse(const mqtt::Message& message, const std::string& raw_verb, const Error& e,
                         int64_t now_ms) {
    ++stats_.requests_total;
    ++stats_.request_errors_total;
    if (!refusal_answers_.take(now_ms)) {
        ++stats_.requests_unanswered_total;
        return;
    }
    LOG_DEBUG(kLog, "request refused: " << e.describe());
    // The transaction is echoed when the payload is a request we can read (overflow Events
    // carry no payload: null).
    protocol::Envelope partial;
    (void)protocol::parse_envelope(message.payload, limits_, &partial);
    std::string verb = raw_verb.size() <= kMaxVerbLength ? raw_verb : "unknown";
    responder_.respond(verb, message, protocol::response_error(partial.transaction_json, e));
}

}  // namespace photorig::rig
