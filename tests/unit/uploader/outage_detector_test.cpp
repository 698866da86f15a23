#include "uploader/outage_detector.h"

#include <gtest/gtest.h>

using photorig::uploader::OutageDetector;

TEST(UploaderOutageDetector, OneFailingJobIsNoOutage) {
    OutageDetector d;
    EXPECT_FALSE(d.note_retryable_failure("a", 1000, 5000));
    EXPECT_FALSE(d.note_retryable_failure("a", 2000, 6000));  // the same job again
    EXPECT_FALSE(d.in_outage());
    EXPECT_TRUE(d.any_failing());
    EXPECT_EQ(d.consecutive_failures(), 2);
}

TEST(UploaderOutageDetector, TwoDifferentJobsFailingBeginAnOutageThatPausesUploads) {
    OutageDetector d;
    d.note_retryable_failure("a", 1000, 5000);
    EXPECT_TRUE(d.note_retryable_failure("b", 4000, 7000));
    EXPECT_TRUE(d.in_outage());
    EXPECT_EQ(d.started_ms(), 7000);
    EXPECT_EQ(d.paused_until_ms(), 11000);
    // A further failure moves the pause but does not begin another outage.
    EXPECT_FALSE(d.note_retryable_failure("c", 8000, 12000));
    EXPECT_EQ(d.started_ms(), 7000);
    EXPECT_EQ(d.paused_until_ms(), 20000);
}

TEST(UploaderOutageDetector, ASuccessEndsTheOutageAndForgetsTheFailures) {
    OutageDetector d;
    d.note_retryable_failure("a", 1000, 5000);
    d.note_retryable_failure("b", 1000, 5000);
    EXPECT_TRUE(d.note_success());
    EXPECT_FALSE(d.in_outage());
    EXPECT_FALSE(d.any_failing());
    EXPECT_EQ(d.consecutive_failures(), 0);
    EXPECT_EQ(d.paused_until_ms(), 0);
    EXPECT_FALSE(d.note_success());  // no outage to end
}

TEST(UploaderOutageDetector, ASuccessAmongSingleFailuresIsNoOutageEnding) {
    OutageDetector d;
    d.note_retryable_failure("poisoned", 1000, 5000);
    EXPECT_FALSE(d.note_success());
    EXPECT_FALSE(d.is_failing("poisoned"));
}
