#include "protocol/wire.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/clock.h"
#include "protocol/json_depth.h"
#include "protocol/json_fields.h"
#include "protocol/record_fields.h"

namespace photorig::protocol {
using nlohmann::json;

namespace detail {

Error field_error(const char* code, const std::string& field, const std::string& why) {
    return make_error(code, field + ": " + why);
}

// Parses without exceptions; nlohmann's parse errors become bad_json.
Expected<json> parse_json(const std::string& text) {
    if (json_depth(text) > kMaxJsonDepth) {
        return make_error(codes::bad_request, "payload nests objects or arrays more than " +
                                                  std::to_string(kMaxJsonDepth) + " levels deep");
    }
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(codes::bad_json, "payload is not valid JSON");
    return j;
}

Status check_known_fields(const json& obj, const std::set<std::string>& allowed) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        // expires_at belongs to the envelope (parse_envelope checks it) of every request.
        if (!allowed.count(it.key()) && it.key() != "expires_at") {
            return field_error(codes::bad_request, it.key(), "unknown field");
        }
    }
    return ok();
}

Expected<int64_t> get_int(const json& obj, const char* field, int64_t lo, int64_t hi) {
    const json& v = obj.at(field);
    if (!v.is_number_integer()) {
        if (v.is_number_float()) {
            double d = v.get<double>();
            if (std::floor(d) != d)
                return field_error(codes::bad_request, field, "must be a whole number");
            if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
                return field_error(
                    codes::out_of_range, field,
                    "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            }
            return static_cast<int64_t>(d);
        }
        return field_error(codes::bad_request, field,
                           std::string("must be a number, got ") + v.type_name());
    }
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return field_error(codes::out_of_range, field, "is too large");
    }
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) {
        return field_error(codes::out_of_range, field,
                           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                               ", got " + std::to_string(n));
    }
    return n;
}

Expected<std::string> get_string(const json& obj, const char* field, size_t max_len) {
    const json& v = obj.at(field);
    if (!v.is_string()) {
        return field_error(codes::bad_request, field,
                           std::string("must be a string, got ") + v.type_name());
    }
    std::string s = v.get<std::string>();
    if (s.empty()) return field_error(codes::bad_request, field, "must not be empty");
    if (s.size() > max_len) {
        return field_error(codes::out_of_range, field,
                           "is longer than " + std::to_string(max_len) + " characters");
    }
    return s;
}

Expected<std::string> get_batch(const json& obj) {
    auto v = get_string(obj, "batch", 64);
    if (!v) return v.error();
    if (!is_safe_name(*v)) {
        return field_error(codes::invalid_name, "batch",
                           "may only hold letters, digits, '.', '_' and '-' (no '/', no '..', not "
                           "starting with '.')");
    }
    return v;
}

Expected<json> parse_object(const std::string& payload) {
    if (payload.empty()) return json::object();
    auto j = parse_json(payload);
    if (!j) return j.error();
    if (!j->is_object()) {
        return make_error(codes::bad_request,
                          std::string("payload must be a JSON object, got ") + j->type_name());
    }
    return j;
}

int64_t parse_rfc3339_ms(const std::string& s) {
    // 2026-11-25T04:10:15.123Z
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

template <typename T>
void put_opt(json& j, const char* key, const std::optional<T>& v) {
    if (v) j[key] = *v;
}

template <typename T>
void get_opt(const json& j, const char* key, std::optional<T>& out) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) out = it->get<T>();
}

std::string str_or(const json& j, const char* key, const std::string& fallback = "") {
    auto it = j.find(key);
    return (it != j.end() && it->is_string()) ? it->get<std::string>() : fallback;
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace detail
using namespace detail;

const std::vector<std::string>& known_verbs() {
    static const std::vector<std::string> verbs = {"capture",    "cameras",       "status",
                                                   "config/get", "config/set",    "preview",
                                                   "scan",       "capture/cancel"};
    return verbs;
}

bool is_safe_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name[0] == '.') return false;
    for (char c : name) {
        bool okc = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-' || c == '.';
        if (!okc) return false;
    }
    return name.find("..") == std::string::npos;
}

namespace {
// Epoch ms up to 9999-12-31T23:59:59.999Z: the trigger works in microseconds
// (capture_at * 1000), which a larger value would overflow.
constexpr int64_t kLastEpochMs = 253402300799999;
}  // namespace

Expected<Envelope> parse_envelope(const std::string& payload, const Limits& limits,
                                  Envelope* partial_out) {
    Envelope env;
    if (payload.size() > limits.max_payload_bytes) {
        return make_error(codes::payload_too_large,
                          "payload has " + std::to_string(payload.size()) +
                              " bytes; the limit is " + std::to_string(limits.max_payload_bytes));
    }
    auto obj = parse_object(payload);
    if (!obj) return obj.error();
    auto it = obj->find("transaction");
    if (it != obj->end()) {
        // Echo what the client sent, as long as it is something a client can match on.
        if (it->is_string() || it->is_number() || it->is_null()) {
            if (it->is_string() && it->get_ref<const std::string&>().size() > 256) {
                return field_error(codes::out_of_range, "transaction",
                                   "is longer than 256 characters");
            }
            env.transaction_json = it->dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
            if (partial_out) *partial_out = env;
        } else {
            return field_error(codes::bad_request, "transaction", "must be a string or a number");
        }
    }
    if (obj->contains("expires_at")) {
        // Epoch ms, validated as capture_at is.
        auto v = get_int(*obj, "expires_at", 1, kLastEpochMs);
        if (!v) return v.error();
        env.expires_at_ms = *v;
        if (partial_out) *partial_out = env;
    }
    return env;
}

Status parse_no_fields(const std::string& payload) {
    auto obj = parse_object(payload);
    if (!obj) return obj.error();
    return check_known_fields(*obj, {"transaction"});
}

Expected<CaptureRequest> parse_capture(const std::string& payload, const Limits& limits) {
    auto obj_or = parse_object(payload);
    if (!obj_or) return obj_or.error();
    const json& obj = *obj_or;
    auto st = check_known_fields(
        obj, {"transaction", "camera", "count", "interval_ms", "batch", "capture_at"});
    if (!st) return st.error();
    CaptureRequest req;
    if (obj.contains("camera")) {
        auto v = get_string(obj, "camera", 128);
        if (!v) return v.error();
        req.camera = *v;
    }
    if (obj.contains("count")) {
        auto v = get_int(obj, "count", 1, limits.max_count);
        if (!v) return v.error();
        req.count = static_cast<int>(*v);
    }
    if (obj.contains("interval_ms")) {
        auto v = get_int(obj, "interval_ms", 0, limits.max_interval_ms);
        if (!v) return v.error();
        req.interval_ms = static_cast<int>(*v);
    }
    if (obj.contains("batch")) {
        auto v = get_batch(obj);
        if (!v) return v.error();
        req.batch = *v;
    }
    if (obj.contains("capture_at")) {
        auto v = get_int(obj, "capture_at", 1, kLastEpochMs);
        if (!v) return v.error();
        req.capture_at_ms = *v;
    }
    return req;
}

Expected<CaptureCancel> parse_capture_cancel(const std::string& payload) {
    auto obj_or = parse_object(payload);
    if (!obj_or) return obj_or.error();
    const json& obj = *obj_or;
    if (auto st = check_known_fields(obj, {"transaction", "capture_transaction", "batch"}); !st)
        return st.error();
    CaptureCancel cancel;
    if (obj.contains("capture_transaction")) {
        const json& t = obj["capture_transaction"];
        if (!(t.is_string() || t.is_number()) ||
            (t.is_string() && t.get_ref<const std::string&>().size() > 256))
            return field_error(codes::bad_request, "capture_transaction",
                               "must be the capture's transaction (a string of at most 256 "
                               "characters, or a number)");
        cancel.capture_transaction_json = t.dump();
    }
    if (obj.contains("batch")) {
        auto b = get_batch(obj);
        if (!b) return b.error();
        cancel.batch = *b;
    }
    if (cancel.capture_transaction_json.empty() && cancel.batch.empty())
        return make_error(codes::bad_request,
                          "name the capture to cancel: capture_transaction and/or batch");
    return cancel;
}

std::string capture_cancel_json(int cancelled) {
    return json{{"cancelled", cancelled}}.dump();
}

namespace {
Expected<CameraRequest> parse_camera_request(const std::string& payload, bool with_name,
                                             bool with_value) {
    auto obj_or = parse_object(payload);
    if (!obj_or) return obj_or.error();
    const json& obj = *obj_or;
    std::set<std::string> allowed{"transaction", "camera"};
    if (with_name) allowed.insert("name");
    if (with_value) allowed.insert("value");
    if (auto st = check_known_fields(obj, allowed); !st) return st.error();
    CameraRequest req;
    if (obj.contains("camera")) {
        auto v = get_string(obj, "camera", 128);
        if (!v) return v.error();
        req.camera = *v;
    }
    if (with_name && obj.contains("name")) {
        auto v = get_string(obj, "name", 128);
        if (!v) return v.error();
        req.name = *v;
    }
    if (with_value) {
        if (!obj.contains("name")) return field_error(codes::bad_request, "name", "is required");
        if (!obj.contains("value")) return field_error(codes::bad_request, "value", "is required");
        const json& v = obj.at("value");
        if (v.is_string()) {
            req.value = v.get<std::string>();
            if (req.value.size() > 1024)
                return field_error(codes::out_of_range, "value", "is longer than 1024 characters");
        } else if (v.is_boolean()) {
            req.value = v.get<bool>() ? "1" : "0";
        } else if (v.is_number_integer()) {
            req.value = v.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
        } else if (v.is_number_float()) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%g", v.get<double>());
            req.value = buf;
        } else {
            return field_error(
                codes::bad_request, "value",
                std::string("must be a string, number or boolean, got ") + v.type_name());
        }
    }
    return req;
}

json setting_to_json(const SettingNode& s) {
    json j{{"name", s.name}, {"label", s.label}, {"type", s.type}, {"read_only", s.read_only}};
    if (s.type == "range") {
        j["value"] = std::strtod(s.value.c_str(), nullptr);
        j["min"] = s.min;
        j["max"] = s.max;
        j["step"] = s.step;
    } else if (s.type == "toggle" || s.type == "date") {
        j["value"] = std::strtoll(s.value.c_str(), nullptr, 10);
    } else if (s.type != "window" && s.type != "section" && s.type != "button") {
        j["value"] = s.value;
    }
    if (s.type == "radio" || s.type == "menu") j["choices"] = s.choices;
    if (!s.children.empty()) {
        json children = json::array();
        for (const auto& c : s.children) children.push_back(setting_to_json(c));
        j["children"] = children;
    }
    return j;
}
}  // namespace

Expected<CameraRequest> parse_config_get(const std::string& payload) {
    return parse_camera_request(payload, true, false);
}
Expected<CameraRequest> parse_config_set(const std::string& payload) {
    return parse_camera_request(payload, true, true);
}
Expected<CameraRequest> parse_preview(const std::string& payload) {
    return parse_camera_request(payload, false, false);
}

std::string settings_json(const std::string& camera, const SettingNode& root) {
    return json{{"camera", camera}, {"settings", setting_to_json(root)}}.dump(
        -1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string setting_set_json(const std::string& camera, const std::string& name,
                             const std::string& value) {
    return json{{"camera", camera}, {"name", name}, {"value", value}}.dump(
        -1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string preview_json(const std::string& camera, const std::string& source, size_t bytes,
                         int64_t taken_at_ms, const std::string& topic) {
    return json{{"camera", camera},
                {"source", source},
                {"size", bytes},
                {"taken_at", clock::rfc3339_utc_ms(taken_at_ms)},
                {"topic", topic}}
        .dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string camera_event_json(const std::string& type, const CameraRef& camera,
                              const std::string& message) {
    json j{{"type", type},
           {"camera", {{"model", camera.model}, {"serial", camera.serial}, {"port", camera.port}}},
           {"ts", clock::rfc3339_utc_ms(clock::now_ms())}};
    if (!message.empty()) j["message"] = message;
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string camera_stuck_json(const CameraRef& camera, int attempts, const std::string& usb_reset,
                              const std::string& message) {
    json j = json::parse(camera_event_json("camera_stuck", camera, message));
    j["attempts"] = attempts;
    j["usb_reset"] = usb_reset;
    return j.dump();
}

std::string response_ok(const std::string& transaction_json, const std::string& data_json) {
    json r;
    r["status"] = "ok";
    r["transaction"] = json::parse(transaction_json, nullptr, false);
    r["data"] = data_json.empty() ? json::object() : json::parse(data_json, nullptr, false);
    return r.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string response_ok(const std::string& transaction_json, const std::string& data_json,
                        const std::vector<Error>& warnings) {
    if (warnings.empty()) return response_ok(transaction_json, data_json);
    json r = json::parse(response_ok(transaction_json, data_json), nullptr, false);
    json list = json::array();
    for (const auto& w : warnings) list.push_back({{"code", w.code}, {"message", w.message}});
    r["warnings"] = std::move(list);
    return r.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string response_error(const std::string& transaction_json, const Error& error) {
    json r;
    r["status"] = "error";
    r["transaction"] = json::parse(transaction_json, nullptr, false);
    r["error"] = {{"code", error.code}, {"message", error.message}};
    return r.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

namespace {
json camera_json(const CameraRef& c) {
    return json{{"model", c.model}, {"serial", c.serial}, {"port", c.port}};
}

json metadata_to_json(const CaptureMetadata& m) {
    json exif = json::object();
    put_opt(exif, "iso", m.exif.iso);
    put_opt(exif, "exposure_time", m.exif.exposure_time);
    put_opt(exif, "exposure_time_text", m.exif.exposure_time_text);
    put_opt(exif, "f_number", m.exif.f_number);
    put_opt(exif, "focal_length", m.exif.focal_length);
    put_opt(exif, "make", m.exif.make);
    put_opt(exif, "model", m.exif.model);
    put_opt(exif, "body_serial", m.exif.body_serial);
    put_opt(exif, "datetime_original", m.exif.datetime_original);
    put_opt(exif, "width", m.exif.width);
    put_opt(exif, "height", m.exif.height);
    return json{
        {"capture_id", m.capture_id},
        {"rig_id", m.rig_id},
        {"batch", m.batch},
        {"seq", m.seq},
        {"camera", camera_json(m.camera)},
        {"captured_at", clock::rfc3339_utc_ms(m.captured_at_ms)},
        {"file",
         {{"name", m.file_name},
          {"path", m.file_path},
          {"size", m.size},
          {"sha256", m.sha256},
          {"mime", m.mime}}},
        {"exif", exif},
        {"timings_ms", {{"trigger", m.trigger_ms}, {"download", m.download_ms}}},
        {"job_id", m.job_id},
    };
}
}  // namespace

std::string capture_metadata_json(const CaptureMetadata& m) {
    return metadata_to_json(m).dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<CaptureMetadata> parse_capture_metadata(const std::string& text) {
    auto j = parse_json(text);
    if (!j) return j.error();
    // Read back from sidecar files and scan records: every conversion checked (RecordFields).
    constexpr int64_t kMax = INT64_MAX / 2;
    RecordFields r(*j);
    CaptureMetadata m;
    m.capture_id = r.text("capture_id");
    m.rig_id = r.text_or("rig_id");
    m.batch = r.text_or("batch");
    m.seq = static_cast<int>(r.integer_or("seq", 0, 0, RecordFields::kIntMax));
    RecordFields cam = r.object("camera");
    m.camera.model = cam.text_or("model");
    m.camera.serial = cam.text_or("serial");
    m.camera.port = cam.text_or("port");
    m.captured_at_ms = parse_rfc3339_ms(r.text_or("captured_at"));
    RecordFields f = r.object("file");
    m.file_name = f.text("name");
    m.file_path = f.text_or("path");
    m.size = static_cast<uint64_t>(f.integer("size", 0, kMax));
    m.sha256 = f.text("sha256");
    m.mime = f.text_or("mime");
    if (r.has("exif")) {
        RecordFields e = r.object("exif");
        e.optional_int("iso", m.exif.iso);
        e.optional_number("exposure_time", m.exif.exposure_time);
        e.optional_text("exposure_time_text", m.exif.exposure_time_text);
        e.optional_number("f_number", m.exif.f_number);
        e.optional_number("focal_length", m.exif.focal_length);
        e.optional_text("make", m.exif.make);
        e.optional_text("model", m.exif.model);
        e.optional_text("body_serial", m.exif.body_serial);
        e.optional_text("datetime_original", m.exif.datetime_original);
        e.optional_int("width", m.exif.width);
        e.optional_int("height", m.exif.height);
    }
    if (r.has("timings_ms")) {
        RecordFields t = r.object("timings_ms");
        m.trigger_ms = t.integer_or("trigger", 0, -kMax, kMax);
        m.download_ms = t.integer_or("download", 0, -kMax, kMax);
    }
    m.job_id = r.text_or("job_id");
    if (auto bad = r.failure("capture metadata")) return *bad;
    return m;
}

std::string capture_result_json(const std::string& batch,
                                const std::vector<CaptureMetadata>& photos,
                                const std::vector<Error>& camera_errors,
                                const std::vector<TriggerTime>& triggers) {
    json list = json::array();
    for (const auto& p : photos) {
        list.push_back({{"capture_id", p.capture_id},
                        {"seq", p.seq},
                        {"camera", p.camera.serial},
                        {"file", p.file_name},
                        {"size", p.size},
                        {"sha256", p.sha256},
                        {"captured_at", clock::rfc3339_utc_ms(p.captured_at_ms)}});
    }
    json errors = json::array();
    for (const auto& e : camera_errors)
        errors.push_back({{"code", e.code}, {"message", e.message}});
    json data{{"batch", batch}, {"count", photos.size()}, {"photos", list}};
    if (!camera_errors.empty()) data["errors"] = errors;
    if (!triggers.empty()) {
        json tlist = json::array();
        std::map<int, std::pair<int64_t, int64_t>> shot_bounds;  // seq -> first, last trigger (us)
        for (const auto& t : triggers) {
            tlist.push_back({{"camera", t.camera},
                             {"seq", t.seq},
                             {"triggered_at", clock::rfc3339_utc_ms(t.triggered_at_us / 1000)},
                             {"triggered_at_us", t.triggered_at_us}});
            auto [it, fresh] =
                shot_bounds.emplace(t.seq, std::make_pair(t.triggered_at_us, t.triggered_at_us));
            if (!fresh) {
                it->second.first = std::min(it->second.first, t.triggered_at_us);
                it->second.second = std::max(it->second.second, t.triggered_at_us);
            }
        }
        int64_t spread_us = 0;
        for (const auto& [seq, bounds] : shot_bounds)
            spread_us = std::max(spread_us, bounds.second - bounds.first);
        data["triggers"] = tlist;
        data["trigger_spread_ms"] = static_cast<double>(spread_us) / 1000.0;
    }
    return data.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string upload_job_json(const UploadJob& job) {
    return json{{"job_id", job.job_id},
                {"capture_id", job.capture_id},
                {"rig_id", job.rig_id},
                {"batch", job.batch},
                {"path", job.path},
                {"size", job.size},
                {"sha256", job.sha256},
                {"remote_name", job.remote_name},
                {"mime", job.mime},
                {"captured_at", clock::rfc3339_utc_ms(job.captured_at_ms)},
                {"captured_at_ms", job.captured_at_ms}}
        .dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<UploadJob> parse_upload_job(const std::string& text) {
    auto j = parse_json(text);
    if (!j) return j.error();
    if (!j->is_object()) return make_error(codes::bad_request, "upload job must be a JSON object");
    UploadJob job;
    try {
        job.job_id = j->at("job_id").get<std::string>();
        job.capture_id = str_or(*j, "capture_id");
        job.rig_id = str_or(*j, "rig_id");
        job.batch = str_or(*j, "batch");
        job.path = j->at("path").get<std::string>();
        // Range-checked: nlohmann's get<>() of a float beyond the integer type is undefined
        // behaviour, and of a negative number a wrapped size (found by tests/fuzz/upload_job).
        auto size = get_int(*j, "size", 0, INT64_MAX / 2);
        if (!size) return size.error();
        job.size = static_cast<uint64_t>(*size);
        job.sha256 = j->at("sha256").get<std::string>();
        job.remote_name = j->at("remote_name").get<std::string>();
        job.mime = str_or(*j, "mime", "application/octet-stream");
        if (j->contains("captured_at_ms")) {
            // Epoch ms up to the end of year 9999.
            auto at = get_int(*j, "captured_at_ms", 0, 253402300799999);
            if (!at) return at.error();
            job.captured_at_ms = *at;
        } else {
            job.captured_at_ms = parse_rfc3339_ms(str_or(*j, "captured_at"));
        }
    } catch (const json::exception& e) {
        return make_error(codes::bad_request,
                          std::string("upload job: missing or mistyped field: ") + e.what());
    }
    if (!is_safe_name(job.job_id))
        return field_error(codes::invalid_name, "job_id", "is not a safe name");
    if (!is_safe_name(job.remote_name))
        return field_error(codes::invalid_name, "remote_name", "is not a safe file name");
    if (!job.batch.empty() && !is_safe_name(job.batch))
        return field_error(codes::invalid_name, "batch", "is not a safe name");
    if (job.path.empty() || job.path[0] != '/' || job.path.find("/../") != std::string::npos) {
        return field_error(codes::bad_request, "path", "must be an absolute path without '..'");
    }
    if (!is_hex64(job.sha256))
        return field_error(codes::bad_request, "sha256", "must be 64 lowercase hex digits");
    return job;
}

namespace {
// Whole bytes per second, 0 up to 10^18: a rate read back from a damaged or hostile record
// (negative, huge) must not be converted out of range, which is undefined behaviour.
uint64_t whole_rate(double bytes_per_s) {
    if (!(bytes_per_s > 0)) return 0;  // NaN included
    return static_cast<uint64_t>(std::min(bytes_per_s, 1e18));
}
}  // namespace

std::string upload_event_json(const UploadEvent& e) {
    json j{
        {"type", e.type},   {"job_id", e.job_id}, {"capture_id", e.capture_id},
        {"batch", e.batch}, {"name", e.name},     {"ts", clock::rfc3339_utc_ms(clock::now_ms())}};
    if (e.type == "progress" || e.type == "done" || e.type == "started") {
        j["bytes_done"] = e.bytes_done;
        j["bytes_total"] = e.bytes_total;
    }
    if (e.type == "progress" || e.type == "done")
        j["rate_bytes_per_s"] = whole_rate(e.rate_bytes_per_s);
    if (e.type == "done") {
        j["remote"] = e.remote_ref;
        j["bytes_sent"] = e.bytes_sent;
    }
    if (e.attempt > 0) j["attempt"] = e.attempt;
    if (e.type == "failed") {
        j["error"] = {{"code", e.error_code}, {"message", e.error_message}};
        j["retrying"] = e.retrying;
        if (e.retrying) j["next_attempt_in_ms"] = e.next_attempt_in_ms;
    }
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<UploadEvent> parse_upload_event(const std::string& text) {
    auto j = parse_json(text);
    if (!j) return j.error();
    // From the broker (rigctl, the agent): every conversion checked (RecordFields).
    constexpr int64_t kMax = INT64_MAX / 2;
    RecordFields r(*j);
    UploadEvent e;
    e.type = r.text("type");
    e.job_id = r.text("job_id");
    e.capture_id = r.text_or("capture_id");
    e.batch = r.text_or("batch");
    e.name = r.text_or("name");
    e.bytes_done = static_cast<uint64_t>(r.integer_or("bytes_done", 0, 0, kMax));
    e.bytes_total = static_cast<uint64_t>(r.integer_or("bytes_total", 0, 0, kMax));
    e.bytes_sent = static_cast<uint64_t>(r.integer_or("bytes_sent", 0, 0, kMax));
    e.rate_bytes_per_s = r.number_or("rate_bytes_per_s", 0);
    e.remote_ref = r.text_or("remote");
    if (r.has("error")) {
        RecordFields err = r.object("error");
        e.error_code = err.text_or("code");
        e.error_message = err.text_or("message");
    }
    e.retrying = r.boolean_or("retrying", false);
    e.next_attempt_in_ms = r.integer_or("next_attempt_in_ms", 0, 0, kMax);
    e.attempt = static_cast<int>(r.integer_or("attempt", 0, 0, RecordFields::kIntMax));
    if (auto bad = r.failure("upload event")) return *bad;
    return e;
}

std::string cameras_json(const std::vector<CameraRef>& cameras) {
    json list = json::array();
    for (const auto& c : cameras) {
        json cj = camera_json(c);
        cj["connected"] = c.connected;
        list.push_back(cj);
    }
    return json{{"cameras", list}}.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string agent_state_json(const AgentState& s) {
    json cams = json::array();
    for (const auto& c : s.cameras) {
        json cj = camera_json(c);
        cj["connected"] = c.connected;
        cams.push_back(cj);
    }
    json j{
        {"cameras", cams},
        {"busy", s.busy},
        {"spool_files", s.spool_files},
        {"disk_free_bytes", s.disk_free_bytes},
        {"version", s.version},
        {"pending_requests", s.pending_requests},
        {"capture_queue", {{"depth", s.capture_queue_depth}, {"max", s.capture_queue_max}}},
        {"photos_today", s.photos_today},
        {"last_capture_at",
         s.last_capture_at_ms ? json(clock::rfc3339_utc_ms(s.last_capture_at_ms)) : json(nullptr)},
        {"groups", s.groups}};
    if (!s.last_error.empty()) j["last_error"] = s.last_error;
    if (s.clock) {
        j["clock"] = {{"synced", s.clock->synced},
                      {"est_error_us", s.clock->est_error_us},
                      {"max_error_us", s.clock->max_error_us}};
    }
    if (s.bridge) j["bridge"] = {{"connected", s.bridge->connected}, {"since", s.bridge->since_ms}};
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string uploader_state_json(const UploaderState& s) {
    json j{{"queued", s.queued},
           {"uploading", s.uploading},
           {"done", s.done},
           {"failed", s.failed},
           {"queue_depth", s.queued + s.uploading},
           {"target", s.target},
           {"version", s.version},
           {"target_reachable", s.target_reachable}};
    if (!s.target_reachable) j["retry_in_ms"] = s.retry_in_ms;
    if (!s.last_error.empty()) j["last_error"] = s.last_error;
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string counters_json(const std::vector<std::pair<std::string, uint64_t>>& counters) {
    json j = json::object();
    for (const auto& [name, value] : counters) j[name] = value;
    j["ts"] = clock::rfc3339_utc_ms(clock::now_ms());
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

}  // namespace photorig::protocol
