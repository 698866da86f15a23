#include "protocol/scan.h"

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "protocol/json_depth.h"
#include "protocol/json_fields.h"
#include "protocol/record_fields.h"

namespace photorig::protocol {
using nlohmann::json;
using namespace detail;

namespace {
// A turntable's acknowledgement is {"scan_id","step"}: anything much bigger is not one.
constexpr size_t kMaxReadyBytes = 4096;
json request_json(const ScanRequest& q) {
    return json{{"action", q.action},       {"positions", q.positions},
                {"camera", q.camera},       {"count", q.count},
                {"settle_ms", q.settle_ms}, {"interval_ms", q.interval_ms},
                {"turntable", q.turntable}, {"move_timeout_ms", q.move_timeout_ms},
                {"degrees", q.degrees},     {"batch", q.batch}};
}

double step_degrees(const ScanRecord& r) {
    return r.request.degrees > 0 ? r.request.degrees : 360.0 / std::max(1, r.request.positions);
}
}  // namespace

Expected<ScanRequest> parse_scan(const std::string& payload, const Limits& limits) {
    auto obj_or = parse_object(payload);
    if (!obj_or) return obj_or.error();
    const json& obj = *obj_or;
    auto st = check_known_fields(
        obj, {"transaction", "action", "positions", "camera", "count", "settle_ms", "interval_ms",
              "turntable", "move_timeout_ms", "degrees", "batch"});
    if (!st) return st.error();
    ScanRequest q;
    if (obj.contains("action")) {
        auto v = get_string(obj, "action", 16);
        if (!v) return v.error();
        if (*v != "start" && *v != "pause" && *v != "resume" && *v != "abort" && *v != "status") {
            return field_error(codes::bad_request, "action",
                               "must be start, pause, resume, abort or status");
        }
        q.action = *v;
    }
    if (q.action != "start") {
        if (obj.size() > (obj.contains("transaction") ? 2u : 1u)) {
            return make_error(codes::bad_request, "scan " + q.action + " takes no other fields");
        }
        return q;
    }
    if (!obj.contains("positions"))
        return field_error(codes::bad_request, "positions", "is required to start a scan");
    auto positions = get_int(obj, "positions", 1, 3600);
    if (!positions) return positions.error();
    q.positions = static_cast<int>(*positions);
    if (obj.contains("camera")) {
        auto v = get_string(obj, "camera", 128);
        if (!v) return v.error();
        q.camera = *v;
    }
    struct IntField {
        const char* name;
        int* out;
        int64_t lo, hi;
    };
    for (const IntField& f :
         {IntField{"count", &q.count, 1, 100}, IntField{"settle_ms", &q.settle_ms, 0, 600000},
          IntField{"interval_ms", &q.interval_ms, 0, limits.max_interval_ms},
          IntField{"move_timeout_ms", &q.move_timeout_ms, 100, 3600000}}) {
        if (!obj.contains(f.name)) continue;
        auto v = get_int(obj, f.name, f.lo, f.hi);
        if (!v) return v.error();
        *f.out = static_cast<int>(*v);
    }
    if (obj.contains("turntable")) {
        if (!obj["turntable"].is_boolean())
            return field_error(codes::bad_request, "turntable", "must be true or false");
        q.turntable = obj["turntable"].get<bool>();
    }
    if (obj.contains("degrees")) {
        const json& d = obj["degrees"];
        if (!d.is_number()) return field_error(codes::bad_request, "degrees", "must be a number");
        double deg = d.get<double>();
        if (!(deg > 0 && deg <= 360))
            return field_error(codes::out_of_range, "degrees", "must be in (0, 360]");
        q.degrees = deg;
    }
    if (obj.contains("batch")) {
        auto v = get_batch(obj);
        if (!v) return v.error();
        q.batch = *v;
    }
    return q;
}

std::string scan_move_json(const ScanRecord& r, int step) {
    double deg = step_degrees(r);
    return json{{"scan_id", r.scan_id},
                {"step", step},
                {"of", r.request.positions},
                {"degrees", deg},
                {"position_deg", deg * (step - 1)}}
        .dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

bool scan_ready_matches(const std::string& payload, const ScanRecord& r, int step) {
    // Nested past any acknowledgement: not one of ours (and never parsed: deep recursion).
    if (payload.size() > kMaxReadyBytes || json_depth(payload) > kMaxJsonDepth) return false;
    json j = json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return true;  // "ready", "OK", ... from simple controllers
    if (j.contains("scan_id") && (!j["scan_id"].is_string() || j["scan_id"] != r.scan_id))
        return false;
    if (j.contains("step") && (!j["step"].is_number_integer() || j["step"].get<int64_t>() != step))
        return false;
    return true;
}

std::string scan_progress_json(const ScanRecord& r, const std::string& event, int64_t eta_s) {
    json j{{"event", event},
           {"scan_id", r.scan_id},
           {"batch", r.batch},
           {"state", r.state},
           {"step", r.steps_done},
           {"of", r.request.positions},
           {"photos", r.captures.size()},
           {"eta_s", eta_s >= 0 ? json(eta_s) : json(nullptr)},
           {"waiting_for", r.waiting_for.empty() ? json(nullptr) : json(r.waiting_for)},
           {"started_at", clock::rfc3339_utc_ms(r.started_at_ms)}};
    if (!r.error_code.empty()) j["error"] = {{"code", r.error_code}, {"message", r.error_message}};
    return j.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

std::string scan_record_json(const ScanRecord& r) {
    json captures = json::array();
    for (const auto& c : r.captures) captures.push_back(json::parse(capture_metadata_json(c)));
    return json{{"scan_id", r.scan_id},
                {"batch", r.batch},
                {"state", r.state},
                {"request", request_json(r.request)},
                {"steps_done", r.steps_done},
                {"captures", captures},
                {"started_at_ms", r.started_at_ms},
                {"finished_at_ms", r.finished_at_ms},
                {"busy_ms", r.busy_ms},
                {"error_code", r.error_code},
                {"error_message", r.error_message}}
        .dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<ScanRecord> parse_scan_record(const std::string& text) {
    auto j = parse_json(text);
    if (!j) return j.error();
    // Read back from the spool (a scan resumes from it): every conversion checked.
    constexpr int64_t kIntMax = RecordFields::kIntMax;
    constexpr int64_t kMax = INT64_MAX / 2;
    RecordFields rec(*j);
    ScanRecord r;
    r.scan_id = rec.text("scan_id");
    r.batch = rec.text("batch");
    r.state = rec.text("state");
    RecordFields q = rec.object("request");
    r.request.action = q.text_or("action", "start");
    r.request.positions = static_cast<int>(q.integer("positions", 0, kIntMax));
    r.request.camera = q.text_or("camera", "all");
    r.request.count = static_cast<int>(q.integer_or("count", 1, 0, kIntMax));
    r.request.settle_ms = static_cast<int>(q.integer_or("settle_ms", 0, 0, kIntMax));
    r.request.interval_ms = static_cast<int>(q.integer_or("interval_ms", 0, 0, kIntMax));
    r.request.turntable = q.boolean_or("turntable", true);
    r.request.move_timeout_ms =
        static_cast<int>(q.integer_or("move_timeout_ms", 30000, 0, kIntMax));
    r.request.degrees = q.number_or("degrees", 0.0);
    r.request.batch = q.text_or("batch", "");
    r.steps_done = static_cast<int>(rec.integer("steps_done", 0, kIntMax));
    r.started_at_ms = rec.integer_or("started_at_ms", 0, -kMax, kMax);
    r.finished_at_ms = rec.integer_or("finished_at_ms", 0, -kMax, kMax);
    r.busy_ms = rec.integer_or("busy_ms", 0, -kMax, kMax);
    r.error_code = rec.text_or("error_code", "");
    r.error_message = rec.text_or("error_message", "");
    if (auto bad = rec.failure("scan record")) return *bad;
    auto captures = j->find("captures");  // *j is an object: RecordFields checked it
    if (captures == j->end() || !captures->is_array())
        return make_error(codes::bad_request, "scan record: captures: must be an array");
    for (const auto& c : *captures) {
        auto m = parse_capture_metadata(c.dump(-1, ' ', false, detail::kReplaceInvalidUtf8));
        if (!m) return m.error().with_context("scan record capture");
        r.captures.push_back(*m);
    }
    return r;
}

std::string scan_manifest_json(const ScanRecord& r, const std::string& rig_id) {
    json captures = json::array();
    for (const auto& c : r.captures) captures.push_back(json::parse(capture_metadata_json(c)));
    json j{{"scan_id", r.scan_id},
           {"rig_id", rig_id},
           {"batch", r.batch},
           {"state", r.state},
           {"positions", r.request.positions},
           {"steps_done", r.steps_done},
           {"degrees_per_step", step_degrees(r)},
           {"cameras", r.request.camera},
           {"photos_per_camera_per_step", r.request.count},
           {"settle_ms", r.request.settle_ms},
           {"started_at", clock::rfc3339_utc_ms(r.started_at_ms)},
           {"finished_at", clock::rfc3339_utc_ms(r.finished_at_ms)},
           {"captures", captures}};
    return j.dump(2, ' ', false, detail::kReplaceInvalidUtf8);
}

}  // namespace photorig::protocol
