#pragma once

#include <cstdint>
#include <string>

namespace photorig::clock {

int64_t now_ms();          // wall clock, ms since the Unix epoch
int64_t now_us();          // wall clock, us since the Unix epoch
int64_t monotonic_ms();    // for deadlines and intervals
std::string rfc3339_utc_ms(int64_t epoch_ms);  // 2026-11-25T04:10:15.123Z
std::string date_utc(int64_t epoch_ms);        // 2026-11-25

}  // namespace photorig::clock
