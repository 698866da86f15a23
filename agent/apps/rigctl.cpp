// rigctl: the operator's command line for photorig rigs over MQTT.
// Exit status: 0 ok; 1 the rig answered with an error (its code is printed); 2 usage;
// 3 no broker connection; 4 timed out waiting.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/files.h"
#include "core/log.h"
#include "ctl/rig_client.h"

using nlohmann::json;
using photorig::Error;

namespace {
constexpr const char* kUsage = R"(usage: rigctl [options] <command> [args]

Commands:
  list                                   rigs, from their retained state
  status RIG                             the rig's state
  cameras RIG                            its cameras
  capture RIG [--camera S|all] [--count N] [--interval-ms MS] [--batch NAME]
  scan RIG start --positions N [--settle-ms MS] [--interval-ms MS] [--camera S|all]
                 [--count N] [--batch NAME] [--no-turntable] [--move-timeout-ms MS] [--detach]
  scan RIG pause|resume|abort|status
  follow RIG [--count N]                 upload events (stop after N done events)

Options:
  --host H (127.0.0.1)  --port P (1883)  --username U  --password-file F (0600)
  --prefix T (photorig)  --timeout S (seconds to wait for an answer, 60)  --verbose
  Environment: PHOTORIG_MQTT_HOST, PHOTORIG_MQTT_PORT, PHOTORIG_MQTT_USERNAME,
  PHOTORIG_MQTT_PASSWORD_FILE, PHOTORIG_TOPIC_PREFIX.

Exit status: 0 ok, 1 error answer (code printed), 2 usage, 3 no broker, 4 timeout.
)";

int usage_error(const std::string& why) {
    std::fprintf(stderr, "rigctl: %s\n\n%s", why.c_str(), kUsage);
    return 2;
}

int fail(const Error& e) {
    std::fprintf(stderr, "rigctl: error: %s: %s\n", e.code.c_str(), e.message.c_str());
    if (e.code == "timeout") return 4;
    if (e.code == "unreachable" || e.code == "not_connected" || e.code == "not_authorized" ||
        e.code == "connection_refused") {
        return 3;
    }
    return 1;
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

// "--name value" pairs after the positional words; flags without values in `switches`.
struct Args {
    std::vector<std::string> words;
    std::map<std::string, std::string> opts;
};

bool parse_args(int argc, char** argv, Args* out, std::string* error) {
    static const std::vector<std::string> switches{"--no-turntable", "--detach", "--help",
                                                   "--verbose"};
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0) {
            out->words.push_back(a);
            continue;
        }
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            out->opts[a.substr(0, eq)] = a.substr(eq + 1);
        } else if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
            out->opts[a] = "1";
        } else if (i + 1 < argc) {
            out->opts[a] = argv[++i];
        } else {
            *error = a + " needs a value";
            return false;
        }
    }
    return true;
}

// Copies numeric / string options into a request object, refusing anything unexpected.
bool fill(const Args& args, const std::map<std::string, std::pair<std::string, bool>>& allowed,
          json* body, std::string* error) {
    static const std::vector<std::string> global{
        "--host", "--port", "--username", "--password-file", "--prefix", "--timeout", "--verbose"};
    for (const auto& [opt, value] : args.opts) {
        if (std::find(global.begin(), global.end(), opt) != global.end()) continue;
        auto it = allowed.find(opt);
        if (it == allowed.end()) {
            *error = "unknown option " + opt + " for this command";
            return false;
        }
        const auto& [field, numeric] = it->second;
        if (field.empty()) continue;  // handled by the command itself
        if (numeric) {
            char* end = nullptr;
            long long n = std::strtoll(value.c_str(), &end, 10);
            if (value.empty() || *end) {
                *error = opt + " must be a whole number, got '" + value + "'";
                return false;
            }
            (*body)[field] = n;
        } else {
            (*body)[field] = value;
        }
    }
    return true;
}

void print_bar(const json& p, bool tty) {
    int step = p.value("step", 0), of = std::max(1, p.value("of", 1));
    int width = 30, filled = width * step / of;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(static_cast<size_t>(width), '.');
    std::string eta = p.contains("eta_s") && p["eta_s"].is_number()
                          ? std::to_string(p["eta_s"].get<long long>()) + " s"
                          : "?";
    std::string waiting = p.contains("waiting_for") && p["waiting_for"].is_string()
                              ? " (" + p["waiting_for"].get<std::string>() + ")"
                              : "";
    std::fprintf(stderr, "%s[%s] %d/%d positions, %d photos, %s left, %s%s%s", tty ? "\r" : "",
                 bar.c_str(), step, of, p.value("photos", 0), eta.c_str(),
                 p.value("state", "").c_str(), waiting.c_str(), tty ? "   " : "\n");
    std::fflush(stderr);
}
}  // namespace

int main(int argc, char** argv) {
    // A command-line tool: library chatter (connected/disconnected) only with --verbose.
    photorig::log::set_level(photorig::log::Level::warn);
    Args args;
    std::string error;
    if (!parse_args(argc, argv, &args, &error)) return usage_error(error);
    if (args.opts.count("--verbose")) photorig::log::set_level(photorig::log::Level::debug);
    if (args.opts.count("--help") || args.words.empty()) {
        std::fputs(kUsage, args.words.empty() && !args.opts.count("--help") ? stderr : stdout);
        return args.opts.count("--help") ? 0 : 2;
    }
    auto opt = [&](const std::string& name, const std::string& fallback) {
        auto it = args.opts.find(name);
        return it == args.opts.end() ? fallback : it->second;
    };

    photorig::mqtt::Options mo;
    mo.host = opt("--host", env_or("PHOTORIG_MQTT_HOST", "127.0.0.1"));
    mo.port = std::atoi(opt("--port", env_or("PHOTORIG_MQTT_PORT", "1883")).c_str());
    mo.username = opt("--username", env_or("PHOTORIG_MQTT_USERNAME", ""));
    std::string password_file = opt("--password-file", env_or("PHOTORIG_MQTT_PASSWORD_FILE", ""));
    if (!password_file.empty()) {
        auto pw = photorig::files::read_secret(password_file);
        if (!pw) return fail(pw.error());
        mo.password = *pw;
    }
    mo.reconnect_max_ms = 2000;
    if (mo.port < 1 || mo.port > 65535) return usage_error("--port must be 1..65535");
    const std::string prefix = opt("--prefix", env_or("PHOTORIG_TOPIC_PREFIX", "photorig"));
    const auto timeout =
        std::chrono::seconds(std::max(1, std::atoi(opt("--timeout", "60").c_str())));
    const std::string& command = args.words[0];
    const std::string rig = args.words.size() > 1 ? args.words[1] : "";
    if (command != "list" && rig.empty()) return usage_error(command + " needs a RIG");

    photorig::ctl::RigClient client(mo, prefix);
    auto connect = [&](const std::vector<std::string>& filters) -> int {
        auto st = client.connect(std::chrono::seconds(5), filters);
        if (!st)
            return fail(
                st.error().with_context("broker " + mo.host + ":" + std::to_string(mo.port)));
        return 0;
    };

    if (command == "list") {
        if (int rc = connect(client.list_filters())) return rc;
        auto rigs = client.list(std::chrono::seconds(3));
        if (!rigs) return fail(rigs.error());
        std::printf("%-16s %-8s %-8s %-10s %-6s %-6s %-8s %s\n", "RIG", "AGENT", "UPLOADER",
                    "CAMERAS", "BUSY", "QUEUE", "SCAN", "VERSION");
        for (const auto& r : *rigs) {
            json s = json::parse(r.state_json.empty() ? "{}" : r.state_json, nullptr, false);
            json u = json::parse(r.uploader_state_json.empty() ? "{}" : r.uploader_state_json,
                                 nullptr, false);
            json sc =
                json::parse(r.scan_state_json.empty() ? "{}" : r.scan_state_json, nullptr, false);
            int cams = 0, connected = 0;
            for (const auto& c : s.value("cameras", json::array())) {
                ++cams;
                connected += c.value("connected", false) ? 1 : 0;
            }
            std::string scan = sc.is_object() && sc.contains("state")
                                   ? sc.value("state", "") + " " +
                                         std::to_string(sc.value("step", 0)) + "/" +
                                         std::to_string(sc.value("of", 0))
                                   : "-";
            std::printf("%-16s %-8s %-8s %-10s %-6s %-6s %-8s %s\n", r.rig_id.c_str(),
                        r.availability.empty() ? "?" : r.availability.c_str(),
                        r.uploader_availability.empty() ? "?" : r.uploader_availability.c_str(),
                        (std::to_string(connected) + "/" + std::to_string(cams)).c_str(),
                        s.value("busy", false) ? "yes" : "no",
                        u.contains("queue_depth")
                            ? std::to_string(u["queue_depth"].get<long long>()).c_str()
                            : "?",
                        scan.c_str(), s.value("version", "?").c_str());
        }
        return 0;
    }

    if (command == "status" || command == "cameras") {
        if (!fill(args, {}, nullptr, &error)) return usage_error(error);
        if (int rc = connect({client.topic(rig, "response/" + command)})) return rc;
        auto r = client.request(rig, command, "{}", timeout);
        if (!r) return fail(r.error());
        std::printf("%s\n", json::parse(*r).dump(2).c_str());
        return 0;
    }

    if (command == "capture") {
        json body = json::object();
        if (!fill(args,
                  {{"--camera", {"camera", false}},
                   {"--count", {"count", true}},
                   {"--interval-ms", {"interval_ms", true}},
                   {"--batch", {"batch", false}}},
                  &body, &error)) {
            return usage_error(error);
        }
        if (int rc = connect({client.topic(rig, "response/capture")})) return rc;
        auto r = client.request(rig, "capture", body.dump(), timeout);
        if (!r) return fail(r.error());
        json d = json::parse(*r);
        for (const auto& p : d.value("photos", json::array())) {
            std::printf("%s  seq %d  %s  %s  %lld bytes\n", p.value("captured_at", "").c_str(),
                        p.value("seq", 0), p.value("camera", "").c_str(),
                        p.value("file", "").c_str(), p.value("size", 0LL));
        }
        std::printf("batch %s: %d photo(s)\n", d.value("batch", "").c_str(), d.value("count", 0));
        for (const auto& e : d.value("errors", json::array())) {
            std::fprintf(stderr, "rigctl: camera error: %s: %s\n", e.value("code", "").c_str(),
                         e.value("message", "").c_str());
        }
        return 0;
    }

    if (command == "scan") {
        std::string action = args.words.size() > 2 ? args.words[2] : "";
        if (action != "start" && action != "pause" && action != "resume" && action != "abort" &&
            action != "status") {
            return usage_error("scan needs start, pause, resume, abort or status");
        }
        json body{{"action", action}};
        std::map<std::string, std::pair<std::string, bool>> allowed;
        if (action == "start") {
            allowed = {{"--positions", {"positions", true}},
                       {"--settle-ms", {"settle_ms", true}},
                       {"--interval-ms", {"interval_ms", true}},
                       {"--camera", {"camera", false}},
                       {"--count", {"count", true}},
                       {"--batch", {"batch", false}},
                       {"--move-timeout-ms", {"move_timeout_ms", true}},
                       {"--no-turntable", {"", false}},
                       {"--detach", {"", false}}};
            if (args.opts.count("--no-turntable")) body["turntable"] = false;
        }
        if (!fill(args, allowed, &body, &error)) return usage_error(error);
        bool watch = action == "start" && !args.opts.count("--detach");
        std::vector<std::string> filters{client.topic(rig, "response/scan")};
        if (watch) filters.push_back(client.topic(rig, "scan/progress"));
        if (int rc = connect(filters)) return rc;
        auto r = client.request(rig, "scan", body.dump(), timeout);
        if (!r) return fail(r.error());
        json started = json::parse(*r);
        if (!watch) {
            std::printf("%s\n", started.dump(2).c_str());
            return 0;
        }
        const std::string scan_id = started.value("scan_id", "");
        std::fprintf(stderr, "scan %s, batch %s: %d positions\n", scan_id.c_str(),
                     started.value("batch", "").c_str(), started.value("of", 0));
        bool tty = ::isatty(2);
        json last;
        // A scan takes as long as it takes: follow it until it ends (Ctrl-C leaves it running).
        auto st = client.follow(
            rig, {"scan/progress"},
            [&](const std::string&, const std::string& payload) {
                json p = json::parse(payload, nullptr, false);
                if (!p.is_object() || p.value("scan_id", "") != scan_id) return true;
                last = p;
                print_bar(p, tty);
                std::string state = p.value("state", "");
                return state == "running";
            },
            std::chrono::hours(24 * 7));
        if (tty) std::fputc('\n', stderr);
        if (!st) return fail(st.error());
        std::string state = last.value("state", "");
        std::printf("scan %s %s: %d/%d positions, %d photos\n", scan_id.c_str(), state.c_str(),
                    last.value("step", 0), last.value("of", 0), last.value("photos", 0));
        if (state == "completed") return 0;
        const json& e = last.value("error", json::object());
        return fail(
            Error(e.value("code", "scan_" + state), e.value("message", "the scan is " + state)));
    }

    if (command == "follow") {
        long long want = 0;
        if (!fill(args, {{"--count", {"", true}}}, nullptr, &error)) return usage_error(error);
        if (args.opts.count("--count")) want = std::atoll(args.opts["--count"].c_str());
        if (int rc = connect({client.topic(rig, "upload/events")})) return rc;
        long long done = 0;
        auto st = client.follow(
            rig, {"upload/events"},
            [&](const std::string&, const std::string& payload) {
                json e = json::parse(payload, nullptr, false);
                if (!e.is_object()) return true;
                std::string type = e.value("type", "");
                std::printf("%-8s %s", type.c_str(),
                            e.value("name", e.value("job_id", "")).c_str());
                if (type == "progress") {
                    std::printf("  %lld/%lld bytes", e.value("bytes_done", 0LL),
                                e.value("bytes_total", 0LL));
                }
                if (type == "failed") {
                    const json& err = e.value("error", json::object());
                    std::printf("  %s: %s%s", err.value("code", "").c_str(),
                                err.value("message", "").c_str(),
                                e.value("retrying", false) ? " (retrying)" : "");
                }
                std::printf("\n");
                std::fflush(stdout);
                if (type == "done") ++done;
                return want == 0 || done < want;
            },
            want ? timeout : std::chrono::hours(24 * 365));
        return st ? 0 : fail(st.error());
    }
    return usage_error("unknown command '" + command + "'");
}
