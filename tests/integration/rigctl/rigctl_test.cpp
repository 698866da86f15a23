#include <gtest/gtest.h>

#include <future>

#include "harness/rig_harness.h"
#include "rigctl_command.h"

using namespace photorig::test;
using namespace std::chrono_literals;

namespace {
bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}
}  // namespace

TEST(Rigctl, ListsRigsFromRetainedState) {
    RigHarness h;
    h.start_all();
    auto r = rigctl(h, {"list"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "rig1")) << r.output;
    EXPECT_TRUE(contains(r.output, "online")) << r.output;
    EXPECT_TRUE(contains(r.output, "1/1")) << "one camera, connected: " << r.output;
}

TEST(Rigctl, CaptureAndFollowUploads) {
    RigHarness h;
    h.start_all();
    // Follow first, so the upload events of the capture below are seen.
    auto follow = std::async(std::launch::async, [&] {
        return rigctl(h, {"follow", "rig1", "--count", "2"}, 60s);
    });
    std::this_thread::sleep_for(1s);
    auto r = rigctl(h, {"capture", "rig1", "--count", "2", "--batch", "ops"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "batch ops: 2 photo(s)")) << r.output;
    EXPECT_TRUE(contains(r.output, "SIM0001")) << r.output;
    auto f = follow.get();
    EXPECT_EQ(f.exit_code, 0) << f.output;
    EXPECT_TRUE(contains(f.output, "done")) << f.output;
}

TEST(Rigctl, VersionPrintsNameAndVersionWithoutABroker) {
    auto r = run_command(
        {std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rigctl", "--port", "1", "--version"}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, std::string("rigctl ") + PHOTORIG_VERSION + "\n");
}

TEST(Rigctl, ErrorsExitNonZeroWithTheCode) {
    RigHarness h;
    h.start_all();
    auto r = rigctl(h, {"capture", "rig1", "--camera", "NOPE"});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "camera_not_found")) << r.output;

    auto range = rigctl(h, {"capture", "rig1", "--count", "0"});
    EXPECT_EQ(range.exit_code, 1);
    EXPECT_TRUE(contains(range.output, "out_of_range")) << range.output;

    auto usage = rigctl(h, {"capture", "rig1", "--colour", "red"});
    EXPECT_EQ(usage.exit_code, 2) << usage.output;

    auto offline = rigctl(h, {"--timeout", "2", "status", "no-such-rig"});
    EXPECT_EQ(offline.exit_code, 4) << offline.output;
    EXPECT_TRUE(contains(offline.output, "timeout")) << offline.output;

    // Wrong password: no broker connection, and the password is not printed.
    std::string bad = h.root() + "/secrets/bad.pw";
    write_file(bad, "not-the-password\n", 0600);
    auto denied = run_command({std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rigctl", "--port",
                               std::to_string(h.broker_port()), "--username", "photorig-dashboard",
                               "--password-file", bad, "list"},
                              30s);
    EXPECT_EQ(denied.exit_code, 3) << denied.output;
    EXPECT_FALSE(contains(denied.output, "not-the-password"));
}

TEST(Rigctl, ScanShowsProgressUntilCompleted) {
    RigHarness h;
    h.start_all();
    auto r = rigctl(
        h, {"scan", "rig1", "start", "--positions", "3", "--no-turntable", "--batch", "ctl"}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "3/3 positions")) << r.output;
    EXPECT_TRUE(contains(r.output, "completed")) << r.output;
}
