#include "core/clock.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

namespace photorig::clock {

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

bool sleep_unless(const std::atomic<bool>* stop, int64_t ms) {
    const int64_t until = monotonic_ms() + ms;
    for (;;) {
        if (stop && stop->load(std::memory_order_relaxed)) return false;
        const int64_t left = until - monotonic_ms();
        if (left <= 0) return true;
        // Short naps: a stop is noticed within 20 ms.
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(left, 20)));
    }
}

int64_t monotonic_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t monotonic_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string rfc3339_utc_ms(int64_t epoch_ms) {
    std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    // Room for every field at its widest int, so GCC's -Wformat-truncation has nothing to flag.
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(epoch_ms % 1000));
    return buf;
}

std::string date_utc(int64_t epoch_ms) {
    return rfc3339_utc_ms(epoch_ms).substr(0, 10);
}

}  // namespace photorig::clock
