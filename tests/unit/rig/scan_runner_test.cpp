#include "rig/scan_runner.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/test_util.h"

using nlohmann::json;
using photorig::Status;
using photorig::protocol::CaptureMetadata;
using photorig::protocol::CaptureRequest;
using photorig::protocol::RigTopics;
using photorig::protocol::ScanRecord;
using photorig::protocol::ScanRequest;
using photorig::rig::ScanRunner;

namespace {
// Records what the runner publishes, captures and delivers; a capture makes one photo.
struct ScanHarness {
    struct Published {
        std::string topic, payload;
        bool retain;
    };
    ScanRunner::Hooks hooks() {
        ScanRunner::Hooks h;
        h.capture = [this](const CaptureRequest& r,
                           int seq_offset) -> std::optional<ScanRunner::CaptureOutcome> {
            std::lock_guard<std::mutex> lock(mutex);
            seq_offsets.push_back(seq_offset);
            ScanRunner::CaptureOutcome out;
            if (fail_captures) {
                out.errors.push_back(photorig::make_error("camera_not_found", "gone"));
                return out;
            }
            CaptureMetadata m;
            m.batch = r.batch;
            m.seq = seq_offset + 1;
            out.photos.push_back(m);
            return out;
        };
        h.publish = [this](const std::string& topic, const std::string& payload, bool retain) {
            std::lock_guard<std::mutex> lock(mutex);
            published.push_back({topic, payload, retain});
            cv.notify_all();
        };
        h.deliver_manifest = [this](const ScanRecord& r) -> Status {
            std::lock_guard<std::mutex> lock(mutex);
            manifests.push_back(r);
            return photorig::ok();
        };
        return h;
    }
    // Waits for a published progress event (scan/progress's "event").
    bool wait_for_event(const std::string& event) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, std::chrono::seconds(5), [&] {
            for (const auto& p : published)
                if (p.topic == "photorig/rig1/scan/progress" &&
                    json::parse(p.payload).value("event", "") == event)
                    return true;
            return false;
        });
    }
    std::vector<Published> on(const std::string& topic) {
        std::lock_guard<std::mutex> lock(mutex);
        std::vector<Published> out;
        for (const auto& p : published)
            if (p.topic == topic) out.push_back(p);
        return out;
    }

    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Published> published;
    std::vector<int> seq_offsets;
    std::vector<ScanRecord> manifests;
    bool fail_captures = false;
};

ScanRequest timed_scan(int positions) {
    ScanRequest r;
    r.positions = positions;
    r.turntable = false;
    r.count = 2;
    return r;
}
}  // namespace

TEST(ScanRunner, ATimedScanCapturesEveryPositionPublishesOnFullTopicsAndDeliversItsManifest) {
    photorig::test::TempDir dir;
    ScanHarness h;
    ScanRunner runner(dir.file(".scan-record.json"), RigTopics("photorig", "rig1"), h.hooks());
    runner.start();
    auto started = runner.handle(timed_scan(3), "batch-1");
    ASSERT_TRUE(started) << started.error().describe();
    EXPECT_EQ(json::parse(*started)["state"], "running");
    ASSERT_TRUE(h.wait_for_event("completed"));
    runner.stop();
    {
        std::lock_guard<std::mutex> lock(h.mutex);
        EXPECT_EQ(h.seq_offsets, (std::vector<int>{0, 2, 4}));  // count 2 per position
        ASSERT_EQ(h.manifests.size(), 1u);
        EXPECT_EQ(h.manifests[0].captures.size(), 3u);
        EXPECT_EQ(h.manifests[0].batch, "batch-1");
        for (const auto& p : h.published) {
            EXPECT_TRUE(p.topic == "photorig/rig1/scan/progress" ||
                        p.topic == "photorig/rig1/scan/state")
                << p.topic;
        }
    }
    auto state = h.on("photorig/rig1/scan/state");
    ASSERT_FALSE(state.empty());
    EXPECT_TRUE(state.back().retain);
    EXPECT_EQ(json::parse(state.back().payload)["state"], "completed");
    for (const auto& p : h.on("photorig/rig1/scan/progress")) EXPECT_FALSE(p.retain);
}

TEST(ScanRunner, ATurntableScanAsksForEachMoveAndWaitsForReady) {
    photorig::test::TempDir dir;
    ScanHarness h;
    ScanRunner runner(dir.file(".scan-record.json"), RigTopics("photorig", "rig1"), h.hooks());
    runner.start();
    ScanRequest req = timed_scan(2);
    req.turntable = true;
    ASSERT_TRUE(runner.handle(req, "b"));
    for (int step = 1; step <= 2; ++step) {
        ASSERT_TRUE(h.wait_for_event("move"));
        auto moves = h.on("photorig/rig1/scan/move");
        ASSERT_EQ(moves.size(), static_cast<size_t>(step));
        EXPECT_FALSE(moves.back().retain);
        EXPECT_EQ(json::parse(moves.back().payload)["step"], step);
        {
            // The next "move" event must be a new one.
            std::lock_guard<std::mutex> lock(h.mutex);
            for (auto& p : h.published)
                if (p.topic == "photorig/rig1/scan/progress") p.topic = "seen";
        }
        runner.on_ready("ready");
    }
    ASSERT_TRUE(h.wait_for_event("completed"));
    // "move" progress is never retained: scan/state skips it.
    for (const auto& p : h.on("photorig/rig1/scan/state"))
        EXPECT_NE(json::parse(p.payload).value("event", ""), "move");
    runner.stop();
}

TEST(ScanRunner, AStepWithoutPhotosPausesTheScanAndAbortEndsIt) {
    photorig::test::TempDir dir;
    ScanHarness h;
    h.fail_captures = true;
    ScanRunner runner(dir.file(".scan-record.json"), RigTopics("photorig", "rig1"), h.hooks());
    runner.start();
    ASSERT_TRUE(runner.handle(timed_scan(2), "b"));
    ASSERT_TRUE(h.wait_for_event("paused"));
    ScanRequest status;
    status.action = "status";
    auto s = runner.handle(status, "");
    ASSERT_TRUE(s);
    EXPECT_EQ(json::parse(*s)["state"], "paused");
    ScanRequest start = timed_scan(1);
    auto refused = runner.handle(start, "b2");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "scan_active");
    ScanRequest abort;
    abort.action = "abort";
    ASSERT_TRUE(runner.handle(abort, ""));
    ASSERT_TRUE(h.wait_for_event("aborted"));
    runner.stop();
}

TEST(ScanRunner, APausedScanSurvivesARestartFromItsRecord) {
    photorig::test::TempDir dir;
    const std::string record = dir.file(".scan-record.json");
    {
        ScanHarness h;
        h.fail_captures = true;
        ScanRunner runner(record, RigTopics("photorig", "rig1"), h.hooks());
        runner.start();
        ASSERT_TRUE(runner.handle(timed_scan(2), "b"));
        ASSERT_TRUE(h.wait_for_event("paused"));
        runner.stop();
    }
    ScanHarness h;
    ScanRunner runner(record, RigTopics("photorig", "rig1"), h.hooks());
    runner.start();
    ASSERT_TRUE(h.wait_for_event("restored"));
    ScanRequest resume;
    resume.action = "resume";
    ASSERT_TRUE(runner.handle(resume, ""));
    ASSERT_TRUE(h.wait_for_event("completed"));
    runner.stop();
}

TEST(ScanRunner, WithoutAScanStatusIsIdleAndPauseIsRefused) {
    photorig::test::TempDir dir;
    ScanHarness h;
    ScanRunner runner(dir.file(".scan-record.json"), RigTopics("photorig", "rig1"), h.hooks());
    runner.start();
    ScanRequest status;
    status.action = "status";
    EXPECT_EQ(*runner.handle(status, ""), R"({"state":"idle"})");
    ScanRequest pause;
    pause.action = "pause";
    auto refused = runner.handle(pause, "");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "no_scan");
    runner.stop();
}
