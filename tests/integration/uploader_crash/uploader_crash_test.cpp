// Crash test of the whole upload path to Google Drive: the real rig-agent captures photos of
// random sizes from the PTP/IP simulator, the real rig-uploader sends them to the Drive fake,
// and meanwhile the uploader is killed with SIGKILL at random moments and the fake cuts
// chunks midway and answers 500, 429 and 401. At the end every photo must be on the fake
// exactly once (one file per job, no two files of one name in a folder), byte-identical,
// and the spool must be empty.
//
// Nothing but the product brings a job back after a kill: Paho acknowledges a QoS1 job
// before the uploader has journaled it, so a job in flight when the uploader dies is gone
// from the broker; only the agent's spool reconcile (reoffer_after_s, here 2 s) offers it
// again. The test therefore runs the agent with short reconcile intervals and never
// publishes a job itself.
//
// Default (CI): 30 photos of 1-4 MiB, 3 kills, 6 injected faults, well under a minute.
// PHOTORIG_SOAK=1: 200 photos of 1-30 MiB, 10 kills, 30 faults.
// PHOTORIG_CRASH_SEED=<n> repeats a run's plan (sizes, kill and fault points, fault kinds);
// the seed of every run is printed. Process timing still varies from run to run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/rig_harness.h"
#include "support/storage_peers.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* kClientId = "1234-crash.apps.googleusercontent.com";
const char* kClientSecret = "GOCSPX-crash-client-secret";
const char* kRefreshToken = "1//crash-refresh-token";
constexpr uint64_t kMiB = 1024 * 1024;
const char* kFolderMime = "application/vnd.google-apps.folder";

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

[[maybe_unused]] bool soak() {
    const char* v = std::getenv("PHOTORIG_SOAK");
    return v && std::string(v) == "1";
}

uint64_t seed_from_env() {
    if (const char* v = std::getenv("PHOTORIG_CRASH_SEED"); v && *v)
        return std::strtoull(v, nullptr, 10);
    return (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
}

struct Plan {
    int photos;
    uint64_t min_size, max_size;
    int kills;
    int faults;
    int backlog;  // photos captured but not yet uploaded, at most (bounds the spool's size)
    int kill_delay_max_ms;  // a kill comes this long at most after a transfer started
    std::chrono::seconds deadline;
};

// Job ids (= capture ids) of the done events seen so far.
std::set<std::string> done_jobs(RigHarness& h) {
    std::set<std::string> out;
    for (const auto& m : h.received(h.base() + "/upload/events")) {
        json e = parse(m.payload);
        if (e.is_object() && e.value("type", "") == "done") out.insert(e.value("job_id", ""));
    }
    return out;
}

// True while the fake is in the middle of some upload session (it has read bytes of it, the
// file is not finished): a kill now hits a transfer, not an idle uploader.
bool upload_in_progress(const GdriveFakePeer& fake) {
    const json stats = fake.stats();
    if (!stats.is_object() || !stats.contains("sessions")) return false;
    for (const auto& [id, s] : stats["sessions"].items()) {
        if (s["file_id"].is_null() && s.value("bytes_received", uint64_t{0}) > 0) return true;
    }
    return false;
}

// Drive's file sizes are decimal strings; the fake's own listing may hold numbers.
uint64_t size_of(const json& f) {
    const json& s = f.contains("size") ? f["size"] : json();
    if (s.is_number_unsigned()) return s.get<uint64_t>();
    if (s.is_string()) return std::strtoull(s.get<std::string>().c_str(), nullptr, 10);
    return UINT64_MAX;
}

void run_crash_test(const Plan& plan, bool long_run) {
    const uint64_t seed = seed_from_env();
    std::printf(
        "uploader crash test: seed %llu (PHOTORIG_CRASH_SEED=%llu repeats it), %s run: "
        "%d photos of %llu-%llu bytes, %d kills, %d faults\n",
        static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
        long_run ? "soak" : "short", plan.photos, static_cast<unsigned long long>(plan.min_size),
        static_cast<unsigned long long>(plan.max_size), plan.kills, plan.faults);
    std::fflush(stdout);
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
    std::mt19937_64 rng(seed);

    // The plan, all drawn up front so one seed gives one plan.
    std::vector<uint64_t> sizes(plan.photos);
    for (auto& s : sizes)
        s = std::uniform_int_distribution<uint64_t>(plan.min_size, plan.max_size)(rng);
    // Kills and faults are set off when this many photos are done (then, for kills, at a
    // random moment of a transfer): spread over the first 60% of the run. The loop sets off
    // at most one kill and one fault per photo it captures, so the last 40% of the captures
    // leave room for any that fall due together (when points ran to the end, uploads could
    // finish before the last kills were made).
    auto points = [&](int n) {
        std::vector<int> p(n);
        for (auto& x : p) x = std::uniform_int_distribution<int>(0, plan.photos * 6 / 10)(rng);
        std::sort(p.begin(), p.end());
        return p;
    };
    const std::vector<int> kill_at = points(plan.kills);
    const std::vector<int> fault_at = points(plan.faults);
    std::vector<int> kill_delay_ms(plan.kills), down_ms(plan.kills);
    for (int k = 0; k < plan.kills; ++k) {
        kill_delay_ms[k] = std::uniform_int_distribution<int>(0, plan.kill_delay_max_ms)(rng);
        down_ms[k] = std::uniform_int_distribution<int>(0, 500)(rng);
    }
    const uint64_t chunk = 1 * kMiB;
    // Every kind at least once, then cut chunks (the most common fault on a real link) twice
    // as often as each HTTP error; in a random order.
    std::vector<json> faults(plan.faults);
    for (size_t i = 0; i < faults.size(); ++i) {
        const int kind =
            i < 4 ? static_cast<int>(i) : std::uniform_int_distribution<int>(0, 4)(rng);
        switch (kind) {
            case 0:
            case 4: {
                static const char* keeps[] = {"exact", "aligned", "none"};
                faults[i] = {
                    {"drop_mid_chunk", 1},
                    {"drop_after_bytes",
                     std::uniform_int_distribution<uint64_t>(1, chunk - 1)(rng)},
                    {"partial_keep", keeps[std::uniform_int_distribution<int>(0, 2)(rng)]}};
                break;
            }
            case 1:
                faults[i] = {{"500", 1}};
                break;
            case 2:
                faults[i] = {{"429", 1}, {"retry_after_s", 0}};
                break;
            default:
                faults[i] = {{"401", 1}};
                break;
        }
    }
    std::shuffle(faults.begin(), faults.end(), rng);

    TempDir dir("photorig-it-crash");
    GdriveFakePeer fake(dir.file("drive"), dir.file("fake.log"), kClientId, kClientSecret,
                        kRefreshToken);
    ASSERT_EQ(fake.start(), "");
    HarnessOptions o;
    o.image_size = static_cast<int>(sizes[0]);
    o.upload_target = "gdrive";
    // Lost jobs come back quickly, but only through the agent's reconcile.
    o.reoffer_after_s = 2;
    o.reconcile_interval_s = 1;
    o.upload_yaml = fake.upload_yaml(dir, chunk);
    RigHarness h(o);
    h.start_all();

    const auto t0 = Clock::now();
    const auto deadline = t0 + plan.deadline;
    int captured = 0, kills = 0, faults_posted = 0;
    std::set<std::string> done;
    while (Clock::now() < deadline) {
        done = done_jobs(h);
        const int n_done = static_cast<int>(done.size());
        if (captured == plan.photos && n_done >= plan.photos && h.spooled_files().empty()) break;

        // A photo through the agent's real path: the simulator's next image gets the planned
        // size, the agent captures, spools, hashes and publishes its job. A few batches, so
        // the uploader also makes several folders under fire.
        if (captured < plan.photos && captured - n_done < plan.backlog) {
            ASSERT_EQ(h.sim().control("size " + std::to_string(sizes[captured])), "OK");
            const std::string txn = "c" + std::to_string(captured);
            const std::string batch = "b" + std::to_string(captured / 10);
            h.pub_cli(h.base() + "/request/capture",
                      "{\"transaction\":\"" + txn + "\",\"batch\":\"" + batch + "\"}");
            auto resp = h.wait_for(
                h.base() + "/response/capture",
                [&](const Received& r) { return parse(r.payload).value("transaction", "") == txn; },
                60s);
            ASSERT_FALSE(resp.topic.empty()) << "no answer to capture " << txn << "\n"
                                             << h.agent().log();
            ASSERT_EQ(parse(resp.payload).value("status", ""), "ok") << resp.payload;
            ++captured;
        }

        if (faults_posted < plan.faults && n_done >= fault_at[faults_posted]) {
            ASSERT_EQ(fake.post("/_fake/faults", faults[faults_posted]), "");
            ++faults_posted;
        }

        if (kills < plan.kills && n_done >= kill_at[kills]) {
            // Into a transfer (at a random point of it) if one starts soon; otherwise
            // whatever the uploader is doing.
            (void)wait_until([&] { return upload_in_progress(fake); }, 5s, 2ms);
            std::this_thread::sleep_for(std::chrono::milliseconds(kill_delay_ms[kills]));
            const bool mid_transfer = upload_in_progress(fake);
            h.uploader().kill9();
            std::printf("kill %d: %d photos done, %s\n", kills + 1, n_done,
                        mid_transfer ? "in the middle of an upload session" : "between transfers");
            std::fflush(stdout);
            std::this_thread::sleep_for(std::chrono::milliseconds(down_ms[kills]));
            h.start_uploader();
            ++kills;
        }
        if (captured == plan.photos) std::this_thread::sleep_for(50ms);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();

    // What the agent captured: the source of truth for names, sizes and hashes.
    std::map<std::string, json> photos;  // capture_id -> base/capture metadata
    for (const auto& m : h.received(h.base() + "/capture")) {
        json c = parse(m.payload);
        if (c.is_object()) photos[c.value("capture_id", "")] = c;
    }
    const json stats = fake.stats();
    ASSERT_EQ(captured, plan.photos);
    ASSERT_EQ(photos.size(), static_cast<size_t>(plan.photos));
    EXPECT_EQ(kills, plan.kills);
    EXPECT_EQ(done.size(), photos.size())
        << "photos whose upload never finished (seed " << seed << ")\n"
        << h.uploader().log().substr(0, 20000);
    for (const auto& [id, c] : photos)
        EXPECT_TRUE(done.count(id)) << "no done event for " << c.dump();
    EXPECT_TRUE(h.spooled_files().empty())
        << "spool not empty: " << h.spooled_files().size() << " photos left";
    // Nothing else either, but for sidecars of deleted photos: Spool::remove() deletes the
    // photo first, so a kill right there leaves its sidecar, by design (the agent's
    // housekeeping deletes such orphans; a photo without its sidecar would get a new job id).
    std::vector<std::string> leftovers;
    int orphan_sidecars = 0;
    const std::string suffix = ".meta.json";
    for (const auto& f : list_files(h.spool_dir())) {
        const bool sidecar = f.size() > suffix.size() &&
                             f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0;
        if (sidecar && ::access(f.substr(0, f.size() - suffix.size()).c_str(), F_OK) != 0) {
            ++orphan_sidecars;
        } else {
            leftovers.push_back(f);
        }
    }
    EXPECT_TRUE(leftovers.empty())
        << leftovers.size() << " files left in the spool, e.g. " << leftovers.front();
    EXPECT_LE(orphan_sidecars, plan.kills) << "more orphan sidecars than kills";

    // Every photo exactly once, byte-identical, in its batch's folder.
    const json all = fake.files();
    std::map<std::string, std::vector<json>> by_job;
    std::map<std::string, int> by_parent_and_name;
    size_t non_folders = 0;
    for (const auto& f : all) {
        const std::string parent = f["parents"].empty() ? "" : f["parents"][0].get<std::string>();
        ++by_parent_and_name[parent + "/" + f.value("name", "")];
        if (f.value("mimeType", "") == kFolderMime) continue;
        ++non_folders;
        // Trashed copies count too: "exactly once" means no second upload at all.
        std::string job;
        if (f.contains("appProperties") && f["appProperties"].is_object())
            job = f["appProperties"].value("job_id", "");
        by_job[job].push_back(f);
    }
    EXPECT_EQ(non_folders, photos.size()) << "files on the fake (folders aside), seed " << seed;
    for (const auto& [key, n] : by_parent_and_name) EXPECT_EQ(n, 1) << "two files named " << key;
    for (const auto& [id, c] : photos) {
        auto it = by_job.find(id);
        if (it == by_job.end()) {
            ADD_FAILURE() << "photo " << c["file"]["name"] << " (job " << id
                          << ") never reached the fake";
            continue;
        }
        ASSERT_EQ(it->second.size(), 1u)
            << "job " << id << " uploaded " << it->second.size() << " times";
        const json& f = it->second[0];
        EXPECT_FALSE(f.value("trashed", false)) << f.dump();
        EXPECT_EQ(f["name"], c["file"]["name"]);
        EXPECT_EQ(f["path"], "photorig/rig1/" + c["batch"].get<std::string>());
        EXPECT_EQ(size_of(f), c["file"]["size"].get<uint64_t>());
        EXPECT_EQ(f["disk_sha256"], c["file"]["sha256"])
            << "bytes on the fake's disk differ for " << f["name"];
    }
    EXPECT_EQ(by_job.size(), photos.size()) << "files on the fake that belong to no captured photo";

    // The faults really fired (a plan whose faults never hit a request tests nothing).
    const json fired = stats.value("faults_fired", json::object());
    int drops = 0;
    uint64_t resent = 0;
    for (const auto& [uid, s] : stats["sessions"].items()) {
        drops += s.value("drops", 0);
        if (s["total"].is_number())
            resent +=
                s.value("bytes_received", uint64_t{0}) -
                std::min(s.value("bytes_received", uint64_t{0}), s.value("received", uint64_t{0}));
    }
    int planned_drops = 0;
    for (const auto& f : faults) planned_drops += f.contains("drop_mid_chunk");
    if (planned_drops > 0) {
        EXPECT_GT(drops, 0) << "no chunk was cut: " << fired.dump();
    }
    uint64_t bytes = 0;
    for (auto s : sizes) bytes += s;
    std::printf(
        "uploader crash test: %zu photos, %.1f MB in %.1f s; %d uploader kills, faults fired %s, "
        "%d "
        "chunks cut, %d upload sessions, %llu bytes the fake read but did not keep, %d orphan "
        "sidecars\n",
        photos.size(), bytes / 1e6, elapsed, kills, fired.dump().c_str(), drops,
        stats.value("sessions_created", 0), static_cast<unsigned long long>(resent),
        orphan_sidecars);
    const std::string log = h.uploader().log();
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log.substr(log.find("Sanitizer"), 4000);
    EXPECT_EQ(log.find("runtime error:"), std::string::npos);
    EXPECT_EQ(fake.log().find("Traceback"), std::string::npos) << fake.log();
    EXPECT_EQ(h.uploader().stop(), 0) << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
    if (::testing::Test::HasFailure())
        std::printf("FAILED with seed %llu: PHOTORIG_CRASH_SEED=%llu repeats the plan\n",
                    static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
}

}  // namespace

#ifndef PHOTORIG_CRASH_SOAK
// An upload that finishes while the broker is down: its done event cannot be sent then, and
// must still arrive once the broker is back (rigctl and dashboards wait for it). The uploader
// keeps the spool file until the broker has the event; the agent offers the job again and
// the uploader answers with the done event, then deletes the file. (Before, the event was
// dropped and the file deleted: nobody ever heard that the photo was safe.)
TEST(UploaderCrash, DoneEventOfAnUploadFinishedDuringABrokerOutageArrives) {
    HarnessOptions o;
    o.image_size = 3 * 1000 * 1000;
    o.bandwidth_limit = 1000 * 1000;  // 3 s per photo: time to stop the broker midway
    o.reoffer_after_s = 2;
    o.reconcile_interval_s = 1;
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"outage","batch":"outage"})");
    auto cap = h.wait_for(
        h.base() + "/capture",
        [](const Received& r) { return parse(r.payload).value("batch", "") == "outage"; }, 30s);
    ASSERT_FALSE(cap.topic.empty()) << h.agent().log();
    const std::string capture_id = parse(cap.payload).value("capture_id", "");
    auto started = h.wait_for(
        h.base() + "/upload/events",
        [&](const Received& r) {
            json e = parse(r.payload);
            return e.value("type", "") == "started" && e.value("capture_id", "") == capture_id;
        },
        20s);
    ASSERT_FALSE(started.topic.empty()) << h.uploader().log();

    h.stop_broker();
    ASSERT_TRUE(wait_until([&] { return h.uploaded_files().size() == 1; }, 20s))
        << h.uploader().log();
    // Longer than the uploader waits for the broker's ack of the done event.
    std::this_thread::sleep_for(7s);
    EXPECT_EQ(h.spooled_files().size(), 1u)
        << "spool file deleted before anyone heard of the upload";
    h.start_broker();

    auto done = h.wait_for(
        h.base() + "/upload/events",
        [&](const Received& r) {
            json e = parse(r.payload);
            return e.value("type", "") == "done" && e.value("capture_id", "") == capture_id;
        },
        40s);
    EXPECT_FALSE(done.topic.empty()) << "no done event after the outage\n" << h.uploader().log();
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 10s)) << "spool file left";
    EXPECT_EQ(h.uploaded_files().size(), 1u);
    EXPECT_EQ(h.uploader().stop(), 0) << h.uploader().log();
}

// The short run, in every CI run.
TEST(UploaderCrash, GdriveEveryPhotoExactlyOnceThroughKillsAndDrops) {
    run_crash_test(Plan{30, 1 * kMiB, 4 * kMiB, 3, 6, 8, 40, 100s}, false);
}
#else
// The full run: a separate binary with the CTest label "soak" and a long timeout.
TEST(UploaderCrashSoak, GdriveEveryPhotoExactlyOnceThroughKillsAndDrops) {
    if (!soak()) GTEST_SKIP() << "set PHOTORIG_SOAK=1 for the 200-photo run";
    run_crash_test(Plan{200, 1 * kMiB, 30 * kMiB, 10, 30, 12, 60, 2400s}, true);
}
#endif
