#include "rig/rig_service.h"

#include <chrono>
#include <utility>

#include "broker_link/from_config.h"
#include "core/clock.h"
#include "core/log.h"
#include "protocol/homeassistant.h"
#include "protocol/wire.h"
#include "rig/camera_requests.h"
#include "rig/capture_pipeline.h"
#include "rig/job_publisher.h"
#include "rig/publisher.h"
#include "rig/request_gate.h"
#include "rig/request_router.h"
#include "rig/request_timing.h"
#include "rig/responder.h"
#include "rig/scan_runner.h"
#include "rig/spool_reconciler.h"
#include "rig/spooled_photo.h"
#include "rig/state_publisher.h"
#include "spool/spool.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
constexpr int64_t kStateIntervalMs = 250;
// A scan manifest's job waits at most this for a place with the MQTT client (a window full
// of a burst's jobs empties within a broker round trip); past it the reconciler offers it.
constexpr std::chrono::milliseconds kManifestQueueTimeout{1000};
// Received messages waiting for the service thread at most (a flood is refused past it,
// mqtt::Options::max_queued_messages): a request is at most limits.max_payload_bytes.
constexpr size_t kMaxQueuedMessages = 1000;
// The largest packet the broker may send the agent (v5): requests up to this are read and
// answered payload_too_large past limits.max_payload_bytes (at most 1 MiB); bigger ones
// never reach us (broker/mosquitto.conf.in caps every packet too).
constexpr uint32_t kMaxPacketBytes = 2 * 1024 * 1024;
}  // namespace

RigService::RigService(config::Config config)
    : config_(std::move(config)), topics_(config_.topic_prefix, config_.rig_id) {
    limits_.max_payload_bytes = static_cast<size_t>(config_.limits.max_payload_bytes);
    limits_.max_count = config_.limits.max_count;
    limits_.max_interval_ms = config_.limits.max_interval_ms;
}

RigService::~RigService() {
    stop_capturing();
    cameras_.stop_all();
}

void RigService::stop_capturing() {
    if (pipeline_) pipeline_->request_stop();
    if (scan_) scan_->stop();
    if (pipeline_) pipeline_->stop();  // the last photos' jobs go out, while mqtt_ exists
}

Status RigService::start() {
    const int64_t started_ms = clock::now_ms();
    spool_ = std::make_unique<spool::Spool>(config_.spool.dir);
    if (auto st = spool_->init(); !st) return st.error().with_context("spool.dir");
    cameras_.open(config_);

    auto options = mqtt::options_from_config(config_, "agent");
    if (!options) return options.error();
    mqtt::Options mo = *options;
    mo.will = mqtt::Will{topics_.availability(), "offline", 1, true};
    // Once, before going online: does the broker hold small packets back (no
    // set_tcp_nodelay)? Our own traffic is immune either way (mqtt/broker_socket.h); the
    // warning is for the broker's other clients.
    mo.broker_probe_topic = topics_.broker_probe();
    mo.max_queued_messages = kMaxQueuedMessages;
    mo.max_packet_size = kMaxPacketBytes;
    // Issue 14: a persistent v5 session under a stable client id (photorig-<rig_id>-agent),
    // so requests published while the agent is away wait at the broker.
    mo.mqtt_version = 5;
    mo.session_expiry_s = static_cast<uint32_t>(config_.mqtt.session_expiry_s);
    mo.clean_start = mo.session_expiry_s == 0;
    mqtt_ = std::make_unique<mqtt::Client>(mo, events_);
    std::vector<mqtt::Subscription> subs{
        {topics_.request_filter(), 1}, {topics_.scan_ready(), 1}, {topics_.bridge_state(), 1}};
    for (const auto& group : config_.groups)
        subs.push_back({topics_.group_request_filter(group), 1});
    if (config_.homeassistant.discovery)
        subs.push_back({protocol::ha_status_topic(config_.homeassistant.prefix), 1});
    mqtt_->set_subscriptions(subs);

    publisher_ = std::make_unique<MqttPublisher>(*mqtt_);
    responder_ = std::make_unique<Responder>(*publisher_, topics_);
    jobs_ = std::make_unique<JobPublisher>(*publisher_, topics_, stats_);
    reconciler_ = std::make_unique<SpoolReconciler>(*spool_, *publisher_, *jobs_, stats_,
                                                    config_.rig_id, config_.spool.reoffer_after_s);
    pipeline_ = std::make_unique<CapturePipeline>(
        CapturePipeline::Parts{cameras_, *spool_, *jobs_, *responder_, stats_}, config_.rig_id,
        config_.spool.min_free_bytes, config_.capture.queue_max);
    StateSources sources{[this] { return cameras_.refs(); },
                         [this] { return pipeline_->busy(); },
                         [this] { return pipeline_->pending_orders(); },
                         config_.capture.queue_max,
                         [this] { return cameras_.health(); },
                         config_.groups};
    state_ = std::make_unique<StatePublisher>(*publisher_, topics_, config_.homeassistant, *spool_,
                                              stats_, std::move(sources), started_ms);
    state_->set_clock_source(clock_source_);
    state_->set_bridge_source([this] { return bridge_; });
    camera_requests_ =
        std::make_unique<CameraRequests>(cameras_, *publisher_, topics_, *responder_, stats_);
    route_requests();

    auto st = mqtt_->connect(std::chrono::seconds(5));
    if (!st) {
        if (st.error().code == "not_authorized") return st.error().with_context("mqtt");
        LOG_WARN(kLog, "broker not reachable yet (" << st.error().describe()
                                                    << "); retrying in the background");
    }
    pipeline_->start();
    start_scans();
    return ok();
}

void RigService::route_requests() {
    gate_ = std::make_unique<RequestGate>(*responder_, limits_, stats_);
    router_ = std::make_unique<RequestRouter>(*responder_, limits_, stats_);
    router_->set_response_topic_policy(protocol::response_topic_policy(
        config_.topic_prefix, config_.rig_id, config_.homeassistant.prefix,
        config_.mqtt.response_topic_allow));
    router_->add(
        "status",
        [this](const mqtt::Message& m, const std::string&,
               const std::string&) -> Expected<std::optional<std::string>> {
            if (auto st = protocol::parse_no_fields(m.payload); !st) return st.error();
            return std::optional<std::string>(protocol::agent_state_json(state_->current_state()));
        });
    router_->add("cameras",
                 [this](const mqtt::Message& m, const std::string&,
                        const std::string&) -> Expected<std::optional<std::string>> {
                     if (auto st = protocol::parse_no_fields(m.payload); !st) return st.error();
                     return std::optional<std::string>(protocol::cameras_json(cameras_.refs()));
                 });
    router_->add("capture",
                 [this](const mqtt::Message& m, const std::string& verb, const std::string& txn) {
                     return handle_capture(m, verb, txn);
                 });
    router_->add("capture/cancel",
                 [this](const mqtt::Message& m, const std::string&,
                        const std::string&) -> Expected<std::optional<std::string>> {
                     auto which = protocol::parse_capture_cancel(m.payload);
                     if (!which) return which.error();
                     int cancelled = pipeline_->cancel(*which);
                     return std::optional<std::string>(protocol::capture_cancel_json(cancelled));
                 });
    router_->add("scan", [this](const mqtt::Message& m, const std::string&,
                                const std::string& txn) { return handle_scan(m, txn); });
    for (const char* verb : {"config/get", "config/set", "preview"}) {
        router_->add(verb,
                     [this](const mqtt::Message& m, const std::string& v, const std::string& txn) {
                         return camera_requests_->handle(m, v, txn);
                     });
    }
}

void RigService::start_scans() {
    ScanRunner::Hooks hooks;
    hooks.capture = [this](const protocol::CaptureRequest& r, int seq_offset) {
        return pipeline_->capture_for_scan(r, seq_offset);
    };
    hooks.publish = [this](const std::string& topic, const std::string& payload, bool retain) {
        publisher_->send(topic, payload, retain);
    };
    hooks.deliver_manifest = [this](const protocol::ScanRecord& r) { return deliver_manifest(r); };
    // The record sits in the spool (hidden: never taken for a photo) so it lives and dies
    // with the photos it describes.
    scan_ = std::make_unique<ScanRunner>(config_.spool.dir + "/.scan-record.json", topics_,
                                         std::move(hooks));
    scan_->start();
}

void RigService::run(const std::atomic<bool>& stop) {
    reconciler_->reconcile(/*at_startup=*/true, clock::now_ms());
    int64_t next_reconcile = clock::monotonic_ms() + config_.spool.reconcile_interval_s * 1000LL;
    int64_t next_telemetry = clock::monotonic_ms() + config_.telemetry_interval_s * 1000LL;
    int64_t next_state = 0;
    while (!stop) {
        const size_t depth = events_.size();
        if (depth > stats_.request_queue_peak) stats_.request_queue_peak = depth;
        if (auto ev = events_.pop_for(std::chrono::milliseconds(100))) handle_event(*ev);
        state_->watch_cameras();
        int64_t now = clock::monotonic_ms();
        notify_systemd(now);
        if (now >= next_reconcile) {
            reconciler_->reconcile(false, clock::now_ms());
            next_reconcile = now + config_.spool.reconcile_interval_s * 1000LL;
        }
        if (now >= next_telemetry) {
            stats_.messages_dropped_total = mqtt_->dropped_messages();
            stats_.publishes_dropped_total = mqtt_->dropped_publishes();
            state_->publish_telemetry(clock::now_ms());
            next_telemetry = now + config_.telemetry_interval_s * 1000LL;
            stats_.state_dirty = true;  // disk free and camera links drift without events
        }
        // State changes come from several threads; the service thread publishes them,
        // at most every 250 ms, so a burst of photos (or of thousands of queued capture
        // requests) gives a handful of messages, while the capture queue's depth still
        // shows as it drains: every accepted and every finished order marks state dirty.
        if (stats_.state_dirty && now >= next_state && mqtt_->connected()) {
            stats_.state_dirty = false;
            state_->publish_state();
            next_state = now + kStateIntervalMs;
        }
    }
    LOG_INFO(kLog, "stopping");
    notifier_.stopping("stopping: finishing the running capture");
    stop_capturing();  // the last photos' jobs go out before the goodbye
    if (mqtt_->connected()) {
        state_->publish_availability(false);
        mqtt_->disconnect(std::chrono::seconds(2));
    }
    cameras_.stop_all();
}

void RigService::notify_systemd(int64_t now) {
    if (!notifier_.enabled()) return;
    if (stats_.state_dirty) status_dirty_ = true;
    if ((status_dirty_ && now >= next_status_ms_) || now >= status_refresh_ms_) {
        status_dirty_ = false;
        next_status_ms_ = now + 1000;
        status_refresh_ms_ = now + 10000;
        notifier_.status(status_line());
    }
    // This thread sends the pets, so a hung service loop stops them by itself; a camera
    // thread stuck in one libgphoto2 call for WatchdogSec= stops them too.
    auto [port, busy_ms] = cameras_.longest_busy();
    const int64_t limit = notifier_.hang_limit_ms();
    if (limit > 0 && busy_ms >= limit) {
        notifier_.tick(false, "camera " + port + " has been inside one libgphoto2 call for " +
                                  std::to_string(busy_ms) + " ms");
    } else {
        notifier_.tick(true);
    }
}

// One line for `systemctl status`.
std::string RigService::status_line() const {
    protocol::AgentState s = state_->current_state();
    int online = 0;
    for (const auto& c : s.cameras) online += c.connected ? 1 : 0;
    std::string line =
        (mqtt_->connected() ? "" : "broker unreachable; ") + std::string("cameras ") +
        std::to_string(online) + "/" + std::to_string(s.cameras.size()) +
        " online, capture queue " + std::to_string(s.capture_queue_depth) + "/" +
        std::to_string(s.capture_queue_max) + ", spool " + std::to_string(s.spool_files) +
        " files, photos today " + std::to_string(s.photos_today);
    if (!s.last_error.empty()) line += ", last error: " + s.last_error;
    return line;
}

void RigService::handle_event(const mqtt::Event& event) {
    switch (event.kind) {
        case mqtt::Event::Kind::connected:
            LOG_INFO(kLog, "connected to broker "
                               << config_.mqtt.host << ":" << config_.mqtt.port
                               << (event.session_present ? " (session present)" : ""));
            state_->publish_availability(true);
            state_->publish_discovery();
            state_->publish_state();
            state_->forget_announced_cameras();  // re-publish every camera's availability
            // Cameras were opened (or tried) in start(); now subscribed and online.
            notifier_.ready(status_line());
            status_dirty_ = true;
            // Answers given while offline, then requests read before we were back online.
            if (size_t n = responder_->send_held(); n > 0)
                LOG_INFO(kLog, "sent " << n << " answers held while offline");
            for (auto& deferred : std::exchange(deferred_, {})) handle_message(deferred);
            break;
        case mqtt::Event::Kind::connection_lost:
            LOG_WARN(kLog, "lost the broker: " << event.reason);
            status_dirty_ = true;
            break;
        case mqtt::Event::Kind::message:
            if (!mqtt_->connected()) return defer_until_connected(event);
            handle_message(event);
            break;
    }
}

void RigService::defer_until_connected(const mqtt::Event& event) {
    // The MQTT client bounds what it queues (kMaxQueuedMessages, then overflow Events); so
    // does this.
    if (deferred_.size() >= 2 * kMaxQueuedMessages) {
        LOG_WARN(kLog, "dropping a message read while reconnecting: " << deferred_.size()
                                                                      << " wait already");
        return;
    }
    deferred_.push_back(event);
}

void RigService::on_bridge_state(const mqtt::Message& message) {
    if (message.payload.empty()) {  // the notification was taken back: no bridge any more
        if (bridge_) stats_.state_dirty = true;
        bridge_.reset();
        return;
    }
    if (message.payload != "1" && message.payload != "0") {
        LOG_WARN(kLog, "ignoring bridge state '" << message.payload.substr(0, 16)
                                                 << "' (mosquitto sends 1 or 0)");
        return;
    }
    const bool up = message.payload == "1";
    if (bridge_ && bridge_->connected == up) return;
    LOG_INFO(kLog, "bridge to the central broker " << (up ? "up" : "down"));
    bridge_ = protocol::AgentState::Bridge{up, clock::now_ms()};
    stats_.state_dirty = true;
}

void RigService::handle_message(const mqtt::Event& event) {
    const mqtt::Message& message = event.message;
    const std::string& topic = message.topic;
    if (topic == protocol::ha_status_topic(config_.homeassistant.prefix)) {
        // Home Assistant (re)started: it has forgotten non-retained discovery.
        if (message.payload == protocol::ha_status_online) state_->publish_discovery();
        return;
    }
    if (topic == topics_.bridge_state()) return on_bridge_state(message);
    if (is_echo_of_clear(message)) return;
    if (topic == topics_.scan_ready()) {
        if (event.overflow) return;  // a turntable waits for its move's ready: it resends
        if (message.retained) {
            LOG_WARN(kLog, "ignoring a retained scan/ready (taken back): publish it unretained");
            clear_retained(message);
            return;
        }
        scan_->on_ready(message.payload);
        return;
    }
    auto verb = topics_.request_verb(topic);
    if (!verb) return;
    if (!gate_->admit(event, *verb, events_.size(), clock::monotonic_ms())) return;
    router_->handle(message, *verb);  // refuses a retained one (bad_request)
    if (message.retained) clear_retained(message);
}

bool RigService::clear_retained(const mqtt::Message& message) {
    if (message.payload.empty() || clearing_.size() >= 64) return false;
    clearing_.insert(message.topic);
    publisher_->send(message.topic, "", true);
    return true;
}

bool RigService::is_echo_of_clear(const mqtt::Message& message) {
    if (!message.payload.empty() || message.retained) return false;
    return clearing_.erase(message.topic) > 0;
}

Expected<std::optional<std::string>> RigService::handle_capture(const mqtt::Message& message,
                                                                const std::string& verb,
                                                                const std::string& txn) {
    auto req = protocol::parse_capture(message.payload, limits_);
    if (!req) return req.error();
    if (auto st = check_not_too_late(req->capture_at_ms, clock::now_ms(),
                                     config_.capture.late_tolerance_ms);
        !st)
        return st.error();
    Error camera_error;
    if (cameras_.choose(req->camera, &camera_error).empty()) return camera_error;
    if (auto st = check_disk(*spool_, config_.spool.min_free_bytes); !st) return st.error();
    CaptureOrder order;
    order.request = *req;
    order.transaction_json = txn;
    order.verb = verb;
    order.response_topic = message.response_topic;
    order.correlation_data = message.correlation_data;
    if (req->capture_at_ms) order.warnings = capture_warnings(req->capture_at_ms, clock_source_());
    if (order.request.batch.empty()) order.request.batch = new_batch_id(clock::now_ms());
    // Queued behind earlier requests (queue_full past capture.queue_max).
    if (auto st = pipeline_->submit(std::move(order)); !st) return st.error();
    return std::optional<std::string>();  // the pipeline answers after the photos
}

Expected<std::optional<std::string>> RigService::handle_scan(const mqtt::Message& message,
                                                             const std::string&) {
    auto req = protocol::parse_scan(message.payload, limits_);
    if (!req) return req.error();
    if (req->action == "start") {
        Error camera_error;
        if (cameras_.choose(req->camera, &camera_error).empty()) return camera_error;
        if (auto st = check_disk(*spool_, config_.spool.min_free_bytes); !st) return st.error();
    }
    auto progress = scan_->handle(*req, new_batch_id(clock::now_ms()));
    if (!progress) return progress.error();
    return std::optional<std::string>(*progress);
}

Status RigService::deliver_manifest(const protocol::ScanRecord& record) {
    auto meta = spool_manifest(*spool_, record, config_.rig_id);
    if (!meta) return meta.error();
    // No wait for the ack, and at most kManifestQueueTimeout for a place with the client (the
    // scan's lock is held): the reconciler re-offers it if lost.
    if (*meta) jobs_->publish_job(**meta, /*wait_for_ack=*/false, {}, kManifestQueueTimeout);
    return ok();
}

}  // namespace photorig::rig
