// Wire format of turntable scans: the `scan` request, the move requests a turntable
// controller answers on `base/scan/ready`, progress, the scan's durable record (it
// survives an agent restart) and the manifest uploaded with the photos.
#pragma once

#include <string>
#include <vector>

#include "core/expected.h"
#include "protocol/types.h"
#include "protocol/wire.h"

namespace photorig::protocol {

namespace codes {
inline constexpr const char* scan_active = "scan_active";  // start while a scan runs or is paused
inline constexpr const char* no_scan = "no_scan";          // pause/resume/abort with none
}  // namespace codes

struct ScanRequest {
    std::string action = "start";  // start | pause | resume | abort | status
    int positions = 0;             // start: turntable positions, a capture at each
    std::string camera = "all";    // serial or "all"
    int count = 1;                 // photos per camera at each position
    int settle_ms = 0;             // after the turntable is ready, before the trigger
    int interval_ms = 0;           // at least this long from one position's start to the next
    bool turntable = true;         // false: no move/ready handshake (timed steps)
    int move_timeout_ms = 30000;   // how long to wait for `ready`
    double degrees = 0;            // per step; 0 = 360 / positions
    std::string batch;             // empty: the agent makes one
};

// What a scan is doing; also its durable record (with `request` and `captures`).
struct ScanRecord {
    std::string scan_id, batch;
    std::string state;  // running | paused | completed | aborted
    ScanRequest request;
    int steps_done = 0;
    std::vector<CaptureMetadata> captures;
    int64_t started_at_ms = 0, finished_at_ms = 0;
    int64_t busy_ms = 0;                    // time spent on completed steps (for the estimate)
    std::string waiting_for;                // while running: turntable | settle | capture | ""
    std::string error_code, error_message;  // why it paused or ended early
};

Expected<ScanRequest> parse_scan(const std::string& payload, const Limits& limits);

// base/scan/move: {"scan_id","step","of","degrees","position_deg"}
std::string scan_move_json(const ScanRecord& r, int step);
// base/scan/ready, from a turntable controller: a JSON object whose optional `step` and
// `scan_id` must match the move being waited for, or any non-JSON text (e.g. "ready").
bool scan_ready_matches(const std::string& payload, const ScanRecord& r, int step);
// base/scan/progress and the retained base/scan/state: {"scan_id","batch","state","step",
// "of","photos","eta_s","waiting_for","error"}. `event` names what just happened.
std::string scan_progress_json(const ScanRecord& r, const std::string& event, int64_t eta_s);
std::string scan_record_json(const ScanRecord& r);
Expected<ScanRecord> parse_scan_record(const std::string& text);
std::string scan_manifest_json(const ScanRecord& r, const std::string& rig_id);

}  // namespace photorig::protocol
