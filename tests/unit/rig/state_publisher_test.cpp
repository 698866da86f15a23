#include "rig/state_publisher.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_publisher.h"
#include "support/test_util.h"

using nlohmann::json;
using photorig::protocol::CameraRef;
using photorig::protocol::RigTopics;
using photorig::rig::RigStats;
using photorig::rig::StatePublisher;
using photorig::rig::StateSources;
using photorig::rig::test::FakePublisher;

namespace {
struct StateTest : ::testing::Test {
    StateTest() : spool(dir.path()) { EXPECT_TRUE(spool.init()); }
    StatePublisher make(bool discovery = true) {
        photorig::config::HomeAssistantConfig ha;
        ha.discovery = discovery;
        StateSources sources{[this] { return cameras; }, [this] { return busy; },
                             [this] { return pending; }, 4096, [this] { return health; }};
        return StatePublisher(pub, RigTopics("photorig", "rig1"), ha, spool, stats, sources, 1000);
    }
    photorig::test::TempDir dir;
    photorig::spool::Spool spool;
    FakePublisher pub;
    RigStats stats;
    std::vector<CameraRef> cameras{{"Sim", "SIM1", "ptpip:1", true}};
    std::vector<photorig::camera::CameraHealth> health{{}};
    bool busy = true;
    int pending = 3;
};
}  // namespace

TEST_F(StateTest, StateIsRetainedAndSaysWhatTheSourcesSay) {
    auto state = make(/*discovery=*/false);
    stats.set_last_error("camera SIM1: timeout");
    state.publish_state();
    auto got = pub.on("photorig/rig1/state");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].retain);
    json s = json::parse(got[0].message.payload);
    EXPECT_EQ(s["busy"], true);
    EXPECT_EQ(s["pending_requests"], 3);
    EXPECT_EQ(s["capture_queue"]["depth"], 3);
    EXPECT_EQ(s["capture_queue"]["max"], 4096);
    EXPECT_EQ(s["last_error"], "camera SIM1: timeout");
    EXPECT_EQ(s["cameras"].size(), 1u);
    EXPECT_EQ(pub.sent().size(), 1u);  // discovery off: nothing else
}

TEST_F(StateTest, AvailabilityIsRetainedOnlineOrOffline) {
    auto state = make();
    state.publish_availability(true);
    state.publish_availability(false);
    auto got = pub.on("photorig/rig1/availability");
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].message.payload, "online");
    EXPECT_EQ(got[1].message.payload, "offline");
    EXPECT_TRUE(got[0].retain && got[1].retain);
}

TEST_F(StateTest, TelemetryCountsAtQos0AndIsNotRetained) {
    auto state = make();
    stats.photos_total = 5;
    stats.jobs_reoffered = 2;
    state.publish_telemetry(61'000);
    auto got = pub.on("photorig/rig1/telemetry");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].message.qos, 0);
    EXPECT_FALSE(got[0].retain);
    EXPECT_NE(got[0].message.payload.find("\"photos_total\":5"), std::string::npos)
        << got[0].message.payload;
    EXPECT_NE(got[0].message.payload.find("\"uptime_s\":60"), std::string::npos);
}

TEST_F(StateTest, TelemetryCarriesTheTimeSpentPerStage) {
    auto state = make();
    stats.stage_us.event_wait += 1500;
    stats.stage_us.commit += 700;
    stats.stage_us.publish += 42;
    state.publish_telemetry(1'000);
    auto got = pub.on("photorig/rig1/telemetry");
    ASSERT_EQ(got.size(), 1u);
    const std::string& p = got[0].message.payload;
    for (const char* stage : {"trigger", "event_wait", "download", "hash", "camera_delete",
                              "commit", "exif", "sidecar", "publish"}) {
        EXPECT_NE(p.find(std::string("\"stage_") + stage + "_us_total\":"), std::string::npos)
            << stage << " in " << p;
    }
    EXPECT_NE(p.find("\"stage_event_wait_us_total\":1500"), std::string::npos) << p;
    EXPECT_NE(p.find("\"stage_commit_us_total\":700"), std::string::npos) << p;
    EXPECT_NE(p.find("\"stage_publish_us_total\":42"), std::string::npos) << p;
}

TEST_F(StateTest, DiscoveryIsRepublishedWhenTheCamerasChange) {
    auto state = make();
    const std::string topic = "homeassistant/device/rig1/config";
    state.publish_discovery();
    ASSERT_EQ(pub.on(topic).size(), 1u);
    EXPECT_TRUE(pub.on(topic)[0].retain);
    state.publish_state();
    EXPECT_EQ(pub.on(topic).size(), 1u);  // same cameras: no new discovery
    cameras.push_back({"Sim", "SIM2", "ptpip:2", true});
    state.publish_state();
    EXPECT_EQ(pub.on(topic).size(), 2u);
}

TEST_F(StateTest, DiscoverySwitchedOffIsClearedOnce) {
    auto state = make(/*discovery=*/false);
    state.publish_discovery();
    state.publish_discovery();
    auto got = pub.on("homeassistant/device/rig1/config");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].message.payload, "");
    EXPECT_TRUE(got[0].retain);
}

TEST_F(StateTest, CamerasAreAnnouncedOnceAndTheirComingAndGoingIsAnEvent) {
    auto state = make();
    cameras.push_back({"Sim", "", "usb:", false});  // never connected: not announced
    state.watch_cameras();
    auto avail = pub.on("photorig/rig1/camera/SIM1/availability");
    ASSERT_EQ(avail.size(), 1u);
    EXPECT_EQ(avail[0].message.payload, "online");
    EXPECT_TRUE(avail[0].retain);
    EXPECT_TRUE(pub.on("photorig/rig1/event").empty());  // start-up: no event
    state.watch_cameras();
    EXPECT_EQ(pub.sent().size(), 1u);  // unchanged: nothing

    cameras[0].connected = false;
    state.watch_cameras();
    avail = pub.on("photorig/rig1/camera/SIM1/availability");
    ASSERT_EQ(avail.size(), 2u);
    EXPECT_EQ(avail[1].message.payload, "offline");
    auto events = pub.on("photorig/rig1/event");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_NE(events[0].message.payload.find("camera_disconnected"), std::string::npos);
    EXPECT_FALSE(events[0].retain);

    state.forget_announced_cameras();  // a reconnection announces again
    state.watch_cameras();
    EXPECT_EQ(pub.on("photorig/rig1/camera/SIM1/availability").size(), 3u);
    EXPECT_EQ(pub.on("photorig/rig1/event").size(), 2u);  // first and offline: an event
}

TEST_F(StateTest, NothingIsWatchedWhileDisconnected) {
    auto state = make();
    pub.connected_ = false;
    state.watch_cameras();
    EXPECT_TRUE(pub.sent().empty());
}

// A worker that declares its camera stuck (re-opens, USB reset, one more) gives one
// camera_stuck event per stuck spell, sent once the broker is there.
TEST_F(StateTest, AStuckCameraIsOneCameraStuckEventPerSpell) {
    auto state = make(/*discovery=*/false);
    auto stuck_events = [&] {
        std::vector<FakePublisher::Sent> out;
        for (const auto& m : pub.on("photorig/rig1/event"))
            if (json::parse(m.message.payload)["type"] == "camera_stuck") out.push_back(m);
        return out;
    };
    cameras[0].connected = false;
    state.watch_cameras();
    pub.connected_ = false;
    health[0] = {4, 1, "not a USB camera", "connect: timeout"};
    state.watch_cameras();
    EXPECT_TRUE(stuck_events().empty());
    pub.connected_ = true;
    state.watch_cameras();
    state.watch_cameras();
    auto got = stuck_events();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(got[0].retain);
    EXPECT_EQ(got[0].message.qos, 1);
    json e = json::parse(got[0].message.payload);
    EXPECT_EQ(e["type"], "camera_stuck");
    EXPECT_EQ(e["camera"]["serial"], "SIM1");
    EXPECT_EQ(e["camera"]["port"], "ptpip:1");
    EXPECT_EQ(e["attempts"], 4);
    EXPECT_EQ(e["usb_reset"], "not a USB camera");
    EXPECT_EQ(e["message"], "connect: timeout");
    health[0].stuck_reports = 2;  // stuck again after a recovery
    state.watch_cameras();
    EXPECT_EQ(stuck_events().size(), 2u);
}
