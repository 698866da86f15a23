// Where a request's MQTT v5 Response Topic may point. The agent publishes its answer there
// with its own broker rights, so an unchecked Response Topic lets any requester write
// where it may not (upload jobs, scan/move, other rigs, Home Assistant discovery), or make
// the broker drop the agent (a wildcard in a PUBLISH topic). docs/interface.md, "Response
// Topic", states the rule.
#pragma once

#include <string>
#include <vector>

#include "core/expected.h"

namespace photorig::protocol {

// Longer Response Topics are refused (MQTT allows 65535 bytes; no client needs that many).
inline constexpr size_t kMaxResponseTopicBytes = 1024;

struct ResponseTopicPolicy {
    std::string own_response_root;            // "<prefix>/<rig_id>/response/": always allowed
    std::vector<std::string> reserved_roots;  // first levels refused: topic prefix, HA prefix
    std::vector<std::string> allow;           // MQTT topic filters allowed anyway
};

// The policy of a rig: its response/ tree, photorig's and Home Assistant's trees reserved,
// and mqtt.response_topic_allow.
ResponseTopicPolicy response_topic_policy(const std::string& topic_prefix,
                                          const std::string& rig_id, const std::string& ha_prefix,
                                          std::vector<std::string> allow);

// ok() when the agent may publish its answer on `topic`; bad_request saying why otherwise.
Status check_response_topic(const std::string& topic, const ResponseTopicPolicy& policy);

// MQTT filter matching (`+` one level, `#` the rest, `$` topics only by an explicit first
// level).
bool topic_matches(const std::string& filter, const std::string& topic);

}  // namespace photorig::protocol
