// The camera section of the configuration: the single-camera form of today, the list form,
// named presets and the capture target.
#include <gtest/gtest.h>

#include <algorithm>

#include "config/config.h"

namespace {
using photorig::config::parse;

std::string error_of(const std::string& yaml, const std::map<std::string, std::string>& env = {}) {
    auto c = parse(yaml, env);
    EXPECT_FALSE(c.has_value()) << "expected an error for:\n" << yaml;
    return c ? "" : c.error().message;
}

TEST(CameraConfig, SingleFormStillWorksAndGivesOneCamera) {
    auto c =
        parse("camera: {port: \"ptpip:10.0.0.5:15740:15740\", model: \"PTP/IP Camera\"}\n", {});
    ASSERT_TRUE(c) << c.error().describe();
    ASSERT_EQ(c->cameras.size(), 1u);
    EXPECT_EQ(c->cameras[0].port, "ptpip:10.0.0.5:15740:15740");
    EXPECT_EQ(c->camera.model, "PTP/IP Camera");
    EXPECT_TRUE(c->cameras[0].delete_from_camera);
    auto d = parse("", {});
    ASSERT_TRUE(d);
    ASSERT_EQ(d->cameras.size(), 1u);
    EXPECT_EQ(d->cameras[0].port, "auto");
}

TEST(CameraConfig, ListFormWithPresetsCaptureTargetAndKeepOnCard) {
    auto c = parse(R"(
camera_presets:
  studio: {iso: "400", f-number: f/8}
  fast: {shutterspeed: "0.0010s"}
camera:
  - {port: "ptpip:127.0.0.1:4000:4000", model: "PTP/IP Camera", preset: studio, capture_target: ram}
  - port: auto
    serial: CAM-B
    delete_from_camera: false
    capture_timeout_ms: 5000
)",
                   {{"PHOTORIG_CAMERA_KEEPALIVE_MS", "500"}});
    ASSERT_TRUE(c) << c.error().describe();
    ASSERT_EQ(c->cameras.size(), 2u);
    EXPECT_EQ(c->cameras[0].preset, "studio");
    EXPECT_EQ(c->cameras[0].capture_target, "ram");
    EXPECT_EQ(c->cameras[1].serial, "CAM-B");
    EXPECT_FALSE(c->cameras[1].delete_from_camera);
    EXPECT_EQ(c->cameras[1].capture_timeout_ms, 5000);
    EXPECT_EQ(c->cameras[0].keepalive_ms, 500);  // env overrides reach every item
    EXPECT_EQ(c->cameras[1].keepalive_ms, 500);
    EXPECT_EQ(c->camera.port, c->cameras[0].port);
    const auto& studio = c->camera_presets.at("studio");
    ASSERT_EQ(studio.size(), 2u);
    EXPECT_EQ(studio[0], (std::pair<std::string, std::string>{"iso", "400"}));
    EXPECT_EQ(studio[1], (std::pair<std::string, std::string>{"f-number", "f/8"}));
}

TEST(CameraConfig, ErrorsNameTheItemAndKey) {
    EXPECT_NE(error_of("camera:\n  - {port: auto, prot: 1}\n").find("camera.prot"),
              std::string::npos);
    EXPECT_NE(error_of("camera:\n  - {port: auto}\n  - {port: auto, capture_target: sd}\n")
                  .find("camera[1].capture_target"),
              std::string::npos);
    EXPECT_NE(error_of("camera: {preset: nope}\n").find("camera.preset"), std::string::npos);
    EXPECT_NE(error_of("camera:\n  - {port: \"ptpip:1.2.3.4\"}\n  - {port: \"ptpip:1.2.3.4\"}\n")
                  .find("listed twice"),
              std::string::npos);
    EXPECT_NE(error_of("camera: []\n").find("empty"), std::string::npos);
    EXPECT_NE(error_of("camera:\n  - auto\n").find("camera[0]"), std::string::npos);
    EXPECT_NE(error_of("camera_presets: {studio: [iso]}\n").find("camera_presets.studio"),
              std::string::npos);
}
}  // namespace

TEST(CameraConfig, StuckAfterReinitsDefaultsToThreeTakesZeroForNeverAndRefusesNegatives) {
    auto d = parse("", {});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->cameras[0].stuck_after_reinits, 3);
    auto c = parse("camera:\n  - {port: auto, stuck_after_reinits: 0}\n  - {port: auto}\n",
                   {{"PHOTORIG_CAMERA_STUCK_AFTER_REINITS", "5"}});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->cameras[1].stuck_after_reinits, 5);  // env overrides reach every item
    std::string e = error_of("camera: {stuck_after_reinits: -1}\n");
    EXPECT_NE(e.find("camera.stuck_after_reinits"), std::string::npos) << e;
    auto keys = photorig::config::all_keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), "camera.stuck_after_reinits"), keys.end());
}
