// Requests: checks what every request shares (not retained, a known verb, a valid
// envelope), hands the verb to its handler and answers a refusal with an error response.
//
// Threads: the service thread only. A handler answers at once (its result JSON) or later
// itself (nullopt): capture answers after its photos, camera requests after the camera.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/expected.h"
#include "mqtt/client.h"
#include "protocol/response_topic.h"
#include "protocol/types.h"
#include "protocol/wire.h"
#include "rig/request_dedupe.h"
#include "rig/responder.h"
#include "rig/rig_stats.h"

namespace photorig::rig {

class RequestRouter {
  public:
    // The ok result's JSON, nullopt when the handler answers later, or an error to refuse.
    using Handler = std::function<Expected<std::optional<std::string>>(
        const mqtt::Message& message, const std::string& verb, const std::string& txn)>;

    RequestRouter(Responder& responder, protocol::Limits limits, RigStats& stats)
        : responder_(responder), limits_(limits), stats_(stats) {}

    // Where v5 Response Topics may point; unset: anywhere (unit tests of other verbs).
    void set_response_topic_policy(protocol::ResponseTopicPolicy policy) {
        response_topic_policy_ = std::move(policy);
    }

    // Where "now" comes from for expires_at (epoch ms); the wall clock unless set (tests).
    void set_clock(std::function<int64_t()> now_ms) { now_ms_ = std::move(now_ms); }

    // Several verbs may share one handler (config/get, config/set, preview).
    void add(const std::string& verb, Handler handler) { handlers_[verb] = std::move(handler); }

    // A message on one of the request topics; `raw_verb` is the topic's tail.
    void handle(const mqtt::Message& message, const std::string& raw_verb);

  private:
    void refuse(const std::string& verb, const mqtt::Message& message, const std::string& txn,
                const Error& e);

    Responder& responder_;
    const protocol::Limits limits_;
    RigStats& stats_;
    std::map<std::string, Handler> handlers_;
    std::optional<protocol::ResponseTopicPolicy> response_topic_policy_;
    std::function<int64_t()> now_ms_;
    // Requests that act (capture, config/set, scan, capture/cancel) are carried out once.
    RequestDedupe dedupe_;
};

}  // namespace photorig::rig
