#include "event_log.h"

#include <time.h>

#include <cinttypes>

namespace ptpsim {

int64_t realtime_us() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

EventLog::~EventLog() {
    if (file_) std::fclose(file_);
}

bool EventLog::open(const std::string& path) {
    if (path.empty()) return true;
    file_ = std::fopen(path.c_str(), "a");
    return file_ != nullptr;
}

void EventLog::log(const char* event, uint32_t handle, uint32_t conn, const std::string& extra,
                   int64_t t_us) {
    if (!file_) return;
    if (t_us == 0) t_us = realtime_us();
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(file_, "{\"t_us\":%" PRId64 ",\"event\":\"%s\",\"handle\":%u,\"conn\":%u%s}\n",
                 t_us, event, handle, conn, extra.c_str());
    std::fflush(file_);
}

}  // namespace ptpsim
