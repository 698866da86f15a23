// The one place that reads YAML. Both daemons load the same file; PHOTORIG_<SECTION>_<KEY>
// environment variables override file values (PHOTORIG_MQTT_PORT, PHOTORIG_UPLOAD_S3_BUCKET).
// Every error names the key and why, so a bad config exits with a message a user can act on.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/expected.h"

namespace photorig::config {

struct TlsConfig {
    std::string ca_file, cert_file, key_file;  // TLS when ca_file is set
};

struct MqttConfig {
    std::string host = "127.0.0.1";
    int port = 1883;
    std::string username;
    std::string password_file;
    TlsConfig tls;
    int keepalive_s = 30;
    std::string client_id;  // empty: photorig-<rig_id>-agent / -uploader
    // rig-agent's MQTT v5 session (issue 14): requests published while the agent is away
    // (a broker restart, a reconnect) wait at the broker this long and are carried out when
    // it returns. 0 = a clean session on every connect, as before. The uploader keeps its
    // own (14-day) session whatever this says.
    int session_expiry_s = 300;
    // MQTT topic filters a request's v5 Response Topic may also match (besides the rig's own
    // response/ tree and topics outside photorig's and Home Assistant's trees).
    std::vector<std::string> response_topic_allow;
};

// One camera, or (port auto) every camera detected. `camera:` in the YAML is either one
// mapping of these keys (the single-camera form) or a list of them.
struct CameraConfig {
    std::string port = "auto";  // auto | usb:BUS,DEV | ptpip:HOST[:PORT:PORT] | serial number
    std::string model;          // libgphoto2 model name; empty = detect
    std::string serial;         // only the camera reporting this serial (empty: whichever answers)
    int capture_timeout_ms = 30000;
    bool delete_from_camera = true;  // false = keep on card
    std::string capture_target;      // "" (leave) | card | ram
    std::string preset;              // a name under camera_presets, applied at every connect
    int keepalive_ms = 2000;         // idle event poll: keeps the camera awake, notices a replug
    int reconnect_max_ms = 2000;     // longest wait between reconnect attempts
    // Failed re-opens in a row before a USB reset; one more after it: camera_stuck event.
    int stuck_after_reinits = 3;  // 0 = never
};

// A named set of camera settings (libgphoto2 names: iso, f-number, shutterspeed, ...),
// applied in the order written.
using CameraPreset = std::vector<std::pair<std::string, std::string>>;

struct SpoolConfig {
    std::string dir = "/var/spool/photorig";
    int reoffer_after_s = 120;      // a spooled file older than this is offered again
    int reconcile_interval_s = 30;  // how often the agent looks for such files
    uint64_t min_free_bytes = 200ull * 1024 * 1024;  // below: capture answers disk_full
    // 0: an uploaded photo leaves the spool once verified (if upload.delete_after_upload).
    // N: it moves to <dir>/.uploaded and is deleted N days later, or sooner, oldest first,
    // when the disk falls under min_free_bytes (an uploaded copy never stops capture).
    int keep_uploaded_days = 0;
};

struct LocalTargetConfig {
    std::string dir = "/var/lib/photorig/uploads";
    std::string path_template = "{rig_id}/{batch}/{name}";
};

struct GdriveConfig {
    std::string client_id, client_secret_file, refresh_token_file;
    std::string folder = "photorig";
    std::string token_url = "https://oauth2.googleapis.com/token";
    std::string api_url = "https://www.googleapis.com";
    // Bytes per resumable-upload request: a multiple of 256 KiB (Drive's rule). A crash or a
    // cut link costs at most the unconfirmed part of one chunk.
    uint64_t chunk_size_bytes = 8ull * 1024 * 1024;
};

struct S3Config {
    std::string endpoint = "https://s3.amazonaws.com";
    std::string region = "us-east-1";
    std::string bucket;
    bool path_style = false;
    std::string access_key_id_file, secret_access_key_file;
    std::string key_template = "{rig_id}/{batch}/{name}";
    // Files from the threshold up go as multipart uploads in parts of part_size (S3 wants
    // >= 5 MiB but for the last); a crash re-sends at most the part in flight.
    uint64_t multipart_threshold_bytes = 16ull << 20;
    uint64_t part_size_bytes = 8ull << 20;
};

struct WebdavConfig {
    std::string url, username, password_file;
};

struct UploadConfig {
    std::string target = "local";  // local | gdrive | s3 | webdav
    std::string journal = "/var/lib/photorig/uploader.sqlite";
    int concurrency = 2;
    uint64_t bandwidth_limit_bytes_per_s = 0;  // 0 = unlimited
    // false: one transfer sends its body at a time while the others set up and finish (the
    // first photo is safe after one upload's time); true: bodies share the link at once.
    bool parallel_bodies = false;
    int retry_max_backoff_s = 300;
    bool delete_after_upload = true;
    // Remote targets: a transfer moving under 1 byte/s for this long is abandoned (a stalled
    // or trickling server); their TLS certificates are verified against this CA file instead
    // of the system's store when it is set (verification is never off).
    int stall_timeout_s = 60;
    std::string ca_file;
    // Finished (done) journal rows older than this are deleted: a job offered again within
    // it is still recognised as uploaded; the journal stays bounded.
    int journal_keep_days = 30;
    // Upload jobs received and not yet journaled, at most (a burst from the broker faster
    // than the journal): past it a job is not taken, and the agent offers it again after
    // spool.reoffer_after_s (its spool file stays until the job is done).
    int max_queued_jobs = 10000;
    LocalTargetConfig local;
    GdriveConfig gdrive;
    S3Config s3;
    WebdavConfig webdav;
};

struct LimitsConfig {
    int max_payload_bytes = 16384;
    int max_count = 1000;
    int max_interval_ms = 3600000;
};

// Capture requests wait in one queue per rig and run one at a time in arrival order (a
// "camera": "all" shot fires every camera together, so every camera keeps that order).
struct CaptureConfig {
    // Requests accepted and not yet answered, the running one included; one more is
    // answered queue_full. A waiting request holds its parsed fields, transaction and reply
    // topic: typically well under 1 KiB, so 4096 are a few MiB (at most about
    // limits.max_payload_bytes each).
    int queue_max = 4096;
    // A capture_at more than this far in the past when the request is read answers too_late
    // and does not fire (a request that waited at the broker, or a slow clock).
    int late_tolerance_ms = 500;
    // SCHED_FIFO priority (1..99) of a camera's thread from a timed trigger's wake-up until
    // its command has left, so the rig's other threads do not delay it; needs LimitRTPRIO
    // (the packaged unit sets it) or CAP_SYS_NICE, else triggers run at normal priority.
    // 0: never asked.
    int trigger_priority = 10;
};

struct HomeAssistantConfig {
    bool discovery = true;                 // publish device-based MQTT discovery
    std::string prefix = "homeassistant";  // Home Assistant's discovery prefix
};

// The rig broker's bridge to a fleet's central broker (issue 14). The agent only validates
// these keys: the Debian package's postinst passes them to broker/run-broker.sh
// (--bridge-to, --bridge-ca, --bridge-cert, --bridge-key). Empty `to`: no bridge.
struct BridgeConfig {
    std::string to;                            // HOST:PORT of the central broker's TLS listener
    std::string ca_file, cert_file, key_file;  // deploy/fleet-certs.sh's ca.crt, <rig_id>.crt/.key
};

struct Config {
    std::string rig_id = "rig1";
    std::string topic_prefix = "photorig";
    std::string log_level = "info";
    std::vector<std::string> groups;  // <topic_prefix>/group/<name>/request/<verb>
    int telemetry_interval_s = 30;
    MqttConfig mqtt;
    CameraConfig camera;                // the single form, or the first item of the list
    std::vector<CameraConfig> cameras;  // every configured camera (the single form gives one)
    std::map<std::string, CameraPreset> camera_presets;
    SpoolConfig spool;
    UploadConfig upload;
    LimitsConfig limits;
    CaptureConfig capture;
    HomeAssistantConfig homeassistant;
    BridgeConfig bridge;

    std::string base_topic() const { return topic_prefix + "/" + rig_id; }
};

// Parses YAML text, applies overrides from `env` (name -> value) and validates.
// Error code "bad_config"; message starts with the dotted key: "mqtt.port: must be 1..65535".
Expected<Config> parse(const std::string& yaml_text, const std::map<std::string, std::string>& env);

// Reads the file and the process environment (PHOTORIG_* variables).
Expected<Config> load(const std::string& path);

// Checks that every secret file the chosen settings name exists and is not world-readable.
// `for_uploader` adds the upload target's secrets.
Status check_secret_files(const Config& config, bool for_uploader);

// The environment variable that overrides a dotted key: "upload.s3.bucket" ->
// PHOTORIG_UPLOAD_S3_BUCKET.
std::string env_name_for(const std::string& dotted_key);
std::vector<std::string> all_keys();  // every dotted key, for --help and docs

}  // namespace photorig::config
