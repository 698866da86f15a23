// Every MQTT topic photorig uses, in one place. Nothing outside `protocol` spells a topic
// level: the agent, the uploader, rigctl and the tests all build their topics here, so a
// new topic (the fleet adds many) is added once and documented beside its siblings.
//
// A rig's topics live under its base, `<topic_prefix>/<rig_id>` (docs/interface.md).
#pragma once

#include <optional>
#include <string>

namespace photorig::protocol {

// A name from outside (a camera serial) as one topic level: '%', '/', '+', '#', control
// characters (C0, DEL, C1) and bytes that are not valid UTF-8 become %XX (upper-case hex,
// per byte); everything else is kept. Percent-decoding gives the name back. Without it a
// serial "A#1" made the broker drop the agent at every connect (docs/interface.md).
std::string topic_level(const std::string& name);

class RigTopics {
  public:
    RigTopics(std::string topic_prefix, std::string rig_id);

    const std::string& prefix() const { return prefix_; }
    const std::string& rig_id() const { return rig_id_; }
    const std::string& base() const { return base_; }  // <prefix>/<rig_id>

    // The agent's own status (retained; availability is also its last will).
    std::string availability() const { return sub("availability"); }
    std::string state() const { return sub("state"); }
    std::string telemetry() const { return sub("telemetry"); }
    std::string event() const { return sub("event"); }
    // The agent's start-up probe of the broker (mqtt::Options::broker_probe_topic): three tiny
    // non-retained messages at connect time that only the agent itself needs to hear.
    std::string broker_probe() const { return sub("_probe/broker"); }
    std::string capture() const { return sub("capture"); }
    // A camera's serial is whatever its firmware says: it goes in as topic_level(serial).
    std::string camera_availability(const std::string& serial) const {
        return sub("camera/" + topic_level(serial) + "/availability");
    }
    std::string preview() const { return sub("preview"); }
    std::string preview(const std::string& serial) const {
        return sub("preview/" + topic_level(serial));
    }

    // Requests and their responses.
    std::string request(const std::string& verb) const { return sub("request/" + verb); }
    std::string request_filter() const { return sub("request/#"); }
    std::string response(const std::string& verb) const { return sub("response/" + verb); }

    // Agent <-> uploader.
    std::string upload_jobs() const { return sub("upload/jobs"); }
    std::string upload_events() const { return sub("upload/events"); }
    std::string uploader_availability() const { return sub("uploader/availability"); }
    std::string uploader_state() const { return sub("uploader/state"); }

    // Turntable scans.
    std::string scan_move() const { return sub("scan/move"); }
    std::string scan_ready() const { return sub("scan/ready"); }
    // Issue 14: the rig broker's bridge notification (mosquitto `notification_topic`):
    // retained "1" while the bridge to the central broker is up, "0" while it is not.
    std::string bridge_state() const { return sub("bridge/state"); }
    std::string scan_progress() const { return sub("scan/progress"); }
    std::string scan_state() const { return sub("scan/state"); }

    // Group requests: <prefix>/group/<group>/request/<verb>.
    std::string group_request(const std::string& group, const std::string& verb) const;
    std::string group_request_filter(const std::string& group) const;

    // The verb of a request topic of this rig or of one of its groups ("capture",
    // "config/get", ...); nullopt for any other topic.
    std::optional<std::string> request_verb(const std::string& topic) const;

  private:
    std::string sub(const std::string& rest) const { return base_ + "/" + rest; }

    std::string prefix_, rig_id_, base_;
};

// Topics of every rig under one prefix, for clients that watch a fleet (rigctl, dashboards).
class FleetTopics {
  public:
    explicit FleetTopics(std::string topic_prefix) : prefix_(std::move(topic_prefix)) {}

    const std::string& prefix() const { return prefix_; }
    RigTopics rig(const std::string& rig_id) const { return RigTopics(prefix_, rig_id); }
    // Subscription filters for every rig's retained status topics.
    std::string any_rig(const std::string& rig_subtopic) const {
        return prefix_ + "/+/" + rig_subtopic;
    }
    // Splits "<prefix>/<rig>/<rest>" into rig and rest; nullopt for a topic outside the prefix.
    struct RigAndSubtopic {
        std::string rig_id, subtopic;
    };
    std::optional<RigAndSubtopic> split(const std::string& topic) const;

  private:
    std::string prefix_;
};

// Subtopics under a rig's base, for code that matches a split() result.
namespace subtopics {
inline constexpr const char* availability = "availability";
inline constexpr const char* state = "state";
inline constexpr const char* uploader_availability = "uploader/availability";
inline constexpr const char* uploader_state = "uploader/state";
inline constexpr const char* scan_state = "scan/state";
inline constexpr const char* scan_progress = "scan/progress";
inline constexpr const char* upload_events = "upload/events";
inline constexpr const char* bridge_state = "bridge/state";  // mosquitto's bridge notification
inline constexpr const char* capture_response = "response/capture";
}  // namespace subtopics

// Home Assistant: its birth/last-will topic and the device discovery topic.
std::string ha_status_topic(const std::string& discovery_prefix);
std::string ha_discovery_topic(const std::string& discovery_prefix, const std::string& rig_id);

}  // namespace photorig::protocol
