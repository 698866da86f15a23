// Issue 14 (fleet), the rig's side: requests redelivered within the MQTT session are not
// carried out twice, stale ones are refused (expired, too_late), the clock's NTP status
// warns a capture_at request and shows in `state` with the bridge's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error_codes.h"
#include "fake_publisher.h"
#include "protocol/wire.h"
#include "rig/request_dedupe.h"
#include "rig/request_router.h"
#include "rig/request_timing.h"
#include "rig/state_publisher.h"
#include "support/test_util.h"

using nlohmann::json;
using photorig::Expected;
using photorig::clock::SyncStatus;
using photorig::mqtt::Message;
using photorig::protocol::RigTopics;
using photorig::rig::RequestDedupe;
using photorig::rig::RequestRouter;
using photorig::rig::Responder;
using photorig::rig::RigStats;
using photorig::rig::test::FakePublisher;
namespace codes = photorig::codes;

TEST(RequestDedupe, ARedeliveredRequestWithATransactionIsKnownOnce) {
    RequestDedupe d;
    const std::string topic = "photorig/rig1/request/capture";
    EXPECT_FALSE(d.is_redelivery(topic, R"({"transaction":"a"})", true, false, 1000));
    // The broker resends it (DUP) after a reconnect, or a bridge resends it (no DUP).
    EXPECT_TRUE(d.is_redelivery(topic, R"({"transaction":"a"})", true, true, 2000));
    EXPECT_TRUE(d.is_redelivery(topic, R"({"transaction":"a"})", true, false, 3000));
    // Another transaction, or the same one on another topic, is another request.
    EXPECT_FALSE(d.is_redelivery(topic, R"({"transaction":"b"})", true, false, 3000));
    EXPECT_FALSE(d.is_redelivery("photorig/group/g/request/capture", R"({"transaction":"a"})", true,
                                 false, 3000));
}

TEST(RequestDedupe, WithoutATransactionOnlyADupFlaggedCopyIsARedelivery) {
    RequestDedupe d;
    const std::string topic = "photorig/rig1/request/capture";
    EXPECT_FALSE(d.is_redelivery(topic, "", false, false, 1000));
    EXPECT_FALSE(d.is_redelivery(topic, "", false, false, 1001));  // a second button press
    EXPECT_TRUE(d.is_redelivery(topic, "", false, true, 1002));    // the broker's resend
}

TEST(RequestDedupe, MemoryIsBoundedByCountAndWindow) {
    RequestDedupe d(/*capacity=*/100, /*window_ms=*/10000);
    const std::string topic = "photorig/rig1/request/capture";
    for (int i = 0; i < 1000; ++i)
        EXPECT_FALSE(d.is_redelivery(topic, std::to_string(i), true, false, 1000 + i));
    EXPECT_LE(d.remembered(), 100u);
    EXPECT_TRUE(d.is_redelivery(topic, "999", true, false, 2000));    // recent: remembered
    EXPECT_FALSE(d.is_redelivery(topic, "0", true, false, 2000));     // pushed out by count
    EXPECT_FALSE(d.is_redelivery(topic, "999", true, false, 20000));  // older than the window
    EXPECT_LE(d.remembered(), 100u);
}

TEST(RequestTiming, ExpiresAtInThePastIsExpired) {
    EXPECT_TRUE(photorig::rig::check_not_expired(std::nullopt, 5000));
    EXPECT_TRUE(photorig::rig::check_not_expired(5000, 5000));
    auto st = photorig::rig::check_not_expired(4999, 5000);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, codes::expired);
}

TEST(RequestTiming, CaptureAtPastTheToleranceIsTooLate) {
    EXPECT_TRUE(photorig::rig::check_not_too_late(std::nullopt, 5000, 500));
    EXPECT_TRUE(photorig::rig::check_not_too_late(4500, 5000, 500));  // within tolerance
    EXPECT_TRUE(photorig::rig::check_not_too_late(9000, 5000, 500));  // in the future
    auto st = photorig::rig::check_not_too_late(4499, 5000, 500);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, codes::too_late);
}

TEST(RequestTiming, CaptureAtOnAnUnsyncedClockWarnsClockUnsynced) {
    const SyncStatus synced{true, 120, 4000};
    const SyncStatus unsynced{false, 0, 16000000};
    EXPECT_TRUE(photorig::rig::capture_warnings(123456, synced).empty());
    EXPECT_TRUE(photorig::rig::capture_warnings(std::nullopt, unsynced).empty());  // no capture_at
    auto w = photorig::rig::capture_warnings(123456, unsynced);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].code, codes::clock_unsynced);
    // As it goes on the wire: beside "data", status still ok.
    json r = json::parse(photorig::protocol::response_ok("\"t\"", R"({"batch":"b"})", w));
    EXPECT_EQ(r["status"], "ok");
    ASSERT_EQ(r["warnings"].size(), 1u);
    EXPECT_EQ(r["warnings"][0]["code"], "clock_unsynced");
    EXPECT_FALSE(r["warnings"][0]["message"].get<std::string>().empty());
    EXPECT_FALSE(
        json::parse(photorig::protocol::response_ok("\"t\"", "{}", {})).contains("warnings"));
}

TEST(RequestTiming, TheKernelClockStatusReads) {
    // In a container ntp_adjtime usually says unsynced; either way the errors are numbers >= 0.
    SyncStatus s = photorig::clock::read_sync_status();
    EXPECT_GE(s.max_error_us, 0);
    EXPECT_GE(s.est_error_us, 0);
}

namespace {
struct FleetRouterTest : ::testing::Test {
    FleetRouterTest()
        : responder(pub, RigTopics("photorig", "rig1")), router(responder, {}, stats) {
        router.set_clock([this] { return now; });
        router.add("capture",
                   [this](const Message&, const std::string&,
                          const std::string&) -> Expected<std::optional<std::string>> {
                       ++captures;
                       return std::optional<std::string>("{}");
                   });
    }
    json last_response() {
        auto got = pub.on("photorig/rig1/response/capture");
        return got.empty() ? json() : json::parse(got.back().message.payload);
    }
    FakePublisher pub;
    RigStats stats;
    Responder responder;
    RequestRouter router;
    int64_t now = 1'800'000'000'000;
    int captures = 0;
};
}  // namespace

TEST_F(FleetRouterTest, ARequestPastItsExpiresAtIsAnsweredExpiredAndNotCarriedOut) {
    const std::string topic = "photorig/rig1/request/capture";
    router.handle(Message{topic, json{{"transaction", "old"}, {"expires_at", now - 1}}.dump(), 1,
                          false, "", ""},
                  "capture");
    EXPECT_EQ(captures, 0);
    EXPECT_EQ(last_response()["error"]["code"], "expired");
    EXPECT_EQ(last_response()["transaction"], "old");
    router.handle(Message{topic, json{{"transaction", "new"}, {"expires_at", now + 1000}}.dump(), 1,
                          false, "", ""},
                  "capture");
    EXPECT_EQ(captures, 1);
    EXPECT_EQ(last_response()["status"], "ok");
    // A malformed expires_at is refused like a malformed capture_at.
    router.handle(Message{topic, R"({"transaction":"bad","expires_at":"soon"})", 1, false, "", ""},
                  "capture");
    EXPECT_EQ(last_response()["error"]["code"], "bad_request");
    router.handle(Message{topic, R"({"transaction":"neg","expires_at":-5})", 1, false, "", ""},
                  "capture");
    EXPECT_EQ(last_response()["error"]["code"], "out_of_range");
    EXPECT_EQ(captures, 1);
}

TEST_F(FleetRouterTest, ARedeliveredCaptureIsCarriedOutOnce) {
    Message m{"photorig/rig1/request/capture", R"({"transaction":"once"})", 1, false, "", ""};
    router.handle(m, "capture");
    m.duplicate = true;
    router.handle(m, "capture");
    EXPECT_EQ(captures, 1);
    EXPECT_EQ(pub.on("photorig/rig1/response/capture").size(), 1u);
    EXPECT_EQ(stats.requests_duplicate_total, 1u);
}

TEST(FleetState, StateCarriesTheClockAndTheBridgeWhenKnown) {
    photorig::test::TempDir dir;
    photorig::spool::Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    FakePublisher pub;
    RigStats stats;
    std::optional<photorig::protocol::AgentState::Bridge> bridge;
    SyncStatus clock{false, 0, 16000000};
    photorig::rig::StateSources sources;
    sources.cameras = [] { return std::vector<photorig::protocol::CameraRef>{}; };
    sources.capture_busy = [] { return false; };
    sources.pending_orders = [] { return 0; };
    sources.capture_queue_max = 10;
    photorig::config::HomeAssistantConfig ha;
    ha.discovery = false;
    photorig::rig::StatePublisher state(pub, RigTopics("photorig", "rig1"), ha, spool, stats,
                                        sources, 1000);
    state.set_clock_source([&] { return clock; });
    state.set_bridge_source([&] { return bridge; });
    state.publish_state();
    json s = json::parse(pub.on("photorig/rig1/state").back().message.payload);
    EXPECT_EQ(s["clock"],
              (json{{"synced", false}, {"est_error_us", 0}, {"max_error_us", 16000000}}));
    EXPECT_FALSE(s.contains("bridge"));  // never seen: no bridge configured
    clock = SyncStatus{true, 250, 3000};
    bridge = photorig::protocol::AgentState::Bridge{true, 1765000000000};
    state.publish_state();
    s = json::parse(pub.on("photorig/rig1/state").back().message.payload);
    EXPECT_EQ(s["clock"]["synced"], true);
    EXPECT_EQ(s["clock"]["est_error_us"], 250);
    EXPECT_EQ(s["bridge"], (json{{"connected", true}, {"since", 1765000000000}}));
}

TEST(FleetResponder, AnAnswerGivenWhileOfflineIsHeldAndSentOnceBackOnline) {
    FakePublisher pub;
    Responder responder(pub, RigTopics("photorig", "rig1"));
    pub.connected_ = false;
    responder.respond("capture", "", "", R"({"status":"ok","transaction":"a"})");
    responder.respond("status", "", "", R"({"status":"ok","transaction":"b"})");
    EXPECT_TRUE(pub.sent().empty()) << "publish_nowait would have dropped it";
    EXPECT_EQ(responder.send_held(), 0u);  // still offline
    pub.connected_ = true;
    EXPECT_EQ(responder.send_held(), 2u);
    ASSERT_EQ(pub.sent().size(), 2u);
    EXPECT_EQ(pub.sent()[0].message.topic, "photorig/rig1/response/capture");
    EXPECT_EQ(pub.sent()[1].message.topic, "photorig/rig1/response/status");
    EXPECT_EQ(responder.send_held(), 0u);        // each once
    responder.respond("capture", "", "", "{}");  // online: at once
    EXPECT_EQ(pub.sent().size(), 3u);
}
