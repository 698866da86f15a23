// Five rigs behind one central broker (issue 14): real mosquitto brokers, real bridges with
// TLS client certificates, and on each rig the real rig-agent, rig-uploader (local target)
// and a PTP/IP simulator (tests/harness/fleet_harness.h).
//  - a group capture published on the central broker gives one response per rig there, and
//    every photo's upload `done` reaches the central broker exactly once;
//  - with the central broker SIGKILLed, rigs keep capturing (requests sent to their local
//    brokers); their local brokers queue the bridges' messages and every response, capture
//    and upload event appears centrally once it is back (a 30 s outage: about 50 s in all,
//    since the bridges back off up to 10 s between attempts).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness/fleet_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
constexpr size_t kRigs = 5;

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

FleetOptions fleet_options() {
    FleetOptions o;
    o.rig.image_size = 20000;
    o.rig.concurrency = 1;
    return o;
}

bool has_txn(const std::string& payload, const std::string& txn) {
    json j = parse(payload);
    return j.is_object() && j.value("transaction", json()) == txn;
}

// capture_id -> how many messages on `topic` of `rig` name it (and match `pred`).
std::map<std::string, int> count_by_capture(const FleetHarness& fleet, const std::string& topic,
                                            const std::string& batch,
                                            const std::string& type = "") {
    std::map<std::string, int> out;
    for (const auto& m : fleet.received(topic)) {
        json j = parse(m.payload);
        if (!j.is_object() || j.value("batch", "") != batch) continue;
        if (!type.empty() && j.value("type", "") != type) continue;
        ++out[j.value("capture_id", "")];
    }
    return out;
}

// Every photo of `batch` each rig announced centrally has exactly one `done` event there;
// `photos_per_rig` photos per rig, and that many files in the rig's target.
void expect_every_photo_done_once_centrally(FleetHarness& fleet, const std::string& batch,
                                            size_t photos_per_rig) {
    for (size_t i = 0; i < fleet.rig_count(); ++i) {
        const std::string base = fleet.rig(i).base();
        bool all_done = wait_until(
            [&] {
                auto captures = count_by_capture(fleet, base + "/capture", batch);
                auto done = count_by_capture(fleet, base + "/upload/events", batch, "done");
                if (captures.size() < photos_per_rig) return false;
                for (const auto& [id, n] : captures)
                    if (!done.count(id)) return false;
                return true;
            },
            60s, 50ms);
        ASSERT_TRUE(all_done) << base << ": not every photo's done event reached the central "
                              << "broker; rig log:\n"
                              << fleet.rig(i).uploader().log();
    }
    std::this_thread::sleep_for(1s);  // a duplicate would come right behind
    for (size_t i = 0; i < fleet.rig_count(); ++i) {
        const std::string base = fleet.rig(i).base();
        auto captures = count_by_capture(fleet, base + "/capture", batch);
        auto done = count_by_capture(fleet, base + "/upload/events", batch, "done");
        EXPECT_EQ(captures.size(), photos_per_rig) << base;
        for (const auto& [id, n] : captures) {
            EXPECT_EQ(n, 1) << base << ": capture " << id << " announced " << n << " times";
            EXPECT_EQ(done[id], 1)
                << base << ": capture " << id << " done " << done[id] << " times";
        }
        EXPECT_EQ(done.size(), captures.size()) << base << ": done events of unknown photos";
        EXPECT_EQ(fleet.rig(i).uploaded_files().size(), photos_per_rig) << base;
    }
}
}  // namespace

TEST(Fleet, GroupCaptureFromTheCentralBrokerReachesEveryRigAndEveryUploadOnce) {
    FleetHarness fleet(fleet_options());
    fleet.start_central();
    fleet.add_rigs(kRigs);

    const std::string txn = "group-1";
    json request{{"camera", "all"},
                 {"capture_at", now_ms() + 1000},
                 {"batch", "fleet-a"},
                 {"transaction", txn}};
    fleet.publish_central("photorig/group/all/request/capture", request.dump());

    for (size_t i = 0; i < kRigs; ++i) {
        const std::string topic = fleet.rig(i).base() + "/response/capture";
        ASSERT_TRUE(fleet.wait_count(
            topic, 1, [&](const CentralMessage& m) { return has_txn(m.payload, txn); }, 20s))
            << topic << " never answered centrally; agent log:\n"
            << fleet.rig(i).agent().log();
    }
    std::set<int64_t> trigger_us;
    for (size_t i = 0; i < kRigs; ++i) {
        std::vector<json> answers;
        for (const auto& m : fleet.received(fleet.rig(i).base() + "/response/capture"))
            if (has_txn(m.payload, txn)) answers.push_back(parse(m.payload));
        ASSERT_EQ(answers.size(), 1u) << fleet.rig(i).base() << ": one response per rig";
        EXPECT_EQ(answers[0]["status"], "ok") << answers[0].dump();
        EXPECT_EQ(answers[0]["data"].value("count", 0), 1) << answers[0].dump();
        for (const auto& t : answers[0]["data"]["triggers"])
            trigger_us.insert(t["triggered_at_us"].get<int64_t>());
    }
    // Every rig fired at capture_at (one machine, one clock): the spread stays small.
    ASSERT_EQ(trigger_us.size() > 0, true);
    EXPECT_LT(*trigger_us.rbegin() - *trigger_us.begin(), 100000)
        << "triggers across the fleet spread over more than 100 ms";
    expect_every_photo_done_once_centrally(fleet, "fleet-a", 1);
}

namespace {
// The central broker is down for `outage` while every rig takes two captures through its
// local broker (as the dashboard user there); all of it shows up centrally afterwards.
void capture_through_a_central_outage(std::chrono::seconds outage) {
    FleetHarness fleet(fleet_options());
    fleet.start_central();
    fleet.add_rigs(kRigs);

    fleet.kill9_central();
    auto down_at = std::chrono::steady_clock::now();
    for (int shot = 1; shot <= 2; ++shot) {
        for (size_t i = 0; i < kRigs; ++i) {
            RigHarness& rig = fleet.rig(i);
            const std::string txn = "outage-" + std::to_string(shot);
            rig.pub_cli(rig.base() + "/request/capture",
                        json{{"camera", "all"}, {"batch", "outage"}, {"transaction", txn}}.dump());
        }
    }
    // The rigs carried them out and uploaded them while the central broker was away.
    for (size_t i = 0; i < kRigs; ++i) {
        RigHarness& rig = fleet.rig(i);
        ASSERT_TRUE(rig.wait_count(
            rig.base() + "/upload/events", 2,
            [](const Received& r) { return parse(r.payload).value("type", "") == "done"; }, 30s))
            << rig.base() << " did not capture and upload during the outage:\n"
            << rig.agent().log();
    }
    ASSERT_LT(std::chrono::steady_clock::now() - down_at, outage)
        << "the rigs took longer than the outage to capture";
    std::this_thread::sleep_for(outage - (std::chrono::steady_clock::now() - down_at));
    fleet.restart_central();

    for (size_t i = 0; i < kRigs; ++i) {
        const std::string topic = fleet.rig(i).base() + "/response/capture";
        for (const std::string txn : {"outage-1", "outage-2"}) {
            EXPECT_TRUE(fleet.wait_count(
                topic, 1, [&](const CentralMessage& m) { return has_txn(m.payload, txn); }, 30s))
                << topic << " " << txn << " never reached the central broker";
        }
    }
    expect_every_photo_done_once_centrally(fleet, "outage", 2);
}
}  // namespace

TEST(Fleet, EveryEventOfACentralOutageAppearsCentrallyWhenItReturns) {
    capture_through_a_central_outage(30s);
}
