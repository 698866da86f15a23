#include "protocol/homeassistant.h"

#include <nlohmann/json.hpp>

#include "protocol/client.h"
#include "protocol/json_fields.h"

namespace photorig::protocol {
namespace {
using nlohmann::json;

// Entity ids are derived from unique ids; keep them to what Home Assistant slugs cleanly.
std::string slug(const std::string& s) {
    std::string out;
    for (char ch : s) {
        bool keep = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        if (ch >= 'A' && ch <= 'Z') {
            out += static_cast<char>(ch - 'A' + 'a');
        } else {
            out += keep ? ch : '_';
        }
    }
    return out.empty() ? "_" : out;
}

// Jinja string literal for a serial number inside a value template.
std::string jinja_quoted(const std::string& s) {
    std::string out = "'";
    for (char ch : s) {
        if (ch == '\'' || ch == '\\') out += '\\';
        out += ch;
    }
    return out + "'";
}

// The rig's topics. `base_topic` is <topic_prefix>/<rig_id>; the prefix is what precedes
// the rig id.
RigTopics topics_of(const DiscoveryInfo& info) {
    const std::string& base = info.base_topic;
    const std::string tail = "/" + info.rig_id;
    const bool has_tail = base.size() > tail.size() &&
                          base.compare(base.size() - tail.size(), tail.size(), tail) == 0;
    return RigTopics(has_tail ? base.substr(0, base.size() - tail.size()) : base, info.rig_id);
}

// What a button press publishes: a request whose transaction names Home Assistant.
std::string press(const client::RequestBody& body) {
    return body.json("homeassistant");
}

// Buttons that start a capture or a scan, and the scan's progress.
void add_capture_and_scan(json& cmps, const RigTopics& topics, const std::string& uid) {
    cmps["capture"] = {{"p", "button"},
                       {"unique_id", uid + "_capture"},
                       {"name", "Capture"},
                       {"icon", "mdi:camera"},
                       {"command_topic", topics.request("capture")},
                       {"payload_press", press(client::RequestBody())},
                       {"qos", 1}};
    // A full turn of 36 positions; other scans are started from a script or automation
    // (dashboards/home-assistant) with their own positions and settle time.
    cmps["scan_start"] = {
        {"p", "button"},
        {"unique_id", uid + "_scan_start"},
        {"name", "Start scan"},
        {"icon", "mdi:rotate-3d-variant"},
        {"command_topic", topics.request("scan")},
        {"payload_press",
         press(client::RequestBody().set("action", "start").set("positions", int64_t{36}))},
        {"qos", 1}};
    cmps["scan_abort"] = {{"p", "button"},
                          {"unique_id", uid + "_scan_abort"},
                          {"name", "Abort scan"},
                          {"icon", "mdi:stop-circle"},
                          {"command_topic", topics.request("scan")},
                          {"payload_press", press(client::RequestBody().set("action", "abort"))},
                          {"qos", 1}};
    cmps["scan_progress"] = {
        {"p", "sensor"},
        {"unique_id", uid + "_scan_progress"},
        {"name", "Scan progress"},
        {"icon", "mdi:progress-clock"},
        {"unit_of_measurement", "%"},
        {"state_topic", topics.scan_state()},
        {"value_template", "{{ (100 * value_json.step / value_json.of) | round(0) }}"},
        // state, photos, eta_s, batch... as attributes for cards and automations
        {"json_attributes_topic", topics.scan_state()}};
}

// Sensors on the rig's own state and on its uploader's.
void add_state_sensors(json& cmps, const RigTopics& topics, const std::string& uid) {
    // The uploader is a process of its own: its sensors follow its availability too.
    const json uploader_availability = json::array({
        json{{"topic", topics.availability()}},
        json{{"topic", topics.uploader_availability()}},
    });
    cmps["photos_today"] = {{"p", "sensor"},
                            {"unique_id", uid + "_photos_today"},
                            {"name", "Photos today"},
                            {"icon", "mdi:image-multiple"},
                            {"state_topic", topics.state()},
                            {"value_template", "{{ value_json.photos_today }}"},
                            {"unit_of_measurement", "photos"},
                            {"state_class", "total_increasing"}};
    cmps["last_capture"] = {
        {"p", "sensor"},
        {"unique_id", uid + "_last_capture"},
        {"name", "Last capture"},
        {"device_class", "timestamp"},
        {"state_topic", topics.state()},
        // null before the first photo renders "None": Home Assistant shows unknown.
        {"value_template", "{{ value_json.last_capture_at }}"}};
    cmps["disk_free"] = {{"p", "sensor"},
                         {"unique_id", uid + "_disk_free"},
                         {"name", "Spool disk free"},
                         {"device_class", "data_size"},
                         {"unit_of_measurement", "B"},
                         {"suggested_display_precision", 0},
                         {"state_class", "measurement"},
                         {"entity_category", "diagnostic"},
                         {"state_topic", topics.state()},
                         {"value_template", "{{ value_json.disk_free_bytes }}"}};
    cmps["upload_queue"] = {{"p", "sensor"},
                            {"unique_id", uid + "_upload_queue"},
                            {"name", "Upload queue"},
                            {"icon", "mdi:cloud-upload"},
                            {"unit_of_measurement", "photos"},
                            {"state_class", "measurement"},
                            {"state_topic", topics.uploader_state()},
                            {"value_template", "{{ value_json.queue_depth }}"},
                            {"availability", uploader_availability},
                            {"availability_mode", "all"}};
    cmps["upload_last_error"] = {{"p", "sensor"},
                                 {"unique_id", uid + "_upload_last_error"},
                                 {"name", "Upload last error"},
                                 {"entity_category", "diagnostic"},
                                 {"state_topic", topics.uploader_state()},
                                 {"value_template", "{{ value_json.last_error | default('') }}"},
                                 {"availability", uploader_availability},
                                 {"availability_mode", "all"}};
    cmps["preview"] = {{"p", "image"},
                       {"unique_id", uid + "_preview"},
                       {"name", "Preview"},
                       {"image_topic", topics.preview()},
                       {"content_type", "image/jpeg"}};
}

// Per camera: its connectivity and a button that refreshes the preview from it.
void add_cameras(json& cmps, const RigTopics& topics, const std::string& uid,
                 const std::vector<CameraRef>& cameras) {
    for (const auto& cam : cameras) {
        if (cam.serial.empty()) continue;
        std::string key = "camera_" + slug(cam.serial);
        cmps[key] = {
            {"p", "binary_sensor"},
            {"unique_id", uid + "_" + key},
            {"name", "Camera " + cam.serial + (cam.model.empty() ? "" : " (" + cam.model + ")")},
            {"device_class", "connectivity"},
            {"state_topic", topics.state()},
            {"value_template", "{% set c = value_json.cameras | selectattr('serial', 'eq', " +
                                   jinja_quoted(cam.serial) +
                                   ") | list %}{{ 'ON' if c and c[0].connected else 'OFF' }}"},
            {"payload_on", "ON"},
            {"payload_off", "OFF"}};
        // The preview image updates when asked: one button per camera.
        cmps["preview_" + slug(cam.serial)] = {
            {"p", "button"},
            {"unique_id", uid + "_preview_" + slug(cam.serial)},
            {"name", "Preview " + cam.serial},
            {"icon", "mdi:image-refresh"},
            {"command_topic", topics.request("preview")},
            {"payload_press", press(client::RequestBody().set("camera", cam.serial))},
            {"qos", 1}};
    }
}
}  // namespace

std::string ha_discovery_json(const DiscoveryInfo& info) {
    const RigTopics topics = topics_of(info);
    const std::string uid = "photorig_" + slug(info.rig_id);
    json cmps = json::object();
    add_capture_and_scan(cmps, topics, uid);
    add_state_sensors(cmps, topics, uid);
    add_cameras(cmps, topics, uid, info.cameras);

    json j{{"dev",
            {{"ids", json::array({uid})},
             {"name", "photorig " + info.rig_id},
             {"mf", "photorig"},
             {"mdl", "Photogrammetry camera rig"},
             {"sw", info.version}}},
           {"o", {{"name", "photorig"}, {"sw", info.version}}},
           {"cmps", cmps},
           // A list, not availability_topic: shared options are merged into every component,
           // and the uploader's sensors replace it with their own list (the two keys exclude
           // each other in Home Assistant's schema).
           {"availability", json::array({json{{"topic", topics.availability()}}})},
           {"qos", 1}};
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

}  // namespace photorig::protocol
