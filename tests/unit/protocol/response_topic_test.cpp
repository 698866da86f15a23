// Where a request's v5 Response Topic may point, and topic_level(): the two guards that
// keep requesters and cameras from choosing the topics the agent publishes on.
#include "protocol/response_topic.h"

#include <gtest/gtest.h>

#include <vector>

#include "protocol/topics.h"

namespace photorig::protocol {
namespace {

const ResponseTopicPolicy kPolicy =
    response_topic_policy("photorig", "rig1", "homeassistant", {"photorig/+/dash/#"});

bool allowed(const std::string& t) {
    return static_cast<bool>(check_response_topic(t, kPolicy));
}

TEST(ResponseTopic, AllowsTheRigsResponseTreeAndForeignTopics) {
    EXPECT_TRUE(allowed("photorig/rig1/response/client-7/capture"));
    EXPECT_TRUE(allowed("app/replies/42"));
    EXPECT_TRUE(allowed("photorig/rig2/dash/x"));  // mqtt.response_topic_allow
    EXPECT_TRUE(allowed("photorigs/x"));           // a different first level
}

TEST(ResponseTopic, RefusesWildcardsControlsBadUtf8AndLength) {
    for (const std::string& t :
         std::vector<std::string>{"x/#", "x/+/y", "#", std::string("a\0b", 3), "a\nb", "a\xE9",
                                  std::string(kMaxResponseTopicBytes + 1, 'a')}) {
        auto st = check_response_topic(t, kPolicy);
        ASSERT_FALSE(st) << t;
        EXPECT_EQ(st.error().code, "bad_request");
    }
}

TEST(ResponseTopic, RefusesEveryReservedTree) {
    for (const char* t :
         {"photorig/rig1/upload/jobs", "photorig/rig1/scan/move", "photorig/rig2/response/x",
          "photorig/rig1/response/", "photorig", "homeassistant/device/rig1/config", "$SYS/x"})
        EXPECT_FALSE(allowed(t)) << t;
}

TEST(ResponseTopic, FilterMatchingFollowsMqtt) {
    EXPECT_TRUE(topic_matches("a/+/c", "a/b/c"));
    EXPECT_FALSE(topic_matches("a/+/c", "a/b/c/d"));
    EXPECT_TRUE(topic_matches("a/#", "a/b/c"));
    EXPECT_TRUE(topic_matches("a/#", "a"));
    EXPECT_FALSE(topic_matches("#", "$SYS/x"));
    EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/x"));
}

TEST(TopicLevel, EscapesWhatCannotBeATopicLevelAndKeepsTheRest) {
    EXPECT_EQ(topic_level("SIM0001"), "SIM0001");
    EXPECT_EQ(topic_level("ab#c+/d"), "ab%23c%2B%2Fd");
    EXPECT_EQ(topic_level("50%"), "50%25");
    EXPECT_EQ(topic_level(std::string("a\0b\x7f", 4)), "a%00b%7F");
    EXPECT_EQ(topic_level("Caf\xC3\xA9"), "Caf\xC3\xA9");  // valid UTF-8 stays
    EXPECT_EQ(topic_level("x\xE9y"), "x%E9y");             // invalid byte
    EXPECT_EQ(topic_level("\xC2\x85"), "%C2%85");          // C1 control (NEL)
    RigTopics t("photorig", "rig1");
    EXPECT_EQ(t.camera_availability("ab#c+/d"), "photorig/rig1/camera/ab%23c%2B%2Fd/availability");
    EXPECT_EQ(t.preview("a+b"), "photorig/rig1/preview/a%2Bb");
}

}  // namespace
}  // namespace photorig::protocol
