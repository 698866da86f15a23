#include "core/log.h"

#include <sys/stat.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/clock.h"

namespace photorig::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
// -1: not decided yet; 0: plain lines; 1: journald stream (sd-daemon.h "<N>" prefixes).
std::atomic<int> g_journal{-1};

// sd-daemon.h's SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR (syslog priorities 7, 6, 4, 3).
const char* journal_prefix(Level l) {
    switch (l) {
        case Level::debug:
            return "<7>";
        case Level::info:
            return "<6>";
        case Level::warn:
            return "<4>";
        case Level::error:
            return "<3>";
    }
    return "<6>";
}
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

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    uintmax_t dev = 0, ino = 0;
    if (std::sscanf(stream, "%" SCNuMAX ":%" SCNuMAX, &dev, &ino) != 2) return false;
    struct stat st {};
    if (::fstat(2, &st) != 0) return false;
    // Set by systemd for the service; a child of it (a shell it started) may inherit the
    // variable with stderr pointing elsewhere, so it must name our stderr.
    return static_cast<uintmax_t>(st.st_dev) == dev && static_cast<uintmax_t>(st.st_ino) == ino;
}

bool to_journal() {
    int j = g_journal.load();
    if (j < 0) {
        j = stderr_is_journal() ? 1 : 0;
        g_journal = j;
    }
    return j == 1;
}

void write(Level l, const char* component, const std::string& text) {
    // journald stamps each line itself and files it by the priority prefix.
    std::string line = to_journal() ? std::string(journal_prefix(l)) + name_of(l) + " [" +
                                          component + "] " + text + "\n"
                                    : clock::rfc3339_utc_ms(clock::now_ms()) + " " + name_of(l) +
                                          " [" + component + "] " + text + "\n";
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace photorig::log
