// Internal to the protocol module: checked reads of the records photorig writes itself and
// reads back from places others can write (sidecar files, scan records, upload events on the
// broker). nlohmann's get<int>() of 1e300 is undefined behaviour and value("x", 0) of a
// string throws; here every read checks type, range and finiteness, and the first failure
// is kept, naming the field ("camera.serial: must be a string, got number").
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/expected.h"

namespace photorig::protocol::detail {

class RecordFields {
  public:
    // `obj` not being an object is the first failure.
    explicit RecordFields(const nlohmann::json& obj);

    // A nested object (required): its failures are this record's, named "field.sub".
    RecordFields object(const char* field);
    // Required fields; on failure the fallback-like zero value is returned.
    std::string text(const char* field);
    int64_t integer(const char* field, int64_t lo, int64_t hi);
    // Optional fields: absent or null gives `fallback`; present with the wrong type fails.
    std::string text_or(const char* field, const std::string& fallback = "");
    int64_t integer_or(const char* field, int64_t fallback, int64_t lo, int64_t hi);
    double number_or(const char* field, double fallback);  // finite
    bool boolean_or(const char* field, bool fallback);
    void optional_text(const char* field, std::optional<std::string>& out);
    void optional_int(const char* field, std::optional<int>& out);
    void optional_number(const char* field, std::optional<double>& out);
    bool has(const char* field) const;

    // The first failure, if any, as bad_request prefixed with `what`.
    std::optional<Error> failure(const std::string& what) const;

    static constexpr int64_t kIntMin = std::numeric_limits<int>::min();
    static constexpr int64_t kIntMax = std::numeric_limits<int>::max();

  private:
    RecordFields(const nlohmann::json* obj, std::string prefix,
                 std::shared_ptr<std::optional<std::string>> first);
    const nlohmann::json* find(const char* field) const;  // nullptr: absent or null
    void fail(const char* field, const std::string& why);
    const nlohmann::json* required(const char* field);
    std::optional<int64_t> checked_integer(const char* field, const nlohmann::json& v, int64_t lo,
                                           int64_t hi);

    const nlohmann::json* obj_;
    std::string prefix_;
    std::shared_ptr<std::optional<std::string>> first_failure_;
};

}  // namespace photorig::protocol::detail
