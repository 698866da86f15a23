// Internal to the protocol module: typed, exception-free reads of JSON request fields,
// each failing with a stable error code that names the field.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/expected.h"

namespace photorig::protocol::detail {

// dump()'s error handler for every message photorig writes: invalid UTF-8 becomes U+FFFD
// instead of an exception. Text from outside is made valid at its source
// (text::valid_utf8); this is the backstop, since one throw here used to end a thread.
inline constexpr auto kReplaceInvalidUtf8 = nlohmann::json::error_handler_t::replace;

Error field_error(const char* code, const std::string& field, const std::string& why);
Expected<nlohmann::json> parse_json(const std::string& text);  // bad_json
Expected<nlohmann::json> parse_object(
    const std::string& payload);  // "" = {}; bad_json / bad_request
Status check_known_fields(const nlohmann::json& obj, const std::set<std::string>& allowed);
Expected<int64_t> get_int(const nlohmann::json& obj, const char* field, int64_t lo, int64_t hi);
Expected<std::string> get_string(const nlohmann::json& obj, const char* field, size_t max_len);
// `batch`: a name that becomes a directory (spool, targets); invalid_name otherwise.
Expected<std::string> get_batch(const nlohmann::json& obj);

}  // namespace photorig::protocol::detail
