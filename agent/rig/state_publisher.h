// Everything the rig says about itself: `state` and `availability` (retained), camera
// availability and camera events, telemetry counters and Home Assistant discovery.
//
// Threads: the service thread only; what it reports comes from RigStats and StateSources,
// which other threads update.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "camera/camera.h"
#include "config/config.h"
#include "core/clock_sync.h"
#include "protocol/topics.h"
#include "protocol/types.h"
#include "rig/publisher.h"
#include "rig/rig_stats.h"
#include "spool/spool.h"

namespace photorig::rig {

struct StateSources {
    std::function<std::vector<protocol::CameraRef>()> cameras;
    std::function<bool()> capture_busy;
    std::function<int()> pending_orders;  // the capture queue's depth
    int capture_queue_max = 0;            // capture.queue_max
    // Each camera's health, in the order of cameras() (unset: no camera_stuck events).
    std::function<std::vector<camera::CameraHealth>()> camera_health;
    std::vector<std::string> groups;  // config groups, reported in base/state
};

class StatePublisher {
  public:
    StatePublisher(Publisher& publisher, protocol::RigTopics topics,
                   config::HomeAssistantConfig homeassistant, const spool::Spool& spool,
                   RigStats& stats, StateSources sources, int64_t started_ms);

    // Issue 14: where `state` reads the clock's NTP status and the bridge's state (unset:
    // neither key in `state`).
    void set_clock_source(clock::SyncSource source) { clock_source_ = std::move(source); }
    void set_bridge_source(std::function<std::optional<protocol::AgentState::Bridge>()> source) {
        bridge_source_ = std::move(source);
    }

    protocol::AgentState current_state() const;
    void publish_state();
    void publish_availability(bool online);
    void publish_telemetry(int64_t now_ms);
    void publish_discovery();
    // After a (re)connection: every camera's availability goes out again.
    void forget_announced_cameras() { announced_.clear(); }
    // Publishes base/camera/<serial>/availability (retained) and a base/event when a camera
    // comes or goes. Polled: workers never call into the service.
    void watch_cameras();

  private:
    struct Announced {
        bool connected = false;
        std::string serial;
    };

    Publisher& publisher_;
    const protocol::RigTopics topics_;
    const config::HomeAssistantConfig homeassistant_;
    const spool::Spool& spool_;
    RigStats& stats_;
    StateSources sources_;
    clock::SyncSource clock_source_;
    std::function<std::optional<protocol::AgentState::Bridge>()> bridge_source_;
    const int64_t started_ms_;
    void watch_stuck(const std::vector<protocol::CameraRef>& cameras);

    std::map<size_t, Announced> announced_;      // by camera index
    std::map<size_t, uint64_t> stuck_reported_;  // CameraHealth::stuck_reports published
    std::vector<std::string> discovered_serials_;
    bool discovery_cleared_ = false;
};

}  // namespace photorig::rig
