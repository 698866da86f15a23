// What rig-agent and rig-uploader share before their service takes over: flags, config
// loading with a clear exit on error, log level, signals.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "config/config.h"

namespace photorig::apps {

struct DaemonSpec {
    const char* name;     // "rig-agent"
    const char* summary;  // one line for --help
    bool uploader_secrets;
};

// Parses argv, loads and validates the config (exit 2 naming the key on error), sets the
// log level and signal handlers, then calls `serve(config, stop_flag)`; returns the exit code.
int daemon_main(int argc, char** argv, const DaemonSpec& spec,
                const std::function<int(const config::Config&, const std::atomic<bool>&)>& serve);

}  // namespace photorig::apps
