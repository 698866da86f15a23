#include "rig/camera_set.h"

#include "camera/usb_port.h"
#include "core/log.h"
#include "protocol/wire.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
}

void CameraSet::open(const config::Config& config) {
    warn_if_gvfs_holds_cameras(config);
    for (const auto& entry : config.cameras) add_workers_for(config, entry);
}

// gvfs's gphoto2 volume monitor grabs every PTP camera of a desktop session; then every
// open fails with "Could not claim the USB device". Said once, up front, with the fix.
void CameraSet::warn_if_gvfs_holds_cameras(const config::Config& config) {
    bool usb = false;
    for (const auto& entry : config.cameras) usb |= entry.port.rfind("ptpip:", 0) != 0;
    if (!usb) return;
    std::string port;
    for (const auto& entry : config.cameras)
        if (entry.port.rfind("usb:", 0) == 0) port = entry.port;
    std::string advice = camera::check_camera_holders(port);
    if (!advice.empty()) LOG_ERROR(kLog, advice);
}

void CameraSet::stop_all() {
    for (auto& cam : workers_) cam->stop();
}

// One configured camera: an explicit port opens that camera (and pins the serial it
// reports, or the configured one); a serial number alone is looked for on every USB port;
// "auto" opens every camera detected now.
void CameraSet::add_workers_for(const config::Config& config, const config::CameraConfig& entry) {
    camera::WorkerOptions opts;
    opts.capture_timeout_ms = entry.capture_timeout_ms;
    opts.delete_after_download = entry.delete_from_camera;
    opts.keepalive_interval_ms = entry.keepalive_ms;
    opts.reconnect_backoff_max_ms = entry.reconnect_max_ms;
    opts.capture_target = entry.capture_target;
    opts.stuck_after_reinits = entry.stuck_after_reinits;
    opts.trigger_priority = config.capture.trigger_priority;
    if (!entry.preset.empty()) opts.settings = config.camera_presets.at(entry.preset);

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
        workers_.push_back(std::move(worker));
    }
}

camera::CameraWorker* CameraSet::choose_one(const std::string& serial, Error* error) const {
    if (serial.empty() || serial == "all") {
        if (workers_.size() == 1) return workers_.front().get();
        *error = make_error(protocol::codes::bad_request,
                            workers_.empty()
                                ? "no camera is configured on this rig"
                                : "camera: this rig has " + std::to_string(workers_.size()) +
                                      " cameras; name one by its serial");
        if (workers_.empty()) error->code = protocol::codes::camera_not_found;
        return nullptr;
    }
    std::vector<camera::CameraWorker*> chosen = choose(serial, error);
    return chosen.empty() ? nullptr : chosen.front();
}

std::vector<camera::CameraWorker*> CameraSet::choose(const std::string& selector,
                                                     Error* error) const {
    std::vector<camera::CameraWorker*> chosen;
    for (const auto& cam : workers_) {
        if (selector == "all" || cam->info().serial == selector) chosen.push_back(cam.get());
    }
    if (chosen.empty()) {
        *error = make_error(protocol::codes::camera_not_found,
                            workers_.empty() ? "no camera is connected to this rig"
                                             : "no camera with serial '" + selector + "'");
    }
    return chosen;
}

std::vector<camera::CameraHealth> CameraSet::health() const {
    std::vector<camera::CameraHealth> health;
    for (const auto& cam : workers_) health.push_back(cam->health());
    return health;
}

std::pair<std::string, int64_t> CameraSet::longest_busy() const {
    std::pair<std::string, int64_t> longest{"", 0};
    for (const auto& cam : workers_) {
        int64_t busy = cam->busy_for_ms();
        if (busy > longest.second) longest = {cam->info().port, busy};
    }
    return longest;
}

std::vector<protocol::CameraRef> CameraSet::refs() const {
    std::vector<protocol::CameraRef> refs;
    for (const auto& cam : workers_) {
        auto info = cam->info();
        refs.push_back(protocol::CameraRef{info.model, info.serial, info.port, cam->connected()});
    }
    return refs;
}

}  // namespace photorig::rig
