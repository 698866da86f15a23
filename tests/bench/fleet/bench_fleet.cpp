// Fleet benchmark (issue 14): N rigs x 1 simulated camera, each rig's broker bridged (TLS,
// client certificates) to one central broker (tests/harness/fleet_harness.h).
//  - central broker cost per bridged rig: its RSS (VmRSS) and CPU (utime + stime from
//    /proc/<pid>/stat) over an idle window with 0 rigs and after each step up to N rigs,
//    and its CPU per group capture with N rigs;
//  - group capture: one `photorig/group/all/request/capture` per shot, published on the
//    central broker with `capture_at` 1 s ahead, shots one after another:
//      * trigger spread across all N cameras, measured at the simulators (the arrival time
//        of each one's InitiateCapture, CLOCK_REALTIME, from their `stats`), max - min per
//        shot. Goal: p95 < 5 ms (one machine, one clock: this measures the fleet path);
//      * request -> all N responses seen at the central broker (includes the 1 s lead), and
//        the same from capture_at;
//      * capture_at -> every photo's upload `done` event seen at the central broker.
// --quick (CI): 5 rigs, 10 shots; --full: 20 rigs, 50 shots. Exit 3: a goal missed.
// PHOTORIG_BENCH_FLEET_NO_UPLOADERS=1 leaves the uploaders out (no `done` figures).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "harness/fleet_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool has_txn(const std::string& payload, const std::string& txn) {
    json j = json::parse(payload, nullptr, false);
    return j.is_object() && j.value("transaction", json()) == txn;
}

// The central broker's RSS and its CPU over an idle `window` with the rigs it has now;
// `rss0` is its RSS without rigs (0: this is that measurement). Returns the RSS.
long measure_central(FleetHarness& fleet, std::chrono::seconds window, long rss0) {
    pid_t pid = fleet.central().pid();
    long cpu0 = cpu_ms(pid);
    std::this_thread::sleep_for(window);
    long cpu = cpu_ms(pid) - cpu0;
    long rss = rss_kib(pid);
    std::printf("central mosquitto, %zu bridged rigs: RSS %ld KiB", fleet.rig_count(), rss);
    if (rss0 > 0 && fleet.rig_count() > 0)
        std::printf(" (%.0f KiB per rig)",
                    static_cast<double>(rss - rss0) / static_cast<double>(fleet.rig_count()));
    std::printf(", CPU %ld ms in %lld s idle\n", cpu, static_cast<long long>(window.count()));
    return rss;
}

struct Shot {
    std::string txn, batch;
    Clock::time_point sent, capture_at;
    double responses_ms = 0;       // request -> the last of the rigs' responses, centrally
    double spread_ms = 0;          // at the simulators: the trigger commands' arrival (kernel time)
    double handled_spread_ms = 0;  // when the simulator processes got to handle them
};

Shot group_capture(FleetHarness& fleet, int k) {
    Shot s;
    s.txn = "bench-" + std::to_string(k);
    s.batch = "fleet-bench-" + std::to_string(k);
    int64_t at_ms = now_ms() + 1000;
    s.sent = Clock::now();
    s.capture_at = s.sent + std::chrono::milliseconds(at_ms - now_ms());
    fleet.publish_central(
        "photorig/group/all/request/capture",
        json{{"camera", "all"}, {"capture_at", at_ms}, {"batch", s.batch}, {"transaction", s.txn}}
            .dump());
    Clock::time_point last{};
    for (size_t i = 0; i < fleet.rig_count(); ++i) {
        const std::string topic = fleet.rig(i).base() + "/response/capture";
        auto answered = [&](const CentralMessage& m) { return has_txn(m.payload, s.txn); };
        if (!fleet.wait_count(topic, 1, answered, 30s))
            throw std::runtime_error(topic + ": no response to " + s.txn);
        for (const auto& m : fleet.received(topic)) {
            if (!answered(m)) continue;
            json r = json::parse(m.payload);
            if (r["status"] != "ok" || r["data"].value("count", 0) != 1)
                throw std::runtime_error(topic + ": " + m.payload);
            last = std::max(last, m.at);
        }
    }
    s.responses_ms = ms_between(s.sent, last);
    int64_t lo = INT64_MAX, hi = INT64_MIN, handled_lo = INT64_MAX, handled_hi = INT64_MIN;
    for (size_t i = 0; i < fleet.rig_count(); ++i) {
        json stats = json::parse(fleet.rig(i).sim().control("stats"));
        int64_t t = stats["last_initiate_us"], handled = stats["last_initiate_handled_us"];
        lo = std::min(lo, t);
        hi = std::max(hi, t);
        handled_lo = std::min(handled_lo, handled);
        handled_hi = std::max(handled_hi, handled);
    }
    s.spread_ms = (hi - lo) / 1000.0;
    s.handled_spread_ms = (handled_hi - handled_lo) / 1000.0;
    return s;
}

// capture_at -> the last `done` event of the shot's batch at the central broker, per shot.
std::vector<double> done_after_capture(FleetHarness& fleet, const std::vector<Shot>& shots) {
    std::map<std::string, Clock::time_point> last_done;
    std::set<std::string> batches;
    for (const auto& s : shots) batches.insert(s.batch);
    size_t expected = shots.size() * fleet.rig_count();
    auto count_done = [&] {
        last_done.clear();
        size_t n = 0;
        for (size_t i = 0; i < fleet.rig_count(); ++i) {
            for (const auto& m : fleet.received(fleet.rig(i).base() + "/upload/events")) {
                json e = json::parse(m.payload, nullptr, false);
                if (!e.is_object() || e.value("type", "") != "done" ||
                    !batches.count(e.value("batch", "")))
                    continue;
                auto& t = last_done[e.value("batch", "")];
                t = std::max(t, m.at);
                ++n;
            }
        }
        return n;
    };
    if (!wait_until([&] { return count_done() >= expected; }, 120s, 200ms))
        throw std::runtime_error("not every photo's done event reached the central broker");
    std::vector<double> out;
    for (const auto& s : shots) out.push_back(ms_between(s.capture_at, last_done.at(s.batch)));
    return out;
}

int run(bool quick) {
    const size_t rigs = quick ? 5 : 20;
    const int shots = quick ? 10 : 50;
    const bool uploaders = !std::getenv("PHOTORIG_BENCH_FLEET_NO_UPLOADERS");
    FleetOptions o;
    o.uploaders = uploaders;
    o.rig.image_size = 20000;
    o.rig.concurrency = 1;
    FleetHarness fleet(o);
    fleet.start_central();
    std::printf("%zu rigs x 1 camera, %s\n", rigs,
                uploaders ? "with uploaders (local target)" : "without uploaders");
    const long rss0 = measure_central(fleet, 3s, 0);
    for (size_t step : {size_t{5}, size_t{10}, size_t{20}}) {
        if (step > rigs) break;
        auto t0 = Clock::now();
        fleet.add_rigs(step - fleet.rig_count());
        std::printf("(%zu rigs up and answering through the central broker in %.1f s)\n", step,
                    ms_between(t0, Clock::now()) / 1000);
        measure_central(fleet, 5s, rss0);
    }
    group_capture(fleet, 0);  // warms every path; not counted

    std::vector<Shot> done;
    pid_t central = fleet.central().pid();
    long cpu0 = cpu_ms(central);
    size_t msgs0 = fleet.received("").size();
    for (int k = 1; k <= shots; ++k) done.push_back(group_capture(fleet, k));
    std::vector<double> spread, handled_spread, responses, after_at, done_ms;
    for (const auto& s : done) {
        spread.push_back(s.spread_ms);
        handled_spread.push_back(s.handled_spread_ms);
        responses.push_back(s.responses_ms);
        after_at.push_back(s.responses_ms - ms_between(s.sent, s.capture_at));
    }
    if (uploaders) done_ms = done_after_capture(fleet, done);
    long cpu = cpu_ms(central) - cpu0;
    size_t msgs = fleet.received("").size() - msgs0;

    double p95 = percentile(spread, 0.95);
    std::printf(
        "trigger spread, %zu cameras on %zu rigs, %d group captures (capture_at 1 s ahead), at "
        "the simulators: p50 %.3f ms, p95 %.3f ms, max %.3f ms (goal p95 < 5 ms: ratio %.2f)\n",
        rigs, rigs, shots, percentile(spread, 0.5), p95,
        *std::max_element(spread.begin(), spread.end()), p95 / 5.0);
    // The simulators share this machine's cores with every rig's agent, broker and uploader:
    // when they get to handle the command adds this machine's scheduling, which a real
    // camera (its own CPU) does not have. Printed for comparison, not the goal.
    std::printf(
        "  (the same, counted when the simulator processes handled the commands: p50 %.3f ms, "
        "p95 %.3f ms, max %.3f ms)\n",
        percentile(handled_spread, 0.5), percentile(handled_spread, 0.95),
        *std::max_element(handled_spread.begin(), handled_spread.end()));
    // capture.trigger_priority (default 10): each agent says once when SCHED_FIFO is refused.
    size_t normal_priority = 0;
    for (size_t i = 0; i < fleet.rig_count(); ++i)
        normal_priority += fleet.rig(i).agent().log().find(
                               "timed triggers run at normal "
                               "priority") != std::string::npos;
    const char* priority = std::getenv("PHOTORIG_CAPTURE_TRIGGER_PRIORITY");
    if (priority && std::strcmp(priority, "0") == 0) {
        std::printf("  (capture.trigger_priority 0: trigger moments at normal priority)\n");
    } else {
        std::printf(
            "  (trigger moments at SCHED_FIFO on %zu of %zu rigs; the rest not permitted)\n",
            rigs - normal_priority, rigs);
    }
    std::printf(
        "central request -> all %zu responses at the central broker: p50 %.1f ms, p99 %.1f ms "
        "(from capture_at: p50 %.1f ms, p99 %.1f ms)\n",
        rigs, percentile(responses, 0.5), percentile(responses, 0.99), percentile(after_at, 0.5),
        percentile(after_at, 0.99));
    if (uploaders)
        std::printf(
            "capture_at -> every photo's done event at the central broker: p50 %.1f ms, max "
            "%.1f ms\n",
            percentile(done_ms, 0.5), *std::max_element(done_ms.begin(), done_ms.end()));
    std::printf(
        "central mosquitto during the captures: %.1f ms CPU per group capture (%.2f ms per rig), "
        "%zu messages to the observer per capture\n",
        static_cast<double>(cpu) / shots, static_cast<double>(cpu) / shots / rigs, msgs / shots);
    return p95 >= 5.0 ? 3 : 0;
}
}  // namespace

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    try {
        return run(quick);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
}
