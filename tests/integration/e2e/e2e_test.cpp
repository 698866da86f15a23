#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/sha256.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

const auto any = [](const Received&) { return true; };

// Every photo announced on base/capture must be in the target exactly once, byte-identical.
void expect_each_capture_uploaded_once(RigHarness& h, size_t expected) {
    auto captures = h.received(h.base() + "/capture");
    std::map<std::string, json> by_sha;
    for (const auto& c : captures) {
        json j = parse(c.payload);
        by_sha[j["file"]["sha256"].get<std::string>()] = j;
    }
    ASSERT_EQ(by_sha.size(), expected) << "distinct photos announced";
    auto files = h.uploaded_files();
    EXPECT_EQ(files.size(), expected)
        << "files in the target (a duplicate shows up as an extra file)";
    std::set<std::string> seen;
    for (const auto& f : files) {
        auto sha = photorig::Sha256::of_file(f);
        ASSERT_TRUE(sha);
        EXPECT_TRUE(by_sha.count(*sha)) << f << " is not a photo the agent announced";
        EXPECT_TRUE(seen.insert(*sha).second) << f << " duplicates another upload";
    }
}
}  // namespace

TEST(EndToEnd, MosquittoPubCaptureLandsByteIdenticalInTheTarget) {
    RigHarness h;
    h.start_all();
    // Retained availability and state are there for late subscribers.
    auto state = h.wait_for(h.base() + "/state", any, 10s);
    ASSERT_FALSE(state.topic.empty());
    json s = parse(state.payload);
    ASSERT_EQ(s["cameras"].size(), 1u);
    EXPECT_EQ(s["cameras"][0]["serial"], "SIM0001");
    for (const char* key : {"busy", "spool_files", "disk_free_bytes", "version"})
        EXPECT_TRUE(s.contains(key)) << key;

    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"t-1","batch":"first"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("t-1"), 20s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    json r = parse(resp.payload);
    ASSERT_EQ(r["status"], "ok") << resp.payload;
    EXPECT_EQ(r["data"]["batch"], "first");
    ASSERT_EQ(r["data"]["photos"].size(), 1u);

    auto cap = h.wait_for(h.base() + "/capture", any, 5s);
    ASSERT_FALSE(cap.topic.empty());
    json m = parse(cap.payload);
    for (const char* key : {"capture_id", "rig_id", "batch", "seq", "camera", "captured_at", "file",
                            "exif", "timings_ms"})
        EXPECT_TRUE(m.contains(key)) << key;
    EXPECT_EQ(m["rig_id"], "rig1");
    EXPECT_EQ(m["seq"], 1);
    EXPECT_EQ(m["camera"]["serial"], "SIM0001");
    EXPECT_EQ(m["file"]["size"], 200000);
    EXPECT_EQ(m["file"]["mime"], "image/jpeg");
    EXPECT_TRUE(m["exif"].contains("iso")) << cap.payload;
    EXPECT_TRUE(m["exif"].contains("f_number")) << cap.payload;

    auto done = h.wait_for(
        h.base() + "/upload/events",
        [](const Received& r) { return parse(r.payload)["type"] == "done"; }, 20s);
    ASSERT_FALSE(done.topic.empty()) << h.uploader().log();
    auto files = h.uploaded_files();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_NE(files[0].find("/rig1/first/"), std::string::npos) << files[0];
    EXPECT_EQ(*photorig::Sha256::of_file(files[0]), m["file"]["sha256"]);
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    // The job on the wire is a reference, never the bytes.
    auto jobs = h.received(h.base() + "/upload/jobs");
    ASSERT_FALSE(jobs.empty());
    EXPECT_LT(jobs[0].payload.size(), 2000u);
    EXPECT_EQ(parse(jobs[0].payload)["sha256"], m["file"]["sha256"]);
}

TEST(EndToEnd, StatusAndCamerasAnswerAndV5ResponseTopicIsHonoured) {
    RigHarness h;
    h.start_all();
    h.pub_cli(h.base() + "/request/status", R"({"transaction":7})");
    auto st = h.wait_for(
        h.base() + "/response/status",
        [](const Received& r) { return parse(r.payload)["transaction"] == 7; }, 10s);
    ASSERT_FALSE(st.topic.empty());
    EXPECT_EQ(parse(st.payload)["status"], "ok");
    EXPECT_EQ(parse(st.payload)["data"]["cameras"][0]["serial"], "SIM0001");

    h.pub_cli(h.base() + "/request/cameras", "");  // empty payload = {}
    auto cams = h.wait_for(h.base() + "/response/cameras", any, 10s);
    ASSERT_FALSE(cams.topic.empty());
    EXPECT_EQ(parse(cams.payload)["data"]["cameras"][0]["connected"], true);

    std::string reply = h.base() + "/response/v5-replies/abc";
    h.pub_v5(h.base() + "/request/cameras", "{}", reply, "corr-123");
    auto v5 = h.wait_for(reply, any, 10s);
    ASSERT_FALSE(v5.topic.empty()) << "no reply on the v5 response topic";
    EXPECT_EQ(v5.correlation_data, "corr-123");
    EXPECT_EQ(parse(v5.payload)["status"], "ok");
}

TEST(EndToEnd, TwentyBadCommandsGetTwentyErrorsAndCaptureStillWorks) {
    RigHarness h;
    h.start_all();
    struct Bad {
        std::string verb, payload, code;
    };
    std::vector<Bad> bad = {
        {"capture", "{", "bad_json"},
        {"capture", "not json at all", "bad_json"},
        {"capture", "[1,2,3]", "bad_request"},
        {"capture", "42", "bad_request"},
        {"capture", R"({"count":"five"})", "bad_request"},
        {"capture", R"({"count":0})", "out_of_range"},
        {"capture", R"({"count":1000001})", "out_of_range"},
        {"capture", R"({"count":2.5})", "bad_request"},
        {"capture", R"({"interval_ms":-1})", "out_of_range"},
        {"capture", R"({"batch":"../../etc"})", "invalid_name"},
        {"capture", R"({"batch":"a/b"})", "invalid_name"},
        {"capture", R"({"batch":".."})", "invalid_name"},
        {"capture", R"({"batch":17})", "bad_request"},
        {"capture", R"({"camera":"NO-SUCH-SERIAL"})", "camera_not_found"},
        {"capture", R"({"camera":false})", "bad_request"},
        {"capture", R"({"colour":"red"})", "bad_request"},
        {"capture", R"({"transaction":{"nested":true}})", "bad_request"},
        {"capture", "{\"batch\":\"" + std::string(20000, 'x') + "\"}", "payload_too_large"},
        {"explode", "{}", "unknown_verb"},
        {"status", R"({"verbose":true})", "bad_request"},
    };
    ASSERT_EQ(bad.size(), 20u);
    for (size_t i = 0; i < bad.size(); ++i) {
        std::string payload = bad[i].payload;
        h.pub_cli(h.base() + "/request/" + bad[i].verb, payload);
        auto resp = h.wait_for(
            h.base() + "/response/" + bad[i].verb,
            [&](const Received& r) {
                json j = parse(r.payload);
                return j["status"] == "error" && j["error"]["code"] == bad[i].code;
            },
            10s);
        EXPECT_FALSE(resp.topic.empty()) << "#" << i << " " << bad[i].verb << " "
                                         << payload.substr(0, 80) << " expected " << bad[i].code;
        h.clear_received();
    }
    EXPECT_TRUE(h.agent().running()) << h.agent().log();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"after"})");
    auto ok = h.wait_for(h.base() + "/response/capture", transaction_is("after"), 20s);
    ASSERT_FALSE(ok.topic.empty());
    EXPECT_EQ(parse(ok.payload)["status"], "ok") << ok.payload;
    EXPECT_TRUE(wait_until([&] { return h.uploaded_files().size() == 1; }, 20s));
}

TEST(EndToEnd, JobsPublishedWhileTheUploaderIsDownAreUploadedWhenItReturns) {
    RigHarness h;
    h.start_all();
    h.uploader().stop();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"twenty","count":20,"batch":"offline"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("twenty"), 60s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    ASSERT_EQ(parse(resp.payload)["data"]["count"], 20) << resp.payload;
    EXPECT_EQ(h.uploaded_files().size(), 0u);
    EXPECT_EQ(h.spooled_files().size(), 20u);
    h.start_uploader();
    EXPECT_TRUE(wait_until([&] { return h.uploaded_files().size() >= 20; }, 60s))
        << h.uploader().log();
    expect_each_capture_uploaded_once(h, 20);
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 10s));
}

TEST(EndToEnd, KillingTheUploaderMidRunLosesNothingAndDuplicatesNothing) {
    HarnessOptions o;
    o.image_size = 1000000;
    o.bandwidth_limit = 8 * 1000 * 1000;  // ~125 ms a photo: kills land mid-copy
    o.reoffer_after_s = 2;
    o.reconcile_interval_s = 1;
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"kill","count":30,"interval_ms":50,"batch":"crash"})");
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + 70 * i));
        h.uploader().kill9();
        std::this_thread::sleep_for(100ms);
        h.start_uploader(false);
    }
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("kill"), 60s);
    ASSERT_FALSE(resp.topic.empty());
    EXPECT_TRUE(wait_until(
        [&] { return h.spooled_files().empty() && h.uploaded_files().size() >= 30; }, 90s))
        << "spooled " << h.spooled_files().size() << " uploaded " << h.uploaded_files().size()
        << "\n"
        << h.uploader().log();
    std::this_thread::sleep_for(2s);  // room for a late duplicate to show up
    expect_each_capture_uploaded_once(h, 30);
}

TEST(EndToEnd, BrokerRestartMidRunBothDaemonsReconnectAndEveryPhotoArrivesOnce) {
    RigHarness h;
    h.start_all();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"b1","count":5,"batch":"before"})");
    ASSERT_FALSE(
        h.wait_for(h.base() + "/response/capture", transaction_is("b1"), 30s).topic.empty());
    h.stop_broker();
    std::this_thread::sleep_for(1s);
    h.start_broker();
    // Both daemons come back on their own (backoff) and say so; the capture below proves
    // the agent is subscribed again, the uploads prove the uploader is.
    auto count_connects = [](const std::string& log) {
        size_t n = 0;
        for (size_t pos = log.find("connected to broker"); pos != std::string::npos;
             pos = log.find("connected to broker", pos + 1))
            ++n;
        return n;
    };
    EXPECT_TRUE(wait_until([&] { return count_connects(h.agent().log()) >= 2; }, 30s))
        << h.agent().log();
    EXPECT_TRUE(wait_until([&] { return count_connects(h.uploader().log()) >= 2; }, 30s))
        << h.uploader().log();
    std::this_thread::sleep_for(500ms);  // the observer reconnects too
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"b2","count":5,"batch":"after"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("b2"), 30s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    EXPECT_TRUE(wait_until(
        [&] { return h.uploaded_files().size() >= 10 && h.spooled_files().empty(); }, 60s))
        << h.uploader().log();
    expect_each_capture_uploaded_once(h, 10);
}

TEST(EndToEnd, BrokerKilledDuringCaptureSequenceStillDeliversEveryPhotoOnce) {
    HarnessOptions o;
    o.reoffer_after_s = 1;
    o.reconcile_interval_s = 1;
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"k","count":15,"interval_ms":100,"batch":"storm"})");
    std::this_thread::sleep_for(600ms);
    h.kill9_broker();
    std::this_thread::sleep_for(500ms);
    h.start_broker();
    EXPECT_TRUE(wait_until(
        [&] { return h.uploaded_files().size() >= 15 && h.spooled_files().empty(); }, 90s))
        << "uploaded " << h.uploaded_files().size() << "\n"
        << h.agent().log() << h.uploader().log();
    std::this_thread::sleep_for(1s);
    auto files = h.uploaded_files();
    EXPECT_EQ(files.size(), 15u);
    std::set<std::string> shas;
    for (const auto& f : files) shas.insert(*photorig::Sha256::of_file(f));
    EXPECT_EQ(shas.size(), files.size()) << "a photo was uploaded twice";
}

TEST(EndToEnd, SpooledFilesFromBeforeACrashAreOfferedAtStartUp) {
    RigHarness h;
    h.start_all();
    h.agent().stop();
    h.uploader().stop();
    // A photo the agent wrote but whose job never reached the broker (crash in between),
    // including a case with no sidecar (crash before the sidecar was written).
    ::mkdir((h.spool_dir() + "/orphans").c_str(), 0755);
    write_file(h.spool_dir() + "/orphans/lost_0001.jpg", std::string(5000, 'x'));
    h.start_uploader();
    h.start_agent();
    EXPECT_TRUE(wait_until([&] { return h.uploaded_files().size() == 1; }, 30s))
        << h.agent().log() << h.uploader().log();
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 10s));
}

// Retention: with spool.keep_uploaded_days (or delete_after_upload: false) an uploaded
// photo stays on the rig, out of the upload queue: the agent's re-offer sweep (every second
// here) must never send it again, and the spool counts it as done.
TEST(EndToEnd, KeptUploadsStayOnTheRigAndAreNeverOfferedAgain) {
    for (const std::string& setting :
         {std::string("keep_uploaded_days"), std::string("delete_after_upload")}) {
        SCOPED_TRACE(setting);
        HarnessOptions o;
        o.reoffer_after_s = 1;
        o.reconcile_interval_s = 1;
        if (setting == "keep_uploaded_days")
            o.spool_yaml = "  keep_uploaded_days: 7\n";
        else
            o.upload_yaml = "  delete_after_upload: false\n";
        RigHarness h(o);
        h.start_all();
        h.pub_cli(h.base() + "/request/capture",
                  R"({"transaction":"keep","count":2,"batch":"kept"})");
        ASSERT_FALSE(
            h.wait_for(h.base() + "/response/capture", transaction_is("keep"), 30s).topic.empty())
            << h.agent().log();
        ASSERT_TRUE(wait_until([&] { return h.kept_files().size() == 2; }, 30s))
            << h.uploader().log();
        EXPECT_TRUE(h.spooled_files().empty());
        for (const auto& f : h.kept_files()) {
            EXPECT_EQ(::access((f + ".meta.json").c_str(), F_OK), 0)
                << "the sidecar stays with " << f;
        }
        // Several re-offer sweeps later: still exactly one upload each, and still kept.
        std::this_thread::sleep_for(4s);
        expect_each_capture_uploaded_once(h, 2);
        size_t started = 0;
        for (const auto& e : h.received(h.base() + "/upload/events"))
            started += parse(e.payload)["type"] == "started";
        EXPECT_EQ(started, 2u) << "a kept photo was offered and uploaded again";
        EXPECT_EQ(h.kept_files().size(), 2u);
        auto state = h.received(h.base() + "/state");
        ASSERT_FALSE(state.empty());
        EXPECT_EQ(parse(state.back().payload)["spool_files"], 0) << state.back().payload;
    }
}

// An outage of the target (here: the upload directory unmounted) pauses uploads: one probe
// at a time on a capped backoff rather than every job retrying on its own, the state says
// the target is unreachable and how deep the queue is, and after recovery the backlog
// drains oldest first.
TEST(EndToEnd, TargetOutagePausesUploadsAndTheBacklogDrainsInOrderAfterwards) {
    RigHarness h;  // retry_max_backoff_s: 2
    h.start_all();
    const std::string away = h.upload_dir() + ".unmounted";
    ASSERT_EQ(::rename(h.upload_dir().c_str(), away.c_str()), 0);
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"o","count":6,"batch":"outage"})");
    ASSERT_FALSE(h.wait_for(h.base() + "/response/capture", transaction_is("o"), 30s).topic.empty())
        << h.agent().log();
    auto down = h.wait_for(
        h.base() + "/uploader/state",
        [](const Received& r) { return parse(r.payload).value("target_reachable", true) == false; },
        20s);
    ASSERT_FALSE(down.topic.empty()) << h.uploader().log();
    json state = parse(down.payload);
    EXPECT_NE(state.value("last_error", "").find("missing"), std::string::npos) << down.payload;
    EXPECT_TRUE(state.contains("retry_in_ms")) << down.payload;
    std::this_thread::sleep_for(5s);
    EXPECT_GE(
        parse(h.received(h.base() + "/uploader/state").back().payload).value("queue_depth", 0), 5)
        << "the backlog is visible in the state";
    ASSERT_EQ(::rename(away.c_str(), h.upload_dir().c_str()), 0);
    ASSERT_TRUE(wait_until([&] { return h.uploaded_files().size() == 6; }, 30s))
        << h.uploader().log();
    expect_each_capture_uploaded_once(h, 6);

    // Capture order, by capture id.
    std::map<std::string, size_t> rank;
    for (const auto& c : h.received(h.base() + "/capture"))
        rank.emplace(parse(c.payload)["capture_id"], rank.size());
    auto events = h.received(h.base() + "/upload/events");
    size_t failed = 0, last_failed = 0;
    for (size_t i = 0; i < events.size(); ++i) {
        if (parse(events[i].payload)["type"] == "failed") {
            ++failed;
            last_failed = i;
        }
    }
    // Without the pause, 6 jobs retrying on their own 0.5-2 s clocks fail ~25 times here.
    EXPECT_LE(failed, 12u) << "jobs hammered the target during the outage";
    std::printf("outage of ~6 s with 6 photos queued: %zu failed attempts\n", failed);
    std::vector<size_t> drained;  // starts after the successful probe
    bool probe_seen = false;
    for (size_t i = last_failed + 1; i < events.size(); ++i) {
        json e = parse(events[i].payload);
        if (e["type"] != "started") continue;
        if (!probe_seen) {
            probe_seen = true;
            continue;
        }
        drained.push_back(rank.at(e["capture_id"]));
    }
    EXPECT_FALSE(drained.empty());
    EXPECT_TRUE(std::is_sorted(drained.begin(), drained.end()))
        << "the backlog must drain oldest first";
    auto up = h.wait_for(
        h.base() + "/uploader/state",
        [](const Received& r) {
            json j = parse(r.payload);
            return j.value("target_reachable", false) && j.value("queue_depth", 1) == 0;
        },
        10s);
    EXPECT_FALSE(up.topic.empty()) << "the state says the target is back and the queue empty";
}

// The disk guard: below spool.min_free_bytes the agent refuses captures with disk_full
// (nothing is half-written into a full spool) and says why; status still answers.
TEST(EndToEnd, CaptureAnswersDiskFullBelowTheSpoolsFreeSpaceFloor) {
    HarnessOptions o;
    o.min_free_bytes = 1ull << 50;  // a floor no test machine's disk clears
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"full"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("full"), 20s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    json r = parse(resp.payload);
    EXPECT_EQ(r.value("status", ""), "error") << resp.payload;
    EXPECT_EQ(r["error"].value("code", ""), "disk_full") << resp.payload;
    EXPECT_NE(r["error"].value("message", "").find("spool.min_free_bytes"), std::string::npos)
        << resp.payload;
    EXPECT_TRUE(h.spooled_files().empty());
    EXPECT_TRUE(h.received(h.base() + "/capture").empty()) << "no photo announced";
    h.pub_cli(h.base() + "/request/status", R"({"transaction":"st"})");
    EXPECT_FALSE(
        h.wait_for(h.base() + "/response/status", transaction_is("st"), 10s).topic.empty());
}

TEST(EndToEnd, AgentKilledLeavesOfflineViaLastWill) {
    RigHarness h;
    h.start_all();
    h.agent().kill9();
    auto offline = h.wait_for(
        h.base() + "/availability", [](const Received& r) { return r.payload == "offline"; }, 60s);
    EXPECT_FALSE(offline.topic.empty())
        << "the broker should publish the will after the keepalive lapses";
}

TEST(EndToEnd, BadConfigExitsNonZeroNamingTheKey) {
    TempDir dir;
    std::string bad = dir.file("bad.yaml");
    write_file(bad, "mqtt:\n  port: 99999\n");
    for (const char* binary : {"rig-agent", "rig-uploader"}) {
        std::string path = std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/" + binary;
        auto r = run_command({path, "--config", bad}, 10s);
        EXPECT_EQ(r.exit_code, 2) << r.output;
        EXPECT_NE(r.output.find("mqtt.port"), std::string::npos) << r.output;
        auto env = run_command({path, "--config", bad}, 10s,
                               {"PHOTORIG_MQTT_PORT=1883", "PHOTORIG_UPLOAD_TARGET=ftp"});
        EXPECT_EQ(env.exit_code, 2);
        EXPECT_NE(env.output.find("upload.target"), std::string::npos) << env.output;
        auto missing = run_command({path}, 10s);
        EXPECT_EQ(missing.exit_code, 2);
        EXPECT_NE(missing.output.find("--config"), std::string::npos);
        write_file(dir.file("pw"), "hunter2\n", 0644);
        write_file(dir.file("insecure.yaml"), "mqtt:\n  password_file: " + dir.file("pw") + "\n");
        auto insecure = run_command({path, "--config", dir.file("insecure.yaml")}, 10s);
        EXPECT_EQ(insecure.exit_code, 2);
        EXPECT_NE(insecure.output.find("mqtt.password_file"), std::string::npos) << insecure.output;
        EXPECT_EQ(insecure.output.find("hunter2"), std::string::npos) << "secret printed";
    }
}

// Issue 12: 20 separate count=1 requests published back to back (one connection, QoS 1,
// so they reach the agent in this order) while the camera takes 100 ms a shot. Before,
// 16 were captured and 4 answered camera_busy; now every one waits its turn.
TEST(EndToEnd, TwentySeparateCaptureRequestsAreQueuedAndCapturedInArrivalOrder) {
    HarnessOptions o;
    o.capture_delay_ms = 100;
    o.image_size = 20000;
    RigHarness h(o);
    h.start_all();
    ASSERT_FALSE(h.wait_for(h.base() + "/state", any, 10s).topic.empty());
    const std::string reply = h.base() + "/response/v5-replies/queue";
    const auto burst_start = std::chrono::steady_clock::now();
    const size_t states_before = h.received(h.base() + "/state").size();
    constexpr int kRequests = 20;
    for (int i = 0; i < kRequests; ++i) {
        char batch[8];
        std::snprintf(batch, sizeof batch, "q%02d", i);
        h.pub_v5(h.base() + "/request/capture",
                 json{{"transaction", i}, {"batch", batch}, {"count", 1}}.dump(), reply,
                 std::to_string(i));
    }
    ASSERT_TRUE(h.wait_count(reply, kRequests, any, 60s)) << h.agent().log();
    const auto burst_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - burst_start)
                              .count();

    auto responses = h.received(reply);
    ASSERT_EQ(responses.size(), static_cast<size_t>(kRequests));
    for (int i = 0; i < kRequests; ++i) {
        json r = parse(responses[i].payload);
        EXPECT_EQ(r["status"], "ok") << responses[i].payload;
        EXPECT_EQ(r["transaction"], i) << "answered in arrival order";
        EXPECT_EQ(responses[i].correlation_data, std::to_string(i));
        EXPECT_EQ(r["data"]["photos"].size(), 1u) << responses[i].payload;
    }
    auto captures = h.received(h.base() + "/capture");
    ASSERT_EQ(captures.size(), static_cast<size_t>(kRequests));
    std::string last_captured_at;
    for (int i = 0; i < kRequests; ++i) {
        json m = parse(captures[i].payload);
        char batch[8];
        std::snprintf(batch, sizeof batch, "q%02d", i);
        EXPECT_EQ(m["batch"], batch) << "captured in arrival order";
        EXPECT_EQ(m["seq"], 1);
        std::string at = m["captured_at"];
        EXPECT_GE(at, last_captured_at) << "captured one after the other";
        last_captured_at = at;
    }

    // The retained state showed the queue while it drained, and shows it empty now.
    int deepest = 0;
    for (const auto& s : h.received(h.base() + "/state")) {
        json j = parse(s.payload);
        ASSERT_TRUE(j.contains("capture_queue")) << s.payload;
        EXPECT_EQ(j["capture_queue"]["max"], 4096);
        deepest = std::max(deepest, j["capture_queue"]["depth"].get<int>());
    }
    EXPECT_GE(deepest, 2) << "the depth was visible during the burst";
    EXPECT_TRUE(wait_until(
        [&] {
            auto states = h.received(h.base() + "/state");
            return parse(states.back().payload)["capture_queue"]["depth"] == 0;
        },
        5s))
        << "the last state says the queue is empty";
    // Throttled: at most one state per 250 ms (plus the last one), not one per request.
    const size_t states = h.received(h.base() + "/state").size() - states_before;
    EXPECT_LE(states, static_cast<size_t>(burst_ms / 250 + 3)) << burst_ms << " ms";
}

// With capture.queue_max 3, requests past three accepted and unanswered ones are refused
// queue_full, with the depth in the message; the three are captured and answered.
TEST(EndToEnd, PastCaptureQueueMaxRequestsAreAnsweredQueueFull) {
    HarnessOptions o;
    o.capture_delay_ms = 1000;  // the first shot is still running while the others arrive
    o.image_size = 20000;
    o.extra_yaml = "capture:\n  queue_max: 3\n";
    RigHarness h(o);
    h.start_all();
    auto state = h.wait_for(h.base() + "/state", any, 10s);
    ASSERT_FALSE(state.topic.empty());
    EXPECT_EQ(parse(state.payload)["capture_queue"], json({{"depth", 0}, {"max", 3}}));
    const std::string reply = h.base() + "/response/v5-replies/queue";
    for (int i = 0; i < 6; ++i) {
        h.pub_v5(h.base() + "/request/capture", json{{"transaction", i}}.dump(), reply,
                 std::to_string(i));
    }
    ASSERT_TRUE(h.wait_count(reply, 6, any, 30s)) << h.agent().log();
    std::map<int, json> by_txn;
    for (const auto& r : h.received(reply)) {
        json j = parse(r.payload);
        by_txn[j["transaction"].get<int>()] = j;
    }
    ASSERT_EQ(by_txn.size(), 6u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(by_txn[i]["status"], "ok") << by_txn[i];
    for (int i = 3; i < 6; ++i) {
        EXPECT_EQ(by_txn[i]["status"], "error") << by_txn[i];
        EXPECT_EQ(by_txn[i]["error"]["code"], "queue_full") << by_txn[i];
        std::string message = by_txn[i]["error"]["message"];
        EXPECT_NE(message.find("3 capture requests waiting or running"), std::string::npos)
            << message;
        EXPECT_NE(message.find("capture.queue_max 3"), std::string::npos) << message;
    }
    EXPECT_EQ(h.received(h.base() + "/capture").size(), 3u);
}
