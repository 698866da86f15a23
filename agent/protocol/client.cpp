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

Status read(const json& j, const char* what, const char* field, std::optional<bool>& out) {
    bool value = false;
    auto st = read(j, what, field, value);
    auto it = j.find(field);
    if (st && it != j.end() && !it->is_null()) out = value;
    return st;
}

Status read(const json& j, const char* what, const char* field, std::vector<std::string>& out) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) return ok();
    if (!it->is_array()) return wrong_type(what, field, "an array of strings");
    for (const auto& item : *it) {
        if (!item.is_string()) return wrong_type(what, field, "an array of strings");
        out.push_back(item.get<std::string>());
    }
    return ok();
}

Status read(const json& j, const char* what, const char* field, std::optional<int64_t>& out) {
    int64_t value = 0;
    auto st = read_int(j, what, field, value);
    auto it = j.find(field);
    if (st && it != j.end() && !it->is_null()) out = value;
    return st;
}

// Reads fields of one object in turn, keeping the first failure; later reads are skipped.
class Reader {
  public:
    Reader(const json& j, const char* what) : j_(j), what_(what) {}

    template <typename T>
    Reader& operator()(const char* field, T& out) {
        if (status_) status_ = read(j_, what_, field, out);
        return *this;
    }
    // `field` as an array of objects (absent: none), each read by `read_one(reader, item)`.
    template <typename T, typename ReadOne>
    Reader& each(const char* field, std::vector<T>& out, ReadOne read_one) {
        if (!status_) return *this;
        auto it = j_.find(field);
        if (it == j_.end() || it->is_null()) return *this;
        if (!it->is_array()) return fail(field, "an array");
        for (const auto& item : *it) {
            if (!item.is_object()) return fail(field, "an array of objects");
            Reader inner(item, what_);
            T value;
            read_one(inner, value);
            if (!inner.status_) {
                status_ = inner.status_;
                return *this;
            }
            out.push_back(std::move(value));
        }
        return *this;
    }
    // `field` as one object (absent: its fields keep their defaults), read by `read_one`.
    template <typename ReadOne>
    Reader& object(const char* field, ReadOne read_one) {
        if (!status_) return *this;
        auto it = j_.find(field);
        if (it == j_.end() || it->is_null()) return *this;
        if (!it->is_object()) return fail(field, "an object");
        Reader inner(*it, what_);
        read_one(inner);
        status_ = inner.status_;
        return *this;
    }
    // "error": {"code","message"}.
    Reader& error(std::string& code, std::string& message) {
        if (!status_) return *this;
        auto it = j_.find("error");
        if (it == j_.end() || it->is_null()) return *this;
        if (!it->is_object()) return fail("error", "an object");
        Reader inner(*it, what_);
        inner("code", code)("message", message);
        status_ = inner.status_;
        return *this;
    }
    const Status& status() const { return status_; }

  private:
    Reader& fail(const char* field, const char* expected) {
        status_ = wrong_type(what_, field, expected);
        return *this;
    }

    const json& j_;
    const char* what_;
    Status status_ = ok();
};

// A message that must be a JSON object ("" = {}), read into a T by `read_all`.
template <typename T, typename ReadAll>
Expected<T> parse_message(const std::string& payload, const char* what, ReadAll read_all) {
    auto j = detail::parse_object(payload);
    if (!j) return j.error();
    T out;
    Reader reader(*j, what);
    read_all(reader, out);
    if (!reader.status()) return reader.status().error();
    return out;
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
    return body.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
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
        if (data != j->end() && !data->is_null())
            r.data_json = data->dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
        return r;
    }
    r.error = make_error("error", "the agent refused the request");
    Reader reader(*j, "response");
    if (!reader.error(r.error.code, r.error.message).status()) return reader.status().error();
    return r;
}

Expected<std::string> pretty_json(const std::string& text) {
    auto j = detail::parse_json(text);
    if (!j) return j.error();
    return j->dump(2, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<AgentState> parse_agent_state(const std::string& payload) {
    return parse_message<AgentState>(payload, "agent state", [](Reader& r, AgentState& s) {
        r.each("cameras", s.cameras, [](Reader& c, CameraRef& ref) {
            c("model", ref.model)("serial", ref.serial)("port", ref.port)("connected",
                                                                          ref.connected);
        });
        r("busy", s.busy)("spool_files", s.spool_files)("disk_free_bytes", s.disk_free_bytes);
        r("version", s.version)("pending_requests", s.pending_requests);
        r("photos_today", s.photos_today)("last_error", s.last_error)("groups", s.groups);
        r.object("capture_queue", [&s](Reader& q) {
            q("depth", s.capture_queue_depth)("max", s.capture_queue_max);
        });
    });
}

Expected<UploaderState> parse_uploader_state(const std::string& payload) {
    return parse_message<UploaderState>(payload, "uploader state", [](Reader& r, UploaderState& s) {
        r("queued", s.queued)("uploading", s.uploading)("done", s.done)("failed", s.failed);
        r("target", s.target)("version", s.version)("target_reachable", s.target_reachable);
        r("retry_in_ms", s.retry_in_ms)("last_error", s.last_error);
    });
}

Expected<CaptureResult> parse_capture_result(const std::string& payload) {
    return parse_message<CaptureResult>(payload, "capture result", [](Reader& r, CaptureResult& c) {
        r("batch", c.batch)("count", c.count);
        r.each("photos", c.photos, [](Reader& p, CapturedPhoto& photo) {
            p("capture_id", photo.capture_id)("camera", photo.camera)("file", photo.file);
            p("sha256", photo.sha256)("captured_at", photo.captured_at)("seq", photo.seq);
            p("size", photo.size);
        });
        r.each("triggers", c.triggers, [](Reader& t, TriggerTime& trigger) {
            t("camera", trigger.camera)("seq", trigger.seq)("triggered_at_us",
                                                            trigger.triggered_at_us);
        });
        r.each("errors", c.errors,
               [](Reader& e, Error& error) { e("code", error.code)("message", error.message); });
    });
}

Expected<StateFleetFields> parse_state_fleet_fields(const std::string& payload) {
    return parse_message<StateFleetFields>(
        payload, "agent state", [](Reader& r, StateFleetFields& f) {
            r.object("clock", [&f](Reader& c) {
                c("synced", f.clock_synced)("est_error_us", f.clock_est_error_us);
            });
            r.object("bridge", [&f](Reader& b) { b("connected", f.bridge_connected); });
        });
}

std::string fleet_rows_json(const std::vector<FleetRow>& rows) {
    auto or_null = [](const auto& v) { return v ? json(*v) : json(nullptr); };
    json list = json::array();
    for (const auto& r : rows) {
        list.push_back(
            {{"rig_id", r.rig_id},
             {"availability", r.availability.empty() ? json(nullptr) : json(r.availability)},
             {"cameras_online", r.cameras_online},
             {"cameras_total", r.cameras_total},
             {"spool_files", or_null(r.spool_files)},
             {"upload_queue", or_null(r.upload_queue)},
             {"last_error", r.last_error.empty() ? json(nullptr) : json(r.last_error)},
             {"bridge_connected", or_null(r.bridge_connected)},
             {"clock_synced", or_null(r.clock_synced)},
             {"clock_est_error_us", or_null(r.clock_est_error_us)},
             {"groups", r.groups}});
    }
    return list.dump(-1, ' ', false, detail::kReplaceInvalidUtf8);
}

Expected<ScanProgress> parse_scan_progress(const std::string& payload) {
    return parse_message<ScanProgress>(payload, "scan progress", [](Reader& r, ScanProgress& p) {
        r("event", p.event)("scan_id", p.scan_id)("batch", p.batch)("state", p.state);
        r("step", p.step)("of", p.of)("photos", p.photos)("waiting_for", p.waiting_for);
        r("eta_s", p.eta_s).error(p.error_code, p.error_message);
    });
}

}  // namespace photorig::protocol::client
