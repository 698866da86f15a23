// How long a thread has been inside one piece of work (a libgphoto2 call, a handler)
// without coming back: the systemd watchdog is only petted while every thread that can
// hang on a camera or the broker came back recently (agent/service/systemd_notify.h).
//
// The owning thread calls begin() before work and end() after it, and beat() inside long
// loops that make progress (each returning call). Waiting idle for work is not busy: an
// idle thread never stops the pets. Any thread may read busy_for_ms().
#pragma once

#include <atomic>
#include <cstdint>

#include "core/clock.h"

namespace photorig {

class Liveness {
  public:
    void begin() { busy_since_ms_.store(clock::monotonic_ms(), std::memory_order_relaxed); }
    void beat() {
        if (busy_since_ms_.load(std::memory_order_relaxed) != 0) begin();
    }
    void end() { busy_since_ms_.store(0, std::memory_order_relaxed); }
    // 0 when idle; else how long since begin() or the last beat().
    int64_t busy_for_ms() const {
        int64_t since = busy_since_ms_.load(std::memory_order_relaxed);
        return since == 0 ? 0 : clock::monotonic_ms() - since;
    }

  private:
    std::atomic<int64_t> busy_since_ms_{0};
};

// begin() now, end() at scope exit.
class BusyScope {
  public:
    explicit BusyScope(Liveness& l) : liveness_(l) { liveness_.begin(); }
    ~BusyScope() { liveness_.end(); }
    BusyScope(const BusyScope&) = delete;
    BusyScope& operator=(const BusyScope&) = delete;

  private:
    Liveness& liveness_;
};

}  // namespace photorig
