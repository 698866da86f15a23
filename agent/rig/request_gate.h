// The door in front of RequestRouter: a flood of requests (any client with the dashboard
// password can publish thousands a second) must neither grow the agent nor starve the
// service thread. Requests are served from a token bucket per verb (kRequestsPerS, bursts
// of kRequestBurst; one more bucket shared by every unknown verb), so a flood of `status`
// does not starve the `capture` sent right after it; past it a request is refused
// `rate_limited`. (MQTT does not tell the agent who published a request, so the buckets
// cannot be per client.) A request the MQTT client
// could not queue (its queue held mqtt max_queued_messages already: an `overflow` Event)
// is refused `queue_full`. Refusals are themselves answered from a small bucket
// (kRefusalAnswersPerS): the answers must not become a flood of their own, so the rest
// are only counted (telemetry requests_unanswered_total).
//
// Threads: the service thread only.
#pragma once

#include <map>
#include <string>

#include "core/rate_limit.h"
#include "mqtt/client.h"
#include "protocol/wire.h"
#include "rig/responder.h"
#include "rig/rig_stats.h"

namespace photorig::rig {

class RequestGate {
  public:
    static constexpr double kRequestsPerS = 100;
    static constexpr double kRequestBurst = 400;
    static constexpr double kRefusalAnswersPerS = 20;

    RequestGate(Responder& responder, protocol::Limits limits, RigStats& stats)
        : responder_(responder),
          limits_(limits),
          stats_(stats),
          refusal_answers_(kRefusalAnswersPerS, kRefusalAnswersPerS) {}

    // True: hand the request on. False: refused (answered or counted). `queued`: how many
    // events waited behind this one (for the message of queue_full).
    bool admit(const mqtt::Event& event, const std::string& raw_verb, size_t queued,
               int64_t now_ms);

  private:
    void refuse(const mqtt::Message& message, const std::string& raw_verb, const Error& e,
                int64_t now_ms);

    Responder& responder_;
    const protocol::Limits limits_;
    RigStats& stats_;
    std::map<std::string, TokenBucket> requests_;  // by known verb; "" for the others
    TokenBucket refusal_answers_;
};

}  // namespace photorig::rig
