// Upload throughput of the real rig-uploader (webdav target, default concurrency 2) against
// a throttled loopback WebDAV server (tests/fakes/throttled_webdav.py: PUT bodies read at
// no more than R bytes/s over all connections), beside `rclone copy` of the same files to
// the same server in the same run.
//
//   ratio = (total bytes / R) / elapsed: 1.0 means the link never idled.
//   ours: elapsed from the first job published on <base>/upload/jobs (as the agent does)
//         to the last `done` event; the uploader is already running, as it is on a rig.
//   rclone: elapsed on the server's clock from rclone's first request to its last response
//         (so its process start-up is not counted against it); the wall time is printed too.
// Goal: ours >= 0.98 and no worse than rclone's - 0.005. Exit 3 when missed.
// --quick: 12 files of 4 MiB at 20 MB/s (CI); --full: 40 files of 8 MiB at 40 MB/s.
// PHOTORIG_BENCH_LOG_DIR=DIR keeps the server's request log and the uploader's log there.
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "bench/bench_files.h"
#include "harness/rig_harness.h"
#include "protocol/wire.h"
#include "support/storage_peers.h"
#include "targets/http.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace http = photorig::targets::http;

namespace {

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// Server-side span of one top-level folder: last response end - first request start.
double server_span(const json& stats, const std::string& folder) {
    if (!stats.is_object() || !stats.contains(folder)) return -1;
    return stats[folder]["last_end"].get<double>() - stats[folder]["first_start"].get<double>();
}

std::string request_counts(const json& stats, const std::string& folder) {
    if (!stats.is_object() || !stats.contains(folder)) return "?";
    std::string out;
    for (const auto& [method, n] : stats[folder]["requests"].items())
        out += (out.empty() ? "" : " ") + method + "=" + std::to_string(n.get<int>());
    return out;
}

// Where a client's time went, from the server's request log (one "start end METHOD path
// bytes" line per request, on CLOCK_MONOTONIC like steady_clock): the wait before its first
// request, the link's idle gaps between PUT bodies, and the time after its last PUT.
struct Timeline {
    double first_request = 0, head = 0, tail = 0, idle = 0;
    int gaps = 0;
};

Timeline timeline(const std::string& log, const std::string& folder, double t0, double t_end) {
    std::vector<std::pair<double, double>> puts;
    double first = -1;
    std::istringstream in(log);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream l(line);
        double s = 0, e = 0;
        std::string method, path;
        if (!(l >> s >> e >> method >> path) || path.rfind("/" + folder + "/", 0) != 0) continue;
        if (first < 0 || s < first) first = s;
        if (method == "PUT") puts.emplace_back(s, e);
    }
    Timeline t;
    if (puts.empty()) return t;
    std::sort(puts.begin(), puts.end());
    double busy_until = puts[0].second;
    for (const auto& [s, e] : puts) {
        if (s > busy_until) {
            t.idle += s - busy_until;
            ++t.gaps;
        }
        busy_until = std::max(busy_until, e);
    }
    t.first_request = first - (t0 > 0 ? t0 : first);
    t.head = puts[0].first - (t0 > 0 ? t0 : first);
    t.tail = (t_end > 0 ? t_end : busy_until) - busy_until;
    return t;
}

double monotonic_s(Clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// The server must be far faster than its cap, or the benchmark measures Python, not the
// client: one unthrottled instance takes a 64 MiB PUT first. Returns bytes/s, or -1.
double server_headroom(const std::string& dir) {
    ThrottledWebdavPeer free_server(dir + "/headroom", dir + "/headroom.log", 0);
    if (!free_server.start().empty()) return -1;
    const uint64_t size = 64ull << 20;
    const std::string file = dir + "/headroom.bin";
    photorig::bench::write_random_file(file, size, 99);
    http::Request put;
    put.method = "PUT";
    put.url = free_server.url() + "headroom.bin";
    put.body_file = file;
    put.body_length = size;
    auto t0 = Clock::now();
    auto resp = http::perform(put);
    double elapsed = seconds_since(t0);
    ::unlink(file.c_str());
    if (!resp || resp->status >= 300) return -1;
    return size / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = !(argc > 1 && std::strcmp(argv[1], "--full") == 0);
    const int files = quick ? 12 : 40;
    const uint64_t file_size = quick ? 4ull << 20 : 8ull << 20;
    const uint64_t rate = quick ? 20000000 : 40000000;
    const uint64_t total = files * file_size;
    const double ideal = static_cast<double>(total) / rate;
    try {
        TempDir dir("photorig-bench-tput");
        double headroom = server_headroom(dir.path());
        std::printf("throughput: server unthrottled %.0f MB/s, cap %.0f MB/s\n", headroom / 1e6,
                    rate / 1e6);
        if (headroom < 3.0 * rate) {
            std::fprintf(stderr,
                         "the WebDAV server cannot run well above its cap; the figures would be "
                         "meaningless\n");
            return 1;
        }

        ThrottledWebdavPeer dav(dir.file("dav"), dir.file("dav.log"), rate);
        if (auto why = dav.start(); !why.empty()) throw std::runtime_error(why);
        HarnessOptions o;
        o.upload_target = "webdav";
        o.concurrency = 2;  // the product default
        o.upload_yaml = "  webdav:\n    url: " + dav.url("photos") + "\n";
        RigHarness h(o);
        h.start_all();
        // The jobs come from this benchmark (below), published exactly as the agent does; a
        // running agent's spool reconciler would only add noise. SIGKILL: its orderly stop
        // takes seconds and is not what is measured.
        h.agent().kill9();

        // The same bytes for both clients: generated once, hard-linked into the spool (the
        // uploader deletes its links after uploading).
        const std::string src = h.root() + "/src";
        const std::string spool = real_path(h.spool_dir()) + "/tput";
        ::mkdir(src.c_str(), 0755);
        ::mkdir(spool.c_str(), 0755);
        std::vector<photorig::protocol::UploadJob> jobs;
        const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
        for (int i = 0; i < files; ++i) {
            char name[32], capture[40];
            std::snprintf(name, sizeof name, "IMG_%04d.JPG", i);
            std::snprintf(capture, sizeof capture, "%08x0000400080000000%012x", 0xbe7c0000 + i, i);
            photorig::protocol::UploadJob job;
            job.sha256 = photorig::bench::write_random_file(src + "/" + name, file_size,
                                                            static_cast<uint64_t>(i));
            job.path = spool + "/" + name;
            if (::link((src + "/" + name).c_str(), job.path.c_str()) != 0)
                throw std::runtime_error("link into the spool failed: " + job.path);
            job.job_id = std::string("tput-") + capture;
            job.capture_id = capture;
            job.rig_id = "rig1";
            job.batch = "tput";
            job.remote_name = name;
            job.mime = "image/jpeg";
            job.size = file_size;
            job.captured_at_ms = now_ms;
            jobs.push_back(job);
        }

        // (b) first, so that ours runs against a server that has already served a run.
        auto t0 = Clock::now();
        auto rc = run_command(
            {"rclone", "copy", src, ":webdav,url='" + dav.url() + "',vendor=other:rclone/tput",
             "--transfers", "2"},
            300s, {"RCLONE_CONFIG=" + dir.file("rclone.conf")});
        double rclone_wall = seconds_since(t0);
        if (rc.exit_code != 0) throw std::runtime_error("rclone copy failed: " + rc.output);
        json stats = dav.stats();
        double rclone_span = server_span(stats, "rclone");
        if (stats["rclone"].value("put_bytes", uint64_t{0}) != total)
            throw std::runtime_error("rclone did not send every byte: " + stats.dump());

        // The server's copy of rclone's files is still being written back; on a rig the
        // server is another machine, so that write-back must not land on the uploader's
        // first journal commit (an fsync here also flushes other files' dirty data: seen
        // as 130 ms before the first request).
        ::sync();

        // (a) ours: every job published back to back, as a burst of captures would be.
        photorig::MessageQueue<photorig::mqtt::Event> events;
        auto publisher_client = h.connect_as("photorig-agent", "bench-jobs-publisher", events);
        photorig::mqtt::Client& publisher = *publisher_client;
        auto done_count = [&] {
            size_t n = 0;
            for (const auto& m : h.received(h.base() + "/upload/events")) {
                json e = json::parse(m.payload, nullptr, false);
                n += e.is_object() && e.value("type", "") == "done" &&
                     e.value("batch", "") == "tput";
            }
            return n;
        };
        t0 = Clock::now();
        for (const auto& job : jobs) {
            auto st =
                publisher.publish({h.base() + "/upload/jobs",
                                   photorig::protocol::upload_job_json(job), 1, false, "", ""},
                                  false, 5s);
            if (!st) throw std::runtime_error("publish: " + st.error().describe());
        }
        if (!wait_until([&] { return done_count() >= jobs.size(); }, 300s, 1ms))
            throw std::runtime_error("not every upload finished:\n" + h.uploader().log());
        double ours = seconds_since(t0);
        publisher.disconnect(1s);
        stats = dav.stats();
        double ours_span = server_span(stats, "photos");
        if (stats["photos"].value("put_bytes", uint64_t{0}) != total)
            std::printf(
                "throughput: note: the uploader sent %llu body bytes for %llu (retries?)\n",
                static_cast<unsigned long long>(stats["photos"].value("put_bytes", uint64_t{0})),
                static_cast<unsigned long long>(total));
        for (const auto& job : jobs) {
            auto sha =
                photorig::Sha256::of_file(dav.root() + "/photos/rig1/tput/" + job.remote_name);
            if (!sha || *sha != job.sha256)
                throw std::runtime_error("wrong bytes on the server: " + job.remote_name);
        }

        const double ours_ratio = ideal / ours;
        const double rclone_ratio = ideal / rclone_span;
        std::printf(
            "throughput: %d files of %.1f MiB = %.1f MB through a %.0f MB/s link: ideal %.3f s\n",
            files, file_size / 1048576.0, total / 1e6, rate / 1e6, ideal);
        std::printf("throughput: %-28s %8s %8s   %s\n", "", "elapsed", "ratio", "server requests");
        std::printf("throughput: %-28s %7.3fs %8.3f   %s (server span %.3f s)\n",
                    "rig-uploader (concurrency 2)", ours, ours_ratio,
                    request_counts(stats, "photos").c_str(), ours_span);
        std::printf("throughput: %-28s %7.3fs %8.3f   %s (wall incl. start-up %.3f s)\n",
                    "rclone copy --transfers 2", rclone_span, rclone_ratio,
                    request_counts(stats, "rclone").c_str(), rclone_wall);
        const std::string log = read_file(dir.file("dav.log"));
        Timeline to = timeline(log, "photos", monotonic_s(t0), monotonic_s(t0) + ours);
        Timeline tr = timeline(log, "rclone", -1, -1);
        std::printf(
            "throughput: where the rest went: rig-uploader's first request %.1f ms and first PUT "
            "%.1f ms after the first job was published, link idle %.1f ms in %d gaps, %.1f ms "
            "from its last PUT to the last done event; rclone's first PUT %.1f ms after its first "
            "request, link idle %.1f ms in %d gaps\n",
            to.first_request * 1e3, to.head * 1e3, to.idle * 1e3, to.gaps, to.tail * 1e3,
            tr.head * 1e3, tr.idle * 1e3, tr.gaps);
        const bool pass = ours_ratio >= 0.98 && ours_ratio >= rclone_ratio - 0.005;
        std::printf(
            "RESULT upload throughput: rig-uploader %.3f of the link, rclone %.3f (goal >= 0.98 "
            "and >= "
            "rclone - 0.005): %s\n",
            ours_ratio, rclone_ratio, pass ? "met" : "MISSED");
        h.uploader().stop();
        // For a closer look at a miss: the server's request timeline and the uploader's log.
        if (const char* keep = std::getenv("PHOTORIG_BENCH_LOG_DIR")) {
            write_file(std::string(keep) + "/throttled_webdav.log", read_file(dir.file("dav.log")));
            write_file(std::string(keep) + "/rig-uploader.log", h.uploader().log());
            write_file(std::string(keep) + "/t0", std::to_string(monotonic_s(t0)) + "\n");
        }
        return pass ? 0 : 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
}
