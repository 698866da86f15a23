// Issue 14 (fleet), the rig-agent's side, against the real broker and agent:
// - requests sent while the agent is reconnecting after a broker restart wait in its
//   persistent session and are carried out once when it returns (they used to vanish);
// - expires_at in the past answers `expired`, a v5 Message Expiry that ran out while the
//   agent was down means the broker never delivers it, capture_at long past answers
//   `too_late`: none of them captures;
// - `state` reports the clock and the bridge (base/bridge/state, retained 1/0).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/clock.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
namespace mqtt = photorig::mqtt;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

bool any(const Received&) {
    return true;
}

size_t count_in(const std::string& log, const std::string& what) {
    size_t n = 0;
    for (size_t pos = log.find(what); pos != std::string::npos; pos = log.find(what, pos + 1)) ++n;
    return n;
}

// A dashboard that keeps its own persistent session, so it misses no response while it
// reconnects after a broker restart (the harness's observer has a clean one).
class Watcher {
  public:
    explicit Watcher(RigHarness& h) {
        mqtt::Options o;
        o.port = h.broker_port();
        o.client_id = "fleet-session-watcher";
        o.username = "photorig-dashboard";
        o.password = h.password("photorig-dashboard");
        o.clean_start = false;
        o.session_expiry_s = 300;
        o.reconnect_min_ms = 50;
        o.reconnect_max_ms = 200;
        client_ = std::make_unique<mqtt::Client>(o, events_);
        client_->set_subscriptions(
            {{h.base() + "/response/capture", 1}, {h.base() + "/capture", 1}});
        if (auto st = client_->connect(5s); !st) throw std::runtime_error(st.error().describe());
    }
    // Drains what arrived; returns the messages on `topic` seen so far. QoS 1 is at least
    // once for this client too: a message the broker resends to it (DUP) after a restart
    // that came before our PUBACK reached it is counted once, as any dashboard must.
    std::vector<mqtt::Message> on(const std::string& topic) {
        while (auto ev = events_.pop_for(0ms)) {
            if (ev->kind != mqtt::Event::Kind::message) continue;
            const mqtt::Message& m = ev->message;
            bool resent =
                m.duplicate && std::any_of(seen_.begin(), seen_.end(), [&](const auto& s) {
                    return s.topic == m.topic && s.payload == m.payload;
                });
            if (resent)
                ++resent_to_us_;
            else
                seen_.push_back(m);
        }
        std::vector<mqtt::Message> out;
        for (const auto& m : seen_)
            if (m.topic == topic) out.push_back(m);
        return out;
    }

    int resent_to_us() const { return resent_to_us_; }

  private:
    int resent_to_us_ = 0;
    photorig::MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> client_;
    std::vector<mqtt::Message> seen_;
};

// Restarts the broker and sends captures `from`..`to` as soon as it is back, while the agent
// is still in its reconnect backoff. Returns how many went out before the agent was back.
int restart_and_send(RigHarness& h, int from, int to) {
    const size_t connects = count_in(h.agent().log(), "connected to broker");
    h.stop_broker();
    std::this_thread::sleep_for(1500ms);  // the agent's backoff grows past a second
    h.start_broker();
    int while_away = 0;
    for (int i = from; i <= to; ++i) {
        if (count_in(h.agent().log(), "connected to broker") == connects) ++while_away;
        h.pub_cli(h.base() + "/request/capture",
                  json{{"transaction", "c" + std::to_string(i)}, {"batch", "blip"}}.dump());
    }
    return while_away;
}
}  // namespace

// Issue 14: "7 of 20 requests vanished across two broker restarts". Now all 20 are carried
// out, each once: 20 responses (one per transaction) and 22 photos (one request takes 3,
// and the broker goes down under it).
TEST(FleetSession, TwentyCapturesAcrossTwoBrokerRestartsAreEachCarriedOutOnce) {
    RigHarness h;
    h.start_all();
    Watcher watcher(h);
    const std::string responses = h.base() + "/response/capture";
    for (int i = 1; i <= 5; ++i)
        h.pub_cli(h.base() + "/request/capture",
                  json{{"transaction", "c" + std::to_string(i)}, {"batch", "blip"}}.dump());
    ASSERT_TRUE(wait_until([&] { return watcher.on(responses).size() >= 5; }, 30s))
        << h.agent().log();
    // c6 takes 3 photos 600 ms apart and the broker goes down under it: its last photos are
    // taken while the agent is offline, announced and answered (once) when it is back.
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"c6","batch":"midway","count":3,"interval_ms":600})");
    ASSERT_TRUE(wait_until([&] { return watcher.on(h.base() + "/capture").size() > 5; }, 10s));
    int while_away = restart_and_send(h, 7, 13);
    ASSERT_TRUE(wait_until([&] { return watcher.on(responses).size() >= 13; }, 60s))
        << watcher.on(responses).size() << " responses\n"
        << h.agent().log();
    while_away += restart_and_send(h, 14, 20);
    ASSERT_TRUE(wait_until([&] { return watcher.on(responses).size() >= 20; }, 60s))
        << watcher.on(responses).size() << " responses\n"
        << h.agent().log();
    std::this_thread::sleep_for(1500ms);  // room for a duplicate to show up
    // QoS 1 is at least once on every hop: a response or photo announcement whose PUBACK was
    // lost in a restart may be sent again, byte for byte. A second execution would differ
    // (another capture_id): each transaction has one distinct answer, there are 22 distinct
    // photos, and 22 files reach the target.
    std::map<std::string, std::set<std::string>> per_txn;
    size_t answers = 0;
    for (const auto& r : watcher.on(responses)) {
        json j = parse(r.payload);
        EXPECT_EQ(j["status"], "ok") << r.payload;
        per_txn[j["transaction"].get<std::string>()].insert(r.payload);
        ++answers;
    }
    EXPECT_EQ(per_txn.size(), 20u);
    for (const auto& [txn, distinct] : per_txn)
        EXPECT_EQ(distinct.size(), 1u) << txn << " was carried out " << distinct.size() << " times";
    std::set<std::string> capture_ids;
    for (const auto& m : watcher.on(h.base() + "/capture"))
        capture_ids.insert(parse(m.payload)["capture_id"].get<std::string>());
    EXPECT_EQ(capture_ids.size(), 22u) << "photos taken (c6 took 3)";
    ASSERT_TRUE(wait_until([&] { return h.uploaded_files().size() >= 22; }, 60s))
        << h.uploaded_files().size();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(h.uploaded_files().size(), 22u);
    std::printf(
        "20 captures across 2 broker restarts: %d sent while the agent was away, %zu "
        "answered (%zu response messages), %zu photos; the broker resent %d messages "
        "to the watcher\n",
        while_away, per_txn.size(), answers, capture_ids.size(), watcher.resent_to_us());
}

TEST(FleetSession, ExpiredAndTooLateRequestsAreAnsweredAndCaptureNothing) {
    RigHarness h;
    h.start_all();
    const int64_t now = photorig::clock::now_ms();
    h.pub_cli(
        h.base() + "/request/capture",
        json{{"transaction", "stale"}, {"batch", "stale"}, {"expires_at", now - 1000}}.dump());
    auto stale = h.wait_for(h.base() + "/response/capture", transaction_is("stale"), 10s);
    ASSERT_FALSE(stale.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(stale.payload)["error"]["code"], "expired") << stale.payload;
    h.pub_cli(h.base() + "/request/capture",
              json{{"transaction", "late"}, {"batch", "late"}, {"capture_at", now - 60000}}.dump());
    auto late = h.wait_for(h.base() + "/response/capture", transaction_is("late"), 10s);
    ASSERT_FALSE(late.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(late.payload)["error"]["code"], "too_late") << late.payload;
    // A request within its expires_at is carried out, and a capture_at ahead fires, with a
    // clock_unsynced warning exactly when `state` says the clock is not synchronised.
    const int64_t at = photorig::clock::now_ms() + 300;
    h.pub_cli(h.base() + "/request/capture", json{{"transaction", "fresh"},
                                                  {"batch", "fresh"},
                                                  {"expires_at", at + 60000},
                                                  {"capture_at", at}}
                                                 .dump());
    auto fresh = h.wait_for(h.base() + "/response/capture", transaction_is("fresh"), 10s);
    ASSERT_FALSE(fresh.topic.empty()) << h.agent().log();
    json f = parse(fresh.payload);
    EXPECT_EQ(f["status"], "ok") << fresh.payload;
    auto state = h.wait_for(h.base() + "/state", any, 5s);
    json s = parse(state.payload);
    ASSERT_TRUE(s["clock"].is_object()) << state.payload;
    EXPECT_TRUE(s["clock"]["synced"].is_boolean());
    EXPECT_TRUE(s["clock"]["max_error_us"].is_number_integer());
    EXPECT_EQ(f.contains("warnings"), !s["clock"]["synced"].get<bool>()) << fresh.payload;
    if (f.contains("warnings")) {
        EXPECT_EQ(f["warnings"][0]["code"], "clock_unsynced");
    }
    // Only "fresh" took a photo.
    std::this_thread::sleep_for(300ms);
    auto photos = h.received(h.base() + "/capture");
    ASSERT_EQ(photos.size(), 1u);
    EXPECT_EQ(parse(photos[0].payload)["batch"], "fresh");
}

// A v5 request with Message Expiry 1 s, queued in the agent's session while the agent is
// down: the broker drops it once the second has passed, so the returning agent never sees
// it. A request without expiry queued beside it is carried out.
TEST(FleetSession, AMessageExpiryThatRanOutWhileTheAgentWasDownIsNotCarriedOut) {
    RigHarness h;
    h.start_all();
    h.agent().stop();
    auto pub_v5_cli = [&](const std::string& payload, int expiry_s) {
        std::vector<std::string> argv{"mosquitto_pub",
                                      "-V",
                                      "mqttv5",
                                      "-h",
                                      "127.0.0.1",
                                      "-p",
                                      std::to_string(h.broker_port()),
                                      "-q",
                                      "1",
                                      "-t",
                                      h.base() + "/request/capture",
                                      "-m",
                                      payload};
        if (expiry_s > 0) {
            argv.insert(argv.end(),
                        {"-D", "publish", "message-expiry-interval", std::to_string(expiry_s)});
        }
        auto r = run_command(argv, 10s, h.dashboard_cli_env());
        ASSERT_EQ(r.exit_code, 0) << r.output;
    };
    pub_v5_cli(R"({"transaction":"short-lived","batch":"shortlived"})", 1);
    pub_v5_cli(R"({"transaction":"waits","batch":"waits"})", 0);
    std::this_thread::sleep_for(2s);
    h.start_agent();
    auto waited = h.wait_for(h.base() + "/response/capture", transaction_is("waits"), 20s);
    ASSERT_FALSE(waited.topic.empty()) << "the session did not keep the request\n"
                                       << h.agent().log();
    EXPECT_EQ(parse(waited.payload)["status"], "ok") << waited.payload;
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(h.wait_for(h.base() + "/response/capture", transaction_is("short-lived"), 10ms)
                    .topic.empty());
    auto photos = h.received(h.base() + "/capture");
    ASSERT_EQ(photos.size(), 1u);
    EXPECT_EQ(parse(photos[0].payload)["batch"], "waits");
}

TEST(FleetSession, BridgeStateShowsInState) {
    RigHarness h;
    h.start_all();
    auto has_bridge = [](bool up) {
        return [up](const Received& r) {
            json s = parse(r.payload);
            return s.is_object() && s["bridge"].is_object() && s["bridge"]["connected"] == up;
        };
    };
    json s = parse(h.wait_for(h.base() + "/state", any, 5s).payload);
    EXPECT_FALSE(s.contains("bridge")) << s.dump();  // no bridge configured
    // What mosquitto's bridge notification publishes on the rig's broker (retained 1 / 0).
    photorig::MessageQueue<mqtt::Event> events;
    auto broker_side = h.connect_as("photorig-agent", "fake-bridge-notifier", events);
    const int64_t before = photorig::clock::now_ms();
    ASSERT_TRUE(broker_side->publish(
        mqtt::Message{h.base() + "/bridge/state", "1", 1, true, "", ""}, true, 5s));
    auto up = h.wait_for(h.base() + "/state", has_bridge(true), 5s);
    ASSERT_FALSE(up.topic.empty()) << h.agent().log();
    EXPECT_GE(parse(up.payload)["bridge"]["since"].get<int64_t>(), before);
    ASSERT_TRUE(broker_side->publish(
        mqtt::Message{h.base() + "/bridge/state", "0", 1, true, "", ""}, true, 5s));
    EXPECT_FALSE(h.wait_for(h.base() + "/state", has_bridge(false), 5s).topic.empty());
    // A restarted agent reads the retained notification again.
    h.agent().stop();
    h.clear_received();
    h.start_agent();
    EXPECT_FALSE(h.wait_for(h.base() + "/state", has_bridge(false), 10s).topic.empty());
}
