#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
const std::string kDiscovery = "homeassistant/device/rig1/config";

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

bool is_discovery(const Received& r) {
    return parse(r.payload).is_object();
}

HarnessOptions watching_homeassistant(std::string extra_yaml = "") {
    HarnessOptions o;
    o.extra_subscriptions = {"homeassistant/#"};
    o.extra_yaml = std::move(extra_yaml);
    return o;
}
}  // namespace

TEST(HomeAssistant, RetainedDiscoveryAtStartAndAgainOnBirthMessage) {
    RigHarness h(watching_homeassistant());
    h.start_all();
    auto first = h.wait_for(kDiscovery, is_discovery, 10s);
    ASSERT_FALSE(first.topic.empty()) << "no discovery message";
    json d = parse(first.payload);
    EXPECT_TRUE(d["cmps"].contains("camera_sim0001"));
    EXPECT_EQ(d["availability"][0]["topic"], h.base() + "/availability");

    // A client that connects later (Home Assistant after a restart) finds it retained.
    auto sub =
        run_command({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(h.broker_port()),
                     "-t", kDiscovery, "-C", "1", "-W", "5", "-v"},
                    10s, h.dashboard_cli_env());
    EXPECT_EQ(sub.exit_code, 0) << sub.output;
    EXPECT_NE(sub.output.find("\"cmps\""), std::string::npos);

    // Home Assistant's birth message makes the rig publish discovery again.
    h.clear_received();
    h.pub_cli("homeassistant/status", "online");
    EXPECT_FALSE(h.wait_for(kDiscovery, is_discovery, 10s).topic.empty())
        << "no re-publish on birth message";
    // "offline" (Home Assistant's last will) asks for nothing.
    h.clear_received();
    h.pub_cli("homeassistant/status", "offline");
    std::this_thread::sleep_for(1s);
    EXPECT_TRUE(h.received(kDiscovery).empty());
}

TEST(HomeAssistant, EntitiesReadWhatTheRigPublishesAndTheButtonCaptures) {
    RigHarness h(watching_homeassistant());
    h.start_all();
    json d = parse(h.wait_for(kDiscovery, is_discovery, 10s).payload);
    ASSERT_TRUE(d.is_object());

    // Press the capture button the way Home Assistant does: its payload on its topic.
    const json& button = d["cmps"]["capture"];
    h.pub_cli(button["command_topic"], button["payload_press"]);
    auto resp = h.wait_for(
        h.base() + "/response/capture", [](const Received&) { return true; }, 30s);
    ASSERT_FALSE(resp.topic.empty());
    EXPECT_EQ(parse(resp.payload)["status"], "ok");

    // The sensors' state topic then reports the photo (photos_today, last_capture_at).
    bool counted = h.wait_count(
        h.base() + "/state", 1,
        [](const Received& r) {
            json s = parse(r.payload);
            return s.is_object() && s["photos_today"] == 1 && s["last_capture_at"].is_string();
        },
        10s);
    EXPECT_TRUE(counted) << "state never showed photos_today = 1 with a last_capture_at";
    // The camera's preview button fills the image entity's topic with a JPEG.
    const json& preview = d["cmps"]["preview_sim0001"];
    h.pub_cli(preview["command_topic"], preview["payload_press"]);
    std::string image_topic = d["cmps"]["preview"]["image_topic"];
    auto image = h.wait_for(
        image_topic, [](const Received& r) { return r.payload.size() > 2; }, 15s);
    ASSERT_FALSE(image.topic.empty()) << "no preview image";
    EXPECT_EQ(static_cast<unsigned char>(image.payload[0]), 0xFF);
    EXPECT_EQ(static_cast<unsigned char>(image.payload[1]), 0xD8);
    // The upload queue sensor's topic is the uploader's retained state.
    std::string uploader_topic = d["cmps"]["upload_queue"]["state_topic"];
    EXPECT_FALSE(h.wait_for(
                      uploader_topic,
                      [](const Received& r) { return parse(r.payload).contains("queue_depth"); },
                      10s)
                     .topic.empty());
}

TEST(HomeAssistant, DiscoverySwitchedOffClearsTheRetainedMessage) {
    RigHarness h(watching_homeassistant("homeassistant:\n  discovery: false\n"));
    h.start_all();
    auto cleared = h.wait_for(
        kDiscovery, [](const Received& r) { return r.payload.empty(); }, 10s);
    EXPECT_FALSE(cleared.topic.empty()) << "the retained discovery was not cleared";
    h.pub_cli("homeassistant/status", "online");
    std::this_thread::sleep_for(1s);
    for (const auto& r : h.received(kDiscovery)) EXPECT_TRUE(r.payload.empty()) << r.payload;
}
