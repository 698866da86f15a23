#include "rig/rig_service.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <future>

#include "camera/camera.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/serial_executor.h"
#include "core/sha256.h"
#include "media/exif.h"
#include "mqtt/from_config.h"
#include "protocol/homeassistant.h"
#include "spool/spool.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
constexpr auto kPublishTimeout = std::chrono::seconds(10);
constexpr size_t kMaxPendingOrders = 16;

// Bridges a camera download into a spool writer. The writer is shared so the capture
// thread can commit it once the worker reports the download complete.
class SpoolSink : public camera::DownloadSink {
  public:
    explicit SpoolSink(std::shared_ptr<spool::SpoolWriter> writer) : writer_(std::move(writer)) {}
    Status write(const char* data, size_t len) override { return writer_->write(data, len); }

  private:
    std::shared_ptr<spool::SpoolWriter> writer_;
};

std::string new_batch_id(int64_t now_ms) {
    std::string stamp = clock::rfc3339_utc_ms(now_ms);  // 2026-11-25T04:10:15.123Z
    std::string compact;
    for (char c : stamp.substr(0, 19)) {
        if (c != '-' && c != ':') compact.push_back(c == 'T' ? '-' : c);
    }
    return compact + "-" + ids::random_hex(4);  // 20261125-041015-3fa2
}

std::string safe_part(const std::string& s) {
    std::string out;
    for (char c : s) {
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
        out.push_back(keep ? c : '_');
    }
    while (!out.empty() && out[0] == '.') out.erase(0, 1);
    return out.empty() ? "x" : out;
}

protocol::ExifFields to_wire(const media::ExifInfo& e) {
    protocol::ExifFields f;
    f.iso = e.iso;
    f.exposure_time = e.exposure_time;
    f.exposure_time_text = e.exposure_time_text;
    f.f_number = e.f_number;
    f.focal_length = e.focal_length_mm;
    f.make = e.make;
    f.model = e.model;
    f.body_serial = e.body_serial;
    f.datetime_original = e.datetime_original;
    f.width = e.width;
    f.height = e.height;
    return f;
}
}  // namespace

RigService::RigService(config::Config config)
    : config_(std::move(config)), base_(config_.base_topic()) {
    limits_.max_payload_bytes = static_cast<size_t>(config_.limits.max_payload_bytes);
    limits_.max_count = config_.limits.max_count;
    limits_.max_interval_ms = config_.limits.max_interval_ms;
}

RigService::~RigService() {
    stopping_ = true;
    if (scan_) scan_->stop();
    capture_orders_.close();
    if (capture_thread_.joinable()) capture_thread_.join();
    photo_publisher_.reset();  // runs what is queued, while mqtt_ still exists
    for (auto& cam : cameras_) cam->stop();
}

Status RigService::start() {
    started_ms_ = clock::now_ms();
    spool_ = std::make_unique<spool::Spool>(config_.spool.dir);
    if (auto st = spool_->init(); !st) return st.error().with_context("spool.dir");

    for (const auto& entry : config_.cameras) add_workers_for(entry);
    camera_requests_ = std::make_unique<SerialExecutor>();

    auto options = mqtt::options_from_config(config_, "agent");
    if (!options) return options.error();
    mqtt::Options mo = *options;
    mo.will = mqtt::Will{base_ + "/availability", "offline", 1, true};
    mqtt_ = std::make_unique<mqtt::Client>(mo, events_);
    std::vector<mqtt::Subscription> subs{{base_ + "/request/#", 1}, {base_ + "/scan/ready", 1}};
    for (const auto& group : config_.groups) {
        subs.push_back({config_.topic_prefix + "/group/" + group + "/request/#", 1});
    }
    if (config_.homeassistant.discovery)
        subs.push_back({config_.homeassistant.prefix + "/status", 1});
    mqtt_->set_subscriptions(subs);
    auto st = mqtt_->connect(std::chrono::seconds(5));
    if (!st) {
        if (st.error().code == "not_authorized") return st.error().with_context("mqtt");
        LOG_WARN(kLog, "broker not reachable yet (" << st.error().describe()
                                                    << "); retrying in the background");
    }
    photo_publisher_ = std::make_unique<SerialExecutor>();
    capture_thread_ = std::thread([this] { capture_loop(); });

    ScanRunner::Hooks hooks;
    hooks.capture = [this](const protocol::CaptureRequest& r, int seq_offset) {
        return capture_for_scan(r, seq_offset);
    };
    hooks.publish = [this](const std::string& subtopic, const std::string& payload, bool retain) {
        mqtt_->publish_nowait(mqtt::Message{base_ + "/" + subtopic, payload, 1, retain, "", ""},
                              retain);
    };
    hooks.deliver_manifest = [this](const protocol::ScanRecord& r) { return deliver_manifest(r); };
    // The record sits in the spool (hidden: never taken for a photo) so it lives and dies
    // with the photos it describes.
    scan_ = std::make_unique<ScanRunner>(config_.spool.dir + "/.scan-record.json", config_.rig_id,
                                         std::move(hooks));
    scan_->start();
    return ok();
}

// One configured camera: an explicit port opens that camera (and pins the serial it
// reports, or the configured one); a serial number alone is looked for on every USB port;
// "auto" opens every camera detected now.
void RigService::add_workers_for(const config::CameraConfig& entry) {
    camera::WorkerOptions opts;
    opts.capture_timeout_ms = entry.capture_timeout_ms;
    opts.delete_after_download = entry.delete_from_camera;
    opts.keepalive_interval_ms = entry.keepalive_ms;
    opts.reconnect_backoff_max_ms = entry.reconnect_max_ms;
    opts.capture_target = entry.capture_target;
    if (!entry.preset.empty()) opts.settings = config_.camera_presets.at(entry.preset);

    std::vector<camera::CameraSpec> specs;
    const std::string& port = entry.port;
    if (port == "auto" && entry.serial.empty()) {
        auto detected = camera::detect_cameras();
        if (!detected) {
            LOG_WARN(kLog, "camera detection failed: " << detected.error().describe());
        } else {
            specs = *detected;
        }
        if (specs.empty()) LOG_WARN(kLog, "no camera detected (camera.port=auto)");
    } else if (port == "auto" || (port.rfind("usb:", 0) != 0 && port.rfind("ptpip:", 0) != 0)) {
        specs.push_back(
            camera::CameraSpec{"", entry.model, entry.serial.empty() ? port : entry.serial});
    } else {
        specs.push_back(camera::CameraSpec{port, entry.model, entry.serial});
    }
    for (auto& spec : specs) {
        if (spec.model.empty()) spec.model = entry.model;
        auto worker = std::make_unique<camera::CameraWorker>(spec, opts);
        auto st = worker->start();
        if (!st)
            LOG_WARN(kLog,
                     "camera " << spec.port << ": " << st.error().describe() << " (will retry)");
        LOG_INFO(kLog, "camera " << worker->info().port << " model='" << worker->info().model
                                 << "' serial='" << worker->info().serial << "'");
        cameras_.push_back(std::move(worker));
    }
}

void RigService::watch_cameras() {
    if (!mqtt_->connected()) return;
    for (const auto& cam : cameras_) {
        auto info = cam->info();
        if (info.serial.empty()) continue;  // never connected yet: nothing to name it by
        bool connected = cam->connected();
        auto known = announced_connected_.find(cam.get());
        if (known != announced_connected_.end() && known->second == connected &&
            announced_serial_[cam.get()] == info.serial) {
            continue;
        }
        bool first = known == announced_connected_.end();
        announced_connected_[cam.get()] = connected;
        announced_serial_[cam.get()] = info.serial;
        state_dirty_ = true;
        std::string topic = base_ + "/camera/" + info.serial + "/availability";
        mqtt_->publish_nowait(
            mqtt::Message{topic, connected ? "online" : "offline", 1, true, "", ""}, true);
        if (first && connected) continue;  // start-up: the availability topic says it all
        protocol::CameraRef ref{info.model, info.serial, info.port, connected};
        LOG_INFO(kLog, "camera " << info.serial << (connected ? " is back" : " is gone"));
        mqtt_->publish_nowait(
            mqtt::Message{base_ + "/event",
                          protocol::camera_event_json(
                              connected ? "camera_connected" : "camera_disconnected", ref, ""),
                          1, false, "", ""},
            false);
    }
}

void RigService::run(const std::atomic<bool>& stop) {
    reconcile_spool(/*at_startup=*/true);
    int64_t next_reconcile = clock::monotonic_ms() + config_.spool.reconcile_interval_s * 1000LL;
    int64_t next_telemetry = clock::monotonic_ms() + config_.telemetry_interval_s * 1000LL;
    int64_t next_state = 0;
    while (!stop) {
        if (auto ev = events_.pop_for(std::chrono::milliseconds(100))) handle_event(*ev);
        watch_cameras();
        int64_t now = clock::monotonic_ms();
        if (now >= next_reconcile) {
            reconcile_spool(false);
            next_reconcile = now + config_.spool.reconcile_interval_s * 1000LL;
        }
        if (now >= next_telemetry) {
            publish_telemetry();
            next_telemetry = now + config_.telemetry_interval_s * 1000LL;
            state_dirty_ = true;  // disk free and camera links drift without events
        }
        // State changes come from several threads; the service thread publishes them,
        // at most every 250 ms, so a burst of photos gives a handful of messages.
        if (state_dirty_ && now >= next_state && mqtt_->connected()) {
            state_dirty_ = false;
            publish_state();
            next_state = now + 250;
        }
    }
    LOG_INFO(kLog, "stopping");
    stopping_ = true;
    if (scan_) scan_->stop();
    capture_orders_.close();
    if (capture_thread_.joinable()) capture_thread_.join();
    photo_publisher_.reset();  // the last photos' jobs go out before the goodbye
    if (mqtt_->connected()) {
        publish_availability(false);
        mqtt_->disconnect(std::chrono::seconds(2));
    }
    for (auto& cam : cameras_) cam->stop();
}

void RigService::handle_event(const mqtt::Event& event) {
    switch (event.kind) {
        case mqtt::Event::Kind::connected:
            LOG_INFO(kLog, "connected to broker "
                               << config_.mqtt.host << ":" << config_.mqtt.port
                               << (event.session_present ? " (session present)" : ""));
            publish_availability(true);
            publish_discovery();
            publish_state();
            announced_connected_.clear();  // re-publish every camera's availability
            break;
        case mqtt::Event::Kind::connection_lost:
            LOG_WARN(kLog, "lost the broker: " << event.reason);
            break;
        case mqtt::Event::Kind::message: {
            const std::string& topic = event.message.topic;
            if (topic == config_.homeassistant.prefix + "/status") {
                // Home Assistant (re)started: it has forgotten non-retained discovery.
                if (event.message.payload == protocol::ha_status_online) publish_discovery();
                break;
            }
            if (topic == base_ + "/scan/ready") {
                scan_->on_ready(event.message.payload);
                break;
            }
            auto pos = topic.find("/request/");
            if (pos == std::string::npos) break;
            handle_request(event.message, topic.substr(pos + 9));
            break;
        }
    }
}

void RigService::respond(const std::string& verb, const mqtt::Message& request,
                         const std::string& payload) {
    respond_to(verb, request.response_topic, request.correlation_data, payload);
}

void RigService::respond_to(const std::string& verb, const std::string& response_topic,
                            const std::string& correlation_data, const std::string& payload) {
    mqtt::Message m;
    // An MQTT v5 client names its own reply topic; everyone else reads response/<verb>.
    m.topic = response_topic.empty() ? base_ + "/response/" + verb : response_topic;
    m.payload = payload;
    m.qos = 1;
    m.correlation_data = correlation_data;
    mqtt_->publish_nowait(m, false);
}

void RigService::handle_request(const mqtt::Message& message, const std::string& raw_verb) {
    ++requests_total_;
    LOG_DEBUG(kLog, "request/" << raw_verb.substr(0, 64) << " received");
    // A verb too long or odd to be a topic level of ours still gets an answer, on a fixed topic.
    std::string verb = raw_verb.size() <= 64 ? raw_verb : "unknown";
    protocol::Envelope partial;
    auto fail = [&](const Error& e) {
        ++request_errors_total_;
        LOG_INFO(kLog, "request/" << verb << " refused: " << e.describe());
        respond(verb, message, protocol::response_error(partial.transaction_json, e));
    };
    auto env = protocol::parse_envelope(message.payload, limits_, &partial);
    if (message.retained) {
        // A retained request would fire again on every reconnect: refuse it, loudly.
        return fail(
            make_error(protocol::codes::bad_request,
                       "retained requests are refused; publish requests without the retain flag"));
    }
    const auto& verbs = protocol::known_verbs();
    if (std::find(verbs.begin(), verbs.end(), raw_verb) == verbs.end()) {
        return fail(make_error(
            protocol::codes::unknown_verb,
            "unknown verb '" + raw_verb.substr(0, 64) +
                "'; known: capture, cameras, status, config/get, config/set, preview, scan"));
    }
    if (!env) return fail(env.error());
    const std::string& txn = env->transaction_json;

    if (verb == "status" || verb == "cameras") {
        auto st = protocol::parse_no_fields(message.payload);
        if (!st) return fail(st.error());
        if (verb == "cameras") {
            respond(verb, message,
                    protocol::response_ok(txn, protocol::cameras_json(camera_refs())));
        } else {
            respond(verb, message,
                    protocol::response_ok(txn, protocol::agent_state_json(current_state())));
        }
        return;
    }
    if (verb == "scan") return handle_scan(message, txn);
    if (verb == "capture") {
        auto req = protocol::parse_capture(message.payload, limits_);
        if (!req) return fail(req.error());
        Error camera_error;
        if (choose_cameras(req->camera, &camera_error).empty()) return fail(camera_error);
        if (auto st = check_disk(); !st) return fail(st.error());
        if (static_cast<size_t>(pending_orders_) >= kMaxPendingOrders) {
            return fail(make_error(
                protocol::codes::camera_busy,
                std::to_string(kMaxPendingOrders) + " capture requests already waiting"));
        }
        CaptureOrder order;
        order.request = *req;
        order.transaction_json = txn;
        order.verb = verb;
        order.response_topic = message.response_topic;
        order.correlation_data = message.correlation_data;
        if (order.request.batch.empty()) order.request.batch = new_batch_id(clock::now_ms());
        ++pending_orders_;
        state_dirty_ = true;
        capture_orders_.push(std::move(order));
        return;
    }
    if (verb == "config/get" || verb == "config/set" || verb == "preview")
        return handle_camera_request(message, verb, txn);
    fail(make_error(protocol::codes::not_supported,
                    "verb '" + verb + "' is not supported by this version yet"));
}

namespace {
protocol::SettingNode to_wire(const camera::Setting& s) {
    protocol::SettingNode n{s.name, s.label, s.type, s.value,     s.choices,
                            s.min,  s.max,   s.step, s.read_only, {}};
    for (const auto& c : s.children) n.children.push_back(to_wire(c));
    return n;
}
}  // namespace

void RigService::handle_camera_request(const mqtt::Message& message, const std::string& verb,
                                       const std::string& txn) {
    auto fail = [&](const Error& e) {
        ++request_errors_total_;
        LOG_INFO(kLog, "request/" << verb << " refused: " << e.describe());
        respond(verb, message, protocol::response_error(txn, e));
    };
    auto req = verb == "config/get"   ? protocol::parse_config_get(message.payload)
               : verb == "config/set" ? protocol::parse_config_set(message.payload)
                                      : protocol::parse_preview(message.payload);
    if (!req) return fail(req.error());
    Error choose_error;
    camera::CameraWorker* cam = choose_one_camera(req->camera, &choose_error);
    if (!cam) return fail(choose_error);
    // The camera answers on its own thread; waiting for it happens here, off the service
    // thread, which keeps answering other requests meanwhile.
    std::string serial = cam->info().serial;
    auto reply = [this, verb, txn, topic = message.response_topic, corr = message.correlation_data](
                     const std::string& payload) { respond_to(verb, topic, corr, payload); };
    auto failed = [this, reply, txn, serial](const Error& e) {
        ++request_errors_total_;
        reply(protocol::response_error(txn, e.with_context("camera " + serial)));
    };
    if (verb == "config/get") {
        auto fut =
            std::make_shared<std::future<Expected<camera::Setting>>>(cam->settings(req->name));
        camera_requests_->submit([fut, reply, failed, txn, serial] {
            auto tree = fut->get();
            if (!tree) return failed(tree.error());
            reply(protocol::response_ok(txn, protocol::settings_json(serial, to_wire(*tree))));
        });
    } else if (verb == "config/set") {
        auto fut = std::make_shared<std::future<Expected<std::string>>>(
            cam->set_setting(req->name, req->value));
        camera_requests_->submit([fut, reply, failed, txn, serial, name = req->name] {
            auto value = fut->get();
            if (!value) return failed(value.error());
            reply(protocol::response_ok(txn, protocol::setting_set_json(serial, name, *value)));
        });
    } else {
        auto fut = std::make_shared<std::future<Expected<camera::Preview>>>(cam->preview());
        camera_requests_->submit([this, fut, reply, failed, txn, serial] {
            auto preview = fut->get();
            if (!preview) return failed(preview.error());
            // Retained: Home Assistant's image entity shows the last one after a restart too.
            std::string topic = base_ + "/preview/" + serial;
            mqtt_->publish_nowait(mqtt::Message{topic, preview->jpeg, 1, true, "", ""}, true);
            mqtt_->publish_nowait(mqtt::Message{base_ + "/preview", preview->jpeg, 1, true, "", ""},
                                  true);
            reply(protocol::response_ok(
                txn, protocol::preview_json(serial, preview->source, preview->jpeg.size(),
                                            preview->taken_at_ms, topic)));
        });
    }
}

camera::CameraWorker* RigService::choose_one_camera(const std::string& serial, Error* error) {
    if (serial.empty() || serial == "all") {
        if (cameras_.size() == 1) return cameras_.front().get();
        *error = make_error(protocol::codes::bad_request,
                            cameras_.empty()
                                ? "no camera is configured on this rig"
                                : "camera: this rig has " + std::to_string(cameras_.size()) +
                                      " cameras; name one by its serial");
        if (cameras_.empty()) error->code = protocol::codes::camera_not_found;
        return nullptr;
    }
    std::vector<camera::CameraWorker*> chosen = choose_cameras(serial, error);
    return chosen.empty() ? nullptr : chosen.front();
}

std::vector<camera::CameraWorker*> RigService::choose_cameras(const std::string& selector,
                                                              Error* error) {
    std::vector<camera::CameraWorker*> chosen;
    for (auto& cam : cameras_) {
        if (selector == "all" || cam->info().serial == selector) chosen.push_back(cam.get());
    }
    if (chosen.empty()) {
        *error = make_error(protocol::codes::camera_not_found,
                            cameras_.empty() ? "no camera is connected to this rig"
                                             : "no camera with serial '" + selector + "'");
    }
    return chosen;
}

std::vector<protocol::CameraRef> RigService::camera_refs() const {
    std::vector<protocol::CameraRef> refs;
    for (const auto& cam : cameras_) {
        auto info = cam->info();
        refs.push_back(protocol::CameraRef{info.model, info.serial, info.port, cam->connected()});
    }
    return refs;
}

Status RigService::check_disk() {
    auto free_bytes = spool_->disk_free_bytes();
    if (free_bytes && *free_bytes < config_.spool.min_free_bytes) {
        return make_error(
            protocol::codes::disk_full,
            "spool disk has " + std::to_string(*free_bytes / (1024 * 1024)) +
                " MiB free, below spool.min_free_bytes; captures pause until uploads free space");
    }
    return ok();
}

void RigService::capture_loop() {
    while (auto order = capture_orders_.pop_for(std::chrono::hours(24))) {
        capture_busy_ = true;
        state_dirty_ = true;
        run_capture(*order);
        --pending_orders_;
        capture_busy_ = pending_orders_ > 0;
        state_dirty_ = true;
    }
}

void RigService::run_capture(const CaptureOrder& order) {
    const auto& req = order.request;
    std::vector<protocol::CaptureMetadata> photos;
    std::vector<Error> errors;
    std::vector<protocol::TriggerTime> triggers;
    // Every chosen camera fires at one wall-clock instant: capture_at for the first shot
    // (several rigs with synchronised clocks fire together), else, with several cameras, a
    // few ms from now, which leaves time to hand the order to every worker thread first.
    // A single camera without capture_at fires at once (bursts stay as fast as before).
    constexpr int64_t kTriggerLeadUs = 4000;
    int64_t capture_at_us = 0;
    if (req.capture_at_ms) {
        int64_t at_us = *req.capture_at_ms * 1000;
        int64_t ahead = at_us - clock::now_us();
        if (ahead > 0 && ahead < 60'000'000) capture_at_us = at_us;
    }
    // Committing, describing and publishing each photo (fsyncs, EXIF, the broker's PUBACK)
    // runs on this finisher, in shot order, while the cameras already take the next shot.
    // At most kMaxUnfinishedPhotos wait for it, so a slow disk or broker slows capture
    // down instead of piling up open temp files.
    // Publishing (metadata, then the upload job and its PUBACK) is a second stage on
    // photo_publisher_, so the broker round trip overlaps the next photo's fsyncs.
    constexpr size_t kMaxUnfinishedPhotos = 8;
    SerialExecutor& publisher = *photo_publisher_;
    SerialExecutor finisher;
    std::deque<std::future<Expected<protocol::CaptureMetadata>>> unfinished;
    auto collect_oldest = [&] {
        auto meta = unfinished.front().get();
        unfinished.pop_front();
        if (meta) {
            photos.push_back(std::move(*meta));
        } else {
            ++capture_errors_total_;
            errors.push_back(meta.error());
        }
    };
    int64_t sequence_start = clock::monotonic_ms();
    for (int shot = 1; shot <= req.count && !stopping_; ++shot) {
        if (shot > 1 && req.interval_ms > 0) {
            int64_t due = sequence_start + static_cast<int64_t>(shot - 1) * req.interval_ms;
            int64_t wait = due - clock::monotonic_ms();
            if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        }
        if (auto st = check_disk(); !st) {
            errors.push_back(st.error());
            break;
        }
        Error choose_error;
        auto chosen = choose_cameras(req.camera, &choose_error);
        if (chosen.empty()) {
            errors.push_back(choose_error);
            break;
        }
        // Trigger every chosen camera at once; each worker downloads into its own writers.
        int64_t shot_trigger_us = 0;
        if (shot == 1 && capture_at_us) {
            shot_trigger_us = capture_at_us;
        } else if (chosen.size() > 1) {
            shot_trigger_us = clock::now_us() + kTriggerLeadUs;
        }
        struct Pending {
            protocol::CameraRef ref;
            std::shared_ptr<
                std::vector<std::pair<std::string, std::shared_ptr<spool::SpoolWriter>>>>
                writers;
            std::future<Expected<std::vector<camera::CapturedFile>>> result;
        };
        std::vector<Pending> pending;
        for (auto* cam : chosen) {
            auto info = cam->info();
            Pending p;
            p.ref = protocol::CameraRef{info.model, info.serial, info.port, true};
            p.writers = std::make_shared<
                std::vector<std::pair<std::string, std::shared_ptr<spool::SpoolWriter>>>>();
            auto writers = p.writers;
            std::string prefix = safe_part(info.serial.empty() ? "cam" : info.serial);
            char seq_text[16];
            std::snprintf(seq_text, sizeof seq_text, "%04d", order.seq_offset + shot);
            std::string batch = req.batch;
            spool::Spool* spool = spool_.get();
            camera::SinkFactory factory = [writers, prefix, seq_text = std::string(seq_text), batch,
                                           spool](const camera::FileHeader& header)
                -> Expected<std::unique_ptr<camera::DownloadSink>> {
                std::string name = prefix + "_" + seq_text + "_" + safe_part(header.camera_name);
                std::string rel = batch + "/" + name;
                if (spool->exists(rel)) {
                    // The same batch id was used before: keep both photos, never overwrite.
                    auto dot = name.rfind('.');
                    std::string tag = "_" + ids::random_hex(6);
                    name = dot == std::string::npos ? name + tag
                                                    : name.substr(0, dot) + tag + name.substr(dot);
                    rel = batch + "/" + name;
                }
                auto writer = spool->create_writer(rel);
                if (!writer) return writer.error();
                auto shared = std::shared_ptr<spool::SpoolWriter>(std::move(*writer));
                writers->emplace_back(rel, shared);
                return std::unique_ptr<camera::DownloadSink>(new SpoolSink(shared));
            };
            camera::CaptureOptions co;
            co.trigger_at_us = shot_trigger_us;
            p.result = cam->capture(factory, co);
            pending.push_back(std::move(p));
        }
        for (auto& p : pending) {
            auto result = p.result.get();
            if (!result) {
                ++capture_errors_total_;
                Error e = result.error().with_context("camera " + p.ref.serial);
                {
                    std::lock_guard<std::mutex> lock(last_error_mutex_);
                    last_error_ = e.describe();
                }
                LOG_WARN(kLog, "capture failed: " << e.describe());
                errors.push_back(e);
                continue;  // the writers abort themselves when released
            }
            if (!result->empty())
                triggers.push_back(protocol::TriggerTime{p.ref.serial, order.seq_offset + shot,
                                                         result->front().triggered_at_us});
            // Files and writers arrive in the same order: the worker asks for one sink per file.
            for (size_t i = 0; i < result->size() && i < p.writers->size(); ++i) {
                const auto& file = (*result)[i];
                auto [rel, writer] = (*p.writers)[i];
                while (unfinished.size() >= kMaxUnfinishedPhotos) collect_oldest();
                unfinished.push_back(finisher.submit([this, &publisher, batch = req.batch,
                                                      seq = order.seq_offset + shot, ref = p.ref,
                                                      rel = rel, writer = writer, file] {
                    auto meta = spool_photo(batch, seq, ref, rel, file.triggered_at_ms,
                                            file.trigger_ms, file.download_ms, writer.get());
                    if (meta) publisher.submit([this, m = *meta] { publish_photo(m); });
                    return meta;
                }));
            }
        }
    }
    while (!unfinished.empty()) collect_oldest();
    // The response follows the last upload job's PUBACK (or its timeout).
    // A response follows the last upload job's PUBACK (or its timeout). A scan step does
    // not wait: its photos are safe in the spool, and the next step's turntable move
    // overlaps the publishing (which stays in order).
    if (!order.done) publisher.submit([] {}).wait();
    if (order.done) {
        order.done->set_value(ScanRunner::CaptureOutcome{std::move(photos), std::move(errors)});
        return;
    }
    std::string payload;
    if (photos.empty() && !errors.empty()) {
        payload = protocol::response_error(order.transaction_json, errors.front());
    } else {
        payload = protocol::response_ok(
            order.transaction_json,
            protocol::capture_result_json(req.batch, photos, errors, triggers));
    }
    respond_to(order.verb, order.response_topic, order.correlation_data, payload);
}

Expected<protocol::CaptureMetadata> RigService::spool_photo(const std::string& batch, int seq,
                                                            const protocol::CameraRef& camera,
                                                            const std::string& relative_path,
                                                            int64_t triggered_at_ms,
                                                            int64_t trigger_ms, int64_t download_ms,
                                                            spool::SpoolWriter* writer) {
    auto spooled = writer->commit();
    if (!spooled) return spooled.error().with_context("spool " + relative_path);
    protocol::CaptureMetadata m;
    m.capture_id = ids::time_ordered_id(triggered_at_ms);
    m.job_id = m.capture_id;
    m.rig_id = config_.rig_id;
    m.batch = batch;
    m.seq = seq;
    m.camera = camera;
    m.captured_at_ms = triggered_at_ms;
    m.file_name = spooled->name;
    m.file_path = spooled->path;
    m.size = spooled->size;
    m.sha256 = spooled->sha256;
    m.mime = media::mime_for_name(spooled->name);
    auto exif = media::read_exif(spooled->path);
    if (exif) m.exif = to_wire(*exif);
    m.trigger_ms = trigger_ms;
    m.download_ms = download_ms;
    // The sidecar makes the spool self-describing: after a crash the reconciler re-offers
    // the file with the same job id, so the uploader recognises it.
    auto st = spool_->write_sidecar(relative_path, protocol::capture_metadata_json(m));
    if (!st) LOG_WARN(kLog, "sidecar for " << relative_path << ": " << st.error().describe());
    ++photos_total_;
    count_photo(m.captured_at_ms);
    state_dirty_ = true;
    return m;
}

void RigService::publish_photo(const protocol::CaptureMetadata& m) {
    // No wait for this ack: the job's PUBACK that follows on the same connection covers it.
    mqtt::Message capture_msg{
        base_ + "/capture", protocol::capture_metadata_json(m), 1, false, "", ""};
    if (auto pst = mqtt_->publish_queued(capture_msg, false, kPublishTimeout); !pst) {
        LOG_WARN(kLog, "publishing metadata of " << m.file_name << ": " << pst.error().describe());
    }
    publish_job(m);
}

void RigService::handle_scan(const mqtt::Message& message, const std::string& txn) {
    auto fail = [&](const Error& e) {
        ++request_errors_total_;
        LOG_INFO(kLog, "request/scan refused: " << e.describe());
        respond("scan", message, protocol::response_error(txn, e));
    };
    auto req = protocol::parse_scan(message.payload, limits_);
    if (!req) return fail(req.error());
    if (req->action == "start") {
        Error camera_error;
        if (choose_cameras(req->camera, &camera_error).empty()) return fail(camera_error);
        if (auto st = check_disk(); !st) return fail(st.error());
    }
    auto progress = scan_->handle(*req, new_batch_id(clock::now_ms()));
    if (!progress) return fail(progress.error());
    respond("scan", message, protocol::response_ok(txn, *progress));
}

std::optional<ScanRunner::CaptureOutcome> RigService::capture_for_scan(
    const protocol::CaptureRequest& request, int seq_offset) {
    CaptureOrder order;
    order.request = request;
    order.transaction_json = "null";
    order.verb = "scan";
    order.seq_offset = seq_offset;
    order.done = std::make_shared<std::promise<ScanRunner::CaptureOutcome>>();
    auto outcome = order.done->get_future();
    ++pending_orders_;
    state_dirty_ = true;
    capture_orders_.push(std::move(order));
    // The capture thread may be gone when the agent stops: never wait past that.
    while (outcome.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (stopping_) return std::nullopt;
    }
    return outcome.get();
}

Status RigService::deliver_manifest(const protocol::ScanRecord& record) {
    const std::string rel = record.batch + "/" + record.scan_id + ".manifest.json";
    if (spool_->exists(rel)) return ok();  // delivered before a restart; the reconciler offers it
    const std::string text = protocol::scan_manifest_json(record, config_.rig_id);
    auto writer = spool_->create_writer(rel);
    if (!writer) return writer.error().with_context("scan manifest");
    if (auto st = (*writer)->write(text.data(), text.size()); !st)
        return st.error().with_context("scan manifest");
    auto spooled = (*writer)->commit();
    if (!spooled) return spooled.error().with_context("scan manifest");
    protocol::CaptureMetadata m;
    m.capture_id = ids::time_ordered_id(record.finished_at_ms);
    m.job_id = m.capture_id;
    m.rig_id = config_.rig_id;
    m.batch = record.batch;
    m.captured_at_ms = record.finished_at_ms;
    m.file_name = spooled->name;
    m.file_path = spooled->path;
    m.size = spooled->size;
    m.sha256 = spooled->sha256;
    m.mime = "application/json";
    if (auto st = spool_->write_sidecar(rel, protocol::capture_metadata_json(m)); !st) {
        LOG_WARN(kLog, "sidecar for " << rel << ": " << st.error().describe());
    }
    // No wait for the ack (the scan's lock is held): the reconciler re-offers it if lost.
    publish_job(m, /*wait_for_ack=*/false);
    return ok();
}

void RigService::publish_job(const protocol::CaptureMetadata& m, bool wait_for_ack) {
    protocol::UploadJob job;
    job.job_id = m.job_id;
    job.capture_id = m.capture_id;
    job.rig_id = m.rig_id;
    job.batch = m.batch;
    job.path = m.file_path;
    job.remote_name = m.file_name;
    job.mime = m.mime;
    job.sha256 = m.sha256;
    job.size = m.size;
    job.captured_at_ms = m.captured_at_ms;
    mqtt::Message msg{base_ + "/upload/jobs", protocol::upload_job_json(job), 1, false, "", ""};
    // Wait for the broker's PUBACK: only then is the job the broker's to keep. If it fails
    // the file stays in the spool and the reconciler offers it again.
    auto st = wait_for_ack ? mqtt_->publish(msg, false, kPublishTimeout)
                           : mqtt_->publish_queued(msg, false, std::chrono::milliseconds(0));
    if (!st) {
        LOG_WARN(kLog, "upload job for " << m.file_name << " not acknowledged ("
                                         << st.error().describe() << "); it will be offered again");
        return;
    }
    ++jobs_published_;
}

void RigService::reconcile_spool(bool at_startup) {
    // Half-written photos of a crash that happened after start-up's own clean-up.
    if (!at_startup) spool_->remove_stale_temps(300);
    auto entries = spool_->list();
    if (!entries) {
        LOG_WARN(kLog, "listing the spool: " << entries.error().describe());
        return;
    }
    int64_t now = clock::now_ms();
    int64_t age_limit = config_.spool.reoffer_after_s * 1000LL;
    size_t offered = 0;
    std::map<std::string, int64_t> still_there;
    for (const auto& entry : *entries) {
        if (!at_startup && now - entry.mtime_ms < age_limit) continue;
        protocol::CaptureMetadata meta;
        auto parsed = entry.sidecar.empty()
                          ? Expected<protocol::CaptureMetadata>(make_error("missing", "no sidecar"))
                          : protocol::parse_capture_metadata(entry.sidecar);
        if (parsed) {
            meta = *parsed;
            meta.file_path = entry.path;
        } else {
            // A crash between committing the photo and writing its sidecar: describe it
            // from the file itself and write the sidecar now, so its job id stays stable.
            auto sha = Sha256::of_file(entry.path);
            if (!sha) continue;
            meta.capture_id = ids::time_ordered_id(entry.mtime_ms);
            meta.job_id = meta.capture_id;
            meta.rig_id = config_.rig_id;
            auto slash = entry.relative_path.find('/');
            meta.batch =
                slash == std::string::npos ? "recovered" : entry.relative_path.substr(0, slash);
            meta.captured_at_ms = entry.mtime_ms;
            meta.file_name = entry.name;
            meta.file_path = entry.path;
            meta.size = entry.size;
            meta.sha256 = *sha;
            meta.mime = media::mime_for_name(entry.name);
            (void)spool_->write_sidecar(entry.relative_path, protocol::capture_metadata_json(meta));
        }
        still_there[meta.job_id] = 0;
        // Back off per file (doubling up to an hour) so a long uploader outage does not
        // flood the broker's queue with the same jobs every few seconds.
        auto next = next_offer_ms_.find(meta.job_id);
        if (!at_startup && next != next_offer_ms_.end() && now < next->second) continue;
        int64_t& backoff = offer_backoff_ms_[meta.job_id];
        backoff = backoff == 0 ? age_limit : std::min<int64_t>(backoff * 2, 3600 * 1000);
        next_offer_ms_[meta.job_id] = now + backoff;
        if (!mqtt_->connected()) continue;
        publish_job(meta);
        ++jobs_reoffered_;
        ++offered;
    }
    // Forget files that have gone (uploaded and deleted).
    for (auto it = next_offer_ms_.begin(); it != next_offer_ms_.end();) {
        if (!still_there.count(it->first)) {
            offer_backoff_ms_.erase(it->first);
            it = next_offer_ms_.erase(it);
        } else {
            ++it;
        }
    }
    if (offered > 0) LOG_INFO(kLog, "re-offered " << offered << " spooled file(s) to the uploader");
    state_dirty_ = true;
}

protocol::AgentState RigService::current_state() {
    protocol::AgentState s;
    s.cameras = camera_refs();
    s.busy = capture_busy_;
    s.spool_files = spool_->file_count();
    auto free_bytes = spool_->disk_free_bytes();
    s.disk_free_bytes = free_bytes ? *free_bytes : 0;
    s.version = PHOTORIG_VERSION;
    s.pending_requests = pending_orders_;
    {
        std::lock_guard<std::mutex> lock(photo_day_mutex_);
        s.photos_today = photo_day_ == local_day(clock::now_ms()) ? photos_today_ : 0;
        s.last_capture_at_ms = last_capture_at_ms_;
    }
    std::lock_guard<std::mutex> lock(last_error_mutex_);
    s.last_error = last_error_;
    return s;
}

int RigService::local_day(int64_t epoch_ms) {
    time_t t = static_cast<time_t>(epoch_ms / 1000);
    struct tm local {};
    localtime_r(&t, &local);
    return (local.tm_year + 1900) * 10000 + (local.tm_mon + 1) * 100 + local.tm_mday;
}

void RigService::count_photo(int64_t captured_at_ms) {
    std::lock_guard<std::mutex> lock(photo_day_mutex_);
    int day = local_day(captured_at_ms);
    if (day != photo_day_) {
        photo_day_ = day;
        photos_today_ = 0;
    }
    ++photos_today_;
    last_capture_at_ms_ = std::max(last_capture_at_ms_, captured_at_ms);
}

void RigService::publish_discovery() {
    const auto& ha = config_.homeassistant;
    std::string topic = protocol::ha_discovery_topic(ha.prefix, config_.rig_id);
    if (!ha.discovery) {
        // Switched off: take back what an earlier run may have left retained.
        if (discovery_cleared_) return;
        discovery_cleared_ = true;
        mqtt_->publish_nowait(mqtt::Message{topic, "", 1, true, "", ""}, true);
        return;
    }
    protocol::DiscoveryInfo info;
    info.rig_id = config_.rig_id;
    info.base_topic = base_;
    info.version = PHOTORIG_VERSION;
    info.cameras = camera_refs();
    discovered_serials_.clear();
    for (const auto& c : info.cameras) discovered_serials_.push_back(c.serial);
    mqtt_->publish_nowait(mqtt::Message{topic, protocol::ha_discovery_json(info), 1, true, "", ""},
                          true);
}

void RigService::publish_state() {
    protocol::AgentState s = current_state();
    if (config_.homeassistant.discovery && mqtt_->connected()) {
        // A camera found (or its serial learnt) after start-up needs its own entity.
        std::vector<std::string> serials;
        for (const auto& c : s.cameras) serials.push_back(c.serial);
        if (serials != discovered_serials_) publish_discovery();
    }
    mqtt_->publish_nowait(
        mqtt::Message{base_ + "/state", protocol::agent_state_json(s), 1, true, "", ""}, true);
}

void RigService::publish_availability(bool online) {
    mqtt_->publish_nowait(
        mqtt::Message{base_ + "/availability", online ? "online" : "offline", 1, true, "", ""},
        true);
}

void RigService::publish_telemetry() {
    std::vector<std::pair<std::string, uint64_t>> counters{
        {"uptime_s", static_cast<uint64_t>((clock::now_ms() - started_ms_) / 1000)},
        {"photos_total", photos_total_},
        {"capture_errors_total", capture_errors_total_},
        {"jobs_published_total", jobs_published_},
        {"jobs_reoffered_total", jobs_reoffered_},
        {"requests_total", requests_total_},
        {"request_errors_total", request_errors_total_},
        {"spool_files", spool_->file_count()},
    };
    mqtt_->publish_nowait(
        mqtt::Message{base_ + "/telemetry", protocol::counters_json(counters), 0, false, "", ""},
        false);
}

}  // namespace photorig::rig
