// Request latency benchmark: from a dashboard-like client publishing `request/capture` to the
// camera simulator seeing InitiateCapture (its --event-log arrival time, CLOCK_REALTIME),
// p50/p99 over N sequential requests, side by side in one run against two mosquitto
// brokers:
//   - ours:  broker/mosquitto.conf.in's settings on a message's path: `set_tcp_nodelay true`,
//            persistence saved on every change, max_inflight_messages 20;
//   - stock: Debian's /etc/mosquitto/mosquitto.conf (Home Assistant's add-on and most
//            existing brokers alike): persistence at the default 30-minute autosave and no
//            set_tcp_nodelay, where Nagle on the broker's sockets meets delayed ACKs (40 ms
//            on Linux) on its clients' (mqtt/broker_socket.h).
// Goal: p99 < 5 ms on both. Beside it, the requester's own request -> response time.
//
//   bench_latency [--quick|--full] [--sim PATH]
// --quick: 40 requests per broker (CI); --full: 200. The camera simulator is
// tests/ptpip-sim, or tests/ptpip-sim2 with PHOTORIG_TEST_SIM=sim2, unless --sim PATH or
// PHOTORIG_BENCH_SIM=PATH names another (a path ending in .py runs with python3); it must
// take the same flags (--port, --control-port, --event-log, --image-size, --serial).
// Exit 3: a goal missed; 1: could not run.
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/queue.h"
#include "mqtt/client.h"
#include "support/child_process.h"
#include "support/mosquitto_fixture.h"
#include "support/ptpip_sim_fixture.h"
#include "support/test_util.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
namespace mqtt = photorig::mqtt;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kGoalP99Ms = 5.0;
constexpr int kWarmup = 3;
const char* const kBase = "photorig/lat1";

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

int64_t realtime_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);  // the simulator's event-log clock
    return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

std::string bin(const std::string& name) {
    return std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/" + name;
}

// Arrival times of InitiateCapture in the simulator's event log, in order.
std::vector<int64_t> initiate_times(const std::string& event_log) {
    std::vector<int64_t> out;
    std::istringstream in(read_file(event_log));
    std::string line;
    while (std::getline(in, line)) {
        json e = parse(line);
        if (e.is_object() && e.value("event", "") == "initiate_capture")
            out.push_back(e.value("t_us", int64_t{0}));
    }
    return out;
}

struct Figures {
    std::vector<double> trigger_ms;   // request published -> InitiateCapture at the camera
    std::vector<double> response_ms;  // request published -> response received
    bool probe_warned = false;        // the agent's start-up probe named set_tcp_nodelay
};

// One broker (ours or stock), one simulator, the real rig-agent, and a
// requester that sends `n` capture requests one after another, each after the previous
// one's response.
Figures run_against(bool ours, int n, const std::string& sim_path) {
    TempDir dir("photorig-bench-latency");
    // Ours: broker/mosquitto.conf.in's settings that touch a message's path. Stock: Debian's
    // /etc/mosquitto/mosquitto.conf (persistence at mosquitto's default 30-minute autosave,
    // Nagle on), which Home Assistant's add-on resembles.
    Mosquitto::Options bo;
    bo.persistence = true;
    bo.autosave_on_changes = ours;
    bo.tcp_nodelay = ours;
    if (ours) bo.extra_lines = {"max_inflight_messages 20"};
    Mosquitto broker(bo);
    broker.start();
    std::fprintf(stderr, "broker (%s) on 127.0.0.1:%d\n", ours ? "ours" : "stock", broker.port());

    const std::string event_log = dir.file("sim-events.jsonl");
    PtpipSim sim(sim_path,
                 {"--image-size", "20000", "--serial", "SIM0001", "--event-log", event_log},
                 dir.file("sim.log"));
    sim.start();

    write_file(dir.file("photorig.yaml"),
               "rig_id: lat1\ntopic_prefix: photorig\nlog_level: info\n"
               "mqtt:\n  host: 127.0.0.1\n  port: " +
                   std::to_string(broker.port()) +
                   "\n  keepalive_s: 30\n"
                   "camera:\n  port: " +
                   sim.port_string() +
                   "\n  model: \"PTP/IP Camera\"\n  capture_timeout_ms: 5000\n"
                   "spool:\n  dir: " +
                   dir.file("spool") +
                   "\nupload:\n  target: local\n  journal: " + dir.file("journal.sqlite") +
                   "\n  local:\n    dir: " + dir.file("uploads") + "\n");
    ::mkdir(dir.file("home").c_str(), 0700);
    ChildProcess agent({bin("rig-agent"), "--config", dir.file("photorig.yaml")},
                       dir.file("agent.log"), {"HOME=" + dir.file("home")});
    agent.start();

    // The requester: a connected dashboard-like client (v5, QoS 1), as Home Assistant,
    // Node-RED or rigctl would be.
    photorig::MessageQueue<mqtt::Event> events;
    mqtt::Options mo;
    mo.port = broker.port();
    mo.client_id = "bench-latency-requester";
    mqtt::Client requester(mo, events);
    const std::string base = kBase;
    requester.set_subscriptions({{base + "/response/capture", 1}, {base + "/availability", 1}});
    if (auto st = requester.connect(5s); !st)
        throw std::runtime_error("requester: " + st.error().describe());
    auto wait_message = [&](const std::string& topic, const std::function<bool(const json&)>& pred,
                            std::chrono::milliseconds timeout) {
        auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            auto ev = events.pop_for(std::chrono::milliseconds(50));
            if (!ev || ev->kind != mqtt::Event::Kind::message || ev->message.topic != topic)
                continue;
            if (pred(parse(ev->message.payload))) return true;
        }
        return false;
    };
    bool online = false;
    for (auto deadline = Clock::now() + 15s; !online && Clock::now() < deadline;) {
        auto ev = events.pop_for(50ms);
        online = ev && ev->kind == mqtt::Event::Kind::message &&
                 ev->message.topic == base + "/availability" && ev->message.payload == "online";
    }
    if (!online) throw std::runtime_error("rig-agent did not come online:\n" + agent.log());

    Figures f;
    std::vector<int64_t> sent_us;
    for (int i = 0; i < kWarmup + n; ++i) {
        const std::string txn = "lat-" + std::to_string(i);
        mqtt::Message m{
            base + "/request/capture", json{{"transaction", txn}}.dump(), 1, false, "", ""};
        const int64_t t0 = realtime_us();
        requester.publish_nowait(m, false);
        bool answered = wait_message(
            base + "/response/capture",
            [&](const json& j) { return j.is_object() && j.value("transaction", "") == txn; }, 10s);
        const int64_t t1 = realtime_us();
        if (!answered) throw std::runtime_error("no response to " + txn + ":\n" + agent.log());
        if (i >= kWarmup) {
            sent_us.push_back(t0);
            f.response_ms.push_back((t1 - t0) / 1000.0);
        }
    }
    auto initiated = initiate_times(event_log);
    if (initiated.size() != static_cast<size_t>(kWarmup + n))
        throw std::runtime_error("the simulator's event log shows " +
                                 std::to_string(initiated.size()) + " InitiateCapture, expected " +
                                 std::to_string(kWarmup + n) + " (" + event_log + ")");
    for (int i = 0; i < n; ++i)
        f.trigger_ms.push_back(
            (initiated[static_cast<size_t>(kWarmup + i)] - sent_us[static_cast<size_t>(i)]) /
            1000.0);
    requester.disconnect(1s);
    agent.stop();
    f.probe_warned = agent.log().find("set_tcp_nodelay true") != std::string::npos;
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = true;
    // PHOTORIG_TEST_SIM=sim2 picks the second simulator, as for every other benchmark.
    std::string sim_path = sim_binary(sim_kind_from_env());
    if (const char* env = std::getenv("PHOTORIG_BENCH_SIM"); env && *env) sim_path = env;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (std::strcmp(argv[i], "--full") == 0) {
            quick = false;
        } else if (std::strcmp(argv[i], "--sim") == 0 && i + 1 < argc) {
            sim_path = argv[++i];
        } else {
            std::fprintf(stderr, "usage: bench_latency [--quick|--full] [--sim PATH]\n");
            return 1;
        }
    }
    const int n = quick ? 40 : 200;
    Figures ours, stock;
    try {
        ours = run_against(true, n, sim_path);
        stock = run_against(false, n, sim_path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    std::printf("request -> InitiateCapture, %d sequential requests per broker (simulator %s):\n",
                n, sim_path.c_str());
    struct Row {
        const char* name;
        const Figures& f;
    };
    for (const Row& r : {Row{"ours  (nodelay, save per change)", ours},
                         Row{"stock (Nagle, save per 30 min)  ", stock}}) {
        std::printf(
            "  %s: trigger p50 %6.2f ms, p99 %6.2f ms, max %6.2f ms | response p50 %6.2f ms, "
            "p99 %6.2f ms | start-up probe: %s\n",
            r.name, percentile(r.f.trigger_ms, 0.5), percentile(r.f.trigger_ms, 0.99),
            percentile(r.f.trigger_ms, 1.0), percentile(r.f.response_ms, 0.5),
            percentile(r.f.response_ms, 0.99),
            r.f.probe_warned ? "warned (set_tcp_nodelay)" : "no warning");
    }
    double ours_p99 = percentile(ours.trigger_ms, 0.99);
    double stock_p99 = percentile(stock.trigger_ms, 0.99);
    std::printf(
        "  stock / ours: p50 %.1fx, p99 %.1fx\n",
        percentile(stock.trigger_ms, 0.5) / std::max(0.001, percentile(ours.trigger_ms, 0.5)),
        stock_p99 / std::max(0.001, ours_p99));
    bool pass = ours_p99 < kGoalP99Ms && stock_p99 < kGoalP99Ms;
    std::printf("  goal: trigger p99 < %.0f ms on both brokers: %s\n", kGoalP99Ms,
                pass ? "met" : "MISSED");
    std::printf("latency benchmark: %s\n", pass ? "all goals met" : "SOME GOALS MISSED");
    return pass ? 0 : 3;
}
