// Cameras benchmark, against the real rig-agent with 8 simulated cameras:
//  - trigger spread: `capture {"camera":"all"}` fires 8 cameras; the spread is measured at
//    the simulators (the arrival time of each one's InitiateCapture, CLOCK_REALTIME, from
//    their `stats`), max - min per shot. Goal: p95 < 5 ms.
//  - replug: one simulator killed and restarted on its port; time from its return
//    (listening again) to the first successful capture on it. Goal: < 5 s each.
// --quick runs smaller sizes (CI); --full is what the closing notes quote. Exit 3: a goal missed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
constexpr int kCameras = 8;

json request(RigHarness& h, const std::string& verb, json body,
             std::chrono::milliseconds timeout = 30s) {
    static int counter = 0;
    std::string txn = "b-" + std::to_string(++counter);
    body["transaction"] = txn;
    h.pub_v5(h.base() + "/request/" + verb, body.dump(), "", "");
    auto r = h.wait_for(
        h.base() + "/response/" + verb,
        [&](const Received& m) {
            json j = json::parse(m.payload, nullptr, false);
            return j.is_object() && j.value("transaction", json()) == txn;
        },
        timeout);
    if (r.topic.empty()) throw std::runtime_error(verb + ": no response in time");
    return json::parse(r.payload);
}

int64_t last_initiate_us(PtpipSim& sim) {
    return json::parse(sim.control("stats"))["last_initiate_us"].get<int64_t>();
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

int run(bool quick) {
    const int shots = quick ? 20 : 200;
    const int replugs = quick ? 2 : 10;
    HarnessOptions o;
    o.camera_count = kCameras;
    o.camera_item_yaml = "keepalive_ms: 1000, reconnect_max_ms: 500";
    o.image_size = 20000;
    RigHarness h(o);
    h.start_all();
    // The first capture opens nothing new but warms caches on every side; not counted.
    request(h, "capture", {{"camera", "all"}});

    std::vector<double> spreads_ms, reported_ms;
    for (int i = 0; i < shots; ++i) {
        json r = request(h, "capture", {{"camera", "all"}});
        if (r["data"].value("count", 0) != kCameras)
            throw std::runtime_error("capture: " + r.dump());
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t c = 0; c < h.sim_count(); ++c) {
            int64_t t = last_initiate_us(h.sim(c));
            lo = std::min(lo, t);
            hi = std::max(hi, t);
        }
        spreads_ms.push_back((hi - lo) / 1000.0);
        reported_ms.push_back(r["data"]["trigger_spread_ms"].get<double>());
    }
    double p50 = percentile(spreads_ms, 0.5), p95 = percentile(spreads_ms, 0.95);
    double worst = *std::max_element(spreads_ms.begin(), spreads_ms.end());
    std::printf(
        "trigger spread, %d cameras, %d shots, at the simulators: p50 %.3f ms, p95 %.3f ms, max "
        "%.3f ms "
        "(goal p95 < 5 ms); as the agent reports it: p50 %.3f ms, p95 %.3f ms\n",
        kCameras, shots, p50, p95, worst, percentile(reported_ms, 0.5),
        percentile(reported_ms, 0.95));

    std::vector<double> recover_ms;
    for (int i = 0; i < replugs; ++i) {
        PtpipSim& sim = h.sim(static_cast<size_t>(i % kCameras));
        std::string serial = RigHarness::serial_of(static_cast<size_t>(i % kCameras));
        sim.kill9();
        auto off = h.wait_for(
            h.base() + "/camera/" + serial + "/availability",
            [](const Received& m) { return m.payload == "offline"; }, 10s);
        if (off.topic.empty()) throw std::runtime_error("unplugged camera not reported offline");
        std::this_thread::sleep_for(200ms);
        h.clear_received();
        sim.start();
        auto back = std::chrono::steady_clock::now();
        for (;;) {
            json r = request(h, "capture", {{"camera", serial}});
            if (r["status"] == "ok" && r["data"].value("count", 0) == 1) break;
            if (std::chrono::steady_clock::now() - back > 30s)
                throw std::runtime_error("no capture 30 s after replug");
            std::this_thread::sleep_for(20ms);
        }
        recover_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - back)
                .count());
    }
    double rworst = *std::max_element(recover_ms.begin(), recover_ms.end());
    std::printf(
        "replug: return -> first successful capture, %d replugs: p50 %.0f ms, max %.0f ms (goal < "
        "5000 ms)\n",
        replugs, percentile(recover_ms, 0.5), rworst);
    bool missed = p95 >= 5.0 || rworst >= 5000;
    return missed ? 3 : 0;
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
