#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/clock.h"

namespace photorig::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
const char* name_of(Level l) {
    switch (l) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warn";
        case Level::error:
            return "error";
    }
    return "?";
}
}  // namespace

void set_level(Level l) {
    g_level = static_cast<int>(l);
}
Level level() {
    return static_cast<Level>(g_level.load());
}

bool parse_level(const std::string& name, Level* out) {
    for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
        if (name == name_of(l)) {
            *out = l;
            return true;
        }
    }
    return false;
}

void write(Level l, const char* component, const std::string& text) {
    std::string line = clock::rfc3339_utc_ms(clock::now_ms()) + " " + name_of(l) + " [" +
                       component + "] " + text + "\n";
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace photorig::log
