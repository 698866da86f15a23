// Minimal thread-safe logger to stderr: one line per record, level + component + text.
// Under systemd (JOURNAL_STREAM names our stderr) each line starts with its sd-daemon
// priority prefix ("<3>" error ... "<7>" debug) and no timestamp, so journald files it by
// priority (`journalctl -p warning`); otherwise "2026-01-01T00:00:00.000Z info [c] text".
// Secrets never reach it: callers log key names and file paths, never contents.
#pragma once

#include <sstream>
#include <string>

namespace photorig::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
bool parse_level(const std::string& name, Level* out);
void write(Level level, const char* component, const std::string& text);
// True when stderr is the journal stream systemd set up (JOURNAL_STREAM=dev:inode of it).
bool stderr_is_journal();

}  // namespace photorig::log

#define PHOTORIG_LOG(lvl, component, expr)                                         \
    do {                                                                           \
        if (static_cast<int>(lvl) >= static_cast<int>(::photorig::log::level())) { \
            std::ostringstream photorig_log_os_;                                   \
            photorig_log_os_ << expr;                                              \
            ::photorig::log::write(lvl, component, photorig_log_os_.str());        \
        }                                                                          \
    } while (0)
#define LOG_DEBUG(c, e) PHOTORIG_LOG(::photorig::log::Level::debug, c, e)
#define LOG_INFO(c, e) PHOTORIG_LOG(::photorig::log::Level::info, c, e)
#define LOG_WARN(c, e) PHOTORIG_LOG(::photorig::log::Level::warn, c, e)
#define LOG_ERROR(c, e) PHOTORIG_LOG(::photorig::log::Level::error, c, e)
