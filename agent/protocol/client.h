// The client side of the wire (rigctl, dashboards, tests): request payloads built from
// typed fields, and the agent's responses and retained/streamed messages read back into
// plain types. Like wire.h, this is the only place such a client touches the JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/expected.h"
#include "protocol/types.h"

namespace photorig::protocol::client {

// A request's fields, by name, as the client was given them; only the fields set are sent,
// so the agent's defaults apply to the rest.
class RequestBody {
  public:
    using Value = std::variant<std::string, int64_t, bool>;

    RequestBody& set(const std::string& field, std::string value);
    RequestBody& set(const std::string& field, const char* value);
    RequestBody& set(const std::string& field, int64_t value);
    RequestBody& set(const std::string& field, bool value);
    bool has(const std::string& field) const { return fields_.count(field) != 0; }

    // The JSON object of the fields plus "transaction" (a string), as published.
    std::string json(const std::string& transaction) const;

  private:
    std::map<std::string, Value> fields_;
};

// A response on base/response/<verb>: {"status","transaction","data"|"error"}.
struct Response {
    bool ok = false;
    std::optional<std::string> transaction;  // nullopt unless the transaction is a string
    std::string data_json = "{}";            // ok: the data object as JSON text
    Error error;                             // error: the agent's code and message
};
// bad_json / bad_request (not an object, no "status").
Expected<Response> parse_response(const std::string& payload);

// JSON text re-indented by two spaces, for people to read; bad_json if it is not JSON.
Expected<std::string> pretty_json(const std::string& text);

// base/state and the status response's data. Fields not sent keep their defaults.
Expected<AgentState> parse_agent_state(const std::string& payload);
// base/uploader/state.
Expected<UploaderState> parse_uploader_state(const std::string& payload);

// The capture response's data, as a client reads it.
struct CapturedPhoto {
    std::string capture_id, camera, file, sha256, captured_at;  // captured_at: RFC 3339
    int seq = 0;
    uint64_t size = 0;
};
struct CaptureResult {
    std::string batch;
    int count = 0;
    std::vector<CapturedPhoto> photos;
    std::vector<Error> errors;          // per camera that failed
    std::vector<TriggerTime> triggers;  // each camera's trigger per shot (camera "all")
};
Expected<CaptureResult> parse_capture_result(const std::string& payload);

// The fleet parts of base/state (issue 14); each is unset when the rig does not send it
// (an older agent, no clock report, no bridge configured).
struct StateFleetFields {
    std::optional<bool> clock_synced;
    std::optional<int64_t> clock_est_error_us;
    std::optional<bool> bridge_connected;
};
Expected<StateFleetFields> parse_state_fleet_fields(const std::string& payload);

// One rig of `rigctl fleet status`, from its retained topics; unset = not known.
struct FleetRow {
    std::string rig_id;
    std::string availability;  // online | offline | "" (never seen)
    int cameras_online = 0, cameras_total = 0;
    std::optional<uint64_t> spool_files;   // unset without a base/state
    std::optional<uint64_t> upload_queue;  // the uploader's queue_depth; unset without one
    std::string last_error;                // the agent's, else the uploader's; "" = none
    std::optional<bool> bridge_connected;
    std::optional<bool> clock_synced;
    std::optional<int64_t> clock_est_error_us;
    std::vector<std::string> groups;
};
// `rigctl fleet status --json`: one JSON array, an object per row (null for unset).
std::string fleet_rows_json(const std::vector<FleetRow>& rows);

// base/scan/progress, the retained base/scan/state and the scan response's data.
struct ScanProgress {
    std::string event, scan_id, batch, state;
    int step = 0, of = 0, photos = 0;
    std::optional<int64_t> eta_s;  // null while unknown
    std::string waiting_for;       // "" when not waiting
    std::string error_code, error_message;
};
Expected<ScanProgress> parse_scan_progress(const std::string& payload);

}  // namespace photorig::protocol::client
