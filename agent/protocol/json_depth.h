// A bracket-depth check before parsing JSON from outside: nlohmann's DOM builder and our
// walks over the result (dump, field checks, destruction) may recurse once per level, so
// `[[[[...` 100,000 levels deep must be refused before it becomes a json value.
#pragma once

#include <string_view>

namespace photorig::protocol {

// Requests and acknowledgements are a few levels deep; this leaves room to spare.
inline constexpr int kMaxJsonDepth = 64;

// Deepest nesting of objects and arrays in `text` (brackets inside strings do not count;
// the text need not be valid JSON). Stops counting past `stop_at`.
inline int json_depth(std::string_view text, int stop_at = kMaxJsonDepth + 1) {
    int depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest && (deepest = depth) >= stop_at) return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

}  // namespace photorig::protocol
