#include "rig/rig_stats.h"

#include <algorithm>
#include <ctime>

namespace photorig::rig {

int RigStats::local_day(int64_t epoch_ms) {
    time_t t = static_cast<time_t>(epoch_ms / 1000);
    struct tm local {};
    localtime_r(&t, &local);
    return (local.tm_year + 1900) * 10000 + (local.tm_mon + 1) * 100 + local.tm_mday;
}

void RigStats::count_photo(int64_t captured_at_ms) {
    std::lock_guard<std::mutex> lock(photo_day_mutex_);
    int day = local_day(captured_at_ms);
    if (day != photo_day_) {
        photo_day_ = day;
        photos_today_ = 0;
    }
    ++photos_today_;
    last_capture_at_ms_ = std::max(last_capture_at_ms_, captured_at_ms);
}

uint64_t RigStats::photos_today(int64_t now_ms) const {
    std::lock_guard<std::mutex> lock(photo_day_mutex_);
    return photo_day_ == local_day(now_ms) ? photos_today_ : 0;
}

int64_t RigStats::last_capture_at_ms() const {
    std::lock_guard<std::mutex> lock(photo_day_mutex_);
    return last_capture_at_ms_;
}

void RigStats::set_last_error(const std::string& text) {
    std::lock_guard<std::mutex> lock(last_error_mutex_);
    last_error_ = text;
}

std::string RigStats::last_error() const {
    std::lock_guard<std::mutex> lock(last_error_mutex_);
    return last_error_;
}

}  // namespace photorig::rig
