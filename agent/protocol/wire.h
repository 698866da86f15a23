// Wire format: JSON <-> the plain types in types.h, stable error codes, payload limits.
// Nothing else in photorig builds or parses the JSON that crosses MQTT.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error_codes.h"
#include "core/expected.h"
#include "protocol/types.h"

namespace photorig::protocol {

// Stable error codes sent in responses. Clients switch on these; never rename one.
namespace codes {
inline constexpr const char* bad_json = "bad_json";
inline constexpr const char* bad_request = "bad_request";
inline constexpr const char* out_of_range = "out_of_range";
inline constexpr const char* invalid_name = "invalid_name";
inline constexpr const char* payload_too_large = "payload_too_large";
inline constexpr const char* unknown_verb = "unknown_verb";
inline constexpr const char* camera_not_found = "camera_not_found";
inline constexpr const char* disk_full = "disk_full";
// The rig's capture queue holds capture.queue_max requests already (camera_busy is the
// camera itself refusing, e.g. DeviceBusy).
inline constexpr const char* queue_full = "queue_full";
inline constexpr const char* not_supported = "not_supported";
inline constexpr const char* internal_error = "internal_error";
// The camera errors (camera_busy, camera_disconnected, timeout, ...) pass through
// unchanged; they are declared once in core/error_codes.h.
using namespace photorig::codes;
}  // namespace codes

struct Limits {
    size_t max_payload_bytes = 16384;
    int max_count = 1000;
    int max_interval_ms = 3600000;
};

// Verbs the agent answers. request/<verb> with anything else gets unknown_verb.
const std::vector<std::string>& known_verbs();

// The part every request shares. `transaction_json` is the client's transaction value as
// JSON text ("null" when absent) so it can be echoed exactly as sent.
// `expires_at` (issue 14, epoch ms, any verb): past it the request is answered `expired`
// and not carried out (RequestRouter). Every verb accepts it beside its own fields.
struct Envelope {
    std::string transaction_json = "null";
    std::optional<int64_t> expires_at_ms;
};

// Parses size, JSON syntax, object shape and transaction. An empty payload means {}
// (so a Home Assistant button or `mosquitto_pub -n` works). On error the envelope still
// carries whatever transaction could be read, for the error response.
Expected<Envelope> parse_envelope(const std::string& payload, const Limits& limits,
                                  Envelope* partial_out);

Expected<CaptureRequest> parse_capture(const std::string& payload, const Limits& limits);
// config/get {"camera"?, "name"?}, config/set {"camera"?, "name", "value"}, preview {"camera"?}.
Expected<CameraRequest> parse_config_get(const std::string& payload);
Expected<CameraRequest> parse_config_set(const std::string& payload);
Expected<CameraRequest> parse_preview(const std::string& payload);
// For verbs whose only field is the transaction (cameras, status).
Status parse_no_fields(const std::string& payload);

// capture/cancel: which accepted capture requests to stop, by the transaction they were
// sent with (as JSON text, compared with Envelope::transaction_json) and/or their batch.
struct CaptureCancel {
    std::string capture_transaction_json;  // "" = any
    std::string batch;                     // "" = any
};
// At least one of "capture_transaction" and "batch" is required (bad_request otherwise).
Expected<CaptureCancel> parse_capture_cancel(const std::string& payload);
std::string capture_cancel_json(int cancelled);  // {"cancelled":n}

// A name that will become part of a file path or topic: [A-Za-z0-9._-]{1,64}, not "." or "..",
// not starting with '.'.
bool is_safe_name(const std::string& name);

std::string response_ok(const std::string& transaction_json, const std::string& data_json);
std::string response_error(const std::string& transaction_json, const Error& error);
// An ok response with "warnings":[{"code","message"}...] beside "data" (none: no key).
std::string response_ok(const std::string& transaction_json, const std::string& data_json,
                        const std::vector<Error>& warnings);

std::string capture_metadata_json(const CaptureMetadata& m);
Expected<CaptureMetadata> parse_capture_metadata(const std::string& json);
// With `triggers`: each camera's trigger time per shot and, per shot, the spread between
// the first and the last camera (trigger_spread_ms: the largest over all shots).
std::string capture_result_json(const std::string& batch,
                                const std::vector<CaptureMetadata>& photos,
                                const std::vector<Error>& camera_errors,
                                const std::vector<TriggerTime>& triggers = {});

std::string settings_json(const std::string& camera, const SettingNode& root);
std::string setting_set_json(const std::string& camera, const std::string& name,
                             const std::string& value);
std::string preview_json(const std::string& camera, const std::string& source, size_t bytes,
                         int64_t taken_at_ms, const std::string& topic);
// base/event: {"type":"camera_connected"|"camera_disconnected","camera":{...},"ts":...,"message"?}
std::string camera_event_json(const std::string& type, const CameraRef& camera,
                              const std::string& message);
// base/event {"type":"camera_stuck","camera":{...},"ts","attempts","usb_reset","message"}:
// the camera failed `attempts` re-opens in a row, a USB reset among them.
std::string camera_stuck_json(const CameraRef& camera, int attempts, const std::string& usb_reset,
                              const std::string& message);

std::string upload_job_json(const UploadJob& job);
Expected<UploadJob> parse_upload_job(const std::string& json);

std::string upload_event_json(const UploadEvent& e);
Expected<UploadEvent> parse_upload_event(const std::string& json);

std::string cameras_json(const std::vector<CameraRef>& cameras);
std::string agent_state_json(const AgentState& s);
std::string uploader_state_json(const UploaderState& s);
// Telemetry: a flat object of named counters.
std::string counters_json(const std::vector<std::pair<std::string, uint64_t>>& counters);

}  // namespace photorig::protocol
