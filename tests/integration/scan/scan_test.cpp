#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/sha256.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Answers every move request with `ready` for its step after a short travel time, like an
// ESPHome or Node-RED turntable, until told to stop answering.
class Turntable {
  public:
    explicit Turntable(RigHarness& h) : h_(h), thread_([this] { run(); }) {}
    ~Turntable() {
        stop_ = true;
        thread_.join();
    }
    std::atomic<bool> answering{true};
    std::vector<json> moves() {
        std::vector<json> out;
        for (const auto& m : h_.received(h_.base() + "/scan/move")) out.push_back(parse(m.payload));
        return out;
    }

  private:
    void run() {
        size_t handled = 0;
        while (!stop_) {
            auto all = h_.received(h_.base() + "/scan/move");
            if (answering && handled < all.size()) {
                json move = parse(all[handled].payload);
                ++handled;
                std::this_thread::sleep_for(20ms);
                h_.pub_cli(h_.base() + "/scan/ready",
                           json{{"scan_id", move["scan_id"]}, {"step", move["step"]}}.dump());
            } else if (!answering) {
                handled = all.size();  // a controller that was off never saw them
            }
            std::this_thread::sleep_for(10ms);
        }
    }
    RigHarness& h_;  // tests using a Turntable never clear_received(): it counts moves
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

json scan_response(RigHarness& h, const std::string& txn, std::chrono::milliseconds timeout = 10s) {
    auto r = h.wait_for(
        h.base() + "/response/scan",
        [&](const Received& m) { return parse(m.payload)["transaction"] == txn; }, timeout);
    return parse(r.payload);
}

bool scan_reached(RigHarness& h, const std::string& state, std::chrono::milliseconds timeout) {
    return !h.wait_for(
                 h.base() + "/scan/progress",
                 [&](const Received& m) { return parse(m.payload)["state"] == state; }, timeout)
                .topic.empty();
}

std::vector<std::string> photos_in_target(RigHarness& h) {
    std::vector<std::string> out;
    for (const auto& f : h.uploaded_files()) {
        if (!ends_with(f, ".manifest.json")) out.push_back(f);
    }
    return out;
}

std::vector<std::string> manifests_in_target(RigHarness& h) {
    std::vector<std::string> out;
    for (const auto& f : h.uploaded_files()) {
        if (ends_with(f, ".manifest.json")) out.push_back(f);
    }
    return out;
}
}  // namespace

TEST(Scan, FullTurntableScanMovesCapturesAndUploadsItsManifest) {
    RigHarness h;
    h.start_all();
    Turntable turntable(h);
    h.pub_cli(
        h.base() + "/request/scan",
        R"({"transaction":"s1","action":"start","positions":4,"settle_ms":50,"batch":"vase"})");
    json started = scan_response(h, "s1");
    ASSERT_EQ(started["status"], "ok") << started.dump();
    EXPECT_EQ(started["data"]["of"], 4);
    EXPECT_EQ(started["data"]["batch"], "vase");
    ASSERT_TRUE(scan_reached(h, "completed", 60s)) << h.agent().log();

    // One move per position, at absolute positions 0, 90, 180, 270 degrees.
    auto moves = turntable.moves();
    ASSERT_EQ(moves.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(moves[i]["step"], i + 1);
        EXPECT_EQ(moves[i]["of"], 4);
        EXPECT_DOUBLE_EQ(moves[i]["position_deg"].get<double>(), 90.0 * i);
    }
    // Progress: a `step` event per position, with photos so far and an estimate.
    std::vector<json> steps;
    for (const auto& m : h.received(h.base() + "/scan/progress")) {
        json p = parse(m.payload);
        if (p["event"] == "step") steps.push_back(p);
    }
    ASSERT_EQ(steps.size(), 4u);
    EXPECT_EQ(steps[1]["step"], 2);
    EXPECT_EQ(steps[1]["photos"], 2);
    EXPECT_TRUE(steps[1]["eta_s"].is_number());
    // Every photo: batch "vase", seq = position.
    std::set<int> seqs;
    for (const auto& c : h.received(h.base() + "/capture")) {
        json m = parse(c.payload);
        EXPECT_EQ(m["batch"], "vase");
        seqs.insert(m["seq"].get<int>());
    }
    EXPECT_EQ(seqs, (std::set<int>{1, 2, 3, 4}));
    // The manifest lists every capture and is uploaded next to the photos.
    ASSERT_TRUE(wait_until(
        [&] { return manifests_in_target(h).size() == 1 && photos_in_target(h).size() == 4; }, 30s))
        << h.uploader().log();
    json manifest = parse(read_file(manifests_in_target(h)[0]));
    EXPECT_EQ(manifest["state"], "completed");
    EXPECT_EQ(manifest["captures"].size(), 4u);
    EXPECT_EQ(manifest["batch"], "vase");
    EXPECT_NE(manifests_in_target(h)[0].find("/vase/"), std::string::npos);
    // The retained state says so for late subscribers.
    auto state = h.received(h.base() + "/scan/state");
    ASSERT_FALSE(state.empty());
    EXPECT_EQ(parse(state.back().payload)["state"], "completed");
}

TEST(Scan, PauseResumeAndAbort) {
    RigHarness h;
    h.start_all();
    Turntable turntable(h);
    h.pub_cli(h.base() + "/request/scan",
              R"({"transaction":"a","action":"start","positions":50,"interval_ms":200})");
    ASSERT_EQ(scan_response(h, "a")["status"], "ok");
    ASSERT_TRUE(h.wait_count(
        h.base() + "/scan/progress", 2,
        [](const Received& m) { return parse(m.payload)["event"] == "step"; }, 20s));

    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"p","action":"pause"})");
    EXPECT_EQ(scan_response(h, "p")["status"], "ok");
    ASSERT_TRUE(scan_reached(h, "paused", 10s));
    size_t photos_at_pause = h.received(h.base() + "/capture").size();
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(h.received(h.base() + "/capture").size(), photos_at_pause) << "captured while paused";

    // A second start while one is paused is refused with a stable code.
    h.pub_cli(h.base() + "/request/scan",
              R"({"transaction":"again","action":"start","positions":3})");
    json again = scan_response(h, "again");
    EXPECT_EQ(again["error"]["code"], "scan_active") << again.dump();

    auto is_step = [](const Received& m) { return parse(m.payload)["event"] == "step"; };
    size_t steps_before = 0;
    for (const auto& m : h.received(h.base() + "/scan/progress")) steps_before += is_step(m);
    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"r","action":"resume"})");
    EXPECT_EQ(scan_response(h, "r")["status"], "ok");
    ASSERT_TRUE(h.wait_count(h.base() + "/scan/progress", steps_before + 1, is_step, 20s));

    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"x","action":"abort"})");
    EXPECT_EQ(scan_response(h, "x")["status"], "ok");
    ASSERT_TRUE(scan_reached(h, "aborted", 20s));
    // The partial scan's manifest is uploaded too, saying it was aborted.
    ASSERT_TRUE(wait_until([&] { return manifests_in_target(h).size() == 1; }, 30s));
    json manifest = parse(read_file(manifests_in_target(h)[0]));
    EXPECT_EQ(manifest["state"], "aborted");
    EXPECT_LT(manifest["steps_done"].get<int>(), 50);
    EXPECT_EQ(manifest["captures"].size(), manifest["steps_done"].get<size_t>());

    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"none","action":"pause"})");
    EXPECT_EQ(scan_response(h, "none")["error"]["code"], "no_scan");
}

TEST(Scan, TurntableThatNeverAnswersPausesTheScanWithTimeout) {
    RigHarness h;
    h.start_all();
    Turntable turntable(h);
    turntable.answering = false;
    h.pub_cli(h.base() + "/request/scan",
              R"({"transaction":"t","action":"start","positions":3,"move_timeout_ms":500})");
    ASSERT_EQ(scan_response(h, "t")["status"], "ok");
    auto paused = h.wait_for(
        h.base() + "/scan/progress",
        [](const Received& m) { return parse(m.payload)["state"] == "paused"; }, 10s);
    ASSERT_FALSE(paused.topic.empty());
    EXPECT_EQ(parse(paused.payload)["error"]["code"], "timeout");
    EXPECT_TRUE(h.received(h.base() + "/capture").empty());
    // Once the turntable is back, resume asks for the same position again and completes.
    turntable.answering = true;
    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"r","action":"resume"})");
    ASSERT_TRUE(scan_reached(h, "completed", 30s));
    EXPECT_EQ(h.received(h.base() + "/capture").size(), 3u);
}

TEST(Scan, SurvivesAnAgentRestartAndContinuesAfterTheLastCompletedStep) {
    RigHarness h;
    h.start_all();
    Turntable turntable(h);
    h.pub_cli(
        h.base() + "/request/scan",
        R"({"transaction":"k","action":"start","positions":6,"interval_ms":300,"batch":"restart"})");
    ASSERT_EQ(scan_response(h, "k")["status"], "ok");
    ASSERT_TRUE(h.wait_count(
        h.base() + "/scan/progress", 2,
        [](const Received& m) { return parse(m.payload)["event"] == "step"; }, 20s));
    h.agent().kill9();
    h.start_agent();
    ASSERT_TRUE(scan_reached(h, "completed", 60s)) << h.agent().log();

    // Each position's photo exactly once in the target, byte-identical to what was announced
    // (a step cut by the kill is captured again: that photo is extra, never lost).
    std::map<int, int> per_seq;
    std::set<std::string> announced;
    for (const auto& c : h.received(h.base() + "/capture")) {
        json m = parse(c.payload);
        ++per_seq[m["seq"].get<int>()];
        announced.insert(m["file"]["sha256"].get<std::string>());
    }
    for (int seq = 1; seq <= 6; ++seq)
        EXPECT_GE(per_seq[seq], 1) << "position " << seq << " missing";
    ASSERT_TRUE(wait_until(
        [&] {
            return photos_in_target(h).size() >= announced.size() &&
                   manifests_in_target(h).size() == 1;
        },
        30s));
    std::set<std::string> uploaded;
    for (const auto& f : photos_in_target(h)) {
        auto sha = photorig::Sha256::of_file(f);
        ASSERT_TRUE(sha);
        EXPECT_TRUE(uploaded.insert(*sha).second) << f << " uploaded twice";
    }
    for (const auto& sha : announced)
        EXPECT_TRUE(uploaded.count(sha)) << "announced photo " << sha << " not uploaded";
    json manifest = parse(read_file(manifests_in_target(h)[0]));
    EXPECT_EQ(manifest["steps_done"], 6);
    std::set<int> manifest_seqs;
    for (const auto& c : manifest["captures"]) manifest_seqs.insert(c["seq"].get<int>());
    EXPECT_EQ(manifest_seqs, (std::set<int>{1, 2, 3, 4, 5, 6}));
}

TEST(Scan, MalformedScanRequestsGetStableCodes) {
    RigHarness h;
    h.start_all();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"action":"start"})", "bad_request"},
        {R"({"action":"start","positions":0})", "out_of_range"},
        {R"({"action":"start","positions":"ten"})", "bad_request"},
        {R"({"action":"spin"})", "bad_request"},
        {R"({"action":"start","positions":3,"batch":"../x"})", "invalid_name"},
        {R"({"action":"start","positions":3,"camera":"NOPE"})", "camera_not_found"},
        {R"({"action":"start","positions":3,"degrees":400})", "out_of_range"},
        {R"({"action":"abort"})", "no_scan"},
        {R"({"action":"start","positions":3,"bogus":1})", "bad_request"},
        {"not json", "bad_json"},
    };
    int i = 0;
    for (const auto& [payload, code] : cases) {
        std::string txn = "bad" + std::to_string(i++);
        json req = parse(payload);
        std::string sent = payload;
        if (req.is_object()) {
            req["transaction"] = txn;
            sent = req.dump();
        }
        h.pub_cli(h.base() + "/request/scan", sent);
        auto r = h.wait_for(
            h.base() + "/response/scan",
            [&](const Received& m) {
                json j = parse(m.payload);
                return req.is_object() ? j["transaction"] == txn : j["error"]["code"] == "bad_json";
            },
            10s);
        ASSERT_FALSE(r.topic.empty()) << payload;
        EXPECT_EQ(parse(r.payload)["error"]["code"], code) << payload;
    }
}
