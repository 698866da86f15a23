// Home Assistant's device-based MQTT discovery for one rig: one retained message on
// `<prefix>/device/<rig_id>/config` describing the rig as a device with its buttons,
// sensors, per-camera connectivity and the preview image. Every entity reads the rig's
// own retained topics (state, uploader/state, preview), so Home Assistant needs nothing
// but this message to show a rig, even after a restart.
#pragma once

#include <string>
#include <vector>

#include "protocol/topics.h"
#include "protocol/types.h"

namespace photorig::protocol {

struct DiscoveryInfo {
    std::string rig_id;
    std::string base_topic;  // <topic_prefix>/<rig_id>
    std::string version;
    std::vector<CameraRef> cameras;  // one connectivity sensor each (by serial)
};

std::string ha_discovery_json(const DiscoveryInfo& info);

// The payloads a rig answers to Home Assistant's birth message on `<prefix>/status`.
inline constexpr const char* ha_status_online = "online";

}  // namespace photorig::protocol
