// How much a crash costs a large Google Drive upload: a 100 MB photo goes from the real
// rig-agent through the real rig-uploader to the Drive fake (tests/fakes/gdrive_fake.py),
//   1. uninterrupted (the baseline time),
//   2. interrupted K times by SIGKILL of rig-uploader at random points (quick: 3, full: 8),
//      each followed by a restart that resumes the journaled session,
//   3. interrupted K times by a connection the fake cuts in the middle of a chunk (the
//      uploader survives and asks the session where it stands).
// For 2 and 3 it reports the bytes the fake read twice per interruption (mean and max, also
// as a fraction of the chunk size) and the total time against the baseline.
// Goal: fewer than 2 chunks re-sent per interruption (exit 3 when missed).
//
// The fake reads at a fixed rate (80 MB/s) in every run so the runs compare, and keeps
// nothing of a chunk that is cut ("partial_keep": "none"): the worst a server may do, so a
// cut costs everything of its chunk that was read. A SIGKILL on loopback often cuts nothing:
// the kernel still delivers what the dead process had written into its socket buffers (several
// MB), the fake reads that chunk to its end, and the restarted uploader asks the session where
// it stands instead of repeating anything. The dropped-connection run shows what a real cut
// costs.
//
// Re-sent bytes per interruption: the fake counts every body byte it reads (bytes_received,
// over all sessions of the job) and how many it holds (received). At each interruption k,
// once the fake has read what was in flight, excess_k = bytes_received - received; the
// bytes interruption k cost are excess_k - excess_{k-1} (the last one also takes what the
// final stretch re-sent), so they add up to bytes_received - size at the end. After a cut
// connection the uploader carries on at once, so that excess is the smallest sampled until the
// next chunk is stored: exact or a little over, never under.
//
// PHOTORIG_BENCH_SEED=<n> repeats the random kill points.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "harness/rig_harness.h"
#include "support/storage_peers.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* kClientId = "1234-bench.apps.googleusercontent.com";
const char* kClientSecret = "GOCSPX-bench-client-secret";
const char* kRefreshToken = "1//bench-refresh-token";
constexpr uint64_t kSize = 100ull * 1000 * 1000;
constexpr uint64_t kChunk = 8ull * 1024 * 1024;  // upload.gdrive.chunk_size_bytes default
constexpr uint64_t kRate = 80ull * 1000 * 1000;

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Session {
    uint64_t received = 0;        // bytes the fake holds
    uint64_t bytes_received = 0;  // bytes it read, all sessions of the job
    int sessions = 0;
    int drops = 0;  // chunks the fake cut on purpose
    bool finished = false;
};

Session session_of(const GdriveFakePeer& fake, const std::string& job_id) {
    Session out;
    const json stats = fake.stats();
    if (!stats.is_object() || !stats.contains("sessions")) return out;
    for (const auto& [uid, s] : stats["sessions"].items()) {
        if (s.value("job_id", "") != job_id) continue;
        ++out.sessions;
        out.bytes_received += s.value("bytes_received", uint64_t{0});
        // The newest session holds the upload (an expired one would have been replaced).
        out.received = s.value("received", uint64_t{0});
        out.finished = out.finished || !s["file_id"].is_null();
        out.drops += s.value("drops", 0);
    }
    return out;
}

// Waits until the fake has read whatever was in flight when the connection died.
Session settled(const GdriveFakePeer& fake, const std::string& job_id) {
    Session prev = session_of(fake, job_id);
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(50ms);
        Session now = session_of(fake, job_id);
        if (now.bytes_received == prev.bytes_received && now.received == prev.received) return now;
        prev = now;
    }
    return prev;
}

struct Run {
    bool ok = false;
    double seconds = 0;            // capture's upload: started -> done event
    std::vector<uint64_t> resent;  // per interruption
    uint64_t total_resent = 0;
    int sessions = 0;
    bool identical = false;
};

enum class Mode { none, kill, drop };

class Bench {
  public:
    Bench() : dir_("photorig-bench-resume") {}

    bool start() {
        fake_ = std::make_unique<GdriveFakePeer>(dir_.file("drive"), dir_.file("fake.log"),
                                                 kClientId, kClientSecret, kRefreshToken);
        if (auto err = fake_->start(); !err.empty()) {
            std::fprintf(stderr, "Drive fake: %s\n", err.c_str());
            return false;
        }
        if (!fake_->post("/_fake/config", {{"max_send_rate", kRate}}).empty()) return false;
        if (!fake_->post("/_fake/faults", {{"partial_keep", "none"}}).empty()) return false;
        HarnessOptions o;
        o.image_size = static_cast<int>(kSize);
        o.upload_target = "gdrive";
        o.upload_yaml = fake_->upload_yaml(dir_, kChunk);
        h_ = std::make_unique<RigHarness>(o);
        h_->start_all();
        return true;
    }

    // One photo, uploaded while `points` interruptions of kind `mode` happen once the fake
    // holds that many bytes.
    Run run(const std::string& batch, Mode mode, const std::vector<uint64_t>& points) {
        Run r;
        RigHarness& h = *h_;
        h.pub_cli(h.base() + "/request/capture",
                  "{\"transaction\":\"" + batch + "\",\"batch\":\"" + batch + "\"}");
        auto cap = h.wait_for(
            h.base() + "/capture",
            [&](const Received& m) { return parse(m.payload).value("batch", "") == batch; }, 120s);
        if (cap.topic.empty()) {
            std::fprintf(stderr, "no capture for %s\n%s\n", batch.c_str(), h.agent().log().c_str());
            return r;
        }
        const json c = parse(cap.payload);
        const std::string job_id = c.value("capture_id", "");
        auto event = [&](const std::string& type) {
            return h.wait_for(
                h.base() + "/upload/events",
                [&](const Received& m) {
                    json e = parse(m.payload);
                    return e.value("type", "") == type && e.value("job_id", "") == job_id;
                },
                300s);
        };
        if (event("started").topic.empty()) return r;
        const auto t0 = Clock::now();
        uint64_t excess_before = 0, last_read = 0;
        for (uint64_t point : points) {
            // The fake reads byte `point` now (its count of bytes read, less those read twice,
            // tracks the offset inside the chunk in flight), and the upload moved on since the
            // previous interruption (else two would fall on one stretch of bytes).
            Session now;
            bool reached = wait_until(
                [&] {
                    now = session_of(*fake_, job_id);
                    return now.finished ||
                           (now.bytes_received - std::min(now.bytes_received, excess_before) >=
                                point &&
                            now.bytes_received >= last_read + 256 * 1024);
                },
                120s, 2ms);
            if (!reached) {
                std::fprintf(stderr, "upload never reached byte %llu\n",
                             static_cast<unsigned long long>(point));
                return r;
            }
            if (now.finished) {  // points too close to the end for one more interruption
                std::printf("(the upload finished before interruption %zu)\n", r.resent.size() + 1);
                break;
            }
            uint64_t excess = 0;
            if (mode == Mode::kill) {
                h.uploader().kill9();
                // Nothing is sent until the restart: once the fake has read what was in
                // flight, its counts are exact.
                Session s = settled(*fake_, job_id);
                excess = s.bytes_received - std::min(s.bytes_received, s.received);
                last_read = s.bytes_received;
                h.start_uploader();
            } else {
                const int drops_before = now.drops;
                // The next chunk is cut after a random share of its body.
                const uint64_t after = std::uniform_int_distribution<uint64_t>(1, kChunk - 1)(rng_);
                if (!fake_
                         ->post("/_fake/faults",
                                {{"drop_mid_chunk", 1}, {"drop_after_bytes", after}})
                         .empty())
                    return r;
                bool fired = false;
                (void)wait_until(
                    [&] {
                        fired = fake_->stats()["faults_pending"].value("drop_mid_chunk", 0) == 0;
                        return fired || session_of(*fake_, job_id).finished;
                    },
                    60s, 2ms);
                if (!fired) {  // no chunk came after the point: withdraw the fault
                    (void)fake_->post("/_fake/faults", {{"drop_mid_chunk", 0}});
                    std::printf("(the upload finished before interruption %zu)\n",
                                r.resent.size() + 1);
                    break;
                }
                // The uploader carries on at once, so a sample may fall inside a chunk, whose
                // bytes count as read but not yet held: the smallest excess between the cut and
                // the next whole chunk stored after it (a span that includes the status query
                // and a chunk boundary) is the true one.
                // The fault fires when the chunk's PUT arrives, the cut comes later.
                (void)wait_until([&] { return session_of(*fake_, job_id).drops > drops_before; },
                                 30s, 1ms);
                Session s = session_of(*fake_, job_id);
                const uint64_t held_at_cut = s.received;
                excess = UINT64_MAX;
                const auto until = Clock::now() + 30s;
                while (Clock::now() < until) {
                    s = session_of(*fake_, job_id);
                    excess =
                        std::min(excess, s.bytes_received - std::min(s.bytes_received, s.received));
                    last_read = s.bytes_received;
                    if (s.finished || s.received >= held_at_cut + kChunk) break;
                    std::this_thread::sleep_for(1ms);
                }
            }
            r.resent.push_back(excess - std::min(excess, excess_before));
            excess_before = excess;
        }
        auto done = event("done");
        if (done.topic.empty()) {
            std::fprintf(stderr, "upload of %s never finished\n%s\n", batch.c_str(),
                         h.uploader().log().c_str());
            return r;
        }
        r.seconds = seconds_since(t0);
        Session s = session_of(*fake_, job_id);
        r.sessions = s.sessions;
        r.total_resent = s.bytes_received - std::min(s.bytes_received, kSize);
        // What the last stretch re-sent belongs to the last interruption.
        if (!r.resent.empty())
            r.resent.back() += r.total_resent - std::min(r.total_resent, excess_before);
        for (const auto& f : fake_->files()) {
            if (f.contains("appProperties") && f["appProperties"].value("job_id", "") == job_id)
                r.identical = f.value("disk_sha256", "") == c["file"].value("sha256", "x");
        }
        r.ok = true;
        return r;
    }

    std::mt19937_64 rng_;

  private:
    TempDir dir_;
    std::unique_ptr<GdriveFakePeer> fake_;
    std::unique_ptr<RigHarness> h_;
};

void report(const char* what, const Run& base, const Run& r, bool* pass) {
    uint64_t max = 0, sum = 0;
    for (auto b : r.resent) {
        max = std::max(max, b);
        sum += b;
    }
    const double mean = r.resent.empty() ? 0 : static_cast<double>(sum) / r.resent.size();
    std::printf("%s: %zu interruptions; re-sent per interruption:", what, r.resent.size());
    for (auto b : r.resent) std::printf(" %llu", static_cast<unsigned long long>(b));
    std::printf(
        "\n%s: re-sent mean %.0f bytes (%.3f chunks), max %llu bytes (%.3f chunks); "
        "%d upload session(s); %.2f s vs %.2f s uninterrupted (x%.2f); byte-identical: %s\n",
        what, mean, mean / kChunk, static_cast<unsigned long long>(max),
        static_cast<double>(max) / kChunk, r.sessions, r.seconds, base.seconds,
        r.seconds / base.seconds, r.identical ? "yes" : "NO");
    *pass = *pass && max < 2 * kChunk && r.identical && r.sessions == 1;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    const int interruptions = quick ? 3 : 8;
    uint64_t seed = std::random_device{}();
    if (const char* v = std::getenv("PHOTORIG_BENCH_SEED"); v && *v)
        seed = std::strtoull(v, nullptr, 10);
    std::printf(
        "uploader resume benchmark: %llu-byte photo, %llu-byte chunks, fake reading at "
        "%llu B/s, %d interruptions per run, seed %llu (PHOTORIG_BENCH_SEED)\n",
        static_cast<unsigned long long>(kSize), static_cast<unsigned long long>(kChunk),
        static_cast<unsigned long long>(kRate), interruptions,
        static_cast<unsigned long long>(seed));
    bool pass = true;
    try {
        Bench b;
        b.rng_.seed(seed);
        if (!b.start()) return 1;
        auto points = [&] {
            std::vector<uint64_t> p(interruptions);
            for (auto& x : p)
                x = std::uniform_int_distribution<uint64_t>(kSize / 20, kSize - 2 * kChunk)(b.rng_);
            std::sort(p.begin(), p.end());
            return p;
        };
        Run base = b.run("plain", Mode::none, {});
        if (!base.ok || !base.identical) {
            std::fprintf(stderr, "the uninterrupted upload failed\n");
            return 1;
        }
        std::printf("uninterrupted: %.2f s, %llu bytes re-sent\n", base.seconds,
                    static_cast<unsigned long long>(base.total_resent));
        Run killed = b.run("killed", Mode::kill, points());
        if (!killed.ok) return 1;
        report("SIGKILL", base, killed, &pass);
        // A cut is set off when the fake starts reading chunk i, so it hits chunk i + 1 (the
        // next PUT), and is measured until that chunk is stored: two chunks per cut, from a
        // random start. 100 MB in 8 MiB chunks (12) has room for 5 cuts, so the full run
        // makes 5, not 8. Where in its chunk each cut falls is random (drop_after_bytes).
        std::vector<uint64_t> drop_points;
        {
            const uint64_t chunks = (kSize + kChunk - 1) / kChunk;
            const uint64_t k = std::min<uint64_t>(interruptions, (chunks - 2) / 2);
            const uint64_t start =
                std::uniform_int_distribution<uint64_t>(1, chunks - 2 * k - 1)(b.rng_);
            for (uint64_t n = 0; n < k; ++n) drop_points.push_back((start + 2 * n) * kChunk + 1);
        }
        Run dropped = b.run("dropped", Mode::drop, drop_points);
        if (!dropped.ok) return 1;
        report("dropped connection", base, dropped, &pass);

        auto max_of = [](const Run& r) {
            uint64_t m = 0;
            for (auto x : r.resent) m = std::max(m, x);
            return m;
        };
        auto mean_of = [](const Run& r) {
            uint64_t s = 0;
            for (auto x : r.resent) s += x;
            return r.resent.empty() ? 0.0 : static_cast<double>(s) / r.resent.size();
        };
        std::printf(
            "RESULT uploader_resume %s: 100 MB, chunk 8 MiB; SIGKILL x%zu: re-sent/interruption "
            "mean %.2f MB (%.3f chunks) max %.2f MB (%.3f chunks), time %.2f s vs %.2f s "
            "uninterrupted; dropped connection x%zu: mean %.2f MB (%.3f chunks) max %.2f MB "
            "(%.3f chunks), time %.2f s; goal max < 2 chunks: %s\n",
            quick ? "quick" : "full", killed.resent.size(), mean_of(killed) / 1e6,
            mean_of(killed) / kChunk, max_of(killed) / 1e6,
            static_cast<double>(max_of(killed)) / kChunk, killed.seconds, base.seconds,
            dropped.resent.size(), mean_of(dropped) / 1e6, mean_of(dropped) / kChunk,
            max_of(dropped) / 1e6, static_cast<double>(max_of(dropped)) / kChunk, dropped.seconds,
            pass ? "met" : "MISSED");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    return pass ? 0 : 3;
}
