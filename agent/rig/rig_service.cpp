#include "rig/rig_service.h"

#include <chrono>

#include "broker_link/from_config.h"
#include "core/clock.h"
#include "core/log.h"
#include "protocol/homeassistant.h"
#include "protocol/wire.h"
#include "rig/camera_requests.h"
#include "rig/capture_pipeline.h"
#include "rig/job_publisher.h"
#include "rig/publisher.h"
#include "rig/request_router.h"
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
    mqtt_ = std::make_unique<mqtt::Client>(mo, events_);
    std::vector<mqtt::Subscription> subs{{topics_.request_filter(), 1}, {topics_.scan_ready(), 1}};
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
    StateSources sources{[this] { return cameras_.refs(); }, [this] { return pipeline_->busy(); },
                         [this] { return pipeline_->pending_orders(); }, config_.capture.queue_max};
    state_ = std::make_unique<StatePublisher>(*publisher_, topics_, config_.homeassistant, *spool_,
                                              stats_, std::move(sources), started_ms);
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
        if (auto ev = events_.pop_for(std::chrono::milliseconds(100))) handle_event(*ev);
        state_->watch_cameras();
        int64_t now = clock::monotonic_ms();
        if (now >= next_reconcile) {
            reconciler_->reconcile(false, clock::now_ms());
            next_reconcile = now + config_.spool.reconcile_interval_s * 1000LL;
        }
        if (now >= next_telemetry) {
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
    stop_capturing();  // the last photos' jobs go out before the goodbye
    if (mqtt_->connected()) {
        state_->publish_availability(false);
        mqtt_->disconnect(std::chrono::seconds(2));
    }
    cameras_.stop_all();
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
            break;
        case mqtt::Event::Kind::connection_lost:
            LOG_WARN(kLog, "lost the broker: " << event.reason);
            break;
        case mqtt::Event::Kind::message: {
            const std::string& topic = event.message.topic;
            if (topic == protocol::ha_status_topic(config_.homeassistant.prefix)) {
                // Home Assistant (re)started: it has forgotten non-retained discovery.
                if (event.message.payload == protocol::ha_status_online)
                    state_->publish_discovery();
                break;
            }
            if (topic == topics_.scan_ready()) {
                scan_->on_ready(event.message.payload);
                break;
            }
            if (auto verb = topics_.request_verb(topic)) router_->handle(event.message, *verb);
            break;
        }
    }
}

Expected<std::optional<std::string>> RigService::handle_capture(const mqtt::Message& message,
                                                                const std::string& verb,
                                                                const std::string& txn) {
    auto req = protocol::parse_capture(message.payload, limits_);
    if (!req) return req.error();
    Error camera_error;
    if (cameras_.choose(req->camera, &camera_error).empty()) return camera_error;
    if (auto st = check_disk(*spool_, config_.spool.min_free_bytes); !st) return st.error();
    CaptureOrder order;
    order.request = *req;
    order.transaction_json = txn;
    order.verb = verb;
    order.response_topic = message.response_topic;
    order.correlation_data = message.correlation_data;
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
    // No wait for the ack (the scan's lock is held): the reconciler re-offers it if lost.
    if (*meta) jobs_->publish_job(**meta, /*wait_for_ack=*/false);
    return ok();
}

}  // namespace photorig::rig
