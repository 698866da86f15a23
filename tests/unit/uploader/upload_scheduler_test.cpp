#include "uploader/upload_scheduler.h"

#include <gtest/gtest.h>

using photorig::BackoffPolicy;
using photorig::upload::Job;
using photorig::uploader::UploadScheduler;

namespace {
Job job(const std::string& id) {
    Job j;
    j.job_id = id;
    j.remote_name = id + ".jpg";
    j.size = 100;
    return j;
}

// Exact delays (no jitter): 1 s doubling to 8 s.
UploadScheduler scheduler(int concurrency) {
    return UploadScheduler(concurrency, BackoffPolicy{1000, 8000, BackoffPolicy::Jitter::none});
}

std::string started(UploadScheduler& s, int64_t now) {
    auto d = s.next(now);
    return d.start ? d.start->job.job_id : "";
}
}  // namespace

TEST(UploadScheduler, StartsDueJobsOldestFirstWithinTheSlots) {
    auto s = scheduler(2);
    // Map order (by id) differs from arrival order on purpose.
    EXPECT_TRUE(s.add(job("c"), 0, 0));
    EXPECT_TRUE(s.add(job("a"), 0, 0));
    EXPECT_TRUE(s.add(job("b"), 0, 0));
    EXPECT_EQ(started(s, 10), "c");
    EXPECT_EQ(started(s, 10), "a");
    auto full = s.next(10);  // both slots held
    EXPECT_FALSE(full.start);
    EXPECT_EQ(full.wait_ms, 1000);
    s.release_slot();
    EXPECT_EQ(started(s, 10), "b");
}

TEST(UploadScheduler, ARepeatedJobIsNotAddedTwice) {
    auto s = scheduler(1);
    EXPECT_TRUE(s.add(job("a"), 0, 0));
    EXPECT_FALSE(s.add(job("a"), 3, 0));
    EXPECT_EQ(s.size(), 1u);
    auto d = s.next(0);
    ASSERT_TRUE(d.start);
    EXPECT_EQ(d.start->attempt, 0);
    EXPECT_FALSE(s.add(job("a"), 0, 0));  // in flight: still a repeat
}

TEST(UploadScheduler, AJobNotYetDueWaitsUntilItsTime) {
    auto s = scheduler(1);
    s.add(job("a"), 0, 5000);
    auto d = s.next(4000);
    EXPECT_FALSE(d.start);
    EXPECT_EQ(d.wait_ms, 1000);
    d = s.next(4700);
    EXPECT_EQ(d.wait_ms, 300);
    EXPECT_EQ(started(s, 5000), "a");
}

TEST(UploadScheduler, RetryDelayDoublesPerAttemptUpToTheCap) {
    auto s = scheduler(1);
    EXPECT_EQ(s.retry_delay_ms(1, false), 1000);
    EXPECT_EQ(s.retry_delay_ms(2, false), 2000);
    EXPECT_EQ(s.retry_delay_ms(3, false), 4000);
    EXPECT_EQ(s.retry_delay_ms(4, false), 8000);
    EXPECT_EQ(s.retry_delay_ms(30, false), 8000);
}

TEST(UploadScheduler, JitteredRetryDelayIsDrawnFromHalfToFull) {
    UploadScheduler s(1, BackoffPolicy{1000, 300000, BackoffPolicy::Jitter::half});
    for (int i = 0; i < 200; ++i) {
        int64_t d = s.retry_delay_ms(3, false);
        EXPECT_GE(d, 2000);
        EXPECT_LE(d, 4000);
    }
}

TEST(UploadScheduler, ARetryableFailureSchedulesTheJobAfterItsDelay) {
    auto s = scheduler(1);
    s.add(job("a"), 0, 0);
    ASSERT_EQ(started(s, 0), "a");
    s.release_slot();
    EXPECT_FALSE(s.failed("a", false, 1, 1000, 100));
    EXPECT_FALSE(s.in_outage());
    EXPECT_EQ(s.next(500).wait_ms, 600);
    auto d = s.next(1100);
    ASSERT_TRUE(d.start);
    EXPECT_EQ(d.start->attempt, 1);
    EXPECT_FALSE(d.probe);
}

TEST(UploadScheduler, APermanentFailureDropsTheJob) {
    auto s = scheduler(1);
    s.add(job("a"), 0, 0);
    started(s, 0);
    s.release_slot();
    EXPECT_FALSE(s.failed("a", true, 1, 1000, 0));
    EXPECT_EQ(s.size(), 0u);
    EXPECT_FALSE(s.outage().any_failing());
}

TEST(UploadScheduler, InAnOutageOneProbeAtATimeAndTheLinkSetsThePace) {
    auto s = scheduler(4);
    s.add(job("a"), 0, 0);
    s.add(job("b"), 0, 0);
    s.add(job("c"), 0, 0);
    started(s, 0);
    started(s, 0);
    s.release_slot();
    s.release_slot();
    EXPECT_FALSE(s.failed("a", false, 1, 1000, 0));
    EXPECT_TRUE(s.failed("b", false, 1, 1000, 0));  // a second job: the target is down
    ASSERT_TRUE(s.in_outage());
    // The link has failed twice: the next delay is the third step, whatever the job's count.
    EXPECT_EQ(s.retry_delay_ms(1, false), 4000);
    EXPECT_EQ(s.retry_delay_ms(1, true), 1000);  // a permanent error keeps its own
    // Paused until the outage's time, even for "c" that is due now.
    auto paused = s.next(500);
    EXPECT_FALSE(paused.start);
    EXPECT_EQ(paused.wait_ms, 500);
    // Then the job due soonest goes alone as the probe ("c", due since 0).
    auto probe = s.next(1000);
    ASSERT_TRUE(probe.start);
    EXPECT_EQ(probe.start->job.job_id, "c");
    EXPECT_TRUE(probe.probe);
    EXPECT_EQ(s.next(1000).wait_ms, 1000);  // everyone waits for the probe
    EXPECT_FALSE(s.next(1000).start);
}

TEST(UploadScheduler, TheFirstSuccessReleasesTheBacklogOldestFirst) {
    auto s = scheduler(4);
    s.add(job("a"), 0, 0);
    s.add(job("b"), 0, 0);
    s.add(job("c"), 0, 0);
    for (int i = 0; i < 3; ++i) started(s, 0);
    for (int i = 0; i < 3; ++i) s.release_slot();
    s.failed("a", false, 1, 60000, 0);
    s.failed("b", false, 1, 60000, 0);
    s.failed("c", false, 1, 60000, 0);
    auto probe = s.next(60000);
    ASSERT_TRUE(probe.start);
    ASSERT_TRUE(probe.probe);
    const std::string probed = probe.start->job.job_id;
    s.release_slot();
    EXPECT_TRUE(s.succeeded(probed));
    EXPECT_FALSE(s.in_outage());
    // The others were due only at 120000 and later; the success makes them due now.
    std::vector<std::string> order;
    for (auto id = started(s, 60001); !id.empty(); id = started(s, 60001)) order.push_back(id);
    std::vector<std::string> expected;
    for (const char* id : {"a", "b", "c"})
        if (id != probed) expected.push_back(id);
    EXPECT_EQ(order, expected);
}

TEST(UploadScheduler, ACancelledJobIsDroppedAndFreesTheProbe) {
    auto s = scheduler(2);
    s.add(job("a"), 0, 0);
    s.add(job("b"), 0, 0);
    started(s, 0);
    started(s, 0);
    s.release_slot();
    s.release_slot();
    s.failed("a", false, 1, 10, 0);
    s.failed("b", false, 1, 10, 0);
    auto probe = s.next(100);
    ASSERT_TRUE(probe.start);
    s.release_slot();
    s.cancelled(probe.start->job.job_id);
    EXPECT_EQ(s.size(), 1u);
    EXPECT_TRUE(s.next(100).start);  // the probe is free again
}
