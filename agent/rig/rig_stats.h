// The rig's counters (telemetry), its photos-today tally and last error, and the flag that
// says `state` needs publishing. Written by the capture thread, the service thread and
// the camera-request executor; read by StatePublisher on the service thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace photorig::rig {

class RigStats {
  public:
    std::atomic<uint64_t> photos_total{0}, capture_errors_total{0}, jobs_published{0},
        jobs_reoffered{0}, requests_total{0}, request_errors_total{0};
    // Floods (RequestGate): requests refused rate_limited / queue_full, refusals left
    // unanswered, the deepest the incoming queue got, and the MQTT client's own drops.
    std::atomic<uint64_t> requests_rate_limited_total{0}, requests_queue_full_total{0},
        requests_unanswered_total{0}, request_queue_peak{0}, messages_dropped_total{0},
        publishes_dropped_total{0};
    // Issue 14: redelivered requests not carried out again (RequestRouter's dedupe).
    std::atomic<uint64_t> requests_duplicate_total{0};
    // Where the photos' time went so far, summed per stage in microseconds (telemetry's
    // stage_<name>_us_total): the camera's trigger call, its events, the download (which
    // includes writing and hashing), hashing alone, deleting from the card, committing to the
    // spool (fsyncs, rename), EXIF, the sidecar, the directory fsync before the job leaves
    // (shared by the photos it covers), and publishing metadata + upload job.
    struct StageTotals {
        std::atomic<uint64_t> trigger{0}, event_wait{0}, download{0}, hash{0}, camera_delete{0},
            commit{0}, exif{0}, sidecar{0}, dir_sync{0}, publish{0};
    };
    StageTotals stage_us;
    // Issue 12: burst shots handed on (camera::CapturedFile::handed_on).
    std::atomic<uint64_t> shots_handed_on_total{0};

    // Set by whoever changes what `state` shows; the service thread publishes and clears it.
    std::atomic<bool> state_dirty{true};

    // One more photo, captured at `captured_at_ms` (epoch ms).
    void count_photo(int64_t captured_at_ms);
    // Photos captured on the local day of `now_ms` (0 if none yet that day).
    uint64_t photos_today(int64_t now_ms) const;
    int64_t last_capture_at_ms() const;

    void set_last_error(const std::string& text);
    std::string last_error() const;

    static int local_day(int64_t epoch_ms);  // YYYYMMDD in the rig's local time

  private:
    mutable std::mutex photo_day_mutex_;
    int photo_day_ = 0;
    uint64_t photos_today_ = 0;
    int64_t last_capture_at_ms_ = 0;
    mutable std::mutex last_error_mutex_;
    std::string last_error_;
};

}  // namespace photorig::rig
