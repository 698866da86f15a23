#include "rig/state_publisher.h"

#include "core/clock.h"
#include "core/log.h"
#include "protocol/homeassistant.h"
#include "protocol/wire.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
}

StatePublisher::StatePublisher(Publisher& publisher, protocol::RigTopics topics,
                               config::HomeAssistantConfig homeassistant, const spool::Spool& spool,
                               RigStats& stats, StateSources sources, int64_t started_ms)
    : publisher_(publisher),
      topics_(std::move(topics)),
      homeassistant_(std::move(homeassistant)),
      spool_(spool),
      stats_(stats),
      sources_(std::move(sources)),
      started_ms_(started_ms) {}

protocol::AgentState StatePublisher::current_state() const {
    protocol::AgentState s;
    if (clock_source_) s.clock = clock_source_();
    if (bridge_source_) s.bridge = bridge_source_();
    s.cameras = sources_.cameras();
    s.busy = sources_.capture_busy();
    s.spool_files = spool_.file_count();
    auto free_bytes = spool_.disk_free_bytes();
    s.disk_free_bytes = free_bytes ? *free_bytes : 0;
    s.version = PHOTORIG_VERSION;
    s.pending_requests = sources_.pending_orders();
    s.capture_queue_depth = s.pending_requests;
    s.capture_queue_max = sources_.capture_queue_max;
    s.photos_today = stats_.photos_today(clock::now_ms());
    s.last_capture_at_ms = stats_.last_capture_at_ms();
    s.last_error = stats_.last_error();
    s.groups = sources_.groups;
    return s;
}

void StatePublisher::publish_state() {
    protocol::AgentState s = current_state();
    if (homeassistant_.discovery && publisher_.connected()) {
        // A camera found (or its serial learnt) after start-up needs its own entity.
        std::vector<std::string> serials;
        for (const auto& c : s.cameras) serials.push_back(c.serial);
        if (serials != discovered_serials_) publish_discovery();
    }
    publisher_.send(topics_.state(), protocol::agent_state_json(s), true);
}

void StatePublisher::publish_availability(bool online) {
    publisher_.send(topics_.availability(), online ? "online" : "offline", true);
}

void StatePublisher::publish_telemetry(int64_t now_ms) {
    std::vector<std::pair<std::string, uint64_t>> counters{
        {"uptime_s", static_cast<uint64_t>((now_ms - started_ms_) / 1000)},
        {"photos_total", stats_.photos_total},
        {"capture_errors_total", stats_.capture_errors_total},
        {"jobs_published_total", stats_.jobs_published},
        {"jobs_reoffered_total", stats_.jobs_reoffered},
        {"requests_total", stats_.requests_total},
        {"request_errors_total", stats_.request_errors_total},
        {"requests_rate_limited_total", stats_.requests_rate_limited_total},
        {"requests_queue_full_total", stats_.requests_queue_full_total},
        {"requests_unanswered_total", stats_.requests_unanswered_total},
        {"request_queue_peak", stats_.request_queue_peak},
        {"messages_dropped_total", stats_.messages_dropped_total},
        {"publishes_dropped_total", stats_.publishes_dropped_total},
        {"requests_duplicate_total", stats_.requests_duplicate_total},
        {"spool_files", spool_.file_count()},
        {"stage_trigger_us_total", stats_.stage_us.trigger},
        {"stage_event_wait_us_total", stats_.stage_us.event_wait},
        {"stage_download_us_total", stats_.stage_us.download},
        {"stage_hash_us_total", stats_.stage_us.hash},
        {"stage_camera_delete_us_total", stats_.stage_us.camera_delete},
        {"stage_commit_us_total", stats_.stage_us.commit},
        {"stage_exif_us_total", stats_.stage_us.exif},
        {"stage_sidecar_us_total", stats_.stage_us.sidecar},
        {"stage_dir_sync_us_total", stats_.stage_us.dir_sync},
        {"stage_publish_us_total", stats_.stage_us.publish},
        {"spool_dir_fsyncs_total", spool_.dir_fsyncs()},
        {"shots_handed_on_total", stats_.shots_handed_on_total},
    };
    publisher_.publish_nowait(
        mqtt::Message{topics_.telemetry(), protocol::counters_json(counters), 0, false, "", ""},
        false);
}

void StatePublisher::publish_discovery() {
    std::string topic = protocol::ha_discovery_topic(homeassistant_.prefix, topics_.rig_id());
    if (!homeassistant_.discovery) {
        // Switched off: take back what an earlier run may have left retained.
        if (discovery_cleared_) return;
        discovery_cleared_ = true;
        publisher_.send(topic, "", true);
        return;
    }
    protocol::DiscoveryInfo info;
    info.rig_id = topics_.rig_id();
    info.base_topic = topics_.base();
    info.version = PHOTORIG_VERSION;
    info.cameras = sources_.cameras();
    discovered_serials_.clear();
    for (const auto& c : info.cameras) discovered_serials_.push_back(c.serial);
    publisher_.send(topic, protocol::ha_discovery_json(info), true);
}

// A camera that failed its re-opens, a USB reset and one more: base/event camera_stuck,
// once per stuck spell, so a Home Assistant automation can power-cycle it.
void StatePublisher::watch_stuck(const std::vector<protocol::CameraRef>& cameras) {
    if (!sources_.camera_health) return;
    auto health = sources_.camera_health();
    for (size_t i = 0; i < cameras.size() && i < health.size(); ++i) {
        uint64_t& reported = stuck_reported_[i];
        if (health[i].stuck_reports <= reported) continue;
        reported = health[i].stuck_reports;
        stats_.state_dirty = true;
        LOG_WARN(kLog, "camera " << cameras[i].port << " is stuck: published camera_stuck");
        publisher_.send(topics_.event(),
                        protocol::camera_stuck_json(cameras[i], health[i].failed_reinits,
                                                    health[i].usb_reset, health[i].last_error),
                        false);
    }
}

void StatePublisher::watch_cameras() {
    if (!publisher_.connected()) return;
    auto cameras = sources_.cameras();
    watch_stuck(cameras);
    for (size_t i = 0; i < cameras.size(); ++i) {
        const protocol::CameraRef& cam = cameras[i];
        if (cam.serial.empty()) continue;  // never connected yet: nothing to name it by
        auto known = announced_.find(i);
        if (known != announced_.end() && known->second.connected == cam.connected &&
            known->second.serial == cam.serial) {
            continue;
        }
        bool first = known == announced_.end();
        announced_[i] = Announced{cam.connected, cam.serial};
        stats_.state_dirty = true;
        publisher_.send(topics_.camera_availability(cam.serial),
                        cam.connected ? "online" : "offline", true);
        if (first && cam.connected) continue;  // start-up: the availability topic says it all
        LOG_INFO(kLog, "camera " << cam.serial << (cam.connected ? " is back" : " is gone"));
        publisher_.send(topics_.event(),
                        protocol::camera_event_json(
                            cam.connected ? "camera_connected" : "camera_disconnected", cam, ""),
                        false);
    }
}

}  // namespace photorig::rig
