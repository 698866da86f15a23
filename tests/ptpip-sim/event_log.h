// Append-only JSON-lines log of notable simulator events, one flushed line each:
//   {"t_us":1700000000123456,"event":"object_added","handle":3,"conn":1}
// t_us is CLOCK_REALTIME in microseconds. Some events carry extra fields (see README.md).
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace ptpsim {

int64_t realtime_us();

class EventLog {
  public:
    EventLog() = default;
    ~EventLog();
    EventLog(const EventLog&) = delete;
    EventLog& operator=(const EventLog&) = delete;

    bool open(const std::string& path);  // empty path: logging stays off
    bool enabled() const { return file_ != nullptr; }
    // `extra` is either empty or a string of further JSON members starting with ','.
    void log(const char* event, uint32_t handle, uint32_t conn, const std::string& extra = "",
             int64_t t_us = 0);

  private:
    std::mutex mu_;
    FILE* file_ = nullptr;
};

}  // namespace ptpsim
