#include "protocol/record_fields.h"

#include <cmath>

#include "protocol/wire.h"

namespace photorig::protocol::detail {
using nlohmann::json;

namespace {
const json kNull;
}

RecordFields::RecordFields(const json& obj)
    : RecordFields(&obj, "", std::make_shared<std::optional<std::string>>()) {
    if (!obj.is_object())
        *first_failure_ = std::string("must be an object, got ") + obj.type_name();
}

RecordFields::RecordFields(const json* obj, std::string prefix,
                           std::shared_ptr<std::optional<std::string>> first)
    : obj_(obj), prefix_(std::move(prefix)), first_failure_(std::move(first)) {}

const json* RecordFields::find(const char* field) const {
    if (!obj_->is_object()) return nullptr;
    auto it = obj_->find(field);
    return it == obj_->end() || it->is_null() ? nullptr : &*it;
}

bool RecordFields::has(const char* field) const {
    return find(field) != nullptr;
}

void RecordFields::fail(const char* field, const std::string& why) {
    if (!*first_failure_) *first_failure_ = prefix_ + field + ": " + why;
}

const json* RecordFields::required(const char* field) {
    const json* v = find(field);
    if (!v) fail(field, "is missing");
    return v;
}

RecordFields RecordFields::object(const char* field) {
    const json* v = required(field);
    if (v && !v->is_object()) fail(field, std::string("must be an object, got ") + v->type_name());
    return RecordFields(v && v->is_object() ? v : &kNull, prefix_ + field + ".", first_failure_);
}

std::string RecordFields::text(const char* field) {
    const json* v = required(field);
    if (!v) return "";
    if (!v->is_string()) {
        fail(field, std::string("must be a string, got ") + v->type_name());
        return "";
    }
    return v->get<std::string>();
}

std::string RecordFields::text_or(const char* field, const std::string& fallback) {
    return has(field) ? text(field) : fallback;
}

std::optional<int64_t> RecordFields::checked_integer(const char* field, const json& v, int64_t lo,
                                                     int64_t hi) {
    int64_t n = 0;
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(hi)) {
            fail(field, "must be at most " + std::to_string(hi));
            return std::nullopt;
        }
        n = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
        n = v.get<int64_t>();
    } else if (v.is_number_float()) {
        // Compared as doubles first: casting an out-of-range double is undefined behaviour.
        double d = v.get<double>();
        if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) ||
            d > static_cast<double>(hi)) {
            fail(field, "must be a whole number between " + std::to_string(lo) + " and " +
                            std::to_string(hi));
            return std::nullopt;
        }
        n = static_cast<int64_t>(d);
    } else {
        fail(field, std::string("must be a number, got ") + v.type_name());
        return std::nullopt;
    }
    if (n < lo || n > hi) {
        fail(field, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
        return std::nullopt;
    }
    return n;
}

int64_t RecordFields::integer(const char* field, int64_t lo, int64_t hi) {
    const json* v = required(field);
    if (!v) return 0;
    return checked_integer(field, *v, lo, hi).value_or(0);
}

int64_t RecordFields::integer_or(const char* field, int64_t fallback, int64_t lo, int64_t hi) {
    const json* v = find(field);
    if (!v) return fallback;
    return checked_integer(field, *v, lo, hi).value_or(fallback);
}

double RecordFields::number_or(const char* field, double fallback) {
    const json* v = find(field);
    if (!v) return fallback;
    if (!v->is_number()) {
        fail(field, std::string("must be a number, got ") + v->type_name());
        return fallback;
    }
    double d = v->get<double>();
    if (!std::isfinite(d)) {
        fail(field, "must be finite");
        return fallback;
    }
    return d;
}

bool RecordFields::boolean_or(const char* field, bool fallback) {
    const json* v = find(field);
    if (!v) return fallback;
    if (!v->is_boolean()) {
        fail(field, std::string("must be true or false, got ") + v->type_name());
        return fallback;
    }
    return v->get<bool>();
}

void RecordFields::optional_text(const char* field, std::optional<std::string>& out) {
    if (has(field)) out = text(field);
}

void RecordFields::optional_int(const char* field, std::optional<int>& out) {
    if (has(field)) out = static_cast<int>(integer(field, kIntMin, kIntMax));
}

void RecordFields::optional_number(const char* field, std::optional<double>& out) {
    if (has(field)) out = number_or(field, 0);
}

std::optional<Error> RecordFields::failure(const std::string& what) const {
    if (!*first_failure_) return std::nullopt;
    return make_error(codes::bad_request, what + ": " + **first_failure_);
}

}  // namespace photorig::protocol::detail
