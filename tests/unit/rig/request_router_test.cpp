#include "rig/request_router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_publisher.h"

using nlohmann::json;
using photorig::Error;
using photorig::Expected;
using photorig::make_error;
using photorig::mqtt::Message;
using photorig::protocol::RigTopics;
using photorig::rig::RequestRouter;
using photorig::rig::Responder;
using photorig::rig::RigStats;
using photorig::rig::test::FakePublisher;

namespace {
struct RouterTest : ::testing::Test {
    RouterTest()
        : responder(pub, RigTopics("photorig", "rig1")), router(responder, limits(), stats) {}
    static photorig::protocol::Limits limits() {
        photorig::protocol::Limits l;
        l.max_payload_bytes = 1024;
        return l;
    }
    static Message request(const std::string& payload, bool retained = false) {
        return Message{"photorig/rig1/request/x", payload, 1, retained, "", ""};
    }
    json only_response(const std::string& verb) {
        auto got = pub.on("photorig/rig1/response/" + verb);
        EXPECT_EQ(got.size(), 1u);
        EXPECT_EQ(pub.sent().size(), 1u);
        return got.empty() ? json() : json::parse(got.front().message.payload);
    }
    FakePublisher pub;
    RigStats stats;
    Responder responder;
    RequestRouter router;
};
}  // namespace

TEST_F(RouterTest, AnOkResultIsAnsweredOnTheVerbsResponseTopicWithTheTransaction) {
    router.add("status",
               [](const Message&, const std::string& verb,
                  const std::string& txn) -> Expected<std::optional<std::string>> {
                   EXPECT_EQ(verb, "status");
                   EXPECT_EQ(txn, "\"t1\"");
                   return std::optional<std::string>(R"({"busy":false})");
               });
    router.handle(request(R"({"transaction":"t1"})"), "status");
    json r = only_response("status");
    EXPECT_EQ(r["status"], "ok");
    EXPECT_EQ(r["transaction"], "t1");
    EXPECT_EQ(r["data"]["busy"], false);
    EXPECT_EQ(stats.requests_total, 1u);
    EXPECT_EQ(stats.request_errors_total, 0u);
}

TEST_F(RouterTest, AHandlerThatAnswersLaterSendsNothingNow) {
    router.add("capture",
               [](const Message&, const std::string&,
                  const std::string&) -> Expected<std::optional<std::string>> {
                   return std::optional<std::string>();
               });
    router.handle(request("{}"), "capture");
    EXPECT_TRUE(pub.sent().empty());
}

TEST_F(RouterTest, AHandlersErrorIsAnErrorResponseAndCounted) {
    router.add("capture",
               [](const Message&, const std::string&,
                  const std::string&) -> Expected<std::optional<std::string>> {
                   return make_error("camera_busy", "16 capture requests already waiting");
               });
    router.handle(request(R"({"transaction":7})"), "capture");
    json r = only_response("capture");
    EXPECT_EQ(r["status"], "error");
    EXPECT_EQ(r["transaction"], 7);
    EXPECT_EQ(r["error"]["code"], "camera_busy");
    EXPECT_EQ(stats.request_errors_total, 1u);
}

TEST_F(RouterTest, RetainedRequestsAreRefusedBeforeAnyHandlerRuns) {
    bool ran = false;
    router.add("status",
               [&](const Message&, const std::string&,
                   const std::string&) -> Expected<std::optional<std::string>> {
                   ran = true;
                   return std::optional<std::string>("{}");
               });
    router.handle(request(R"({"transaction":"t"})", /*retained=*/true), "status");
    EXPECT_FALSE(ran);
    json r = only_response("status");
    EXPECT_EQ(r["error"]["code"], "bad_request");
    EXPECT_EQ(r["transaction"], "t");
}

TEST_F(RouterTest, UnknownVerbsAreRefusedAndOverlongOnesAnsweredOnResponseUnknown) {
    router.handle(request("{}"), "nope");
    EXPECT_EQ(only_response("nope")["error"]["code"], "unknown_verb");
    pub.clear();
    router.handle(request("{}"), std::string(65, 'v'));
    EXPECT_EQ(only_response("unknown")["error"]["code"], "unknown_verb");
    EXPECT_EQ(stats.request_errors_total, 2u);
}

TEST_F(RouterTest, ABadEnvelopeIsRefused) {
    router.handle(request("not json"), "status");
    EXPECT_EQ(only_response("status")["status"], "error");
    pub.clear();
    router.handle(request(std::string(2000, ' ')), "status");
    EXPECT_EQ(only_response("status")["error"]["code"], "payload_too_large");
}

TEST_F(RouterTest, AKnownVerbWithoutHandlerIsNotSupported) {
    router.handle(request("{}"), "preview");
    EXPECT_EQ(only_response("preview")["error"]["code"], "not_supported");
}

TEST_F(RouterTest, AnMqtt5ReplyTopicAndCorrelationDataAreHonoured) {
    router.add("status",
               [](const Message&, const std::string&,
                  const std::string&) -> Expected<std::optional<std::string>> {
                   return std::optional<std::string>("{}");
               });
    Message m = request("{}");
    m.response_topic = "client/replies";
    m.correlation_data = "c-42";
    router.handle(m, "status");
    auto got = pub.on("client/replies");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].message.correlation_data, "c-42");
    EXPECT_FALSE(got[0].retain);
    EXPECT_EQ(got[0].message.qos, 1);
}
