// rigctl: the operator's command line for photorig rigs over MQTT.
// Exit status: 0 ok; 1 the rig answered with an error (its code is printed); 2 usage;
// 3 no broker connection; 4 timed out waiting.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"
#include "ctl/fleet.h"
#include "ctl/rig_client.h"
#include "protocol/client.h"
#include "protocol/wire.h"

using photorig::Error;
using photorig::ctl::GroupCapture;
using photorig::ctl::RigClient;
namespace wire = photorig::protocol::client;

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
  fleet status [--json]                  one row per rig on the (central) broker: availability,
                                         cameras online/total, spool files, upload queue,
                                         bridge, clock error, last error
  fleet capture GROUP [--at +2s|+500ms|EPOCH_MS] [--count N] [--batch NAME]
                                         one capture by every online rig of GROUP at one instant:
                                         each rig's answer and trigger times, the spread across
                                         all rigs, then upload progress until every photo is done
                                         (--timeout: after capture time; exit 4 names the rigs
                                         missing photos, 1 if a rig answered an error)

Options:
  --host H (127.0.0.1)  --port P (1883)  --username U  --password-file F (0600)
  --prefix T (photorig)  --timeout S (seconds to wait for an answer, 60)  --verbose
  --version (print the version and exit)
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

// What the command line asked for. Every option is kept as its text so numbers can be
// checked with rigctl's own messages, and so an option not given is not sent.
struct CommandLine {
    std::map<std::string, std::string> global;  // "--host" -> value (only those given)
    bool verbose = false;
    std::string command, rig, action;
    std::string unknown_command;  // the first word, when it names no command
    // The chosen command's options that were given: "--count" -> value.
    std::map<std::string, std::string> opts;
};

const std::vector<std::string>& global_options() {
    static const std::vector<std::string> names{"--host",          "--port",   "--username",
                                                "--password-file", "--prefix", "--timeout"};
    return names;
}

// Options of each command: name -> the request field it fills ("" = the command reads it)
// and whether it is a whole number.
using OptionFields = std::map<std::string, std::pair<std::string, bool>>;
const OptionFields& capture_fields() {
    static const OptionFields fields{{"--camera", {"camera", false}},
                                     {"--count", {"count", true}},
                                     {"--interval-ms", {"interval_ms", true}},
                                     {"--batch", {"batch", false}}};
    return fields;
}
const OptionFields& scan_start_fields() {
    static const OptionFields fields{{"--positions", {"positions", true}},
                                     {"--settle-ms", {"settle_ms", true}},
                                     {"--interval-ms", {"interval_ms", true}},
                                     {"--camera", {"camera", false}},
                                     {"--count", {"count", true}},
                                     {"--batch", {"batch", false}},
                                     {"--move-timeout-ms", {"move_timeout_ms", true}}};
    return fields;
}
const OptionFields& fleet_capture_fields() {
    static const OptionFields fields{
        {"--at", {"", false}}, {"--count", {"count", true}}, {"--batch", {"batch", false}}};
    return fields;
}
const OptionFields& follow_fields() {
    static const OptionFields fields{{"--count", {"", true}}};
    return fields;
}

// One command's options as CLI11 fills them; parse_command_line keeps those given.
struct GivenOptions {
    std::map<std::string, std::string> values;
    std::map<std::string, CLI::Option*> options;
    std::map<std::string, bool> switches;  // flags: name -> set
};

void add_options(CLI::App* cmd, const OptionFields& fields, GivenOptions* given) {
    for (const auto& [name, field] : fields) {
        given->options[name] = cmd->add_option(name, given->values[name])
                                   ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
}

// What CLI11 did not know, treated as rigctl always has: further words are ignored, and any
// other "--name value" (or "--name=value") is kept for the command, whose fill() refuses it
// ("list" reads no options). 0, or 2 for an option without its value.
int keep_extras(const std::vector<std::string>& extras, CommandLine* out) {
    for (size_t i = 0; i < extras.size(); ++i) {
        const std::string& a = extras[i];
        if (a.rfind("--", 0) != 0) {
            if (out->command.empty() && out->unknown_command.empty()) {
                out->unknown_command = a;
            } else if (out->command.empty() && out->rig.empty()) {
                out->rig = a;
            }
            continue;
        }
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            out->opts[a.substr(0, eq)] = a.substr(eq + 1);
        } else if (i + 1 < extras.size()) {
            out->opts[a] = extras[++i];
        } else {
            return usage_error(a + " needs a value");
        }
    }
    return 0;
}

// Parses argv into `out`; 0 to go on, else the exit status (usage errors are 2).
int parse_command_line(int argc, char** argv, CommandLine* out) {
    CLI::App app("rigctl");
    app.set_help_flag();  // --help prints kUsage, checked before parsing
    app.fallthrough();    // global options may follow the command too
    app.allow_extras();   // see keep_extras
    std::map<std::string, std::string> global;
    for (const auto& name : global_options()) {
        app.add_option(name, global[name])->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
    app.add_flag("--verbose", out->verbose);
    std::map<std::string, GivenOptions> given;
    auto command = [&](const char* name, bool needs_rig) {
        CLI::App* cmd = app.add_subcommand(name);
        if (needs_rig) cmd->add_option("RIG", out->rig);  // checked after parsing, as before
        cmd->allow_extras();
        return cmd;
    };
    command("list", false);
    command("status", true);
    command("cameras", true);
    add_options(command("capture", true), capture_fields(), &given["capture"]);
    CLI::App* scan = command("scan", true);
    scan->add_option("ACTION", out->action);  // run_scan names the valid ones
    add_options(scan, scan_start_fields(), &given["scan"]);
    scan->add_flag("--no-turntable", given["scan"].switches["--no-turntable"]);
    scan->add_flag("--detach", given["scan"].switches["--detach"]);
    add_options(command("follow", true), follow_fields(), &given["follow"]);
    // fleet status | fleet capture GROUP: nested, so "status" is not the rig command.
    CLI::App* fleet = command("fleet", false);
    CLI::App* fleet_status = fleet->add_subcommand("status")->allow_extras();
    fleet_status->add_flag("--json", given["fleet"].switches["--json"]);
    CLI::App* fleet_capture = fleet->add_subcommand("capture")->allow_extras();
    fleet_capture->add_option("GROUP", out->rig);
    add_options(fleet_capture, fleet_capture_fields(), &given["fleet"]);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ArgumentMismatch& e) {
        // Only an option given last without its value gets here ("--count: 1 required ...").
        std::string what = e.what();
        return usage_error(what.substr(0, what.find(':')) + " needs a value");
    } catch (const CLI::ParseError& e) {
        return usage_error(e.what());
    }
    for (const auto& name : global_options()) {
        if (app.get_option(name)->count()) out->global[name] = global[name];
    }
    for (CLI::App* cmd : app.get_subcommands()) {
        out->command = cmd->get_name();
        if (out->command == "fleet") {
            for (CLI::App* action : cmd->get_subcommands()) out->action = action->get_name();
        }
    }
    auto& chosen = given[out->command];
    for (const auto& [name, option] : chosen.options) {
        if (option->count()) out->opts[name] = chosen.values[name];
    }
    for (const auto& [name, set] : chosen.switches) {
        if (set) out->opts[name] = "1";
    }
    return keep_extras(app.remaining(true), out);
}

// Copies the given options into a request body: those of `fields` that name a field;
// any other given option is refused.
bool fill(const CommandLine& args, const OptionFields& fields, wire::RequestBody* body,
          std::string* error) {
    for (const auto& [opt, value] : args.opts) {
        auto it = fields.find(opt);
        if (it == fields.end()) {
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
            body->set(field, static_cast<int64_t>(n));
        } else {
            body->set(field, value);
        }
    }
    return true;
}

void print_bar(const wire::ScanProgress& p, bool tty) {
    int step = p.step, of = std::max(1, p.of);
    int width = 30, filled = width * step / of;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(static_cast<size_t>(width), '.');
    std::string eta = p.eta_s ? std::to_string(*p.eta_s) + " s" : "?";
    std::string waiting = p.waiting_for.empty() ? "" : " (" + p.waiting_for + ")";
    std::fprintf(stderr, "%s[%s] %d/%d positions, %d photos, %s left, %s%s%s", tty ? "\r" : "",
                 bar.c_str(), step, of, p.photos, eta.c_str(), p.state.c_str(), waiting.c_str(),
                 tty ? "   " : "\n");
    std::fflush(stderr);
}

// Prints data (JSON text) indented, as the rig sent it.
int print_pretty(const std::string& data_json) {
    auto pretty = wire::pretty_json(data_json);
    if (!pretty) return fail(pretty.error());
    std::printf("%s\n", pretty->c_str());
    return 0;
}

// What every command shares: the broker, the prefix, the wait for answers.
struct Session {
    const CommandLine& args;
    photorig::mqtt::Options mqtt;
    std::string prefix;
    std::chrono::seconds timeout{60};
    std::string rig;

    std::string opt(const std::string& name, const std::string& fallback) const {
        auto it = args.global.find(name);
        if (it != args.global.end()) return it->second;
        auto cmd = args.opts.find(name);
        return cmd == args.opts.end() ? fallback : cmd->second;
    }
    bool has(const std::string& name) const { return args.opts.count(name) != 0; }
};

// Connects `client`, subscribed to `filters`; 0 or the exit status of the failure.
int connect(RigClient& client, const Session& session, const std::vector<std::string>& filters) {
    auto st = client.connect(std::chrono::seconds(5), filters);
    if (st) return 0;
    return fail(st.error().with_context("broker " + session.mqtt.host + ":" +
                                        std::to_string(session.mqtt.port)));
}

void print_rig_row(const photorig::ctl::RigSummary& r) {
    // A rig whose retained state does not parse is shown as if it had none.
    auto s = wire::parse_agent_state(r.state_json);
    auto u = wire::parse_uploader_state(r.uploader_state_json);
    auto sc = wire::parse_scan_progress(r.scan_state_json);
    photorig::protocol::AgentState state = s ? *s : photorig::protocol::AgentState{};
    int cams = 0, connected = 0;
    for (const auto& c : state.cameras) {
        ++cams;
        connected += c.connected ? 1 : 0;
    }
    std::string scan = sc && !sc->state.empty() ? sc->state + " " + std::to_string(sc->step) + "/" +
                                                      std::to_string(sc->of)
                                                : "-";
    std::string queue =
        u && !r.uploader_state_json.empty() ? std::to_string(u->queued + u->uploading) : "?";
    std::printf("%-16s %-8s %-8s %-10s %-6s %-6s %-8s %s\n", r.rig_id.c_str(),
                r.availability.empty() ? "?" : r.availability.c_str(),
                r.uploader_availability.empty() ? "?" : r.uploader_availability.c_str(),
                (std::to_string(connected) + "/" + std::to_string(cams)).c_str(),
                state.busy ? "yes" : "no", queue.c_str(), scan.c_str(),
                state.version.empty() ? "?" : state.version.c_str());
}

int run_list(RigClient& client, const Session& session) {
    if (int rc = connect(client, session, client.list_filters())) return rc;
    auto rigs = client.list(std::chrono::seconds(3));
    if (!rigs) return fail(rigs.error());
    std::printf("%-16s %-8s %-8s %-10s %-6s %-6s %-8s %s\n", "RIG", "AGENT", "UPLOADER", "CAMERAS",
                "BUSY", "QUEUE", "SCAN", "VERSION");
    for (const auto& r : *rigs) print_rig_row(r);
    return 0;
}

// status, cameras: no fields; prints the data.
int run_query(RigClient& client, const Session& session, const std::string& verb) {
    std::string error;
    if (!fill(session.args, {}, nullptr, &error)) return usage_error(error);
    if (int rc = connect(client, session, {client.topics(session.rig).response(verb)})) return rc;
    auto r = client.request(session.rig, verb, wire::RequestBody(), session.timeout);
    if (!r) return fail(r.error());
    return print_pretty(*r);
}

int run_capture(RigClient& client, const Session& session) {
    wire::RequestBody body;
    std::string error;
    if (!fill(session.args, capture_fields(), &body, &error)) {
        return usage_error(error);
    }
    if (int rc = connect(client, session, {client.topics(session.rig).response("capture")}))
        return rc;
    auto r = client.request(session.rig, "capture", body, session.timeout);
    if (!r) return fail(r.error());
    auto d = wire::parse_capture_result(*r);
    if (!d) return fail(d.error());
    for (const auto& p : d->photos) {
        std::printf("%s  seq %d  %s  %s  %lld bytes\n", p.captured_at.c_str(), p.seq,
                    p.camera.c_str(), p.file.c_str(), static_cast<long long>(p.size));
    }
    std::printf("batch %s: %d photo(s)\n", d->batch.c_str(), d->count);
    for (const auto& e : d->errors) {
        std::fprintf(stderr, "rigctl: camera error: %s: %s\n", e.code.c_str(), e.message.c_str());
    }
    return 0;
}

// After `scan start`: shows progress until the scan ends; its outcome is the exit status.
int watch_scan(RigClient& client, const Session& session, const std::string& started_json) {
    auto started = wire::parse_scan_progress(started_json);
    if (!started) return fail(started.error());
    const std::string scan_id = started->scan_id;
    std::fprintf(stderr, "scan %s, batch %s: %d positions\n", scan_id.c_str(),
                 started->batch.c_str(), started->of);
    bool tty = ::isatty(2);
    wire::ScanProgress last;
    // A scan takes as long as it takes: follow it until it ends (Ctrl-C leaves it running).
    auto st = client.follow(
        {client.topics(session.rig).scan_progress()},
        [&](const std::string&, const std::string& payload) {
            auto p = wire::parse_scan_progress(payload);
            if (!p || p->scan_id != scan_id) return true;
            last = *p;
            print_bar(last, tty);
            return last.state == "running";
        },
        std::chrono::hours(24 * 7));
    if (tty) std::fputc('\n', stderr);
    if (!st) return fail(st.error());
    const std::string& state = last.state;
    std::printf("scan %s %s: %d/%d positions, %d photos\n", scan_id.c_str(), state.c_str(),
                last.step, last.of, last.photos);
    if (state == "completed") return 0;
    return fail(Error(last.error_code.empty() ? "scan_" + state : last.error_code,
                      last.error_message.empty() ? "the scan is " + state : last.error_message));
}

int run_scan(RigClient& client, const Session& session) {
    const std::string& action = session.args.action;
    if (action != "start" && action != "pause" && action != "resume" && action != "abort" &&
        action != "status") {
        return usage_error("scan needs start, pause, resume, abort or status");
    }
    wire::RequestBody body;
    body.set("action", action);
    OptionFields allowed;
    if (action == "start") {
        allowed = scan_start_fields();
        allowed["--no-turntable"] = {"", false};
        allowed["--detach"] = {"", false};
        if (session.has("--no-turntable")) body.set("turntable", false);
    }
    std::string error;
    if (!fill(session.args, allowed, &body, &error)) return usage_error(error);
    const bool watch = action == "start" && !session.has("--detach");
    const photorig::protocol::RigTopics topics = client.topics(session.rig);
    std::vector<std::string> filters{topics.response("scan")};
    if (watch) filters.push_back(topics.scan_progress());
    if (int rc = connect(client, session, filters)) return rc;
    auto r = client.request(session.rig, "scan", body, session.timeout);
    if (!r) return fail(r.error());
    return watch ? watch_scan(client, session, *r) : print_pretty(*r);
}

// One line per upload event.
void print_upload_event(const photorig::protocol::UploadEvent& e) {
    std::printf("%-8s %s", e.type.c_str(), (e.name.empty() ? e.job_id : e.name).c_str());
    if (e.type == "progress") {
        std::printf("  %lld/%lld bytes", static_cast<long long>(e.bytes_done),
                    static_cast<long long>(e.bytes_total));
    }
    if (e.type == "failed") {
        std::printf("  %s: %s%s", e.error_code.c_str(), e.error_message.c_str(),
                    e.retrying ? " (retrying)" : "");
    }
    std::printf("\n");
    std::fflush(stdout);
}

int run_follow(RigClient& client, const Session& session) {
    std::string error;
    if (!fill(session.args, follow_fields(), nullptr, &error)) return usage_error(error);
    const long long want =
        session.has("--count") ? std::atoll(session.opt("--count", "").c_str()) : 0;
    const std::string events_topic = client.topics(session.rig).upload_events();
    if (int rc = connect(client, session, {events_topic})) return rc;
    long long done = 0;
    auto st = client.follow(
        {events_topic},
        [&](const std::string&, const std::string& payload) {
            auto e = photorig::protocol::parse_upload_event(payload);
            if (!e) return true;
            print_upload_event(*e);
            if (e->type == "done") ++done;
            return want == 0 || done < want;
        },
        want ? std::chrono::milliseconds(session.timeout) : std::chrono::hours(24 * 365));
    return st ? 0 : fail(st.error());
}

int run_fleet_status(RigClient& client, const Session& session) {
    std::string error;
    if (!fill(session.args, {{"--json", {"", false}}}, nullptr, &error)) return usage_error(error);
    if (int rc = connect(client, session, client.fleet_filters())) return rc;
    // Retained messages come in a burst: the list is complete once no rig adds to it.
    auto rigs = client.list(session.timeout, std::chrono::milliseconds(300));
    if (!rigs) return fail(rigs.error());
    std::vector<wire::FleetRow> rows;
    for (const auto& r : *rigs) rows.push_back(photorig::ctl::fleet_row(r));
    if (session.has("--json")) {
        std::printf("%s\n", wire::fleet_rows_json(rows).c_str());
    } else {
        std::fputs(photorig::ctl::fleet_table(rows).c_str(), stdout);
    }
    return 0;
}

void print_upload_progress(size_t done, size_t of, bool tty) {
    if (!tty) {
        std::printf("uploaded %zu/%zu photos\n", done, of);
        std::fflush(stdout);
        return;
    }
    const size_t width = 30, filled = of ? width * done / of : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %zu/%zu photos uploaded   ", bar.c_str(), done, of);
    std::fflush(stderr);
}

// Feeds `capture` with answers and upload events until `until` holds or `timeout` passes.
photorig::Status follow_group_capture(RigClient& client, GroupCapture& capture,
                                      const std::function<bool()>& until,
                                      std::chrono::milliseconds timeout, bool tty) {
    using photorig::protocol::subtopics::capture_response;
    using photorig::protocol::subtopics::upload_events;
    if (until()) return photorig::ok();
    return client.follow_all(
        [&](const std::string& topic, const std::string& payload) {
            auto split = client.fleet().split(topic);
            if (!split) return true;
            if (split->subtopic == capture_response) capture.on_response(split->rig_id, payload);
            if (split->subtopic == upload_events &&
                capture.on_upload_event(split->rig_id, payload) && capture.all_answered())
                print_upload_progress(capture.photos_done(), capture.photos_expected(), tty);
            return !until();
        },
        timeout);
}

// The rigs that did not answer or miss photos, as one message.
std::string missing_rigs(const GroupCapture& capture) {
    std::string out;
    for (const auto& rig : capture.unanswered())
        out += (out.empty() ? "" : ", ") + rig + " (no answer)";
    for (const auto& [rig, n] : capture.missing_photos())
        out +=
            (out.empty() ? "" : ", ") + rig + " (" + std::to_string(n) + " photo(s) not uploaded)";
    return out;
}

int run_fleet_capture(RigClient& client, const Session& session) {
    namespace subtopics = photorig::protocol::subtopics;
    wire::RequestBody body;
    std::string error;
    if (!fill(session.args, fleet_capture_fields(), &body, &error)) return usage_error(error);
    const std::string& group = session.rig;
    if (!photorig::ctl::is_group_name(group))
        return usage_error("GROUP must match [a-z0-9_-]{1,64}, got '" + group + "'");
    const std::string at_text = session.opt("--at", "+2s");
    if (!photorig::ctl::parse_capture_at(at_text, 0))
        return usage_error("--at must be +Ns, +Nms or epoch ms, got '" + at_text + "'");
    const std::string batch = session.opt("--batch", "fleet-" + photorig::ids::random_hex(8));

    auto filters = client.fleet_filters();
    filters.push_back(client.fleet().any_rig(subtopics::capture_response));
    filters.push_back(client.fleet().any_rig(subtopics::upload_events));
    if (int rc = connect(client, session, filters)) return rc;
    auto rigs = client.list(std::chrono::seconds(3), std::chrono::milliseconds(300));
    if (!rigs) return fail(rigs.error());
    std::vector<wire::FleetRow> rows;
    for (const auto& r : *rigs) rows.push_back(photorig::ctl::fleet_row(r));
    const auto members = photorig::ctl::group_members(rows, group);
    if (members.empty())
        return fail(Error("no_rigs", "no online rig lists group '" + group +
                                         "' in its state (see: rigctl fleet status --json)"));
    // A relative --at counts from now, not from before the members were known.
    const int64_t at_ms = *photorig::ctl::parse_capture_at(at_text, photorig::clock::now_ms());
    body.set("camera", "all").set("capture_at", at_ms).set("batch", batch);
    const std::string txn = "rigctl-fleet-" + photorig::ids::random_hex(12);
    GroupCapture capture(members, txn);
    std::fprintf(stderr, "group %s: %zu rig(s), batch %s, capture at %s\n", group.c_str(),
                 members.size(), batch.c_str(), photorig::clock::rfc3339_utc_ms(at_ms).c_str());
    const std::string topic = client.topics(group).group_request(group, "capture");
    if (auto st = client.publish(topic, body.json(txn), std::chrono::seconds(5)); !st)
        return fail(st.error());

    const bool tty = ::isatty(2);
    const auto until_capture =
        std::chrono::milliseconds(std::max<int64_t>(0, at_ms - photorig::clock::now_ms()));
    auto answered = follow_group_capture(
        client, capture, [&] { return capture.all_answered(); }, until_capture + session.timeout,
        tty);
    std::fputs(photorig::ctl::group_capture_report(capture).c_str(), stdout);
    std::fflush(stdout);
    print_upload_progress(capture.photos_done(), capture.photos_expected(), tty);
    auto uploaded = follow_group_capture(
        client, capture, [&] { return capture.all_uploaded(); }, session.timeout, tty);
    if (tty) std::fputc('\n', stderr);
    std::printf("batch %s: %zu/%zu photo(s) uploaded\n", batch.c_str(), capture.photos_done(),
                capture.photos_expected());
    if (capture.any_error()) return fail(Error("rig_error", "a rig answered with an error"));
    if (!answered || !uploaded) return fail(Error("timeout", "missing: " + missing_rigs(capture)));
    return 0;
}

// The broker, credentials and prefix from options and the environment; 0 or an exit status.
int configure(Session* session) {
    auto& mo = session->mqtt;
    mo.host = session->opt("--host", env_or("PHOTORIG_MQTT_HOST", "127.0.0.1"));
    mo.port = std::atoi(session->opt("--port", env_or("PHOTORIG_MQTT_PORT", "1883")).c_str());
    mo.username = session->opt("--username", env_or("PHOTORIG_MQTT_USERNAME", ""));
    std::string password_file =
        session->opt("--password-file", env_or("PHOTORIG_MQTT_PASSWORD_FILE", ""));
    if (!password_file.empty()) {
        auto pw = photorig::files::read_secret(password_file);
        if (!pw) return fail(pw.error());
        mo.password = *pw;
    }
    mo.reconnect_max_ms = 2000;
    if (mo.port < 1 || mo.port > 65535) return usage_error("--port must be 1..65535");
    session->prefix = session->opt("--prefix", env_or("PHOTORIG_TOPIC_PREFIX", "photorig"));
    session->timeout =
        std::chrono::seconds(std::max(1, std::atoi(session->opt("--timeout", "60").c_str())));
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    // A command-line tool: library chatter (connected/disconnected) only with --verbose.
    photorig::log::set_level(photorig::log::Level::warn);
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (std::string(argv[i]) == "--version") {
            std::printf("rigctl %s\n", PHOTORIG_VERSION);
            return 0;
        }
    }
    CommandLine args;
    if (int rc = parse_command_line(argc, argv, &args)) return rc;
    if (args.verbose) photorig::log::set_level(photorig::log::Level::debug);
    if (args.command.empty() && args.unknown_command.empty()) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const std::string& named = args.command.empty() ? args.unknown_command : args.command;
    if (named == "fleet" && args.action != "status" && args.action != "capture")
        return usage_error("fleet needs status or capture");
    if (named == "fleet" && args.action == "capture" && args.rig.empty())
        return usage_error("fleet capture needs a GROUP");
    if (named != "list" && named != "fleet" && args.rig.empty())
        return usage_error(named + " needs a RIG");
    Session session{args, {}, {}, std::chrono::seconds(60), args.rig};
    if (int rc = configure(&session)) return rc;
    if (args.command.empty()) return usage_error("unknown command '" + named + "'");

    RigClient client(session.mqtt, session.prefix);
    const std::string& command = args.command;
    if (command == "list") return run_list(client, session);
    if (command == "status" || command == "cameras") return run_query(client, session, command);
    if (command == "capture") return run_capture(client, session);
    if (command == "scan") return run_scan(client, session);
    if (command == "fleet") {
        return args.action == "status" ? run_fleet_status(client, session)
                                       : run_fleet_capture(client, session);
    }
    return run_follow(client, session);
}
