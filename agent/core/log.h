// Minimal thread-safe logger to stderr: one line per record, level + component + text.
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
