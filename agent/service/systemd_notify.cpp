#include "service/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/clock.h"
#include "core/log.h"

namespace photorig::service {
namespace {
constexpr const char* kLog = "systemd";
constexpr int64_t kStatusEveryMs = 1000;
}  // namespace

SystemdNotifier::SystemdNotifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket != nullptr && *socket != '\0';
    uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
    if (sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
    if (enabled_) {
        LOG_INFO(kLog, "notifying systemd"
                           << (watchdog_usec_ ? ", watchdog every " +
                                                    std::to_string(watchdog_usec_ / 2000) + " ms"
                                              : std::string()));
    }
}

void SystemdNotifier::send(const std::string& state) {
    if (!enabled_) return;
    int rc = sd_notify(0, state.c_str());
    if (rc < 0) LOG_DEBUG(kLog, "sd_notify: " << std::strerror(-rc));
}

void SystemdNotifier::ready(const std::string& status) {
    if (ready_sent_) return;
    ready_sent_ = true;
    last_status_ = status;
    status_pending_ = false;
    last_status_ms_ = clock::monotonic_ms();
    send("READY=1\nSTATUS=" + status);
    LOG_INFO(kLog, "ready: " << status);
}

void SystemdNotifier::status(const std::string& text) {
    if (text == last_status_ && !status_pending_) return;
    pending_status_ = text;
    status_pending_ = text != last_status_;
    flush_status(clock::monotonic_ms());
}

void SystemdNotifier::flush_status(int64_t now) {
    if (!status_pending_ || now - last_status_ms_ < kStatusEveryMs) return;
    status_pending_ = false;
    last_status_ = pending_status_;
    last_status_ms_ = now;
    send("STATUS=" + last_status_);
}

void SystemdNotifier::tick(bool healthy, const std::string& why_not) {
    const int64_t now = clock::monotonic_ms();
    flush_status(now);
    if (watchdog_usec_ == 0) return;
    if (!healthy) {
        if (!withholding_)
            LOG_ERROR(kLog, "not petting the watchdog: " << why_not << " (systemd restarts the "
                                                         << "service after WatchdogSec=)");
        withholding_ = true;
        return;
    }
    if (withholding_) LOG_INFO(kLog, "petting the watchdog again");
    withholding_ = false;
    if (now < next_pet_ms_) return;
    // On a fixed grid of WATCHDOG_USEC/2, so a loop that wakes a little late (it polls every
    // 100 ms) still pets at the rate asked; after a withheld stretch the grid restarts.
    const int64_t half_ms = std::max<int64_t>(1, static_cast<int64_t>(watchdog_usec_ / 2000));
    if (next_pet_ms_ == 0 || now - next_pet_ms_ >= half_ms) next_pet_ms_ = now;
    next_pet_ms_ += half_ms;
    ++pets_sent_;
    send("WATCHDOG=1");
}

void SystemdNotifier::stopping(const std::string& status) {
    send("STOPPING=1\nSTATUS=" + status);
}

}  // namespace photorig::service
