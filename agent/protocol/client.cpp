#include "protocol/client.h"

#include <nlohmann/json.hpp>

#include "protocol/json_fields.h"
#include "protocol/wire.h"

namespace photorig::protocol::client {
namespace {
using nlohmann::json;

// Reads of optional fields of a message the agent sent: absent or null keeps `out`, a value
// of the wrong type is bad_request naming the field (what a client can report).
Error wrong_type(const char* what, const char* field, const char* expected) {
    return make_error(codes::bad_request,
                      std::string(what) + ": " + field + " must be " + expected);
}

Status read(const json& j, const char* what, const char* field, std::string& out) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_string()) return wrong_type(what, field, "a string");
    out = it->get<std::string>();
    return ok();
}

Status read(const json& j, const char* what, const char* field, bool& out) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_boolean()) return wrong_type(what, field, "true or false");
    out = it->get<bool>();
    return ok();
}

template <typename Int>
Status read_int(const json& j, const char* what, const char* field, Int& out) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_number_integer()) return wrong_type(what, field, "a whole number");
    out = it->get<Int>();
    return ok();
}

Status read(const json& j, const char* what, const char* field, int& out) {
    return read_int(j, what, field, out);
}
Status read(const json& j, const char* what, const char* field, int64_t& out) {
    return read_int(j, what, field, out);
}
Status read(const json& j, const char* what, const char* field, uint64_t& out) {
    auto it = j.find(field);
    if (it != j.end() && it->is_number_integer() && !it->is_number_unsigned() &&
        it->get<int64_t>() < 0) {
        return wrong_type(what, field, "a whole number >= 0");
    }
    return read_int(j, what, field, out);
}

// `field` as an array of objects (absent: none).
Expected<std::vector<json>> read_objects(const json& j, const char* what, const char* field) {
    std::vector<json> out;
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) return out;
    if (!it->is_array()) return wrong_type(what, field, "an array");
    for (const auto& item : *it) {
        if (!item.is_object()) return wrong_type(what, field, "an array of objects");
        out.push_back(item);
    }
    return out;
}

Status read_error(const json& j, const char* what, std::string& code, std::string& message) {
    auto it = j.find("error");
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_object()) return wrong_type(what, "error", "an object");
    if (auto st = read(*it, what, "code", code); !st) return st;
    return read(*it, what, "message", message);
}

// Runs the reads in order and stops at the first that fails.
Status all(std::initializer_list<Status> reads) {
    for (const auto& st : reads) {
        if (!st) return st;
    }
    return ok();
}
}  // namespace

RequestBody& RequestBody::set(const std::string& field, std::string value) {
    fields_[field] = std::move(value);
    return *this;
}
RequestBody& RequestBody::set(const std::string& field, const char* value) {
    return set(field, std::string(value));
}
RequestBody& RequestBody::set(const std::string& field, int64_t value) {
    fields_[field] = value;
    return *this;
}
RequestBody& RequestBody::set(const std::string& field, bool value) {
    fields_[field] = value;
    return *this;
}

std::string RequestBody::json(const std::string& transaction) const {
    nlohmann::json body = nlohmann::json::object();
    for (const auto& [field, value] : fields_) {
        std::visit([&body, &field = field](const auto& v) { body[field] = v; }, value);
    }
    body["transaction"] = transaction;
    return body.dump();
}

Expected<Response> parse_response(const std::string& payload) {
    auto j = detail::parse_json(payload);
    if (!j) return j.error();
    if (!j->is_object()) return make_error(codes::bad_request, "response: not a JSON object");
    Response r;
    auto status = j->find("status");
    if (status == j->end() || !status->is_string())
        return make_error(codes::bad_request, "response: no status");
    r.ok = *status == "ok";
    auto txn = j->find("transaction");
    if (txn != j->end() && txn->is_string()) r.transaction = txn->get<std::string>();
    if (r.ok) {
        auto data = j->find("data");
        if (data != j->end() && !data->is_null()) r.data_json = data->dump();
        return r;
    }
    r.error = make_error("error", "the agent refused the request");
    if (auto st = read_error(*j, "response", r.error.code, r.error.message); !st) return st.error();
    return r;
}

Expected<std::string> pretty_json(const std::string& text) {
    auto j = detail::parse_json(text);
    if (!j) return j.error();
    return j->dump(2);
}

Expected<AgentState> parse_agent_state(const std::string& payload) {
    auto j = detail::parse_object(payload);
    if (!j) return j.error();
    const char* what = "agent state";
    AgentState s;
    auto cameras = read_objects(*j, what, "cameras");
    if (!cameras) return cameras.error();
    for (const auto& c : *cameras) {
        CameraRef ref;
        if (auto st =
                all({read(c, what, "model", ref.model), read(c, what, "serial", ref.serial),
                     read(c, what, "port", ref.port), read(c, what, "connected", ref.connected)});
            !st)
            return st.error();
        s.cameras.push_back(ref);
    }
    if (auto st = all({read(*j, what, "busy", s.busy), read(*j, what, "spool_files", s.spool_files),
                       read(*j, what, "disk_free_bytes", s.disk_free_bytes),
                       read(*j, what, "version", s.version),
                       read(*j, what, "pending_requests", s.pending_requests),
                       read(*j, what, "photos_today", s.photos_today),
                       read(*j, what, "last_error", s.last_error)});
        !st)
        return st.error();
    return s;
}

Expected<UploaderState> parse_uploader_state(const std::string& payload) {
    auto j = detail::parse_object(payload);
    if (!j) return j.error();
    const char* what = "uploader state";
    UploaderState s;
    if (auto st = all({read(*j, what, "queued", s.queued), read(*j, what, "uploading", s.uploading),
                       read(*j, what, "done", s.done), read(*j, what, "failed", s.failed),
                       read(*j, what, "target", s.target), read(*j, what, "version", s.version),
                       read(*j, what, "target_reachable", s.target_reachable),
                       read(*j, what, "retry_in_ms", s.retry_in_ms),
                       read(*j, what, "last_error", s.last_error)});
        !st)
        return st.error();
    return s;
}

Expected<CaptureResult> parse_capture_result(const std::string& payload) {
    auto j = detail::parse_object(payload);
    if (!j) return j.error();
    const char* what = "capture result";
    CaptureResult r;
    if (auto st = all({read(*j, what, "batch", r.batch), read(*j, what, "count", r.count)}); !st)
        return st.error();
    auto photos = read_objects(*j, what, "photos");
    if (!photos) return photos.error();
    for (const auto& p : *photos) {
        CapturedPhoto photo;
        if (auto st = all({read(p, what, "capture_id", photo.capture_id),
                           read(p, what, "camera", photo.camera), read(p, what, "file", photo.file),
                           read(p, what, "sha256", photo.sha256),
                           read(p, what, "captured_at", photo.captured_at),
                           read(p, what, "seq", photo.seq), read(p, what, "size", photo.size)});
            !st)
            return st.error();
        r.photos.push_back(photo);
    }
    auto errors = read_objects(*j, what, "errors");
    if (!errors) return errors.error();
    for (const auto& e : *errors) {
        Error error;
        if (auto st =
                all({read(e, what, "code", error.code), read(e, what, "message", error.message)});
            !st)
            return st.error();
        r.errors.push_back(error);
    }
    return r;
}

Expected<ScanProgress> parse_scan_progress(const std::string& payload) {
    auto j = detail::parse_object(payload);
    if (!j) return j.error();
    const char* what = "scan progress";
    ScanProgress p;
    int64_t eta_s = -1;
    if (auto st = all({read(*j, what, "event", p.event), read(*j, what, "scan_id", p.scan_id),
                       read(*j, what, "batch", p.batch), read(*j, what, "state", p.state),
                       read(*j, what, "step", p.step), read(*j, what, "of", p.of),
                       read(*j, what, "photos", p.photos), read(*j, what, "eta_s", eta_s),
                       read(*j, what, "waiting_for", p.waiting_for),
                       read_error(*j, what, p.error_code, p.error_message)});
        !st)
        return st.error();
    if (j->contains("eta_s") && !(*j)["eta_s"].is_null()) p.eta_s = eta_s;
    return p;
}

}  // namespace photorig::protocol::client
