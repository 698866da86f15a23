#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <regex>
#include <set>

#include "core/files.h"

extern char** environ;

namespace photorig::config {
namespace {

constexpr long long kDriveChunkUnit = 256 * 1024;  // Drive: every chunk but the last is a multiple

Error bad(const std::string& key, const std::string& why) {
    return make_error("bad_config", key + ": " + why);
}

// How one dotted key is parsed into the struct. Values arrive as text from YAML scalars
// or environment variables alike, so both paths share the same checks and messages.
using Setter = std::function<Status(Config&, const std::string& key, const std::string& value)>;

struct Field {
    std::string key;
    Setter set;
    bool is_list = false;
};

Setter str(std::string Config::*member) {
    return [member](Config& c, const std::string&, const std::string& v) {
        c.*member = v;
        return ok();
    };
}

template <typename Section>
Setter str_in(std::function<Section&(Config&)> section, std::string Section::*member) {
    return [section, member](Config& c, const std::string&, const std::string& v) {
        section(c).*member = v;
        return ok();
    };
}

Expected<long long> parse_int(const std::string& key, const std::string& v, long long lo,
                              long long hi) {
    if (v.empty()) return bad(key, "must be a whole number, got an empty value");
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (errno != 0 || end == v.c_str() || *end != '\0') {
        return bad(key, "must be a whole number, got '" + v + "'");
    }
    if (n < lo || n > hi) {
        return bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                            ", got " + v);
    }
    return n;
}

template <typename Section, typename Int>
Setter int_in(std::function<Section&(Config&)> section, Int Section::*member, long long lo,
              long long hi) {
    return [section, member, lo, hi](Config& c, const std::string& key,
                                     const std::string& v) -> Status {
        auto n = parse_int(key, v, lo, hi);
        if (!n) return n.error();
        section(c).*member = static_cast<Int>(*n);
        return ok();
    };
}

template <typename Section>
Setter bool_in(std::function<Section&(Config&)> section, bool Section::*member) {
    return [section, member](Config& c, const std::string& key, const std::string& v) -> Status {
        std::string l = v;
        std::transform(l.begin(), l.end(), l.begin(),
                       [](unsigned char ch) { return std::tolower(ch); });
        if (l == "true" || l == "yes" || l == "on" || l == "1") {
            section(c).*member = true;
        } else if (l == "false" || l == "no" || l == "off" || l == "0") {
            section(c).*member = false;
        } else {
            return bad(key, "must be true or false, got '" + v + "'");
        }
        return ok();
    };
}

Config& root(Config& c) {
    return c;
}
MqttConfig& mqtt(Config& c) {
    return c.mqtt;
}
TlsConfig& tls(Config& c) {
    return c.mqtt.tls;
}
CameraConfig& camera(Config& c) {
    return c.camera;
}
SpoolConfig& spool(Config& c) {
    return c.spool;
}
UploadConfig& upload(Config& c) {
    return c.upload;
}
LocalTargetConfig& local(Config& c) {
    return c.upload.local;
}
GdriveConfig& gdrive(Config& c) {
    return c.upload.gdrive;
}
S3Config& s3(Config& c) {
    return c.upload.s3;
}
WebdavConfig& webdav(Config& c) {
    return c.upload.webdav;
}
LimitsConfig& limits(Config& c) {
    return c.limits;
}
CaptureConfig& capture(Config& c) {
    return c.capture;
}
HomeAssistantConfig& homeassistant(Config& c) {
    return c.homeassistant;
}
BridgeConfig& bridge(Config& c) {
    return c.bridge;
}

// YAML lists arrive joined by ','; env values are written that way too.
std::vector<std::string> split_list(const std::string& v) {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= v.size()) {
        size_t comma = v.find(',', start);
        std::string item =
            v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) items.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return items;
}

Status set_groups(Config& c, const std::string&, const std::string& v) {
    c.groups = split_list(v);
    return ok();
}

Status set_response_topic_allow(Config& c, const std::string&, const std::string& v) {
    c.mqtt.response_topic_allow = split_list(v);
    return ok();
}

// One table per config section; fields() concatenates them in this file's order, which is
// the order of all_keys() (--help).
std::vector<Field> top_level_fields() {
    return {
        {"rig_id", str(&Config::rig_id)},
        {"topic_prefix", str(&Config::topic_prefix)},
        {"log_level", str(&Config::log_level)},
        {"groups", set_groups, true},
        {"telemetry_interval_s", int_in<Config>(root, &Config::telemetry_interval_s, 1, 86400)},
    };
}

std::vector<Field> mqtt_fields() {
    return {
        {"mqtt.host", str_in<MqttConfig>(mqtt, &MqttConfig::host)},
        {"mqtt.port", int_in<MqttConfig>(mqtt, &MqttConfig::port, 1, 65535)},
        {"mqtt.username", str_in<MqttConfig>(mqtt, &MqttConfig::username)},
        {"mqtt.password_file", str_in<MqttConfig>(mqtt, &MqttConfig::password_file)},
        {"mqtt.keepalive_s", int_in<MqttConfig>(mqtt, &MqttConfig::keepalive_s, 5, 3600)},
        {"mqtt.client_id", str_in<MqttConfig>(mqtt, &MqttConfig::client_id)},
        {"mqtt.session_expiry_s",
         int_in<MqttConfig>(mqtt, &MqttConfig::session_expiry_s, 0, 7 * 86400)},
        {"mqtt.response_topic_allow", set_response_topic_allow, true},
        {"mqtt.tls.ca_file", str_in<TlsConfig>(tls, &TlsConfig::ca_file)},
        {"mqtt.tls.cert_file", str_in<TlsConfig>(tls, &TlsConfig::cert_file)},
        {"mqtt.tls.key_file", str_in<TlsConfig>(tls, &TlsConfig::key_file)},
    };
}

std::vector<Field> camera_fields() {
    return {
        {"camera.port", str_in<CameraConfig>(camera, &CameraConfig::port)},
        {"camera.model", str_in<CameraConfig>(camera, &CameraConfig::model)},
        {"camera.capture_timeout_ms",
         int_in<CameraConfig>(camera, &CameraConfig::capture_timeout_ms, 1000, 600000)},
        {"camera.delete_from_camera",
         bool_in<CameraConfig>(camera, &CameraConfig::delete_from_camera)},
        {"camera.serial", str_in<CameraConfig>(camera, &CameraConfig::serial)},
        {"camera.capture_target", str_in<CameraConfig>(camera, &CameraConfig::capture_target)},
        {"camera.preset", str_in<CameraConfig>(camera, &CameraConfig::preset)},
        {"camera.keepalive_ms",
         int_in<CameraConfig>(camera, &CameraConfig::keepalive_ms, 100, 600000)},
        {"camera.reconnect_max_ms",
         int_in<CameraConfig>(camera, &CameraConfig::reconnect_max_ms, 100, 600000)},
        {"camera.stuck_after_reinits",
         int_in<CameraConfig>(camera, &CameraConfig::stuck_after_reinits, 0, 1000)},
    };
}

std::vector<Field> spool_fields() {
    return {
        {"spool.dir", str_in<SpoolConfig>(spool, &SpoolConfig::dir)},
        {"spool.reoffer_after_s",
         int_in<SpoolConfig>(spool, &SpoolConfig::reoffer_after_s, 1, 7 * 86400)},
        {"spool.reconcile_interval_s",
         int_in<SpoolConfig>(spool, &SpoolConfig::reconcile_interval_s, 1, 86400)},
        {"spool.min_free_bytes",
         int_in<SpoolConfig>(spool, &SpoolConfig::min_free_bytes, 0, (1LL << 50))},
        {"spool.keep_uploaded_days",
         int_in<SpoolConfig>(spool, &SpoolConfig::keep_uploaded_days, 0, 3650)},
    };
}

// upload.* itself and the local target's keys.
std::vector<Field> upload_fields() {
    return {
        {"upload.target", str_in<UploadConfig>(upload, &UploadConfig::target)},
        {"upload.journal", str_in<UploadConfig>(upload, &UploadConfig::journal)},
        {"upload.concurrency", int_in<UploadConfig>(upload, &UploadConfig::concurrency, 1, 32)},
        {"upload.journal_keep_days",
         int_in<UploadConfig>(upload, &UploadConfig::journal_keep_days, 1, 3650)},
        {"upload.max_queued_jobs",
         int_in<UploadConfig>(upload, &UploadConfig::max_queued_jobs, 1, 1000000)},
        {"upload.bandwidth_limit_bytes_per_s",
         int_in<UploadConfig>(upload, &UploadConfig::bandwidth_limit_bytes_per_s, 0, (1LL << 40))},
        {"upload.parallel_bodies", bool_in<UploadConfig>(upload, &UploadConfig::parallel_bodies)},
        {"upload.retry_max_backoff_s",
         int_in<UploadConfig>(upload, &UploadConfig::retry_max_backoff_s, 1, 3600)},
        {"upload.delete_after_upload",
         bool_in<UploadConfig>(upload, &UploadConfig::delete_after_upload)},
        {"upload.stall_timeout_s",
         int_in<UploadConfig>(upload, &UploadConfig::stall_timeout_s, 1, 3600)},
        {"upload.ca_file", str_in<UploadConfig>(upload, &UploadConfig::ca_file)},
        {"upload.local.dir", str_in<LocalTargetConfig>(local, &LocalTargetConfig::dir)},
        {"upload.local.path_template",
         str_in<LocalTargetConfig>(local, &LocalTargetConfig::path_template)},
    };
}

std::vector<Field> gdrive_fields() {
    return {
        {"upload.gdrive.client_id", str_in<GdriveConfig>(gdrive, &GdriveConfig::client_id)},
        {"upload.gdrive.client_secret_file",
         str_in<GdriveConfig>(gdrive, &GdriveConfig::client_secret_file)},
        {"upload.gdrive.refresh_token_file",
         str_in<GdriveConfig>(gdrive, &GdriveConfig::refresh_token_file)},
        {"upload.gdrive.folder", str_in<GdriveConfig>(gdrive, &GdriveConfig::folder)},
        {"upload.gdrive.token_url", str_in<GdriveConfig>(gdrive, &GdriveConfig::token_url)},
        {"upload.gdrive.api_url", str_in<GdriveConfig>(gdrive, &GdriveConfig::api_url)},
        {"upload.gdrive.chunk_size_bytes",
         int_in<GdriveConfig>(gdrive, &GdriveConfig::chunk_size_bytes, kDriveChunkUnit, 1LL << 30)},
    };
}

std::vector<Field> s3_fields() {
    return {
        {"upload.s3.endpoint", str_in<S3Config>(s3, &S3Config::endpoint)},
        {"upload.s3.region", str_in<S3Config>(s3, &S3Config::region)},
        {"upload.s3.bucket", str_in<S3Config>(s3, &S3Config::bucket)},
        {"upload.s3.path_style", bool_in<S3Config>(s3, &S3Config::path_style)},
        {"upload.s3.access_key_id_file", str_in<S3Config>(s3, &S3Config::access_key_id_file)},
        {"upload.s3.secret_access_key_file",
         str_in<S3Config>(s3, &S3Config::secret_access_key_file)},
        {"upload.s3.key_template", str_in<S3Config>(s3, &S3Config::key_template)},
        // S3's own limits: parts of 5 MiB to 5 GiB.
        {"upload.s3.multipart_threshold_bytes",
         int_in<S3Config>(s3, &S3Config::multipart_threshold_bytes, 5LL << 20, 5LL << 30)},
        {"upload.s3.part_size_bytes",
         int_in<S3Config>(s3, &S3Config::part_size_bytes, 5LL << 20, 5LL << 30)},
    };
}

std::vector<Field> webdav_fields() {
    return {
        {"upload.webdav.url", str_in<WebdavConfig>(webdav, &WebdavConfig::url)},
        {"upload.webdav.username", str_in<WebdavConfig>(webdav, &WebdavConfig::username)},
        {"upload.webdav.password_file", str_in<WebdavConfig>(webdav, &WebdavConfig::password_file)},
    };
}

std::vector<Field> limits_fields() {
    return {
        {"limits.max_payload_bytes",
         int_in<LimitsConfig>(limits, &LimitsConfig::max_payload_bytes, 256, 1 << 20)},
        {"limits.max_count", int_in<LimitsConfig>(limits, &LimitsConfig::max_count, 1, 100000)},
        {"limits.max_interval_ms",
         int_in<LimitsConfig>(limits, &LimitsConfig::max_interval_ms, 0, 86400000)},
        {"capture.queue_max", int_in<CaptureConfig>(capture, &CaptureConfig::queue_max, 1, 65536)},
        {"capture.late_tolerance_ms",
         int_in<CaptureConfig>(capture, &CaptureConfig::late_tolerance_ms, 0, 3600000)},
        {"capture.trigger_priority",
         int_in<CaptureConfig>(capture, &CaptureConfig::trigger_priority, 0, 99)},
    };
}

std::vector<Field> homeassistant_fields() {
    return {
        {"homeassistant.discovery",
         bool_in<HomeAssistantConfig>(homeassistant, &HomeAssistantConfig::discovery)},
        {"homeassistant.prefix",
         str_in<HomeAssistantConfig>(homeassistant, &HomeAssistantConfig::prefix)},
    };
}

// The rig broker's bridge (the postinst hands these to run-broker.sh; the agent ignores them).
std::vector<Field> bridge_fields() {
    return {
        {"bridge.to", str_in<BridgeConfig>(bridge, &BridgeConfig::to)},
        {"bridge.ca_file", str_in<BridgeConfig>(bridge, &BridgeConfig::ca_file)},
        {"bridge.cert_file", str_in<BridgeConfig>(bridge, &BridgeConfig::cert_file)},
        {"bridge.key_file", str_in<BridgeConfig>(bridge, &BridgeConfig::key_file)},
    };
}

const std::vector<Field>& fields() {
    static const std::vector<Field> table = [] {
        std::vector<Field> all;
        for (auto section : {top_level_fields, mqtt_fields, camera_fields, spool_fields,
                             upload_fields, gdrive_fields, s3_fields, webdav_fields, limits_fields,
                             homeassistant_fields, bridge_fields}) {
            std::vector<Field> part = section();
            all.insert(all.end(), std::make_move_iterator(part.begin()),
                       std::make_move_iterator(part.end()));
        }
        return all;
    }();
    return table;
}

const Field* find_field(const std::string& key) {
    for (const auto& f : fields()) {
        if (f.key == key) return &f;
    }
    return nullptr;
}

bool is_section(const std::string& key) {
    std::string prefix = key + ".";
    for (const auto& f : fields()) {
        if (f.key.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
}

std::string scalar_text(const YAML::Node& node) {
    if (!node || node.IsNull()) return "";
    return node.Scalar();
}

// Flattens the YAML mapping into dotted keys, rejecting anything the schema does not know:
// a typo ("mqtt.prot") must stop the daemon, not silently fall back to a default.
Status flatten(const YAML::Node& node, const std::string& prefix,
               std::map<std::string, std::string>& out) {
    for (auto it = node.begin(); it != node.end(); ++it) {
        // Copies, not references: yaml-cpp's iterator hands out a temporary pair.
        const YAML::Node name_node = it->first;
        const YAML::Node value = it->second;
        std::string name = name_node.Scalar();
        std::string key = prefix.empty() ? name : prefix + "." + name;
        if (const Field* field = find_field(key)) {
            if (field->is_list) {
                if (value.IsSequence()) {
                    std::string joined;
                    for (const auto& item : value) {
                        if (!item.IsScalar()) return bad(key, "must be a list of names");
                        if (!joined.empty()) joined += ",";
                        joined += item.Scalar();
                    }
                    out[key] = joined;
                } else if (value.IsNull()) {
                    out[key] = "";
                } else {
                    return bad(key, "must be a list, e.g. [front, back]");
                }
            } else {
                if (value.IsMap() || value.IsSequence()) return bad(key, "must be a single value");
                out[key] = scalar_text(value);
            }
        } else if (is_section(key)) {
            if (value.IsNull()) continue;
            if (!value.IsMap()) return bad(key, "must be a mapping of keys");
            auto st = flatten(value, key, out);
            if (!st) return st;
        } else {
            return bad(key, "unknown key (check the spelling; see rig-agent --help for all keys)");
        }
    }
    return ok();
}

// An endpoint the HTTP targets can talk to: an absolute http(s) URL with a host.
bool valid_http_url(const std::string& url) {
    for (const char* scheme : {"http://", "https://"}) {
        const std::string prefix = scheme;
        if (url.compare(0, prefix.size(), prefix) != 0) continue;
        std::string rest = url.substr(prefix.size());
        if (rest.empty() || rest[0] == '/' || rest[0] == ':') return false;
        return rest.find_first_of(" \t\r\n") == std::string::npos;
    }
    return false;
}

Status check_http_url(const std::string& key, const std::string& url) {
    if (valid_http_url(url)) return ok();
    // A URL with user:password@ in it is not echoed: the message ends up in logs.
    const bool may_hold_credentials = url.find('@') != std::string::npos;
    return bad(key, "must be an http:// or https:// URL with a host" +
                        (may_hold_credentials ? std::string() : ", got '" + url + "'"));
}

// S3 bucket naming rules (AWS, also enforced by MinIO): 3-63 of a-z 0-9 . -, starting and
// ending with a letter or digit.
bool valid_bucket(const std::string& b) {
    if (b.size() < 3 || b.size() > 63) return false;
    for (char ch : b) {
        if (!(std::islower(static_cast<unsigned char>(ch)) ||
              std::isdigit(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-'))
            return false;
    }
    return b.front() != '.' && b.front() != '-' && b.back() != '.' && b.back() != '-';
}

bool valid_rig_id(const std::string& s) {
    static const std::regex re("^[a-z0-9_-]{1,64}$");
    return std::regex_match(s, re);
}

bool valid_topic_level_text(const std::string& s) {
    if (s.empty()) return false;
    for (char ch : s) {
        if (ch == '#' || ch == '+' || ch == '\0') return false;
    }
    return true;
}

Status validate_camera(const CameraConfig& cam, const std::string& key, const Config& c) {
    const std::string& port = cam.port;
    if (port.empty())
        return bad(key + ".port",
                   "must be auto, usb:BUS,DEV, ptpip:HOST[:PORT:PORT] or a serial number");
    if (port.rfind("ptpip:", 0) == 0 && port.size() == 6) {
        return bad(key + ".port", "ptpip: needs a host, e.g. ptpip:192.168.1.20");
    }
    if (cam.capture_target != "" && cam.capture_target != "card" && cam.capture_target != "ram") {
        return bad(key + ".capture_target",
                   "must be card or ram, got '" + cam.capture_target + "'");
    }
    if (!cam.preset.empty() && !c.camera_presets.count(cam.preset)) {
        return bad(key + ".preset", "no preset '" + cam.preset + "' under camera_presets");
    }
    return ok();
}

Status validate_cameras(const Config& c) {
    if (c.cameras.size() == 1) return validate_camera(c.cameras[0], "camera", c);
    std::set<std::string> ports, serials;
    for (size_t i = 0; i < c.cameras.size(); ++i) {
        const auto& cam = c.cameras[i];
        std::string key = "camera[" + std::to_string(i) + "]";
        if (auto st = validate_camera(cam, key, c); !st) return st;
        // Two entries for one camera would open it twice; "auto" may repeat (it adds nothing).
        if (cam.port != "auto" && !ports.insert(cam.port).second)
            return bad(key + ".port", "'" + cam.port + "' is listed twice");
        if (!cam.serial.empty() && !serials.insert(cam.serial).second) {
            return bad(key + ".serial", "'" + cam.serial + "' is listed twice");
        }
    }
    return ok();
}

// camera_presets: {name: {setting: value, ...}, ...}
Status parse_presets(const YAML::Node& node, Config& c) {
    if (node.IsNull()) return ok();
    if (!node.IsMap())
        return bad("camera_presets",
                   "must map preset names to settings, e.g. {studio: {iso: 400}}");
    for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node name_node = it->first;
        const YAML::Node settings = it->second;
        std::string name = name_node.Scalar();
        std::string key = "camera_presets." + name;
        if (!settings.IsMap())
            return bad(key, "must map setting names to values, e.g. {iso: 400, f-number: f/8}");
        CameraPreset preset;
        for (auto s = settings.begin(); s != settings.end(); ++s) {
            const YAML::Node setting = s->first;
            const YAML::Node value = s->second;
            if (!value.IsScalar())
                return bad(key + "." + setting.Scalar(), "must be a single value");
            preset.emplace_back(setting.Scalar(), value.Scalar());
        }
        c.camera_presets[name] = std::move(preset);
    }
    return ok();
}

// rig_id, the topic prefixes, log_level and groups, in the order they were always checked
// (the first failing check is the one reported). homeassistant.prefix is checked here with
// topic_prefix: both are topic prefixes under the same rule.
Status validate_top_level(const Config& c) {
    if (!valid_rig_id(c.rig_id)) {
        return bad("rig_id", "must match [a-z0-9_-]{1,64}, got '" + c.rig_id + "'");
    }
    auto valid_prefix = [](const std::string& p) {
        return valid_topic_level_text(p) && p.front() != '/' && p.back() != '/';
    };
    if (!valid_prefix(c.topic_prefix)) {
        return bad("topic_prefix",
                   "must be a topic without wildcards (+ #) or leading/trailing '/', got '" +
                       c.topic_prefix + "'");
    }
    if (!valid_prefix(c.homeassistant.prefix)) {
        return bad("homeassistant.prefix",
                   "must be a topic without wildcards (+ #) or leading/trailing '/', got '" +
                       c.homeassistant.prefix + "'");
    }
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error") {
        return bad("log_level",
                   "must be one of debug, info, warn, error; got '" + c.log_level + "'");
    }
    for (const auto& g : c.groups) {
        if (!valid_rig_id(g))
            return bad("groups", "group names must match [a-z0-9_-]{1,64}, got '" + g + "'");
    }
    return ok();
}

Status validate_mqtt(const MqttConfig& m) {
    if (m.host.empty()) return bad("mqtt.host", "must not be empty");

    if (!m.tls.ca_file.empty() && m.tls.cert_file.empty() != m.tls.key_file.empty()) {
        return bad("mqtt.tls.key_file", "cert_file and key_file go together");
    }
    return ok();
}

Status validate_spool(const SpoolConfig& s) {
    if (s.dir.empty() || s.dir.front() != '/') {
        return bad("spool.dir", "must be an absolute path, got '" + s.dir + "'");
    }
    return ok();
}

Status validate_gdrive(const GdriveConfig& g) {
    if (g.client_id.empty()) return bad("upload.gdrive.client_id", "is required for target gdrive");
    if (g.refresh_token_file.empty())
        return bad("upload.gdrive.refresh_token_file", "is required for target gdrive");
    if (g.client_secret_file.empty())
        return bad("upload.gdrive.client_secret_file", "is required for target gdrive");
    if (g.folder.empty() || g.folder == "id:" || g.folder.find('/') != std::string::npos)
        return bad("upload.gdrive.folder",
                   "must be a folder name without '/' or id:<folder id>, got '" + g.folder + "'");
    if (auto st = check_http_url("upload.gdrive.token_url", g.token_url); !st) return st;
    if (auto st = check_http_url("upload.gdrive.api_url", g.api_url); !st) return st;
    return ok();
}

Status validate_s3(const S3Config& s) {
    if (s.bucket.empty()) return bad("upload.s3.bucket", "is required for target s3");
    if (!valid_bucket(s.bucket))
        return bad("upload.s3.bucket",
                   "must be 3-63 characters of a-z 0-9 . - (S3 bucket naming rules), got '" +
                       s.bucket + "'");
    if (s.region.empty())
        return bad("upload.s3.region", "is required for target s3 (e.g. us-east-1)");
    if (auto st = check_http_url("upload.s3.endpoint", s.endpoint); !st) return st;
    if (s.access_key_id_file.empty())
        return bad("upload.s3.access_key_id_file", "is required for target s3");
    if (s.secret_access_key_file.empty())
        return bad("upload.s3.secret_access_key_file", "is required for target s3");
    return ok();
}

Status validate_webdav(const WebdavConfig& w) {
    if (w.url.empty()) return bad("upload.webdav.url", "is required for target webdav");
    if (auto st = check_http_url("upload.webdav.url", w.url); !st) return st;
    if (!w.password_file.empty() && w.username.empty())
        return bad("upload.webdav.username", "is required when upload.webdav.password_file is set");
    return ok();
}

Status validate_upload(const UploadConfig& u) {
    const std::string& t = u.target;
    if (t != "local" && t != "gdrive" && t != "s3" && t != "webdav") {
        return bad("upload.target", "must be one of local, gdrive, s3, webdav; got '" + t + "'");
    }
    if (u.journal.empty() || u.journal.front() != '/') {
        return bad("upload.journal", "must be an absolute path, got '" + u.journal + "'");
    }
    if (t == "local" && (u.local.dir.empty() || u.local.dir.front() != '/')) {
        return bad("upload.local.dir", "must be an absolute path, got '" + u.local.dir + "'");
    }
    if (u.gdrive.chunk_size_bytes % kDriveChunkUnit != 0) {
        return bad("upload.gdrive.chunk_size_bytes",
                   "must be a multiple of 262144 (256 KiB), got " +
                       std::to_string(u.gdrive.chunk_size_bytes));
    }
    // The chosen target's section must be complete; the others may hold anything.
    if (t == "gdrive") return validate_gdrive(u.gdrive);
    if (t == "s3") return validate_s3(u.s3);
    if (t == "webdav") return validate_webdav(u.webdav);
    return ok();
}

// HOST:PORT as mosquitto's bridge `address` takes it: a host name or IPv4 address, or an
// IPv6 address in brackets, and a port 1-65535.
bool valid_bridge_address(const std::string& to) {
    static const std::regex re(R"(^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):([0-9]{1,5})$)");
    std::smatch m;
    if (!std::regex_match(to, m, re)) return false;
    const long port = std::stol(m[2].str());
    return port >= 1 && port <= 65535;
}

Status validate_bridge(const BridgeConfig& b) {
    const std::pair<const char*, const std::string*> files[] = {
        {"bridge.ca_file", &b.ca_file},
        {"bridge.cert_file", &b.cert_file},
        {"bridge.key_file", &b.key_file},
    };
    if (b.to.empty()) {
        for (const auto& [key, path] : files) {
            if (!path->empty())
                return bad("bridge.to", std::string("is required when ") + key +
                                            " is set (HOST:PORT of the central broker)");
        }
        return ok();
    }
    if (!valid_bridge_address(b.to))
        return bad("bridge.to", "must be HOST:PORT (port 1-65535), got '" + b.to + "'");
    for (const auto& [key, path] : files) {
        if (path->empty() || path->front() != '/')
            return bad(key, "must be an absolute path when bridge.to is set, got '" + *path + "'");
    }
    return ok();
}

// Sections in a fixed order: the first failing check is the one reported.
Status validate(const Config& c) {
    if (auto st = validate_top_level(c); !st) return st;
    if (auto st = validate_mqtt(c.mqtt); !st) return st;
    if (auto st = validate_cameras(c); !st) return st;
    if (auto st = validate_spool(c.spool); !st) return st;
    if (auto st = validate_upload(c.upload); !st) return st;
    return validate_bridge(c.bridge);
}

}  // namespace

std::string env_name_for(const std::string& dotted_key) {
    std::string name = "PHOTORIG_";
    for (char ch : dotted_key) {
        name.push_back(ch == '.' ? '_'
                                 : static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    }
    return name;
}

std::vector<std::string> all_keys() {
    std::vector<std::string> keys;
    for (const auto& f : fields()) keys.push_back(f.key);
    return keys;
}

namespace {
// Sets flattened values (plus their environment overrides) on `c`; every key is known.
Status apply_values(Config& c, const std::map<std::string, std::string>& values,
                    const std::map<std::string, std::string>& env, const std::string& where = "") {
    for (const auto& [key, value] : values) {
        const Field* f = find_field(key);
        auto st = f->set(c, key, value);
        if (!st) {
            auto env_it = env.find(env_name_for(key));
            if (env_it != env.end() && env_it->second == value)
                return st.error().with_context("from " + env_name_for(key));
            return where.empty() ? st.error() : st.error().with_context(where);
        }
    }
    return ok();
}

bool is_camera_key(const std::string& key) {
    return key.rfind("camera.", 0) == 0;
}
}  // namespace

Expected<Config> parse(const std::string& yaml_text,
                       const std::map<std::string, std::string>& env) {
    std::map<std::string, std::string> values;
    // The list form of `camera:`: one map of camera.* values per item.
    std::vector<std::map<std::string, std::string>> camera_items;
    bool camera_list = false;
    Config c;
    try {
        YAML::Node doc = YAML::Load(yaml_text);
        if (doc && !doc.IsNull()) {
            if (!doc.IsMap())
                return bad("(top level)", "the config file must be a YAML mapping of keys");
            const YAML::Node& read_only = doc;  // operator[] on a const node never inserts
            const YAML::Node cameras = read_only["camera"];
            if (cameras && cameras.IsSequence()) {
                camera_list = true;
                for (size_t i = 0; i < cameras.size(); ++i) {
                    const YAML::Node item = cameras[i];
                    std::string key = "camera[" + std::to_string(i) + "]";
                    if (!item.IsMap())
                        return bad(key, "must be a mapping of camera keys, e.g. {port: auto}");
                    std::map<std::string, std::string> item_values;
                    auto st = flatten(item, "camera", item_values);
                    if (!st) return st.error().with_context(key);
                    camera_items.push_back(std::move(item_values));
                }
                doc.remove("camera");
            }
            const YAML::Node presets = read_only["camera_presets"];
            if (presets) {
                if (auto st = parse_presets(presets, c); !st) return st.error();
                doc.remove("camera_presets");
            }
            auto st = flatten(doc, "", values);
            if (!st) return st.error();
        }
    } catch (const YAML::Exception& e) {
        return make_error("bad_config", std::string("YAML syntax error: ") + e.what());
    }
    std::map<std::string, std::string> env_values;
    for (const auto& f : fields()) {
        auto it = env.find(env_name_for(f.key));
        if (it != env.end()) env_values[f.key] = it->second;
    }
    for (const auto& [key, value] : env_values) values[key] = value;
    if (auto st = apply_values(c, values, env); !st) return st.error();
    if (camera_list) {
        if (camera_items.empty()) return bad("camera", "the list of cameras is empty");
        // PHOTORIG_CAMERA_* overrides apply to every item of the list.
        for (size_t i = 0; i < camera_items.size(); ++i) {
            auto item_values = camera_items[i];
            for (const auto& [key, value] : env_values) {
                if (is_camera_key(key)) item_values[key] = value;
            }
            Config item;
            if (auto st = apply_values(item, item_values, env, "camera[" + std::to_string(i) + "]");
                !st)
                return st.error();
            c.cameras.push_back(item.camera);
        }
        c.camera = c.cameras.front();
    } else {
        c.cameras = {c.camera};
    }
    auto st = validate(c);
    if (!st) return st.error();
    return c;
}

Expected<Config> load(const std::string& path) {
    auto text = files::read_all(path);
    if (!text) return make_error("bad_config", "cannot read config file: " + text.error().message);
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv = *e;
        if (kv.rfind("PHOTORIG_", 0) != 0) continue;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto parsed = parse(*text, env);
    if (!parsed) return parsed.error().with_context(path);
    return parsed;
}

Status check_secret_files(const Config& c, bool for_uploader) {
    std::vector<std::pair<std::string, std::string>> secrets;  // key, path
    if (!c.mqtt.password_file.empty())
        secrets.emplace_back("mqtt.password_file", c.mqtt.password_file);
    if (!c.mqtt.tls.key_file.empty())
        secrets.emplace_back("mqtt.tls.key_file", c.mqtt.tls.key_file);
    if (for_uploader) {
        const auto& u = c.upload;
        if (u.target == "gdrive") {
            secrets.emplace_back("upload.gdrive.client_secret_file", u.gdrive.client_secret_file);
            secrets.emplace_back("upload.gdrive.refresh_token_file", u.gdrive.refresh_token_file);
        } else if (u.target == "s3") {
            secrets.emplace_back("upload.s3.access_key_id_file", u.s3.access_key_id_file);
            secrets.emplace_back("upload.s3.secret_access_key_file", u.s3.secret_access_key_file);
        } else if (u.target == "webdav" && !u.webdav.password_file.empty()) {
            secrets.emplace_back("upload.webdav.password_file", u.webdav.password_file);
        }
    }
    for (const auto& [key, path] : secrets) {
        auto secret = files::read_secret(path);
        if (!secret) return bad(key, secret.error().message);
    }
    return ok();
}

}  // namespace photorig::config
