#include "protocol/topics.h"

#include <gtest/gtest.h>

namespace photorig::protocol {
namespace {

TEST(RigTopics, SpellsEveryTopicOfTheInterfaceUnderTheBase) {
    RigTopics t("photorig", "rig1");
    EXPECT_EQ(t.base(), "photorig/rig1");
    EXPECT_EQ(t.availability(), "photorig/rig1/availability");
    EXPECT_EQ(t.state(), "photorig/rig1/state");
    EXPECT_EQ(t.telemetry(), "photorig/rig1/telemetry");
    EXPECT_EQ(t.event(), "photorig/rig1/event");
    EXPECT_EQ(t.broker_probe(), "photorig/rig1/_probe/broker");
    EXPECT_EQ(t.capture(), "photorig/rig1/capture");
    EXPECT_EQ(t.camera_availability("SN1"), "photorig/rig1/camera/SN1/availability");
    EXPECT_EQ(t.preview(), "photorig/rig1/preview");
    EXPECT_EQ(t.preview("SN1"), "photorig/rig1/preview/SN1");
    EXPECT_EQ(t.request("config/get"), "photorig/rig1/request/config/get");
    EXPECT_EQ(t.request_filter(), "photorig/rig1/request/#");
    EXPECT_EQ(t.response("capture"), "photorig/rig1/response/capture");
    EXPECT_EQ(t.upload_jobs(), "photorig/rig1/upload/jobs");
    EXPECT_EQ(t.upload_events(), "photorig/rig1/upload/events");
    EXPECT_EQ(t.uploader_availability(), "photorig/rig1/uploader/availability");
    EXPECT_EQ(t.uploader_state(), "photorig/rig1/uploader/state");
    EXPECT_EQ(t.scan_move(), "photorig/rig1/scan/move");
    EXPECT_EQ(t.scan_ready(), "photorig/rig1/scan/ready");
    EXPECT_EQ(t.scan_progress(), "photorig/rig1/scan/progress");
    EXPECT_EQ(t.scan_state(), "photorig/rig1/scan/state");
    EXPECT_EQ(t.group_request("left", "capture"), "photorig/group/left/request/capture");
    EXPECT_EQ(t.group_request_filter("left"), "photorig/group/left/request/#");
    EXPECT_EQ(ha_status_topic("homeassistant"), "homeassistant/status");
    EXPECT_EQ(ha_discovery_topic("homeassistant", "rig1"), "homeassistant/device/rig1/config");
}

TEST(RigTopics, FindsTheVerbOfOwnAndGroupRequestsOnly) {
    RigTopics t("studio/a", "rig1");
    EXPECT_EQ(t.request_verb("studio/a/rig1/request/capture"), "capture");
    EXPECT_EQ(t.request_verb("studio/a/rig1/request/config/set"), "config/set");
    EXPECT_EQ(t.request_verb("studio/a/group/left/request/capture"), "capture");
    EXPECT_EQ(t.request_verb("studio/a/rig1/request/"), "");
    EXPECT_FALSE(t.request_verb("studio/a/rig2/request/capture"));
    EXPECT_FALSE(t.request_verb("studio/a/rig1/response/capture"));
    EXPECT_FALSE(t.request_verb("studio/a/group//request/capture"));
    EXPECT_FALSE(t.request_verb("studio/a/group/left/response/capture"));
    EXPECT_FALSE(t.request_verb("other/rig1/request/capture"));
}

TEST(FleetTopics, SplitsATopicIntoRigAndSubtopic) {
    FleetTopics fleet("photorig");
    EXPECT_EQ(fleet.any_rig(subtopics::state), "photorig/+/state");
    EXPECT_EQ(fleet.rig("r2").state(), "photorig/r2/state");
    auto parts = fleet.split("photorig/r2/uploader/state");
    ASSERT_TRUE(parts);
    EXPECT_EQ(parts->rig_id, "r2");
    EXPECT_EQ(parts->subtopic, subtopics::uploader_state);
    EXPECT_FALSE(fleet.split("photorig/r2"));
    EXPECT_FALSE(fleet.split("photorigx/r2/state"));
    EXPECT_FALSE(fleet.split("other/r2/state"));
}

}  // namespace
}  // namespace photorig::protocol
