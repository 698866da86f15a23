// The pipeline with no camera: orders still flow through the capture thread and are
// answered (camera_not_found / disk_full), the pending count goes back to zero, and a
// scan step gets its outcome. Requests queue behind a held capture thread (the fake
// publisher holds its first answer) up to queue_max, then are refused queue_full.
// Photos themselves are the e2e and cameras tests' part.
#include "rig/capture_pipeline.h"

#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "fake_publisher.h"
#include "support/test_util.h"

using nlohmann::json;
using photorig::protocol::RigTopics;
using photorig::rig::CameraSet;
using photorig::rig::CaptureOrder;
using photorig::rig::CapturePipeline;
using photorig::rig::JobPublisher;
using photorig::rig::Responder;
using photorig::rig::RigStats;
using photorig::rig::test::FakePublisher;

namespace {
CaptureOrder order(const std::string& txn) {
    CaptureOrder o;
    o.request.batch = "b1";
    o.request.camera = "all";
    o.request.count = 1;
    o.transaction_json = txn;
    o.verb = "capture";
    o.correlation_data = "corr";
    return o;
}

struct PipelineTest : ::testing::Test {
    PipelineTest()
        : spool(dir.path()),
          responder(pub, RigTopics("photorig", "rig1")),
          jobs(pub, RigTopics("photorig", "rig1"), stats) {
        EXPECT_TRUE(spool.init());
    }
    ~PipelineTest() override {
        pub.release();  // a failed test may leave the capture thread held
        owned.reset();
    }
    CapturePipeline* make(uint64_t min_free_bytes = 0, int queue_max = 4096) {
        owned = std::make_unique<CapturePipeline>(
            CapturePipeline::Parts{cameras, spool, jobs, responder, stats}, "rig1", min_free_bytes,
            queue_max);
        owned->start();
        return owned.get();
    }
    std::vector<FakePublisher::Sent> wait_for(const std::string& topic, size_t n) {
        for (int i = 0; i < 500 && pub.on(topic).size() < n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return pub.on(topic);
    }
    // Holds the capture thread in its first order's answer, as a slow camera would.
    void hold_the_capture_thread(CapturePipeline& p) {
        pub.hold(kResponses);
        ASSERT_TRUE(p.submit(order("0")));
        for (int i = 0; i < 500 && pub.held() == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ASSERT_EQ(pub.held(), 1);
    }
    static std::vector<int> transactions(const std::vector<FakePublisher::Sent>& sent) {
        std::vector<int> out;
        for (const auto& s : sent) out.push_back(json::parse(s.message.payload)["transaction"]);
        return out;
    }
    static constexpr const char* kResponses = "photorig/rig1/response/capture";
    photorig::test::TempDir dir;
    photorig::spool::Spool spool;
    CameraSet cameras;  // none
    FakePublisher pub;
    RigStats stats;
    Responder responder;
    JobPublisher jobs;
    std::unique_ptr<CapturePipeline> owned;  // make()'s, stopped after any hold is released
};

}  // namespace

TEST_F(PipelineTest, AnOrderIsAnsweredOnItsResponseTopicAndLeavesNothingPending) {
    auto pipeline = make();
    pipeline->enqueue(order("\"t1\""));
    auto got = wait_for("photorig/rig1/response/capture", 1);
    ASSERT_EQ(got.size(), 1u);
    json r = json::parse(got[0].message.payload);
    EXPECT_EQ(r["status"], "error");
    EXPECT_EQ(r["transaction"], "t1");
    EXPECT_EQ(r["error"]["code"], "camera_not_found");
    EXPECT_EQ(got[0].message.correlation_data, "corr");
    for (int i = 0; i < 100 && pipeline->pending_orders() != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(pipeline->pending_orders(), 0);
    EXPECT_FALSE(pipeline->busy());
    EXPECT_FALSE(pipeline->full());
    EXPECT_TRUE(pub.on("photorig/rig1/upload/jobs").empty());
}

TEST_F(PipelineTest, OrdersAreAnsweredInTurn) {
    auto pipeline = make();
    for (int i = 0; i < 5; ++i) pipeline->enqueue(order(std::to_string(i)));
    auto got = wait_for("photorig/rig1/response/capture", 5);
    ASSERT_EQ(got.size(), 5u);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(json::parse(got[i].message.payload)["transaction"], i);
}

// Issue 12: 20 separate requests while the camera is busy with the first are all
// queued (16 were taken and 4 refused camera_busy before), then answered in arrival order.
TEST_F(PipelineTest, SeparateRequestsQueueBehindARunningOneAndAreAnsweredInArrivalOrder) {
    auto pipeline = make();
    hold_the_capture_thread(*pipeline);
    for (int i = 1; i < 20; ++i) {
        auto st = pipeline->submit(order(std::to_string(i)));
        EXPECT_TRUE(st) << i << ": " << st.error().describe();
    }
    EXPECT_EQ(pipeline->pending_orders(), 20);
    EXPECT_FALSE(pipeline->full());
    EXPECT_TRUE(pipeline->busy());
    pub.release();
    auto got = wait_for(kResponses, 20);
    ASSERT_EQ(got.size(), 20u);
    std::vector<int> expected(20);
    for (int i = 0; i < 20; ++i) expected[i] = i;
    EXPECT_EQ(transactions(got), expected);
    for (int i = 0; i < 100 && pipeline->pending_orders() != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(pipeline->pending_orders(), 0);
}

TEST_F(PipelineTest, PastQueueMaxARequestIsRefusedQueueFullNamingTheDepth) {
    auto pipeline = make(0, /*queue_max=*/3);
    EXPECT_EQ(pipeline->queue_max(), 3);
    hold_the_capture_thread(*pipeline);
    ASSERT_TRUE(pipeline->submit(order("1")));
    ASSERT_TRUE(pipeline->submit(order("2")));
    EXPECT_TRUE(pipeline->full());
    auto refused = pipeline->submit(order("3"));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "queue_full");
    EXPECT_NE(refused.error().message.find("3 capture requests waiting or running"),
              std::string::npos)
        << refused.error().message;
    EXPECT_NE(refused.error().message.find("capture.queue_max 3"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(pipeline->pending_orders(), 3) << "a refused request takes no place";

    pub.release();
    auto got = wait_for(kResponses, 3);
    EXPECT_EQ(transactions(got), (std::vector<int>{0, 1, 2}));
    for (int i = 0; i < 100 && pipeline->pending_orders() != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_FALSE(pipeline->full());
    EXPECT_TRUE(pipeline->submit(order("4"))) << "room again once answered";
    got = wait_for(kResponses, 4);
    EXPECT_EQ(transactions(got), (std::vector<int>{0, 1, 2, 4}));
}

TEST_F(PipelineTest, TheDefaultBoundHoldsThousandsOfRequests) {
    auto pipeline = make();  // capture.queue_max's default
    hold_the_capture_thread(*pipeline);
    for (int i = 1; i < 4096; ++i) ASSERT_TRUE(pipeline->submit(order(std::to_string(i)))) << i;
    auto refused = pipeline->submit(order("4096"));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "queue_full");
    EXPECT_NE(refused.error().message.find("4096"), std::string::npos);
    pub.release();
    for (int i = 0; i < 1000 && pub.on(kResponses).size() < 4096; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto got = transactions(pub.on(kResponses));
    ASSERT_EQ(got.size(), 4096u);
    for (int i = 0; i < 4096; ++i) ASSERT_EQ(got[i], i) << "arrival order";
}

TEST_F(PipelineTest, AScanStepIsNeverRefusedButCountsInTheDepth) {
    auto pipeline = make(0, /*queue_max=*/2);
    hold_the_capture_thread(*pipeline);
    ASSERT_TRUE(pipeline->submit(order("1")));
    photorig::protocol::CaptureRequest req;
    req.batch = "scan";
    req.camera = "all";
    auto scan = std::async(std::launch::async, [&] { return pipeline->capture_for_scan(req, 0); });
    for (int i = 0; i < 100 && pipeline->pending_orders() != 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(pipeline->pending_orders(), 3);
    EXPECT_EQ(pipeline->submit(order("2")).error().code, "queue_full");
    pub.release();
    auto outcome = scan.get();
    ASSERT_TRUE(outcome);
    EXPECT_EQ(transactions(wait_for(kResponses, 2)), (std::vector<int>{0, 1}));
}

TEST_F(PipelineTest, AFullDiskStopsTheOrder) {
    auto pipeline = make(/*min_free_bytes=*/UINT64_MAX);
    pipeline->enqueue(order("1"));
    auto got = wait_for("photorig/rig1/response/capture", 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(json::parse(got[0].message.payload)["error"]["code"], "disk_full");
}

TEST_F(PipelineTest, AScanStepGetsItsOutcomeInsteadOfAResponse) {
    auto pipeline = make();
    photorig::protocol::CaptureRequest req;
    req.batch = "b1";
    req.camera = "all";
    auto outcome = pipeline->capture_for_scan(req, 10);
    ASSERT_TRUE(outcome);
    EXPECT_TRUE(outcome->photos.empty());
    ASSERT_EQ(outcome->errors.size(), 1u);
    EXPECT_EQ(outcome->errors[0].code, "camera_not_found");
    EXPECT_TRUE(pub.sent().empty());
}

// Issue 15: capture/cancel marks a queued request; it takes no shot and is answered
// `cancelled`, naming the shots taken. Scan steps and other requests are left alone.
TEST_F(PipelineTest, ACancelledQueuedRequestIsAnsweredCancelledWithoutAShot) {
    auto pipeline = make();
    hold_the_capture_thread(*pipeline);
    ASSERT_TRUE(pipeline->submit(order("1")));
    ASSERT_TRUE(pipeline->submit(order("2")));
    photorig::protocol::CaptureCancel which;
    which.capture_transaction_json = "1";
    EXPECT_EQ(pipeline->cancel(which), 1);
    EXPECT_EQ(pipeline->cancel(which), 0) << "already cancelled";
    which.capture_transaction_json = "9";
    EXPECT_EQ(pipeline->cancel(which), 0);
    pub.release();
    auto got = wait_for(kResponses, 3);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(transactions(got), (std::vector<int>{0, 1, 2}));
    json cancelled = json::parse(got[1].message.payload);
    EXPECT_EQ(cancelled["error"]["code"], "cancelled") << cancelled;
    EXPECT_NE(cancelled["error"]["message"].get<std::string>().find("after 0 of 1 shots"),
              std::string::npos)
        << cancelled;
    EXPECT_NE(json::parse(got[2].message.payload)["error"]["code"], "cancelled");
}

TEST_F(PipelineTest, StoppingEndsAScansWait) {
    auto pipeline = make();
    pipeline->request_stop();
    pipeline->stop();
    photorig::protocol::CaptureRequest req;
    req.camera = "all";
    EXPECT_FALSE(pipeline->capture_for_scan(req, 0));
}

TEST(BatchId, IsTheUtcTimeAndARandomTag) {
    std::string id = photorig::rig::new_batch_id(1'764'043'815'123);  // 2025-11-25T04:10:15Z
    EXPECT_TRUE(std::regex_match(id, std::regex("20251125-041015-[0-9a-f]{4}"))) << id;
}

TEST(CheckDisk, RefusesBelowTheMinimum) {
    photorig::test::TempDir dir;
    photorig::spool::Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    EXPECT_TRUE(photorig::rig::check_disk(spool, 0));
    auto st = photorig::rig::check_disk(spool, UINT64_MAX);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "disk_full");
}
