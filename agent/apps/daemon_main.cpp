#include "apps/daemon_main.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/log.h"

namespace photorig::apps {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
    g_stop = true;
}

void print_help(const DaemonSpec& spec) {
    std::printf(
        "Usage: %s --config FILE [--check-config]\n\n%s\n\n"
        "  --config FILE     YAML configuration (required)\n"
        "  --check-config    validate the configuration and exit (0 = valid)\n"
        "  --version         print the version\n"
        "  -h, --help        this text\n\n"
        "Every config key can be overridden by an environment variable:\n",
        spec.name, spec.summary);
    for (const auto& key : config::all_keys()) {
        std::printf("  %-40s %s\n", key.c_str(), config::env_name_for(key).c_str());
    }
}
}  // namespace

int daemon_main(int argc, char** argv, const DaemonSpec& spec,
                const std::function<int(const config::Config&, const std::atomic<bool>&)>& serve) {
    std::string config_path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            print_help(spec);
            return 0;
        } else if (arg == "--version") {
            std::printf("%s %s\n", spec.name, PHOTORIG_VERSION);
            return 0;
        } else if (arg == "--check-config") {
            check_only = true;
        } else if (arg == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            config_path = arg.substr(9);
        } else {
            std::fprintf(stderr, "%s: unknown argument '%s' (see --help)\n", spec.name,
                         arg.c_str());
            return 2;
        }
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "%s: --config FILE is required (see --help)\n", spec.name);
        return 2;
    }
    auto config = config::load(config_path);
    if (!config) {
        std::fprintf(stderr, "%s: invalid configuration: %s\n", spec.name,
                     config.error().message.c_str());
        return 2;
    }
    auto secrets = config::check_secret_files(*config, spec.uploader_secrets);
    if (!secrets) {
        std::fprintf(stderr, "%s: invalid configuration: %s\n", spec.name,
                     secrets.error().message.c_str());
        return 2;
    }
    if (check_only) {
        std::printf("%s: configuration %s is valid\n", spec.name, config_path.c_str());
        return 0;
    }
    log::Level level;
    if (log::parse_level(config->log_level, &level)) log::set_level(level);

    // libgphoto2 writes to sockets without MSG_NOSIGNAL; a dropped camera must not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);

    LOG_INFO(spec.name, "starting " << spec.name << " " << PHOTORIG_VERSION << " for rig '"
                                    << config->rig_id << "' (base topic " << config->base_topic()
                                    << ")");
    return serve(*config, g_stop);
}

}  // namespace photorig::apps
