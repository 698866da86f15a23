#include "rig/job_publisher.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fake_publisher.h"

using nlohmann::json;
using photorig::protocol::CaptureMetadata;
using photorig::protocol::RigTopics;
using photorig::rig::JobPublisher;
using photorig::rig::RigStats;
using photorig::rig::test::FakePublisher;

namespace {
CaptureMetadata photo() {
    CaptureMetadata m;
    m.capture_id = m.job_id = "01JOB";
    m.rig_id = "rig1";
    m.batch = "b1";
    m.file_name = "SIM1_0001_IMG_0001.JPG";
    m.file_path = "/spool/b1/SIM1_0001_IMG_0001.JPG";
    m.size = 42;
    m.sha256 = std::string(64, 'a');
    m.mime = "image/jpeg";
    return m;
}
}  // namespace

TEST(JobPublisher, APhotosMetadataGoesOutBeforeItsJobWhichWaitsForThePuback) {
    FakePublisher pub;
    RigStats stats;
    JobPublisher jobs(pub, RigTopics("photorig", "rig1"), stats);
    jobs.publish_photo(photo());
    auto sent = pub.sent();
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0].message.topic, "photorig/rig1/capture");
    EXPECT_EQ(sent[0].how, FakePublisher::How::queued);
    EXPECT_EQ(sent[1].message.topic, "photorig/rig1/upload/jobs");
    EXPECT_EQ(sent[1].how, FakePublisher::How::acked);
    EXPECT_FALSE(sent[0].retain || sent[1].retain);
    json job = json::parse(sent[1].message.payload);
    EXPECT_EQ(job["job_id"], "01JOB");
    EXPECT_EQ(job["path"], "/spool/b1/SIM1_0001_IMG_0001.JPG");
    EXPECT_EQ(stats.jobs_published, 1u);
}

TEST(JobPublisher, AJobWithoutPubackIsNotCounted) {
    FakePublisher pub;
    pub.fail_acked_ = true;
    RigStats stats;
    JobPublisher jobs(pub, RigTopics("photorig", "rig1"), stats);
    EXPECT_FALSE(jobs.publish_job(photo()));
    EXPECT_EQ(stats.jobs_published, 0u);
    EXPECT_TRUE(jobs.publish_job(photo(), /*wait_for_ack=*/false));
    EXPECT_EQ(pub.sent().back().how, FakePublisher::How::queued);
    EXPECT_EQ(stats.jobs_published, 1u);
}

// The capture pipeline answers a request once its last job is with the client (job_taken),
// not after the job's PUBACK: job_taken runs once, with the job already sent, and the job
// is still published with a PUBACK wait (and counted once acknowledged).
TEST(JobPublisher, JobTakenRunsOnceTheJobIsSentAndTheAckIsStillAwaited) {
    FakePublisher pub;
    RigStats stats;
    JobPublisher jobs(pub, RigTopics("photorig", "rig1"), stats);
    int taken = 0;
    size_t sent_when_taken = 0;
    jobs.publish_photo(photo(), [&] {
        ++taken;
        sent_when_taken = pub.on("photorig/rig1/upload/jobs").size();
    });
    EXPECT_EQ(taken, 1);
    EXPECT_EQ(sent_when_taken, 1u);
    EXPECT_EQ(pub.sent().back().how, FakePublisher::How::acked);
    EXPECT_EQ(stats.jobs_published, 1u);
    // A job that never reached the client does not run it (the pipeline answers anyway).
    FakePublisher offline;
    offline.fail_acked_ = true;
    JobPublisher failing(offline, RigTopics("photorig", "rig1"), stats);
    taken = 0;
    failing.publish_photo(photo(), [&] { ++taken; });
    EXPECT_EQ(taken, 0);
}

// Issue 12: a burst's jobs before its last are only handed to the client, never waited for;
// what bounds them is the client's window of unacknowledged messages. A full window (or
// buffer, or a reconnection) must be waited out, not drop the job: the hand-over gets the
// whole publish timeout, as the metadata does. A scan manifest's gets the time it is given.
TEST(JobPublisher, AJobHandedOverWithoutAckWaitsOutAFullWindow) {
    FakePublisher pub;
    RigStats stats;
    JobPublisher jobs(pub, RigTopics("photorig", "rig1"), stats);
    jobs.publish_photo(photo(), {}, /*wait_for_ack=*/false);
    auto sent = pub.sent();
    ASSERT_EQ(sent.size(), 2u);
    for (const auto& s : sent) {
        EXPECT_EQ(s.how, FakePublisher::How::queued) << s.message.topic;
        EXPECT_EQ(s.timeout, JobPublisher::kPublishTimeout) << s.message.topic;
    }
    EXPECT_TRUE(jobs.publish_job(photo(), /*wait_for_ack=*/false, {}, std::chrono::seconds(1)));
    EXPECT_EQ(pub.sent().back().timeout, std::chrono::seconds(1));
}
