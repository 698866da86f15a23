// rigctl fleet against several rigs on one broker standing for the central one: three real
// rig-agents (rig1, rig2 in groups studio and all; rig3 only in all, with no uploader), each
// with its own PTP/IP simulator; rig1 and rig2 upload to local directories.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/rig_harness.h"
#include "rigctl_command.h"

using namespace photorig::test;
using namespace std::chrono_literals;

namespace {
bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// The whitespace-separated columns of the table line that starts with `rig`.
std::vector<std::string> row_of(const std::string& table, const std::string& rig) {
    std::istringstream lines(table);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::vector<std::string> cols;
        for (std::string w; words >> w;) cols.push_back(w);
        if (!cols.empty() && cols[0] == rig) return cols;
    }
    return {};
}

size_t files_of_batch(const std::vector<std::string>& files, const std::string& batch) {
    size_t n = 0;
    for (const auto& f : files) n += contains(f, "/" + batch + "/") ? 1 : 0;
    return n;
}
}  // namespace

class RigctlFleet : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        auto options = [](const std::string& rig, const std::string& groups) {
            HarnessOptions o;
            o.rig_id = rig;
            o.image_size = 20000;
            o.extra_yaml = "groups: [" + groups + "]\n";
            return o;
        };
        rigs_.push_back(std::make_unique<RigHarness>(options("rig1", "studio, all")));
        rigs_[0]->start_all();
        HarnessOptions rig2 = options("rig2", "studio, all");
        rig2.broker_of = rigs_[0].get();
        rigs_.push_back(std::make_unique<RigHarness>(rig2));
        HarnessOptions rig3 = options("rig3", "all");
        rig3.broker_of = rigs_[0].get();
        rig3.with_uploader = false;  // its photos are never uploaded
        rigs_.push_back(std::make_unique<RigHarness>(rig3));
        rigs_[1]->start_all();
        rigs_[2]->start_all();
    }
    static void TearDownTestSuite() {
        while (!rigs_.empty()) rigs_.pop_back();  // the broker's owner (rig1) last
    }

    // rigctl as the dashboard user, on the shared broker.
    static CommandResult rigctl(std::vector<std::string> args,
                                std::chrono::milliseconds timeout = 60s) {
        return photorig::test::rigctl(*rigs_[0], std::move(args), timeout);
    }

    static std::vector<std::unique_ptr<RigHarness>> rigs_;
};
std::vector<std::unique_ptr<RigHarness>> RigctlFleet::rigs_;

TEST_F(RigctlFleet, StatusListsEveryRigWithItsColumns) {
    // rig2's bridge notification, as its local broker's bridge would publish it centrally.
    photorig::MessageQueue<photorig::mqtt::Event> events;
    auto as_rig = rigs_[0]->connect_as("photorig-agent", "fleet-test-bridge", events);
    auto retain = [&](const std::string& topic, const std::string& payload) {
        ASSERT_TRUE(as_rig->publish(photorig::mqtt::Message{topic, payload, 1, true, "", ""},
                                    /*retain=*/true, 5s));
    };
    retain("photorig/rig2/bridge/state", "1");
    // Two rigs known only from retained state, with the fleet fields an agent adds (clock,
    // bridge) and errors: the columns show them.
    retain("photorig/rig8/availability", "offline");
    retain("photorig/rig8/state",
           R"({"cameras":[],"spool_files":7,"clock":{"synced":false,"est_error_us":16000},)"
           R"("bridge":{"connected":false,"since":1}})");
    retain("photorig/rig8/uploader/state", R"({"queued":3,"uploading":1,"last_error":"oops"})");
    retain("photorig/rig9/state",
           R"({"cameras":[{"serial":"A","connected":true},{"serial":"B","connected":false}],)"
           R"("spool_files":2,"last_error":"disk_full","clock":{"synced":true,"est_error_us":250,)"
           R"("max_error_us":900},"bridge":{"connected":true,"since":1}})");

    auto r = rigctl({"fleet", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "RIG")) << r.output;
    // RIG AVAIL CAMERAS SPOOL UPLOADQ BRIDGE CLOCK LAST_ERROR
    for (const char* rig : {"rig1", "rig2", "rig3"}) {
        auto cols = row_of(r.output, rig);
        ASSERT_EQ(cols.size(), 8u) << rig << ":\n" << r.output;
        EXPECT_EQ(cols[1], "online") << r.output;
        EXPECT_EQ(cols[2], "1/1") << r.output;
        EXPECT_NE(cols[3], "-") << "spool files come from its state: " << r.output;
        EXPECT_EQ(cols[7], "-") << "no error yet: " << r.output;
    }
    EXPECT_EQ(row_of(r.output, "rig8"),
              (std::vector<std::string>{"rig8", "offline", "0/0", "7", "4", "disconnected",
                                        "unsynced", "uploader:", "oops"}))
        << r.output;
    EXPECT_EQ(
        row_of(r.output, "rig9"),
        (std::vector<std::string>{"rig9", "?", "1/2", "2", "-", "connected", "250us", "disk_full"}))
        << r.output;
    EXPECT_EQ(row_of(r.output, "rig1")[4], "0") << r.output;
    EXPECT_EQ(row_of(r.output, "rig3")[4], "-") << "rig3 has no uploader: " << r.output;
    EXPECT_EQ(row_of(r.output, "rig1")[5], "-") << "no bridge: " << r.output;
    EXPECT_EQ(row_of(r.output, "rig2")[5], "connected") << r.output;

    auto j = rigctl({"fleet", "status", "--json"});
    ASSERT_EQ(j.exit_code, 0) << j.output;
    auto rows = nlohmann::json::parse(j.output);
    ASSERT_TRUE(rows.is_array());
    ASSERT_EQ(rows.size(), 5u) << j.output;
    EXPECT_EQ(rows[0]["rig_id"], "rig1");
    EXPECT_EQ(rows[0]["upload_queue"], 0);
    EXPECT_EQ(rows[0]["cameras_online"], 1);
    EXPECT_EQ(rows[0]["groups"], nlohmann::json::array({"studio", "all"}));
    EXPECT_TRUE(rows[0]["bridge_connected"].is_null());
    EXPECT_EQ(rows[1]["bridge_connected"], true);
    EXPECT_TRUE(rows[2]["upload_queue"].is_null()) << j.output;
    EXPECT_EQ(rows[2]["groups"], nlohmann::json::array({"all"}));
    EXPECT_EQ(rows[3]["clock_synced"], false);
    EXPECT_EQ(rows[3]["clock_est_error_us"], 16000);
    EXPECT_EQ(rows[4]["clock_est_error_us"], 250);
    EXPECT_TRUE(rows[4]["availability"].is_null());

    for (const char* topic : {"photorig/rig8/availability", "photorig/rig8/state",
                              "photorig/rig8/uploader/state", "photorig/rig9/state"})
        retain(topic, "");  // the other tests see only the three real rigs
}

TEST_F(RigctlFleet, GroupCaptureAnswersPerRigSpreadAndUploadsToTheEnd) {
    auto r = rigctl(
        {"--timeout", "20", "fleet", "capture", "studio", "--at", "+1s", "--batch", "fleet-ok"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "rig1  ok  1 photo(s)")) << r.output;
    EXPECT_TRUE(contains(r.output, "rig2  ok  1 photo(s)")) << r.output;
    EXPECT_FALSE(contains(r.output, "rig3")) << "rig3 is not in studio: " << r.output;
    EXPECT_TRUE(contains(r.output, "SIM0001  seq 1  triggered 20")) << r.output;
    EXPECT_TRUE(contains(r.output, "trigger spread: ")) << r.output;
    EXPECT_TRUE(contains(r.output, "across 2 rig(s), 2 camera(s)")) << r.output;
    EXPECT_TRUE(contains(r.output, "batch fleet-ok: 2/2 photo(s) uploaded")) << r.output;
    // Done means uploaded: each rig's photo is in its target.
    EXPECT_EQ(files_of_batch(rigs_[0]->uploaded_files(), "fleet-ok"), 1u);
    EXPECT_EQ(files_of_batch(rigs_[1]->uploaded_files(), "fleet-ok"), 1u);
}

TEST_F(RigctlFleet, GroupCaptureTimeoutNamesTheRigMissingPhotos) {
    auto r = rigctl({"--timeout", "6", "fleet", "capture", "all", "--at", "+1s", "--count", "2",
                     "--batch", "fleet-miss"});
    EXPECT_EQ(r.exit_code, 4) << r.output;
    EXPECT_TRUE(contains(r.output, "rig3  ok  2 photo(s)")) << r.output;
    EXPECT_TRUE(contains(r.output, "missing: rig3 (2 photo(s) not uploaded)")) << r.output;
    EXPECT_FALSE(contains(r.output, "rig1 (")) << r.output;
    EXPECT_TRUE(contains(r.output, "4/6 photo(s) uploaded")) << r.output;
}

TEST_F(RigctlFleet, ShowsAProgressBarOnATerminal) {
    // script(1) gives rigctl a pseudo-terminal; the paths hold no spaces or quotes.
    RigHarness& h = *rigs_[0];
    const std::string pw = dashboard_password_file(h);
    std::string cmd = std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rigctl --port " +
                      std::to_string(h.broker_port()) +
                      " --username photorig-dashboard --password-file " + pw +
                      " --timeout 20 fleet capture studio --at +1s --batch fleet-tty";
    auto r = run_command({"script", "-qec", cmd, "/dev/null"}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "\r[##############################] 2/2 photos uploaded"))
        << r.output;
    EXPECT_FALSE(contains(r.output, "uploaded 2/2 photos")) << "no plain lines: " << r.output;
}

TEST_F(RigctlFleet, RefusesBadArgumentsAndEmptyGroups) {
    EXPECT_EQ(rigctl({"fleet", "capture"}).exit_code, 2);
    EXPECT_EQ(rigctl({"fleet", "capture", "studio/#"}).exit_code, 2);
    EXPECT_EQ(rigctl({"fleet", "capture", "studio", "--at", "soon"}).exit_code, 2);
    EXPECT_EQ(rigctl({"fleet", "reboot"}).exit_code, 2);
    // Every member refuses a count of 0: each rig's error, exit 1.
    auto refused = rigctl({"fleet", "capture", "studio", "--count", "0", "--at", "+200ms"});
    EXPECT_EQ(refused.exit_code, 1) << refused.output;
    EXPECT_TRUE(contains(refused.output, "rig1  error out_of_range")) << refused.output;
    EXPECT_TRUE(contains(refused.output, "rig2  error out_of_range")) << refused.output;
    auto none = rigctl({"fleet", "capture", "nobody"});
    EXPECT_EQ(none.exit_code, 1) << none.output;
    EXPECT_TRUE(contains(none.output, "no_rigs")) << none.output;
}
