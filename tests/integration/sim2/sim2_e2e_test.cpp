// The agent against tests/ptpip-sim2: a camera that takes time to open a session, exposes
// for a while before ObjectAdded, throttles downloads and (by default) offers no
// GetPartialObject. Photos must still land in the target whole, once each.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/sha256.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

long long file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

// Captures `count` photos in one request and checks each arrives in the target with `size`
// bytes, byte-identical to what the agent announced, with the camera's Exif read back.
void capture_and_check(RigHarness& h, int count, int size) {
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"s2","count":)" + std::to_string(count) + R"(,"batch":"sim2"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("s2"), 60s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    json r = parse(resp.payload);
    ASSERT_EQ(r["status"], "ok") << resp.payload;
    ASSERT_EQ(r["data"]["count"], count) << resp.payload;

    ASSERT_TRUE(
        wait_until([&] { return h.uploaded_files().size() >= static_cast<size_t>(count); }, 60s))
        << h.uploader().log();
    auto captures = h.received(h.base() + "/capture");
    ASSERT_EQ(captures.size(), static_cast<size_t>(count));
    std::set<std::string> announced;
    for (const auto& c : captures) {
        json m = parse(c.payload);
        EXPECT_EQ(m["camera"]["serial"], "SIM0001") << c.payload;
        EXPECT_EQ(m["file"]["size"], size) << c.payload;
        EXPECT_EQ(m["file"]["mime"], "image/jpeg");
        // sim2's own settings, read back from the Exif it writes (ours has ISO 100, f/5.6).
        EXPECT_EQ(m["exif"]["iso"], 200) << c.payload;
        EXPECT_DOUBLE_EQ(m["exif"]["f_number"].get<double>(), 4.0) << c.payload;
        announced.insert(m["file"]["sha256"].get<std::string>());
    }
    EXPECT_EQ(announced.size(), static_cast<size_t>(count)) << "every capture has other bytes";
    auto files = h.uploaded_files();
    EXPECT_EQ(files.size(), static_cast<size_t>(count));
    for (const auto& f : files) {
        EXPECT_EQ(file_size(f), size) << f;
        auto sha = photorig::Sha256::of_file(f);
        ASSERT_TRUE(sha);
        EXPECT_TRUE(announced.count(*sha)) << f << " is not a photo the agent announced";
    }
    auto stats = parse(h.sim().control("stats"));
    EXPECT_EQ(stats["captures"], count) << stats.dump();
    EXPECT_EQ(stats["objects"], 0) << "the agent deletes each photo from the card";
}
}  // namespace

TEST(Sim2EndToEnd, AgentCapturesThreePhotosAndTheyArriveWithTheRightSize) {
    HarnessOptions o;
    o.sim_kind = SimKind::sim2;
    o.image_size = 250000;
    o.sim_args = {"--verbose"};  // every operation in <root>/sim1.log
    RigHarness h(o);
    h.start_all();
    EXPECT_NE(h.sim().binary().find("ptpip_sim2.py"), std::string::npos);
    EXPECT_EQ(h.sim().control("ping"), "PONG");
    capture_and_check(h, 3, 250000);
    std::string log = read_file(h.root() + "/sim1.log");
    EXPECT_NE(log.find(" op 0x1009 "), std::string::npos) << "GetObject";
    EXPECT_EQ(log.find(" op 0x101b "), std::string::npos) << "GetPartialObject is not offered";
}

// Big photos fetched in GetPartialObject pieces, CaptureComplete before ObjectAdded, a slow
// session set-up and a 200 Mbit/s link.
TEST(Sim2EndToEnd, PartialObjectsCompleteFirstAndSlowSetUp) {
    HarnessOptions o;
    o.sim_kind = SimKind::sim2;
    o.image_size = 2600000;
    o.sim_args = {"--partial",
                  "--event-order",
                  "complete-first",
                  "--event-gap-ms",
                  "20",
                  "--setup-delay-ms",
                  "200",
                  "--download-mbps",
                  "200",
                  "--verbose"};
    RigHarness h(o);
    h.start_all();
    capture_and_check(h, 3, 2600000);
    std::string log = read_file(h.root() + "/sim1.log");
    EXPECT_NE(log.find(" op 0x101b "), std::string::npos) << "GetPartialObject pieces";
}

// CaptureComplete 300 ms before ObjectAdded (a camera that reports the exposure done before
// the card write). gphoto2's own gp_camera_capture gives up after about 40 ms and reports
// "Could not capture"; the agent waits for the file under its capture timeout.
TEST(Sim2EndToEnd, ObjectAddedLongAfterCaptureComplete) {
    HarnessOptions o;
    o.sim_kind = SimKind::sim2;
    o.image_size = 180000;
    o.sim_args = {"--event-order", "complete-first", "--event-gap-ms",
                  "300",           "--capture-ms",   "400"};
    RigHarness h(o);
    h.start_all();
    capture_and_check(h, 2, 180000);
}
