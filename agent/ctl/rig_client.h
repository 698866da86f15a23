// rigctl's side of the interface: an MQTT client of the dashboard kind that lists rigs from
// their retained topics, sends requests and waits for the matching response (by a unique
// transaction), and follows scan progress and upload events. The command-line front end
// is agent/apps/rigctl.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.h"
#include "core/queue.h"
#include "mqtt/client.h"
#include "protocol/client.h"
#include "protocol/topics.h"

namespace photorig::ctl {

struct RigSummary {
    std::string rig_id;
    std::string availability;           // online | offline | "" (never seen)
    std::string uploader_availability;  // same, for its uploader
    std::string state_json;             // retained base/state ("" if none)
    std::string uploader_state_json;    // retained base/uploader/state
    std::string scan_state_json;        // retained base/scan/state
    std::string bridge_state;           // retained base/bridge/state: "1" | "0" | "" (none)
    // (read them with protocol::client::parse_agent_state and its siblings)
};

class RigClient {
  public:
    RigClient(mqtt::Options options, std::string topic_prefix);
    ~RigClient();

    // Subscribes to `filters` as part of connecting, so nothing that follows can be missed
    // (a response arriving before its subscription, retained messages).
    Status connect(std::chrono::milliseconds timeout, const std::vector<std::string>& filters);

    // What each command needs to be subscribed to.
    std::vector<std::string> list_filters() const;
    std::vector<std::string> fleet_filters() const;  // list_filters() and base/bridge/state
    const protocol::FleetTopics& fleet() const { return fleet_; }
    protocol::RigTopics topics(const std::string& rig) const { return fleet_.rig(rig); }

    // (connect with list_filters()) Every rig with a retained message under <prefix>/<rig>/...,
    // after the retained messages stopped arriving (or `wait` passed).
    // The list ends `quiet` after the last message on a topic not seen before (no new rig
    // or rig topic arrived), or at `wait`.
    Expected<std::vector<RigSummary>> list(
        std::chrono::milliseconds wait,
        std::chrono::milliseconds quiet = std::chrono::milliseconds(300));

    // Publishes `payload` (QoS 1, not retained) and waits until the broker has it.
    Status publish(const std::string& topic, const std::string& payload,
                   std::chrono::milliseconds timeout);

    // Publishes `body` (with a unique transaction) to <prefix>/<rig>/request/<verb> and
    // returns the response's data as JSON text. An error response becomes an Error with the
    // agent's code and message.
    Expected<std::string> request(const std::string& rig, const std::string& verb,
                                  const protocol::client::RequestBody& body,
                                  std::chrono::milliseconds timeout);

    // Calls `on_message(topic, payload)` for messages on any of `topics` until it returns
    // false or `timeout` passes (then "timeout").
    Status follow(
        const std::vector<std::string>& topics,
        const std::function<bool(const std::string& topic, const std::string& payload)>& on_message,
        std::chrono::milliseconds timeout);

    // Like follow(), for a message on any subscribed topic.
    Status follow_all(
        const std::function<bool(const std::string& topic, const std::string& payload)>& on_message,
        std::chrono::milliseconds timeout);

  private:
    mqtt::Options options_;
    protocol::FleetTopics fleet_;
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> client_;
};

}  // namespace photorig::ctl
