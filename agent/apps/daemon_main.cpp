#include "apps/daemon_main.h"

#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>

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
struct CommandLine {
    std::string config_path;
    bool check_only = false, help = false, version = false;
};

// Reads the flags; nullopt to go on, else the exit code (help and version are printed here).
std::optional<int> parse_command_line(int argc, char** argv, const DaemonSpec& spec,
                                      CommandLine* out) {
    CLI::App app(spec.summary, spec.name);
    // Our own --help: it also lists every config key with its environment variable.
    app.set_help_flag();
    app.add_flag("-h,--help", out->help, "this text");
    app.add_flag("--version", out->version, "print the version");
    app.add_flag("--check-config", out->check_only, "validate the configuration and exit");
    app.add_option("--config", out->config_path, "YAML configuration (required)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "%s: %s (see --help)\n", spec.name, e.what());
        return 2;
    }
    if (out->help) {
        print_help(spec);
        return 0;
    }
    if (out->version) {
        std::printf("%s %s\n", spec.name, PHOTORIG_VERSION);
        return 0;
    }
    if (out->config_path.empty()) {
        std::fprintf(stderr, "%s: --config FILE is required (see --help)\n", spec.name);
        return 2;
    }
    return std::nullopt;
}
}  // namespace

int daemon_main(int argc, char** argv, const DaemonSpec& spec,
                const std::function<int(const config::Config&, const std::atomic<bool>&)>& serve) {
    // Before any secret is read: no core dump of this process (its memory holds broker
    // passwords, OAuth tokens and S3 keys), and no ptrace or /proc/<pid>/mem by other users.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    CommandLine args;
    if (auto rc = parse_command_line(argc, argv, spec, &args)) return *rc;
    const std::string& config_path = args.config_path;
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
    if (args.check_only) {
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
