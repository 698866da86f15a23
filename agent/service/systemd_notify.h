// The daemons' side of systemd's Type=notify protocol (sd_notify through libsystemd):
// READY=1 once the service really works, STATUS= lines for `systemctl status`, WATCHDOG=1
// at half of WatchdogSec= while every thread that could hang is making progress, and
// STOPPING=1 at shutdown. Everything is a no-op when NOTIFY_SOCKET is unset (a shell, a
// test, deploy/run.sh).
//
// Threads: one owner thread (the service loop) calls every method; pets are sent from that
// thread, so a hung service loop stops them by itself, and `healthy` tells it whether the
// other threads (cameras) came back recently.
#pragma once

#include <cstdint>
#include <string>

namespace photorig::service {

class SystemdNotifier {
  public:
    // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled) once.
    SystemdNotifier();

    bool enabled() const { return enabled_; }
    // 0 when systemd asked for no watchdog; else WatchdogSec= in microseconds.
    uint64_t watchdog_usec() const { return watchdog_usec_; }
    // A thread busy this long without progress counts as hung: WatchdogSec=.
    int64_t hang_limit_ms() const { return static_cast<int64_t>(watchdog_usec_ / 1000); }

    // READY=1 with a first STATUS=; only the first call sends anything.
    void ready(const std::string& status);
    bool is_ready() const { return ready_sent_; }
    // STATUS=<text>: dropped when unchanged; at most one a second, the latest text winning
    // (flush() sends a held-back one).
    void status(const std::string& text);
    // Call from the service loop, often (every ~100 ms): sends a held-back STATUS= and, when
    // due (every WATCHDOG_USEC/2) and `healthy`, WATCHDOG=1. `why_not` names the thread
    // that stopped the pets; logged once per stall.
    void tick(bool healthy, const std::string& why_not = "");
    // STOPPING=1 with a STATUS=.
    void stopping(const std::string& status);

    uint64_t pets_sent() const { return pets_sent_; }

  private:
    void send(const std::string& state);
    void flush_status(int64_t now);

    bool enabled_ = false;
    uint64_t watchdog_usec_ = 0;
    bool ready_sent_ = false;
    std::string last_status_, pending_status_;
    bool status_pending_ = false;
    int64_t last_status_ms_ = 0;
    int64_t next_pet_ms_ = 0;
    bool withholding_ = false;
    uint64_t pets_sent_ = 0;
};

}  // namespace photorig::service
