#include "rig/spool_reconciler.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "fake_publisher.h"
#include "protocol/wire.h"
#include "support/test_util.h"

using nlohmann::json;
using photorig::protocol::RigTopics;
using photorig::rig::JobPublisher;
using photorig::rig::RigStats;
using photorig::rig::SpoolReconciler;
using photorig::rig::test::FakePublisher;

namespace {
constexpr int kReofferAfterS = 60;

struct ReconcilerTest : ::testing::Test {
    ReconcilerTest()
        : spool(dir.path()),
          jobs(pub, RigTopics("photorig", "rig1"), stats),
          reconciler(spool, pub, jobs, stats, "rig1", kReofferAfterS) {
        EXPECT_TRUE(spool.init());
    }
    void put(const std::string& rel, const std::string& data) {
        auto w = spool.create_writer(rel);
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write(data.data(), data.size()));
        ASSERT_TRUE((*w)->commit());
    }
    std::vector<std::string> offered_job_ids() {
        std::vector<std::string> ids;
        for (const auto& s : pub.on("photorig/rig1/upload/jobs"))
            ids.push_back(json::parse(s.message.payload)["job_id"]);
        return ids;
    }
    photorig::test::TempDir dir;
    photorig::spool::Spool spool;
    FakePublisher pub;
    RigStats stats;
    JobPublisher jobs;
    SpoolReconciler reconciler;
};
}  // namespace

TEST_F(ReconcilerTest, AFileWithoutSidecarGetsOneAndKeepsItsJobIdAcrossOffers) {
    put("b1/IMG_1.JPG", "photo");
    int64_t now = photorig::clock::now_ms();
    EXPECT_EQ(reconciler.reconcile(/*at_startup=*/true, now), 1u);
    auto sidecar = spool.read_sidecar("b1/IMG_1.JPG");
    ASSERT_TRUE(sidecar);
    auto meta = photorig::protocol::parse_capture_metadata(*sidecar);
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->batch, "b1");
    EXPECT_EQ(meta->rig_id, "rig1");
    EXPECT_EQ(stats.jobs_reoffered, 1u);
    // A second start-up offers it again, under the same job id.
    EXPECT_EQ(reconciler.reconcile(true, now), 1u);
    auto ids = offered_job_ids();
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], meta->job_id);
    EXPECT_EQ(ids[1], meta->job_id);
}

TEST_F(ReconcilerTest, EachFileBacksOffDoublingUpToAnHour) {
    put("b1/IMG_1.JPG", "photo");
    int64_t now = photorig::clock::now_ms() + 61'000;  // old enough
    const int64_t age = kReofferAfterS * 1000LL;
    ASSERT_EQ(reconciler.reconcile(false, now), 1u);
    ASSERT_EQ(reconciler.next_offers().size(), 1u);
    EXPECT_EQ(reconciler.next_offers().begin()->second, now + age);
    EXPECT_EQ(reconciler.reconcile(false, now + age - 1), 0u);  // not due yet
    int64_t t = now + age;
    EXPECT_EQ(reconciler.reconcile(false, t), 1u);
    EXPECT_EQ(reconciler.next_offers().begin()->second, t + 2 * age);
    t += 2 * age;
    EXPECT_EQ(reconciler.reconcile(false, t), 1u);
    EXPECT_EQ(reconciler.next_offers().begin()->second, t + 4 * age);
    for (int i = 0; i < 10; ++i) {
        t = reconciler.next_offers().begin()->second;
        ASSERT_EQ(reconciler.reconcile(false, t), 1u);
    }
    EXPECT_EQ(reconciler.next_offers().begin()->second, t + 3600 * 1000);
}

TEST_F(ReconcilerTest, YoungFilesWaitAndGoneFilesAreForgotten) {
    put("b1/IMG_1.JPG", "photo");
    int64_t now = photorig::clock::now_ms();
    EXPECT_EQ(reconciler.reconcile(false, now), 0u);  // younger than reoffer_after_s
    EXPECT_TRUE(reconciler.next_offers().empty());
    EXPECT_EQ(reconciler.reconcile(false, now + 61'000), 1u);
    ASSERT_TRUE(spool.remove("b1/IMG_1.JPG"));
    EXPECT_EQ(reconciler.reconcile(false, now + 10'000'000), 0u);
    EXPECT_TRUE(reconciler.next_offers().empty());
}

TEST_F(ReconcilerTest, WhileDisconnectedNothingGoesOutButTheBackoffStillCounts) {
    put("b1/IMG_1.JPG", "photo");
    pub.connected_ = false;
    int64_t now = photorig::clock::now_ms();
    EXPECT_EQ(reconciler.reconcile(true, now), 0u);
    EXPECT_TRUE(pub.sent().empty());
    EXPECT_EQ(reconciler.next_offers().size(), 1u);
    EXPECT_TRUE(stats.state_dirty);
}
