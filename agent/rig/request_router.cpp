#include "rig/request_router.h"

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "protocol/wire.h"
#include "rig/request_timing.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
constexpr size_t kMaxVerbLength = 64;
// Verbs with effects: a redelivered one is not carried out again (reads may repeat).
bool acts(const std::string& verb) {
    return verb == "capture" || verb == "config/set" || verb == "scan" || verb == "capture/cancel";
}
}  // namespace

void RequestRouter::refuse(const std::string& verb, const mqtt::Message& message,
                           const std::string& txn, const Error& e) {
    ++stats_.request_errors_total;
    LOG_INFO(kLog, "request/" << verb << " refused: " << e.describe());
    responder_.respond(verb, message, protocol::response_error(txn, e));
}

void RequestRouter::handle(const mqtt::Message& message, const std::string& raw_verb) {
    ++stats_.requests_total;
    LOG_DEBUG(kLog, "request/" << raw_verb.substr(0, kMaxVerbLength) << " received");
    // A verb too long or odd to be a topic level of ours still gets an answer, on a fixed topic.
    std::string verb = raw_verb.size() <= kMaxVerbLength ? raw_verb : "unknown";
    protocol::Envelope partial;
    auto env = protocol::parse_envelope(message.payload, limits_, &partial);
    if (!message.response_topic.empty() && response_topic_policy_) {
        auto st = protocol::check_response_topic(message.response_topic, *response_topic_policy_);
        if (!st) {
            // Answered on the default response topic: the requester's is not ours to use.
            mqtt::Message on_default = message;
            on_default.response_topic.clear();
            return refuse(verb, on_default, partial.transaction_json, st.error());
        }
    }
    if (message.retained) {
        // A retained request would fire again on every reconnect: refuse it, loudly.
        return refuse(
            verb, message, partial.transaction_json,
            make_error(protocol::codes::bad_request,
                       "retained requests are refused; publish requests without the retain flag"));
    }
    const auto& verbs = protocol::known_verbs();
    if (std::find(verbs.begin(), verbs.end(), raw_verb) == verbs.end()) {
        return refuse(verb, message, partial.transaction_json,
                      make_error(protocol::codes::unknown_verb,
                                 "unknown verb '" + raw_verb.substr(0, kMaxVerbLength) +
                                     "'; known: capture, cameras, status, config/get, config/set, "
                                     "preview, scan, capture/cancel"));
    }
    if (!env) return refuse(verb, message, partial.transaction_json, env.error());
    const std::string& txn = env->transaction_json;
    auto handler = handlers_.find(verb);
    if (handler == handlers_.end()) {
        return refuse(verb, message, txn,
                      make_error(protocol::codes::not_supported,
                                 "verb '" + verb + "' is not supported by this version yet"));
    }
    const int64_t now = now_ms_ ? now_ms_() : clock::now_ms();
    if (auto st = check_not_expired(env->expires_at_ms, now); !st)
        return refuse(verb, message, txn, st.error());
    if (acts(verb) && dedupe_.is_redelivery(message.topic, message.payload, txn != "null",
                                            message.duplicate, clock::monotonic_ms())) {
        ++stats_.requests_duplicate_total;
        LOG_INFO(kLog, "request/" << verb << " " << txn
                                  << " ignored: a redelivery of one already carried out");
        return;
    }
    auto result = handler->second(message, verb, txn);
    if (!result) return refuse(verb, message, txn, result.error());
    if (*result) responder_.respond(verb, message, protocol::response_ok(txn, **result));
}

}  // namespace photorig::rig
