#include "rig/request_router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "fake_publisher.h"
#include "rig/capture_pipeline.h"
#include "support/test_util.h"

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
                   return make_error("queue_full",
                                     "capture queue is full: 4096 capture "
                                     "requests waiting or running");
               });
    router.handle(request(R"({"transaction":7})"), "capture");
    json r = only_response("capture");
    EXPECT_EQ(r["status"], "error");
    EXPECT_EQ(r["transaction"], 7);
    EXPECT_EQ(r["error"]["code"], "queue_full");
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

// The router in front of the capture queue, wired as RigService wires it: requests are
// queued and answered later in arrival order; past capture.queue_max the router answers
// queue_full at once, with the transaction and the depth.
TEST_F(RouterTest, CaptureRequestsPastTheQueueBoundAreAnsweredQueueFull) {
    photorig::test::TempDir dir;
    photorig::spool::Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    photorig::rig::CameraSet cameras;  // none: each order ends camera_not_found
    photorig::rig::JobPublisher jobs(pub, RigTopics("photorig", "rig1"), stats);
    photorig::rig::CapturePipeline pipeline(
        photorig::rig::CapturePipeline::Parts{cameras, spool, jobs, responder, stats}, "rig1", 0,
        /*queue_max=*/2);
    pipeline.start();
    router.add("capture",
               [&](const Message& m, const std::string& verb,
                   const std::string& txn) -> Expected<std::optional<std::string>> {
                   photorig::rig::CaptureOrder order;
                   order.request.camera = "all";
                   order.request.batch = "b";
                   order.transaction_json = txn;
                   order.verb = verb;
                   order.response_topic = m.response_topic;
                   if (auto st = pipeline.submit(std::move(order)); !st) return st.error();
                   return std::optional<std::string>();
               });
    const std::string responses = "photorig/rig1/response/capture";
    pub.hold(responses);  // the first order's answer waits: the capture thread is busy
    router.handle(request(R"({"transaction":0})"), "capture");
    for (int i = 0; i < 500 && pub.held() == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(pub.held(), 1);
    for (int t = 1; t <= 3; ++t)
        router.handle(request(R"({"transaction":)" + std::to_string(t) + "}"), "capture");
    pub.release();
    for (int i = 0; i < 500 && pub.on(responses).size() < 4; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto got = pub.on(responses);
    ASSERT_EQ(got.size(), 4u);
    // Refusals are immediate (the router's thread), so they come first: 2 and 3.
    std::vector<json> r;
    for (const auto& g : got) r.push_back(json::parse(g.message.payload));
    for (int k : {0, 1}) {
        EXPECT_EQ(r[k]["transaction"], k + 2);
        EXPECT_EQ(r[k]["error"]["code"], "queue_full");
        EXPECT_NE(r[k]["error"]["message"].get<std::string>().find("2 capture requests"),
                  std::string::npos)
            << r[k];
    }
    EXPECT_EQ(r[2]["transaction"], 0);
    EXPECT_EQ(r[3]["transaction"], 1);
    EXPECT_EQ(r[2]["error"]["code"], "camera_not_found") << "queued, then run";
    EXPECT_EQ(stats.request_errors_total, 2u) << "a queued request is no routing error";
    pipeline.stop();
}
