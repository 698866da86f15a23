// Benchmarks for the capture -> spool -> upload pipeline, each measured side by side in
// one run against the real daemons, broker and the PTP/IP camera simulator:
//   1. overlap: photos/s with capture delay C and upload time U, against the ideal
//      1/max(C,U), beside a sequential run (capture, wait for upload, repeat) of the same rig;
//      then U = C/2, U = C and U = 2C side by side, each with one body on the link at a time
//      (upload.parallel_bodies: false, the default) and with parallel bodies (the scheduling
//      before the link gate): photos/s against the N-photo bound N/(N*max(C,U)+min(C,U)) and
//      the first photo's `done` (from the request) against C + U;
//   2. agent vs. gphoto2 CLI: captures/s of the agent (one count=N request, and N sequential
//      count=1 requests) vs. one `gphoto2` process per shot, and vs. the bare libgphoto2
//      loop in this process (the camera's physical limit); PHOTORIG_TEST_SIM=sim2 runs all of
//      them against the second simulator (tests/ptpip-sim2);
//   3. peak RSS of rig-agent and rig-uploader while handling N photos of 8 MB.
// --quick runs smaller sizes (CI); the full run is what the closing notes quote. A second
// argument (overlap, bound, cli, rss) runs that benchmark alone.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bare_gphoto_loop.h"
#include "camera/camera.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Looks every 1 ms: the harness's default 20 ms step quantised a 50-photo burst's rate
// (300, 341, 396/s: 20 ms steps of ~150 ms).
bool response_ok(RigHarness& h, const std::string& txn, std::chrono::milliseconds timeout) {
    auto r = h.wait_for(
        h.base() + "/response/capture",
        [&](const Received& m) {
            json j = json::parse(m.payload, nullptr, false);
            return j.is_object() && j["transaction"] == txn;
        },
        timeout, 1ms);
    return !r.topic.empty() && json::parse(r.payload)["status"] == "ok";
}

size_t done_count(RigHarness& h) {
    size_t n = 0;
    for (const auto& m : h.received(h.base() + "/upload/events")) {
        json j = json::parse(m.payload, nullptr, false);
        if (j.is_object() && j["type"] == "done") ++n;
    }
    return n;
}

long vm_hwm_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

int bench_overlap(bool quick, bool* pass) {
    const int photos = 30;
    const int capture_ms = quick ? 200 : 300;
    const int image = 2 * 1000 * 1000;
    const int upload_ms = quick ? 250 : 350;
    HarnessOptions o;
    o.capture_delay_ms = capture_ms;
    o.image_size = image;
    // The uploader's link carries one photo per U: a bandwidth cap of size/U shared by all
    // its transfers. Concurrency is the product default (2), so a photo's finishing work
    // (fsync, journal, events) overlaps the next one's bytes, as it would on a real link.
    o.concurrency = 2;
    o.bandwidth_limit = static_cast<uint64_t>(image) * 1000 / upload_ms;
    RigHarness h(o);
    h.start_all();
    // Warm-up shot so session set-up is not counted.
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"warm"})");
    if (!response_ok(h, "warm", 30s) || !wait_until([&] { return done_count(h) >= 1; }, 30s))
        return 1;

    // Sequential: what a shell loop of `capture; upload` achieves.
    const int seq_photos = quick ? 5 : 10;
    auto t0 = Clock::now();
    for (int i = 0; i < seq_photos; ++i) {
        size_t before = done_count(h);
        std::string txn = "seq" + std::to_string(i);
        h.pub_cli(h.base() + "/request/capture", "{\"transaction\":\"" + txn + "\"}");
        if (!response_ok(h, txn, 30s) ||
            !wait_until([&] { return done_count(h) > before; }, 30s, 2ms))
            return 1;
    }
    double seq_rate = seq_photos / seconds_since(t0);

    // Overlapped: one request for 30 photos; the uploader works while the camera shoots.
    size_t before = done_count(h);
    t0 = Clock::now();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"overlap","count":30})");
    if (!wait_until([&] { return done_count(h) >= before + photos; }, 120s, 2ms)) return 1;
    double elapsed = seconds_since(t0);
    double rate = photos / elapsed;
    double ideal = 1000.0 / std::max(capture_ms, upload_ms);
    double sequential_ideal = 1000.0 / (capture_ms + upload_ms);
    double ratio = rate / ideal;
    std::printf("overlap: C=%d ms U=%d ms, %d photos of %d bytes in %.2f s\n", capture_ms,
                upload_ms, photos, image, elapsed);
    std::printf(
        "overlap: achieved %.3f photos/s; ideal 1/max(C,U) = %.3f -> ratio %.3f (goal >= 0.95)\n",
        rate, ideal, ratio);
    std::printf(
        "overlap: sequential measured %.3f photos/s (1/(C+U) = %.3f); overlap speed-up %.2fx\n",
        seq_rate, sequential_ideal, rate / seq_rate);
    *pass = *pass && ratio >= 0.95;
    return 0;
}

// One overlapped run of `photos` photos on a fresh rig: capture delay C, a link (the
// uploader's own bandwidth limit) that carries one photo per U, concurrency 2.
struct OverlapRun {
    double elapsed = -1;     // s, from the request to the last `done`
    double first_done = -1;  // s, from the request to the first `done`
    double capture_s = -1;   // the camera's measured cycle: captured_at spacing of the jobs
};

// The camera's cycle over the run: the spread of the upload jobs' captured_at_ms / (n - 1).
double capture_cycle_s(RigHarness& h) {
    int64_t first = INT64_MAX, last = INT64_MIN;
    int n = 0;
    for (const auto& m : h.received(h.base() + "/upload/jobs")) {
        json j = json::parse(m.payload, nullptr, false);
        if (!j.is_object() || !j.contains("captured_at_ms")) continue;
        int64_t at = j["captured_at_ms"].get<int64_t>();
        first = std::min(first, at);
        last = std::max(last, at);
        ++n;
    }
    return n < 2 ? -1 : static_cast<double>(last - first) / 1000.0 / (n - 1);
}

OverlapRun run_overlap(int capture_ms, int upload_ms, int photos, bool parallel_bodies) {
    const int image = 2 * 1000 * 1000;
    HarnessOptions o;
    o.capture_delay_ms = capture_ms;
    o.image_size = image;
    o.concurrency = 2;
    o.bandwidth_limit = static_cast<uint64_t>(image) * 1000 / upload_ms;
    o.upload_yaml =
        std::string("  parallel_bodies: ") + (parallel_bodies ? "true" : "false") + "\n";
    RigHarness h(o);
    h.start_all();
    OverlapRun run;
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"warm"})");
    if (!response_ok(h, "warm", 30s) || !wait_until([&] { return done_count(h) >= 1; }, 30s))
        return run;
    h.clear_received();  // only this run's jobs and events from here on
    const size_t before = done_count(h);
    auto t0 = Clock::now();
    h.pub_cli(h.base() + "/request/capture",
              "{\"transaction\":\"run\",\"count\":" + std::to_string(photos) + "}");
    if (!wait_until([&] { return done_count(h) >= before + 1; }, 60s, 1ms)) return run;
    run.first_done = seconds_since(t0);
    if (!wait_until([&] { return done_count(h) >= before + photos; }, 120s, 2ms)) return run;
    run.elapsed = seconds_since(t0);
    run.capture_s = capture_cycle_s(h);
    return run;
}

// One row of the bound table. C is the camera's measured cycle (the configured capture delay
// plus its trigger, events and download), since no upload scheduling can beat it; U is the
// link's time for one photo's bytes (size / cap). Goals (one body at a time only): >= 0.98
// of the bound, and the first `done` within 1.2 (C + U) of the request.
bool print_bound_row(const char* label, bool parallel, int photos, double u,
                     const OverlapRun& run) {
    const double c = run.capture_s;
    const double bound = photos / (photos * std::max(c, u) + std::min(c, u));
    const double ratio = photos / run.elapsed / bound;
    const double first_vs = run.first_done / (c + u);
    std::printf("  U=%-4s %-16s %6.0f %7.3f %8.3f s %7.3f s %6.2f\n", label,
                parallel ? "parallel(before)" : "one at a time", c * 1000, ratio, run.first_done,
                c + u, first_vs);
    return parallel || (ratio >= 0.98 && first_vs <= 1.2);
}

// U = C/2, C and 2C, each with parallel bodies (the scheduling before the link gate) and
// with one body on the link at a time (upload.parallel_bodies: false, the default). C is
// first measured on a fast link, so that U = C really is a tie (the worst case for sharing).
int bench_overlap_bound(bool quick, bool* pass) {
    const int capture_ms = quick ? 200 : 300;
    const int photos = quick ? 12 : 30;
    const double measured = run_overlap(capture_ms, capture_ms / 4, 6, false).capture_s;
    if (measured <= 0) return 1;
    const int c_ms = static_cast<int>(measured * 1000 + 0.5);
    std::printf(
        "overlap vs. the %d-photo bound N/(N*max(C,U)+min(C,U)); capture delay %d ms, "
        "camera cycle C %d ms, concurrency 2; goals (one at a time): ratio >= 0.98, "
        "first done <= 1.2 (C+U)\n  %-6s %-16s %6s %7s %10s %9s %6s\n",
        photos, capture_ms, c_ms, "U", "bodies", "C ms", "ratio", "1st done", "C+U", "ratio");
    const std::pair<const char*, int> cases[] = {{"C/2", c_ms / 2}, {"C", c_ms}, {"2C", 2 * c_ms}};
    for (const auto& [label, upload_ms] : cases) {
        for (bool parallel : {true, false}) {
            OverlapRun run = run_overlap(capture_ms, upload_ms, photos, parallel);
            if (run.elapsed < 0 || run.capture_s <= 0) return 1;
            bool met = print_bound_row(label, parallel, photos, upload_ms / 1000.0, run);
            *pass = *pass && met;
        }
    }
    return 0;
}

// Captures/s of `gphoto2 --capture-image-and-download`, one process (and session) per shot,
// as the shell loops photorig replaces run it; returns -1 when a shot failed.
double cli_rate(const std::string& port, int shots) {
    TempDir dir("photorig-cli");
    const std::string home = dir.path();
    auto t0 = Clock::now();
    for (int i = 0; i < shots; ++i) {
        auto r = run_command(
            {"gphoto2", "--port", port, "--camera", "PTP/IP Camera", "--capture-image-and-download",
             "--force-overwrite", "--filename", dir.path() + "/shot" + std::to_string(i) + ".jpg"},
            30s, {"HOME=" + home});
        if (r.exit_code != 0) {
            std::fprintf(stderr, "gphoto2 failed: %s\n", r.output.c_str());
            return -1;
        }
    }
    double rate = shots / seconds_since(t0);
    size_t downloaded = 0;  // the CLI exits 0 even when a capture failed: count the files
    for (const auto& f : list_files(dir.path())) downloaded += f.find("/shot") != std::string::npos;
    return downloaded == static_cast<size_t>(shots) ? rate : -1;
}

// Captures/s of libgphoto2 alone in this process (trigger, wait, download to memory, delete):
// the physical limit of the camera and library, with nothing of photorig around it. With
// `hexdumps` libgphoto2 formats its hex dump of every packet as the stock library does; without,
// it skips them as rig-agent does (camera/gphoto_hexdump.cpp), which is the library's real limit.
double bare_library_rate(const std::string& port, int shots, bool hexdumps) {
    TempDir home("photorig-bare");
    photorig::camera::set_gphoto_hexdumps(hexdumps);
    auto r = photorig::bench::bare_gphoto_loop(port, "PTP/IP Camera", home.path(), shots);
    photorig::camera::set_gphoto_hexdumps(false);
    if (!r.error.empty()) {
        std::fprintf(stderr, "bare libgphoto2 loop: %s\n", r.error.c_str());
        return -1;
    }
    return r.shots / r.seconds;
}

// Separate count=1 requests, each sent when the previous one was answered: what a dashboard
// button or a turntable script does. Sent and answered on one open connection, as Home
// Assistant or Node-RED would (not a mosquitto_pub process each), and woken by the response
// itself rather than by polling. Returns captures/s, or -1 when a request failed.
double sequential_requests_rate(RigHarness& h, int shots) {
    photorig::MessageQueue<photorig::mqtt::Event> events;
    auto client = h.connect_as("photorig-dashboard", "bench-sequential", events);
    client->set_subscriptions({{h.base() + "/response/capture", 1}});
    auto answered = [&](const std::string& txn) {
        const auto deadline = Clock::now() + 30s;
        while (Clock::now() < deadline) {
            auto e = events.pop_for(100ms);
            if (!e || e->kind != photorig::mqtt::Event::Kind::message) continue;
            json j = json::parse(e->message.payload, nullptr, false);
            if (j.is_object() && j["transaction"] == txn) return j["status"] == "ok";
        }
        return false;
    };
    auto request = [&](const std::string& txn) {
        photorig::mqtt::Message m{
            h.base() + "/request/capture", "{\"transaction\":\"" + txn + "\"}", 1, false, "", ""};
        return client->publish(m, false, 5s).has_value() && answered(txn);
    };
    if (!request("sequential-warm")) return -1;
    std::vector<double> ms;
    auto t0 = Clock::now();
    for (int i = 0; i < shots; ++i) {
        auto r0 = Clock::now();
        if (!request("one" + std::to_string(i))) return -1;
        ms.push_back(seconds_since(r0) * 1000);
    }
    const double rate = shots / seconds_since(t0);
    std::sort(ms.begin(), ms.end());
    std::printf(
        "sequential count=1 requests, request -> response: min %.2f, p50 %.2f, max %.2f ms\n",
        ms.front(), ms[ms.size() / 2], ms.back());
    return rate;
}

// The rig's telemetry once its photos_total reaches `photos` (telemetry_interval_s: 1).
json telemetry_after(RigHarness& h, uint64_t photos) {
    auto m = h.wait_for(
        h.base() + "/telemetry",
        [&](const Received& r) {
            json j = json::parse(r.payload, nullptr, false);
            return j.is_object() && j.value("photos_total", uint64_t{0}) >= photos;
        },
        30s);
    return m.topic.empty() ? json() : json::parse(m.payload);
}

// Where the agent's time per photo went between two telemetry snapshots (ms per photo, per
// stage), as one printable line; the stages overlap (the camera shoots the next photo while
// the last one is committed and published), so they add up to more than the time per photo.
std::string stage_breakdown(const json& before, const json& after) {
    static const char* const kStages[] = {"trigger",       "event_wait", "download", "hash",
                                          "camera_delete", "commit",     "exif",     "sidecar",
                                          "dir_sync",      "publish"};
    double photos = after.value("photos_total", 0.0) - before.value("photos_total", 0.0);
    std::string line;
    char buf[96];
    for (const char* stage : kStages) {
        std::string key = std::string("stage_") + stage + "_us_total";
        double us = after.value(key, 0.0) - before.value(key, 0.0);
        std::snprintf(buf, sizeof buf, "%s%s %.3f", line.empty() ? "" : ", ", stage,
                      photos > 0 ? us / photos / 1000.0 : 0.0);
        line += buf;
    }
    return line + " (ms per photo)";
}

// The camera thread's share of the time between two photos (`rate` photos/s): its stages
// (trigger, events, download, delete) against the period, the rest being the wait for its
// next order; and how many shots were handed on (docs/interface.md, telemetry).
std::string camera_thread_line(const json& before, const json& after, double rate) {
    auto delta = [&](const char* key) { return after.value(key, 0.0) - before.value(key, 0.0); };
    const double photos = delta("photos_total");
    if (photos <= 0 || rate <= 0) return "no photos";
    const double busy_ms =
        (delta("stage_trigger_us_total") + delta("stage_event_wait_us_total") +
         delta("stage_download_us_total") + delta("stage_camera_delete_us_total")) /
        photos / 1000.0;
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "busy %.3f of %.3f ms per photo (%.0f%%); shots handed on: %.0f of %.0f; "
                  "directory fsyncs: %.0f",
                  busy_ms, 1000.0 / rate, 100.0 * busy_ms * rate / 1000.0,
                  delta("shots_handed_on_total"), photos, delta("spool_dir_fsyncs_total"));
    return buf;
}

// Goals printed as met/MISSED but not enforced (timing on a loaded machine varies too much
// to fail a run on them): the summary line counts them, so it never reads "all goals met"
// above a MISSED line.
int g_reported_goals_missed = 0;

int bench_agent_vs_cli(bool quick, bool* pass) {
    const int agent_shots = quick ? 50 : 200;
    const int sequential_shots = quick ? 20 : 100;
    const int cli_shots = quick ? 5 : 20;
    HarnessOptions o;
    o.image_size = 200000;
    o.top_yaml = "telemetry_interval_s: 1\n";
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"warm"})");
    if (!response_ok(h, "warm", 30s)) return 1;
    // Snapshots from telemetry sent after a response, so every stage of its photos counts.
    h.clear_received();
    json before = telemetry_after(h, 1);
    auto t0 = Clock::now();
    h.pub_cli(h.base() + "/request/capture",
              "{\"transaction\":\"burst\",\"count\":" + std::to_string(agent_shots) + "}");
    if (!response_ok(h, "burst", 120s)) return 1;
    double agent_rate = agent_shots / seconds_since(t0);
    h.clear_received();
    json after = telemetry_after(h, 1 + agent_shots);
    if (before.is_null() || after.is_null()) return 1;
    std::printf("agent per-photo stages, count=%d burst: %s\n", agent_shots,
                stage_breakdown(before, after).c_str());
    std::printf("agent camera thread, count=%d burst: %s\n", agent_shots,
                camera_thread_line(before, after, agent_rate).c_str());

    double sequential_rate = sequential_requests_rate(h, sequential_shots);
    if (sequential_rate <= 0) return 1;
    // Its warm-up request's photo included: one of sequential_shots + 1.
    h.clear_received();
    json after_sequential = telemetry_after(h, 2 + agent_shots + sequential_shots);
    if (after_sequential.is_null()) return 1;
    std::printf("agent per-photo stages, %d sequential count=1 requests: %s\n", sequential_shots,
                stage_breakdown(after, after_sequential).c_str());

    // The CLI and the bare library loop, each against its own identical simulator instance.
    // PHOTORIG_TEST_SIM picks the simulator for all three, as it does for the harness's camera.
    const SimKind kind = sim_kind_from_env();
    PtpipSim cli_sim(kind, {"--image-size", "200000", "--serial", "SIM0002"});
    cli_sim.start();
    double cli = cli_rate(cli_sim.port_string(), cli_shots);
    PtpipSim bare_sim(kind, {"--image-size", "200000", "--serial", "SIM0003"});
    bare_sim.start();
    const double stock = bare_library_rate(bare_sim.port_string(), agent_shots, true);
    const double limit = bare_library_rate(bare_sim.port_string(), agent_shots, false);
    if (cli <= 0 || limit <= 0 || stock <= 0) return 1;
    std::printf(
        "agent vs cli (camera simulator: %s): agent %.1f captures/s (one count=%d request; spooled "
        "+ hashed + published), %.1f captures/s (%d sequential count=1 requests); gphoto2 CLI "
        "%.1f captures/s (%d processes); bare libgphoto2 loop %.1f captures/s (%.1f with the "
        "stock library's packet hex dumps%s)\n",
        sim_kind_name(kind), agent_rate, agent_shots, sequential_rate, sequential_shots, cli,
        cli_shots, limit, stock,
        photorig::camera::gphoto_hexdumps_interposed() ? "" : "; NOT skipped: not interposed");
    const double batch_cli = agent_rate / cli, sequential_cli = sequential_rate / cli;
    const double batch_limit = agent_rate / limit, sequential_limit = sequential_rate / limit;
    auto verdict = [](bool met) {
        if (!met) ++g_reported_goals_missed;
        return met ? "met" : "MISSED";
    };
    std::printf("goal agent/CLI >= 10x:   batch %.1fx %s, sequential %.1fx %s\n", batch_cli,
                verdict(batch_cli >= 10), sequential_cli, verdict(sequential_cli >= 10));
    std::printf(
        "goal agent/limit >= 0.7: batch %.2f %s; sequential %.2f (reported; a count=1 request "
        "also waits for its photo's fsyncs and its response's round trip); against the stock "
        "library's loop: batch %.2f, sequential %.2f\n",
        batch_limit, verdict(batch_limit >= 0.7), sequential_limit, agent_rate / stock,
        sequential_rate / stock);
    // The batch CLI ratio is enforced; the others are printed as goals (issue 12) but timing
    // on a loaded CI machine varies too much to fail a run on them.
    *pass = *pass && batch_cli >= 10.0;
    return 0;
}

int bench_rss(bool quick, bool* pass) {
    const int photos = quick ? 20 : 100;
    HarnessOptions o;
    o.image_size = 8 * 1000 * 1000;
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              "{\"transaction\":\"rss\",\"count\":" + std::to_string(photos) + "}");
    if (!response_ok(h, "rss", 300s)) return 1;
    if (!wait_until([&] { return done_count(h) >= static_cast<size_t>(photos); }, 300s)) return 1;
    long agent_kb = vm_hwm_kb(h.agent().pid());
    long uploader_kb = vm_hwm_kb(h.uploader().pid());
    std::printf(
        "peak RSS over %d photos of 8 MB: rig-agent %.1f MB, rig-uploader %.1f MB (goal < 40 MB "
        "each)\n",
        photos, agent_kb / 1024.0, uploader_kb / 1024.0);
    *pass =
        *pass && agent_kb > 0 && agent_kb < 40 * 1024 && uploader_kb > 0 && uploader_kb < 40 * 1024;
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    // An optional second argument runs one benchmark: overlap, bound, cli or rss.
    auto wanted = [&](const char* name) { return argc < 3 || std::strcmp(argv[2], name) == 0; };
    bool pass = true;
    const char* broker = std::getenv("PHOTORIG_BENCH_BROKER");
    std::printf("pipeline benchmarks: camera simulator %s, broker %s\n",
                sim_kind_name(sim_kind_from_env()),
                broker && std::string(broker) == "stock" ? "stock tuning" : "photorig's config");
    int rc = 0;
    try {
        if (wanted("overlap")) rc |= bench_overlap(quick, &pass);
        if (wanted("bound")) rc |= bench_overlap_bound(quick, &pass);
        if (wanted("cli")) rc |= bench_agent_vs_cli(quick, &pass);
        if (wanted("rss")) rc |= bench_rss(quick, &pass);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    if (rc != 0) {
        std::fprintf(stderr, "benchmark could not complete\n");
        return 1;
    }
    if (pass && g_reported_goals_missed > 0)
        std::printf("pipeline benchmarks: enforced goals met; %d reported goal(s) MISSED above\n",
                    g_reported_goals_missed);
    else
        std::printf("pipeline benchmarks: %s\n", pass ? "all goals met" : "SOME GOALS MISSED");
    return pass ? 0 : 3;
}
