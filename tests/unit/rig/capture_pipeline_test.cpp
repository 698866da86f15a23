// The pipeline with no camera: orders still flow through the capture thread and are
// answered (camera_not_found / disk_full), the pending count goes back to zero, and a
// scan step gets its outcome. Photos themselves are the e2e and cameras tests' part.
#include "rig/capture_pipeline.h"

#include <gtest/gtest.h>

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
struct PipelineTest : ::testing::Test {
    PipelineTest()
        : spool(dir.path()),
          responder(pub, RigTopics("photorig", "rig1")),
          jobs(pub, RigTopics("photorig", "rig1"), stats) {
        EXPECT_TRUE(spool.init());
    }
    std::unique_ptr<CapturePipeline> make(uint64_t min_free_bytes = 0) {
        auto p = std::make_unique<CapturePipeline>(
            CapturePipeline::Parts{cameras, spool, jobs, responder, stats}, "rig1", min_free_bytes);
        p->start();
        return p;
    }
    std::vector<FakePublisher::Sent> wait_for(const std::string& topic, size_t n) {
        for (int i = 0; i < 500 && pub.on(topic).size() < n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return pub.on(topic);
    }
    photorig::test::TempDir dir;
    photorig::spool::Spool spool;
    CameraSet cameras;  // none
    FakePublisher pub;
    RigStats stats;
    Responder responder;
    JobPublisher jobs;
};

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
