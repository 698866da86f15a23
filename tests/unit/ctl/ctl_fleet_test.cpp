// rigctl fleet's bookkeeping: status rows from retained topics, group members, --at, and one
// group capture fed answers and upload events in any order.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ctl/fleet.h"
#include "protocol/wire.h"

using namespace photorig::ctl;
using nlohmann::json;

namespace {
// A capture response as an agent sends it: one photo per (camera, trigger us) of shot 1.
std::string answer(const std::string& txn,
                   const std::vector<std::pair<std::string, int64_t>>& shots,
                   const std::string& rig) {
    json photos = json::array(), triggers = json::array();
    for (const auto& [camera, us] : shots) {
        photos.push_back({{"capture_id", rig + "-" + camera},
                          {"seq", 1},
                          {"camera", camera},
                          {"file", camera + ".jpg"},
                          {"size", 10},
                          {"sha256", "x"},
                          {"captured_at", "2026-01-01T00:00:00.000Z"}});
        triggers.push_back({{"camera", camera}, {"seq", 1}, {"triggered_at_us", us}});
    }
    return json{
        {"status", "ok"},
        {"transaction", txn},
        {"data",
         {{"batch", "b"}, {"count", photos.size()}, {"photos", photos}, {"triggers", triggers}}}}
        .dump();
}

std::string done(const std::string& capture_id) {
    return json{{"type", "done"}, {"job_id", "j-" + capture_id}, {"capture_id", capture_id}}.dump();
}
}  // namespace

TEST(FleetStatus, RowTakesEachColumnFromItsTopic) {
    RigSummary rig;
    rig.rig_id = "r1";
    rig.availability = "online";
    rig.state_json =
        R"({"cameras":[{"serial":"A","connected":true},{"serial":"B"}],)"
        R"("spool_files":5,"groups":["studio"],"clock":{"synced":true,"est_error_us":40}})";
    rig.uploader_state_json = R"({"queued":2,"uploading":1,"last_error":"503"})";
    rig.bridge_state = "0";
    auto row = fleet_row(rig);
    EXPECT_EQ(row.cameras_online, 1);
    EXPECT_EQ(row.cameras_total, 2);
    EXPECT_EQ(row.spool_files, 5u);
    EXPECT_EQ(row.upload_queue, 3u);
    EXPECT_EQ(row.last_error, "uploader: 503");
    EXPECT_EQ(row.bridge_connected, false);  // from the notification: no bridge in the state
    rig.state_json = R"({"bridge":{"connected":true,"since":1}})";
    EXPECT_EQ(fleet_row(rig).bridge_connected, false);  // the central's `0` wins over stale state
    rig.bridge_state = "";
    EXPECT_EQ(fleet_row(rig).bridge_connected, true);
    rig.state_json =
        R"({"cameras":[{"serial":"A","connected":true},{"serial":"B"}],)"
        R"("spool_files":5,"groups":["studio"],"clock":{"synced":true,"est_error_us":40}})";
    rig.bridge_state = "0";
    EXPECT_EQ(row.clock_est_error_us, 40);
    EXPECT_EQ(row.groups, std::vector<std::string>{"studio"});
    const std::string table = fleet_table({row});
    EXPECT_NE(table.find("r1"), std::string::npos) << table;
    EXPECT_NE(table.find("disconnected"), std::string::npos) << table;
    EXPECT_NE(table.find("40us"), std::string::npos) << table;

    RigSummary bare;  // only an availability seen
    bare.rig_id = "r2";
    bare.availability = "offline";
    auto empty = fleet_row(bare);
    EXPECT_FALSE(empty.spool_files);
    EXPECT_FALSE(empty.upload_queue);
    EXPECT_FALSE(empty.bridge_connected);
    auto rows = json::parse(photorig::protocol::client::fleet_rows_json({row, empty}));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]["upload_queue"], 3);
    EXPECT_TRUE(rows[1]["upload_queue"].is_null());
    EXPECT_TRUE(rows[1]["bridge_connected"].is_null());
    // Members: online and listing the group.
    EXPECT_EQ(group_members({row, empty}, "studio"), std::vector<std::string>{"r1"});
    EXPECT_TRUE(group_members({row, empty}, "other").empty());
}

TEST(FleetCapture, AtIsRelativeOrEpochMs) {
    EXPECT_EQ(parse_capture_at("+2s", 1000), 3000);
    EXPECT_EQ(parse_capture_at("+250ms", 1000), 1250);
    EXPECT_EQ(parse_capture_at("1700000000000", 1000), 1700000000000);
    for (const char* bad : {"", "+", "soon", "+2m", "-5", "2s", "0"})
        EXPECT_FALSE(parse_capture_at(bad, 1000)) << bad;
    EXPECT_TRUE(is_group_name("studio-1_a"));
    const std::vector<std::string> bad_names{"", "Studio", "a/b", "#", "+", std::string(65, 'a')};
    for (const auto& bad : bad_names) EXPECT_FALSE(is_group_name(bad)) << bad;
}

TEST(FleetCapture, AnswersSpreadAndUploadsInAnyOrder) {
    GroupCapture c({"r1", "r2"}, "t1");
    // r2's upload finishes before its answer arrives.
    EXPECT_FALSE(c.on_upload_event("r2", done("r2-C")));
    EXPECT_FALSE(c.on_response("r1", answer("other", {{"A", 1000}}, "r1")));  // not ours
    EXPECT_TRUE(c.on_response("r1", answer("t1", {{"A", 1000}, {"B", 1400}}, "r1")));
    EXPECT_FALSE(c.all_answered());
    EXPECT_EQ(c.unanswered(), std::vector<std::string>{"r2"});
    EXPECT_TRUE(c.on_response("r2", answer("t1", {{"C", 2500}}, "r2")));
    EXPECT_TRUE(c.all_answered());
    EXPECT_EQ(c.trigger_spread_us(), 1500);  // 1000 .. 2500 across both rigs
    EXPECT_EQ(c.cameras_triggered(), 3u);
    EXPECT_EQ(c.photos_expected(), 3u);
    EXPECT_EQ(c.photos_done(), 1u);  // r2's early done counts
    EXPECT_TRUE(c.on_upload_event("r1", done("r1-A")));
    EXPECT_FALSE(c.on_upload_event("r1", done("r1-A")));          // twice is once
    EXPECT_FALSE(c.on_upload_event("r1", done("someone-else")));  // not of this capture
    EXPECT_FALSE(c.on_upload_event("r3", done("r3-A")));          // not a member
    EXPECT_EQ(c.missing_photos(), (std::map<std::string, size_t>{{"r1", 1}}));
    EXPECT_FALSE(c.all_uploaded());
    EXPECT_TRUE(c.on_upload_event("r1", done("r1-B")));
    EXPECT_TRUE(c.all_uploaded());
    EXPECT_FALSE(c.any_error());
    const std::string report = group_capture_report(c);
    EXPECT_NE(report.find("r1  ok  2 photo(s)"), std::string::npos) << report;
    EXPECT_NE(report.find("trigger spread: 1.500 ms across 2 rig(s), 3 camera(s)"),
              std::string::npos)
        << report;
    EXPECT_EQ(c.rigs().size(), 2u);
}

TEST(FleetCapture, AnErrorAnswerCountsAndNamesItsCode) {
    GroupCapture c({"r1"}, "t1");
    EXPECT_TRUE(c.on_response(
        "r1",
        R"({"status":"error","transaction":"t1","error":{"code":"too_late","message":"m"}})"));
    EXPECT_TRUE(c.any_error());
    EXPECT_TRUE(c.all_uploaded());  // nothing to upload
    EXPECT_FALSE(c.trigger_spread_us());
    EXPECT_NE(group_capture_report(c).find("r1  error too_late: m"), std::string::npos);
}
