// Plain data types that cross module boundaries. No JSON here: wire.h converts them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock_sync.h"

namespace photorig::protocol {

// A reference to one spooled photo that must reach the upload target exactly once.
// Travels agent -> uploader on base/upload/jobs; the uploader journals it by job_id.
struct UploadJob {
    std::string job_id;  // stable per spooled file: a re-offer carries the same id
    std::string capture_id;
    std::string rig_id;
    std::string batch;
    std::string path;         // absolute path of the spooled file
    std::string remote_name;  // file name at the target (the spool file's name)
    std::string mime;
    std::string sha256;  // hex, of the spooled file
    uint64_t size = 0;
    int64_t captured_at_ms = 0;  // epoch ms; gives {date} in templates
};

}  // namespace photorig::protocol

#include <optional>
#include <vector>

namespace photorig::protocol {

struct CameraRef {
    std::string model, serial, port;
    bool connected = false;
};

struct ExifFields {
    std::optional<int> iso;
    std::optional<double> exposure_time;            // seconds
    std::optional<std::string> exposure_time_text;  // "1/125"
    std::optional<double> f_number;
    std::optional<double> focal_length;  // mm
    std::optional<std::string> make, model, body_serial, datetime_original;
    std::optional<int> width, height;
};

// One photo, as published on base/capture and kept in the spool's sidecar file.
struct CaptureMetadata {
    std::string capture_id, rig_id, batch;
    int seq = 0;
    CameraRef camera;
    int64_t captured_at_ms = 0;
    std::string file_name, file_path, sha256, mime;
    uint64_t size = 0;
    ExifFields exif;
    int64_t trigger_ms = 0, download_ms = 0;
    std::string job_id;
};

struct CaptureRequest {
    std::string camera = "all";  // serial or "all"
    int count = 1;
    int interval_ms = 0;
    std::string batch;  // empty: the agent makes one
    std::optional<int64_t> capture_at_ms;
};

// config/get, config/set, preview: which camera, and for settings which one and the value.
struct CameraRequest {
    std::string camera;  // serial; "" = the rig's only camera
    std::string name;    // config/get: subtree ("" = all); config/set: the setting
    std::string value;   // config/set: as text (numbers and booleans arrive as their text)
};

// One node of a camera's settings tree, as config/get sends it.
struct SettingNode {
    std::string name, label, type, value;
    std::vector<std::string> choices;
    double min = 0, max = 0, step = 0;
    bool read_only = false;
    std::vector<SettingNode> children;
};

// When one camera fired for one shot of a capture request.
struct TriggerTime {
    std::string camera;  // serial
    int seq = 0;
    int64_t triggered_at_us = 0;  // epoch us
};

struct UploadEvent {
    std::string type;  // started | progress | done | failed
    std::string job_id, capture_id, batch, name;
    uint64_t bytes_done = 0, bytes_total = 0;
    // done: body bytes this attempt put on the wire (less than bytes_total after a resume,
    // 0 when the target already had the file; a retried chunk counts twice).
    uint64_t bytes_sent = 0;
    double rate_bytes_per_s = 0;
    std::string remote_ref;
    std::string error_code, error_message;
    bool retrying = false;
    int64_t next_attempt_in_ms = 0;
    int attempt = 0;
};

struct AgentState {
    // Issue 14: the system clock's NTP status (state `clock`), unset in tests that do not care.
    std::optional<clock::SyncStatus> clock;
    // Issue 14: the local broker's bridge to the central one, from its notification topic
    // base/bridge/state; unset when no notification was ever seen (no bridge configured).
    struct Bridge {
        bool connected = false;
        int64_t since_ms = 0;  // epoch ms of the last change the agent saw
    };
    std::optional<Bridge> bridge;
    std::vector<CameraRef> cameras;
    bool busy = false;
    uint64_t spool_files = 0;
    uint64_t disk_free_bytes = 0;
    std::string version;
    int pending_requests = 0;
    // The capture queue: requests accepted and not yet answered (the running one and scan
    // steps included) and the bound past which a request is answered queue_full.
    int capture_queue_depth = 0;
    int capture_queue_max = 0;
    std::string last_error;
    uint64_t photos_today = 0;       // since local midnight on the rig
    int64_t last_capture_at_ms = 0;  // 0 = none yet
    // The config's groups: whose <prefix>/group/<name>/request/... this rig acts on (a fleet
    // client learns a group's members from them).
    std::vector<std::string> groups;
};

struct UploaderState {
    uint64_t queued = 0, uploading = 0, done = 0, failed = 0;
    std::string target, last_error;
    bool target_reachable = true;  // false during an outage (several jobs failing in a row)
    int64_t retry_in_ms = 0;       // during an outage: until the next probe
    std::string version;
};

}  // namespace photorig::protocol
