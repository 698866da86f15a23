#include "uploader/upload_events.h"

#include <gtest/gtest.h>

#include "protocol/wire.h"

using photorig::make_error;
using photorig::upload::Job;
namespace uploader = photorig::uploader;

namespace {
Job job() {
    Job j;
    j.job_id = "j1";
    j.capture_id = "cap1";
    j.batch = "b1";
    j.remote_name = "IMG_1.jpg";
    j.size = 1234;
    return j;
}
}  // namespace

TEST(UploaderEvents, JobEventNamesTheJob) {
    auto e = uploader::job_event(job(), "started", 3);
    EXPECT_EQ(e.type, "started");
    EXPECT_EQ(e.job_id, "j1");
    EXPECT_EQ(e.capture_id, "cap1");
    EXPECT_EQ(e.batch, "b1");
    EXPECT_EQ(e.name, "IMG_1.jpg");
    EXPECT_EQ(e.bytes_total, 1234u);
    EXPECT_EQ(e.attempt, 3);
}

TEST(UploaderEvents, RefusedEventIsAFailureWithoutAttemptOrRetry) {
    auto e = uploader::refused_event(job(), "bad_request", "path is outside spool.dir");
    EXPECT_EQ(e.type, "failed");
    EXPECT_EQ(e.error_code, "bad_request");
    EXPECT_EQ(e.error_message, "path is outside spool.dir");
    EXPECT_FALSE(e.retrying);
    auto json = photorig::protocol::upload_event_json(e);
    EXPECT_EQ(json.find("attempt"), std::string::npos) << json;
    EXPECT_EQ(json.find("next_attempt_in_ms"), std::string::npos) << json;
}

TEST(UploaderEvents, FailedEventCarriesTheErrorAndTheRetry) {
    auto e = uploader::failed_event(job(), 2, make_error("target_unavailable", "down"), true, 900);
    EXPECT_EQ(e.type, "failed");
    EXPECT_EQ(e.attempt, 2);
    EXPECT_EQ(e.error_code, "target_unavailable");
    EXPECT_EQ(e.error_message, "down");
    EXPECT_TRUE(e.retrying);
    EXPECT_EQ(e.next_attempt_in_ms, 900);
}
