#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace photorig::clock {

int64_t now_ms();                              // wall clock, ms since the Unix epoch
int64_t now_us();                              // wall clock, us since the Unix epoch
int64_t monotonic_ms();                        // for deadlines and intervals
int64_t monotonic_us();                        // for timing stages of a few ms
std::string rfc3339_utc_ms(int64_t epoch_ms);  // 2026-11-25T04:10:15.123Z
std::string date_utc(int64_t epoch_ms);        // 2026-11-25

// Sleeps `ms`, waking early when `stop` (may be null) becomes true; true if the whole time
// passed and `stop` is still false. For waits that a shutdown or cancel must cut short.
bool sleep_unless(const std::atomic<bool>* stop, int64_t ms);

}  // namespace photorig::clock
