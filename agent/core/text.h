// Small text helpers shared by the modules.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace photorig::text {

// ASCII lower case (hex digests, HTTP header names); other bytes pass unchanged.
std::string lower(std::string s);

// Text from outside (camera strings, EXIF, file names, server error bodies, MQTT payload
// strings) as valid UTF-8: every byte that does not start a well-formed UTF-8 sequence
// (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) becomes U+FFFD. nlohmann's
// dump() throws on invalid UTF-8, so everything that reaches JSON goes through this first.
std::string valid_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);
// Bytes of the well-formed UTF-8 sequence starting at s[i]; 0 when there is none.
size_t utf8_sequence_length(std::string_view s, size_t i);

// At most `max_bytes` bytes of `s`, never ending inside a multi-byte character (for valid
// UTF-8 input; invalid input is made valid first).
std::string utf8_truncate(std::string_view s, size_t max_bytes);

// Text from a server or a device for a log line or an error message: valid UTF-8, control
// characters as spaces, at most `max_bytes` bytes (never splitting a character) plus "..."
// when cut.
std::string printable(std::string_view s, size_t max_bytes);

}  // namespace photorig::text
