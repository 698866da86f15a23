// Hostile requests against the real agent (issue 15): bursts and floods, oversized and
// deeply nested payloads, retained requests, unknown verbs, a capture that would hold the
// camera for weeks, and SIGTERM in the middle of it.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness/rig_harness.h"
#include "support/test_util.h"

using namespace photorig;
using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

std::function<bool(const Received&)> txn_is(const json& t) {
    return [t](const Received& r) {
        json j = parse(r.payload);
        return j.is_object() && j.contains("transaction") && j["transaction"] == t;
    };
}

const auto any = [](const Received&) { return true; };

std::string error_code(const Received& r) {
    json j = parse(r.payload);
    if (!j.is_object() || !j.contains("error")) return "";
    return j["error"].value("code", "");
}

// The newest telemetry message (waits for one after `since`).
json telemetry_after(RigHarness& h, size_t since, std::chrono::milliseconds timeout) {
    const std::string topic = h.base() + "/telemetry";
    if (!h.wait_count(topic, since + 1, any, timeout)) return json();
    return parse(h.received(topic).back().payload);
}

HarnessOptions fast_telemetry() {
    HarnessOptions o;
    o.image_size = 20000;
    o.extra_yaml = "telemetry_interval_s: 1\n";
    return o;
}
}  // namespace

// Issue 15 item 4: 300 config/get in a row used to give 120 responses (Paho's buffer of 100
// publishes), lose the next capture's response and an upload job. Now every request is
// answered (ok, or an explicit error), the capture after them is answered and its photo is
// uploaded promptly.
TEST(Floods, ThreeHundredConfigGetsAreAllAnsweredAndTheNextCaptureToo) {
    RigHarness h(fast_telemetry());
    h.start_all();
    const std::string reply = h.base() + "/response/v5-replies/burst";
    for (int i = 0; i < 300; ++i)
        h.pub_v5(h.base() + "/request/config/get", json{{"transaction", i}}.dump(), reply, "");
    h.pub_v5(h.base() + "/request/capture", R"({"transaction":"after"})", reply, "");
    ASSERT_TRUE(h.wait_count(reply, 301, any, 60s)) << h.received(reply).size() << " answers\n"
                                                    << h.agent().log();
    std::set<int> answered;
    int errors = 0;
    for (const auto& r : h.received(reply)) {
        json j = parse(r.payload);
        ASSERT_TRUE(j.is_object()) << r.payload;
        if (j["transaction"].is_number()) answered.insert(j["transaction"].get<int>());
        if (j["status"] == "error") {
            ++errors;
            EXPECT_NE(j["error"].value("code", ""), "") << r.payload;
        }
    }
    EXPECT_EQ(answered.size(), 300u);
    std::printf("300 config/get: %zu answered, %d of them errors\n", answered.size(), errors);
    auto capture = h.wait_for(reply, txn_is("after"), 1s);
    ASSERT_FALSE(capture.topic.empty());
    EXPECT_EQ(parse(capture.payload)["status"], "ok") << capture.payload;
    // The upload job went out with the burst: the photo is uploaded without a re-offer (120 s).
    auto done = h.wait_for(
        h.base() + "/upload/events",
        [](const Received& r) { return parse(r.payload)["type"] == "done"; }, 20s);
    EXPECT_FALSE(done.topic.empty()) << h.uploader().log();
    auto t = telemetry_after(h, h.received(h.base() + "/telemetry").size(), 5s);
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["publishes_dropped_total"], 0) << t.dump();
}

// Hostile payloads and topics, each answered with a stable code, the agent alive after.
TEST(Floods, HostileRequestsGetStableErrorCodes) {
    HarnessOptions o = fast_telemetry();
    o.extra_yaml += "limits:\n  max_payload_bytes: 1048576\n";
    RigHarness h(o);
    h.start_all();
    const std::string reply = h.base() + "/response/v5-replies/hostile";
    const long rss_before = rss_kib(h.agent().pid());
    struct Case {
        std::string name, topic, payload, code;
    };
    std::vector<Case> cases{
        {"JSON nested 100,000 levels", "status",
         std::string(100000, '[') + std::string(100000, ']'), "bad_request"},
        {"JSON object nested 100,000 levels", "status",
         [] {
             std::string s;
             for (int i = 0; i < 100000; ++i) s += "{\"a\":";
             return s + "1" + std::string(100000, '}');
         }(),
         "bad_request"},
        {"transaction of 1 MB", "status", json{{"transaction", std::string(1000000, 'x')}}.dump(),
         "out_of_range"},
        {"payload over limits.max_payload_bytes", "status",
         json{{"transaction", std::string(1100000, 'x')}}.dump(), "payload_too_large"},
        {"unknown verb", "nonsense", "{}", "unknown_verb"},
        {"unknown verb under capture", "capture/nonsense", "{}", "unknown_verb"},
        {"unknown verb under config", "config/nonsense", "{}", "unknown_verb"},
        {"unknown verb under config/get", "config/get/x", "{}", "unknown_verb"},
        {"deep unknown verb", "a/b/c/d/e/f/g", "{}", "unknown_verb"},
        {"empty verb", "", "{}", "unknown_verb"},
        {"verb of 1000 characters", std::string(1000, 'v'), "{}", "unknown_verb"},
        {"capture/cancel naming nothing", "capture/cancel", "{}", "bad_request"},
    };
    int i = 0;
    for (const auto& c : cases) {
        const std::string corr = "c" + std::to_string(i++);
        h.pub_v5(h.base() + "/request/" + c.topic, c.payload, reply, corr);
        auto r = h.wait_for(
            reply, [&](const Received& x) { return x.correlation_data == corr; }, 10s);
        ASSERT_FALSE(r.topic.empty()) << c.name << " unanswered\n" << h.agent().log();
        EXPECT_EQ(error_code(r), c.code) << c.name << ": " << r.payload.substr(0, 300);
        EXPECT_LT(r.payload.size(), 4096u) << c.name << ": the answer echoes the hostile input";
        std::printf("hostile: %-40s -> %s\n", c.name.c_str(), error_code(r).c_str());
    }
    EXPECT_TRUE(h.agent().running());
    // 64 MiB: the broker refuses the packet (max_packet_size) and drops that client; the
    // agent never sees it.
    {
        MessageQueue<mqtt::Event> events;
        auto big = h.connect_as("photorig-dashboard", "floods-big", events);
        std::string payload(64 << 20, ' ');
        auto st = big->publish(
            mqtt::Message{h.base() + "/request/status", payload, 1, false, "", ""}, false, 5s);
        EXPECT_FALSE(st) << "the broker took a 64 MiB publish";
    }
    // A retained request is refused (bad_request) and taken back: a late subscriber finds
    // no retained request.
    {
        MessageQueue<mqtt::Event> events;
        auto pub = h.connect_as("photorig-dashboard", "floods-retain", events);
        ASSERT_TRUE(pub->publish(mqtt::Message{h.base() + "/request/status",
                                               R"({"transaction":"kept"})", 1, true, "", ""},
                                 true, 5s));
        pub.reset();
        h.agent().stop();
        h.clear_received();  // the live delivery was answered as an ordinary request
        h.start_agent();     // reconnects: the retained request arrives as retained
        auto r = h.wait_for(h.base() + "/response/status", txn_is("kept"), 10s);
        ASSERT_FALSE(r.topic.empty()) << h.agent().log();
        EXPECT_EQ(error_code(r), "bad_request") << r.payload;
        std::this_thread::sleep_for(500ms);
        MessageQueue<mqtt::Event> late_events;
        auto late = h.connect_as("photorig-dashboard", "floods-late", late_events);
        late->set_subscriptions({{h.base() + "/request/#", 1}});
        std::this_thread::sleep_for(1s);
        int retained = 0;
        while (auto ev = late_events.pop_for(0ms)) {
            if (ev->kind == mqtt::Event::Kind::message && ev->message.retained) ++retained;
        }
        EXPECT_EQ(retained, 0) << "a retained request is still on the broker";
    }
    const long rss_after = rss_kib(h.agent().pid());
    std::printf("agent RSS: %ld KiB before, %ld KiB after (restarted once)\n", rss_before,
                rss_after);
    EXPECT_LT(rss_after, 100 * 1024 + kSanitizerRssSlackKib);
    h.pub_cli(h.base() + "/request/status", R"({"transaction":"still-here"})");
    EXPECT_FALSE(
        h.wait_for(h.base() + "/response/status", txn_is("still-here"), 10s).topic.empty());
}

// 10,000 requests a second from the dashboard user (5 s; 30 s with PHOTORIG_SOAK=1): the
// agent's queue and memory stay bounded, the excess is refused rate_limited without the
// answers becoming a flood, and a capture right after works.
TEST(Floods, RequestFloodIsRateLimitedAndTheAgentStaysResponsive) {
    RigHarness h(fast_telemetry());
    h.start_all();
    const int seconds = std::getenv("PHOTORIG_SOAK") ? 30 : 5;
    const pid_t agent = h.agent().pid();
    const long rss_before = rss_kib(agent);
    MessageQueue<mqtt::Event> events;
    auto flooder = h.connect_as("photorig-dashboard", "floods-flooder", events);
    const std::string topic = h.base() + "/request/status";
    long rss_peak = rss_before;
    uint64_t sent = 0;
    const auto start = Clock::now();
    while (Clock::now() - start < std::chrono::seconds(seconds)) {
        // 10 every millisecond: 10,000 a second.
        const auto due = start + std::chrono::microseconds(sent * 100);
        if (Clock::now() < due) std::this_thread::sleep_until(due);
        for (int k = 0; k < 10; ++k, ++sent)
            flooder->publish_nowait(
                mqtt::Message{topic, R"({"transaction":"flood"})", 0, false, "", ""}, false);
        if (sent % 10000 == 0) rss_peak = std::max(rss_peak, rss_kib(agent));
    }
    const double flood_s = std::chrono::duration<double>(Clock::now() - start).count();
    const size_t telemetry_seen = h.received(h.base() + "/telemetry").size();
    // Right after: a capture is answered.
    const auto t0 = Clock::now();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"after-flood"})");
    auto cap = h.wait_for(h.base() + "/response/capture", txn_is("after-flood"),
                          30s * kSanitizerTimeFactor);
    const double capture_s = std::chrono::duration<double>(Clock::now() - t0).count();
    rss_peak = std::max(rss_peak, rss_kib(agent));
    json t = telemetry_after(h, telemetry_seen, 10s);
    ASSERT_TRUE(t.is_object());
    size_t rate_limited_answers = 0, ok_answers = 0;
    for (const auto& r : h.received(h.base() + "/response/status")) {
        if (error_code(r) == "rate_limited") ++rate_limited_answers;
        if (parse(r.payload)["status"] == "ok") ++ok_answers;
    }
    std::printf(
        "flood: %llu status requests in %.1f s; answered ok %zu, rate_limited %zu; telemetry: "
        "rate_limited %s, queue_full %s, unanswered %s, request_queue_peak %s, dropped %s; "
        "agent RSS %ld KiB -> peak %ld KiB; capture after the flood answered in %.2f s\n",
        (unsigned long long)sent, flood_s, ok_answers, rate_limited_answers,
        t["requests_rate_limited_total"].dump().c_str(),
        t["requests_queue_full_total"].dump().c_str(),
        t["requests_unanswered_total"].dump().c_str(), t["request_queue_peak"].dump().c_str(),
        t["messages_dropped_total"].dump().c_str(), rss_before, rss_peak, capture_s);
    ASSERT_FALSE(cap.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(cap.payload)["status"], "ok") << cap.payload;
    EXPECT_LT(capture_s, 15.0 * kSanitizerTimeFactor) << "the capture after the flood waited";
    EXPECT_GT(t["requests_rate_limited_total"].get<uint64_t>(), 0u);
    EXPECT_LE(t["request_queue_peak"].get<uint64_t>(), 2000u);  // mqtt bound 1000, markers 1000
    EXPECT_LE(rss_peak - rss_before, 40 * 1024 + kSanitizerRssSlackKib) << "KiB of growth";
    // Answers to refusals are themselves rate-limited: at most 20 a second (plus the burst).
    EXPECT_GT(rate_limited_answers, 0u);
    EXPECT_LE(rate_limited_answers, size_t(20 * (flood_s + capture_s + 2) + 20));
    // Served ones: at most the status bucket (400 burst + 100 a second).
    EXPECT_LE(ok_answers, size_t(400 + 100 * (flood_s + capture_s + 2)));
}

// Issue 15 item 6: {"count":1000,"interval_ms":3600000} no longer holds the capture thread:
// another capture runs between its shots, capture/cancel stops it (answered `cancelled`
// with the shots taken), and the photo it took is kept.
TEST(Floods, LongIntervalCaptureLetsOthersRunAndIsCancelled) {
    RigHarness h(fast_telemetry());
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"long","count":1000,"interval_ms":3600000,"batch":"weeks"})");
    ASSERT_FALSE(h.wait_for(h.base() + "/capture", any, 15s).topic.empty()) << h.agent().log();
    const auto t0 = Clock::now();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"second"})");
    auto second = h.wait_for(h.base() + "/response/capture", txn_is("second"), 10s);
    const double second_s = std::chrono::duration<double>(Clock::now() - t0).count();
    ASSERT_FALSE(second.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(second.payload)["status"], "ok") << second.payload;
    // mosquitto_pub's own start (~0.1 s) is in there too.
    EXPECT_LT(second_s, 1.5) << "the second capture waited for the long one";
    std::printf("second capture during a long-interval one answered in %.2f s\n", second_s);

    h.pub_cli(h.base() + "/request/capture/cancel",
              R"({"transaction":"stop-it","capture_transaction":"long"})");
    auto cancel = h.wait_for(h.base() + "/response/capture/cancel", txn_is("stop-it"), 10s);
    ASSERT_FALSE(cancel.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(cancel.payload)["data"]["cancelled"], 1) << cancel.payload;
    auto long_answer = h.wait_for(h.base() + "/response/capture", txn_is("long"), 10s);
    ASSERT_FALSE(long_answer.topic.empty()) << h.agent().log();
    EXPECT_EQ(error_code(long_answer), "cancelled") << long_answer.payload;
    std::string message = parse(long_answer.payload)["error"]["message"];
    EXPECT_NE(message.find("after 1 of 1000 shots"), std::string::npos) << message;
    // Nothing left to cancel.
    h.pub_cli(h.base() + "/request/capture/cancel",
              R"({"transaction":"again","capture_transaction":"long"})");
    auto again = h.wait_for(h.base() + "/response/capture/cancel", txn_is("again"), 10s);
    EXPECT_EQ(parse(again.payload)["data"]["cancelled"], 0) << again.payload;
    EXPECT_EQ(h.received(h.base() + "/capture").size(), 2u);
}

// A lone camera's burst has its next shot posted before the last is collected: a cancel in
// the middle still keeps, publishes and names every shot taken (the one in flight too).
TEST(Floods, CancelDuringALoneCameraBurstKeepsEveryPhotoTaken) {
    RigHarness h(fast_telemetry());
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"burst","count":1000,"batch":"burst"})");
    ASSERT_FALSE(h.wait_for(h.base() + "/capture", any, 15s).topic.empty()) << h.agent().log();
    h.pub_cli(h.base() + "/request/capture/cancel", R"({"transaction":"stop-it","batch":"burst"})");
    auto answer = h.wait_for(h.base() + "/response/capture", txn_is("burst"), 30s);
    ASSERT_FALSE(answer.topic.empty()) << h.agent().log();
    ASSERT_EQ(error_code(answer), "cancelled") << answer.payload;
    const std::string message = parse(answer.payload)["error"]["message"];
    int shots = 0, kept = 0;
    ASSERT_EQ(std::sscanf(message.c_str(), "cancelled by capture/cancel after %d of 1000 shots (%d",
                          &shots, &kept),
              2)
        << message;
    EXPECT_GT(shots, 0) << message;
    EXPECT_LT(shots, 1000) << message;
    EXPECT_EQ(kept, shots) << "one photo per shot of the one camera: " << message;
    EXPECT_TRUE(h.wait_count(h.base() + "/capture", size_t(kept), any, 10s));
    EXPECT_TRUE(h.wait_count(h.base() + "/upload/jobs", size_t(kept), any, 10s));
    std::this_thread::sleep_for(300ms);  // nothing more follows the answer
    EXPECT_EQ(h.received(h.base() + "/capture").size(), size_t(kept)) << message;
    EXPECT_EQ(h.received(h.base() + "/upload/jobs").size(), size_t(kept)) << message;
}

// SIGTERM while a capture waits an hour for its next shot: the agent exits within 2 s.
TEST(Floods, SigtermDuringALongIntervalExitsWithinTwoSeconds) {
    RigHarness h(fast_telemetry());
    h.start_all();
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"long","count":1000,"interval_ms":3600000})");
    ASSERT_FALSE(h.wait_for(h.base() + "/capture", any, 15s).topic.empty()) << h.agent().log();
    std::this_thread::sleep_for(300ms);  // into the wait for shot 2
    const auto t0 = Clock::now();
    ::kill(h.agent().pid(), SIGTERM);
    const int code = h.agent().wait_exit(10s);
    const double exit_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("SIGTERM during a 1 h interval: exit %d after %.2f s\n", code, exit_s);
    EXPECT_EQ(code, 0) << h.agent().log();
    EXPECT_LT(exit_s, 2.0) << h.agent().log();
}

// Issue 15: the uploader's queue of received jobs had no bound. With upload.max_queued_jobs 1,
// jobs that waited at the broker while the uploader was down arrive in one burst and most
// are not taken; none is lost: the agent offers each again (spool.reoffer_after_s) until its
// photo is uploaded, and every photo is uploaded once.
TEST(Floods, UploaderJobQueueIsBoundedAndNoJobIsLost) {
    HarnessOptions o = fast_telemetry();
    o.upload_yaml = "  max_queued_jobs: 1\n";
    o.reoffer_after_s = 2;
    o.reconcile_interval_s = 1;
    RigHarness h(o);
    h.start_all();
    ASSERT_EQ(h.uploader().stop(), 0) << h.uploader().log();
    constexpr int kPhotos = 12;
    h.pub_cli(h.base() + "/request/capture",
              json{{"transaction", "burst"}, {"count", kPhotos}}.dump());
    const std::string jobs = h.base() + "/upload/jobs";
    ASSERT_TRUE(h.wait_count(jobs, size_t{kPhotos}, any, 60s)) << h.agent().log();
    h.start_uploader();
    std::set<std::string> done;
    const std::string events = h.base() + "/upload/events";
    wait_until(
        [&] {
            done.clear();
            for (const auto& m : h.received(events)) {
                json e = parse(m.payload);
                if (e.is_object() && e["type"] == "done") done.insert(e.value("job_id", ""));
            }
            return done.size() == size_t{kPhotos};
        },
        60s);
    std::printf("%d jobs after a restart with max_queued_jobs 1: %zu uploaded, %zu job offers\n",
                kPhotos, done.size(), h.received(jobs).size());
    EXPECT_EQ(done.size(), size_t{kPhotos}) << h.uploader().log();
    EXPECT_NE(h.uploader().log().find("job queue full (upload.max_queued_jobs 1)"),
              std::string::npos)
        << "the burst never found the queue full: the bound was not exercised\n"
        << h.uploader().log();
    EXPECT_GT(h.received(jobs).size(), size_t{kPhotos}) << "no job was offered again";
    size_t uploaded = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(h.upload_dir()))
        uploaded += e.is_regular_file() && e.path().filename().string()[0] != '.';
    EXPECT_EQ(uploaded, size_t{kPhotos});
}
