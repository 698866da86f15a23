// photorig::mqtt::Client against a real mosquitto 2.0 (tests/support/mosquitto_fixture.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/queue.h"
#include "mqtt/client.h"
#include "support/child_process.h"
#include "support/mosquitto_fixture.h"
#include "support/test_util.h"

using namespace std::chrono_literals;
using photorig::MessageQueue;
using photorig::mqtt::Client;
using photorig::mqtt::Event;
using photorig::mqtt::Message;
using photorig::mqtt::Options;
using photorig::mqtt::Subscription;
using photorig::mqtt::Will;
using photorig::test::Mosquitto;
using photorig::test::run_command;
using photorig::test::TempDir;

namespace {

const char* const kLwtChildEnv = "PHOTORIG_MQTT_TEST_LWT_CHILD";  // "<port> <client id> <topic>"

Options options_for(const Mosquitto& broker, const std::string& client_id) {
    Options o;
    o.host = broker.host();
    o.port = broker.port();
    o.client_id = client_id;
    o.keepalive_s = 5;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 400;
    return o;
}

// One client plus the events it has produced; events stay queued here until a wait_*()
// takes them, so waiting for one kind never loses another.
class Peer {
  public:
    explicit Peer(Options o) : client_(std::make_unique<Client>(std::move(o), events_)) {}
    Client& operator*() { return *client_; }
    Client* operator->() { return client_.get(); }

    // The oldest event of `kind` (and, for messages, on `topic`), waiting up to `timeout`.
    std::optional<Event> wait_for(Event::Kind kind, const std::string& topic,
                                  std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (auto it = pending_.begin(); it != pending_.end(); ++it) {
                if (it->kind == kind &&
                    (kind != Event::Kind::message || it->message.topic == topic)) {
                    Event ev = std::move(*it);
                    pending_.erase(it);
                    return ev;
                }
            }
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            if (auto ev = events_.pop_for(20ms)) pending_.push_back(std::move(*ev));
        }
    }
    std::optional<Event> wait_event(Event::Kind kind, std::chrono::milliseconds timeout) {
        return wait_for(kind, "", timeout);
    }
    std::optional<Message> wait_message(const std::string& topic,
                                        std::chrono::milliseconds timeout) {
        auto ev = wait_for(Event::Kind::message, topic, timeout);
        if (!ev) return std::nullopt;
        return ev->message;
    }

    // Messages on `topic` received within `timeout`, stopping early at `n`.
    std::vector<Message> collect(const std::string& topic, size_t n,
                                 std::chrono::milliseconds timeout) {
        std::vector<Message> out;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (out.size() < n) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            if (auto m = wait_message(topic, left)) out.push_back(*m);
        }
        return out;
    }

    void reset() { client_.reset(); }

  private:
    MessageQueue<Event> events_;
    std::unique_ptr<Client> client_;
    std::deque<Event> pending_;
};

Message msg(const std::string& topic, const std::string& payload, int qos = 1) {
    Message m;
    m.topic = topic;
    m.payload = payload;
    m.qos = qos;
    return m;
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

// ---- Basics -----------------------------------------------------------------------------

TEST(Mqtt, RoundTripBinaryPayloadAndOwnPublishesAreHeard) {
    Mosquitto broker;
    broker.start();
    Peer a(options_for(broker, "rt-a"));
    a->set_subscriptions({{"rt/#", 1}});
    ASSERT_TRUE(a->connect(5s)) << broker.log();
    auto connected = a.wait_event(Event::Kind::connected, 2s);
    ASSERT_TRUE(connected);
    EXPECT_FALSE(connected->session_present);
    EXPECT_TRUE(a->connected());

    const std::string payload("bin\0ary\xff\x01", 10);
    auto st = a->publish(msg("rt/x", payload), false, 5s);
    ASSERT_TRUE(st) << st.error().describe();
    auto m = a.wait_message("rt/x", 5s);  // no_local is off: a client hears itself
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, payload);
    EXPECT_EQ(m->qos, 1);
    EXPECT_FALSE(m->retained);

    // A QoS 0 fire-and-forget message arrives too.
    a->publish_nowait(msg("rt/telemetry", "{}", 0), false);
    auto t = a.wait_message("rt/telemetry", 5s);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->qos, 0);
}

TEST(Mqtt, RetainedMessageReachesALaterSubscriberFlaggedRetained) {
    Mosquitto broker;
    broker.start();
    Peer pub(options_for(broker, "ret-pub"));
    ASSERT_TRUE(pub->connect(5s));
    ASSERT_TRUE(pub->publish(msg("ret/availability", "online"), true, 5s));

    Peer sub(options_for(broker, "ret-sub"));
    sub->set_subscriptions({{"ret/#", 1}});
    ASSERT_TRUE(sub->connect(5s));
    auto m = sub.wait_message("ret/availability", 5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "online");
    EXPECT_TRUE(m->retained);
}

TEST(Mqtt, V5ResponseTopicAndBinaryCorrelationDataArrive) {
    Mosquitto broker;
    broker.start();
    Peer responder(options_for(broker, "v5-responder"));
    responder->set_subscriptions({{"v5/request/#", 1}});
    ASSERT_TRUE(responder->connect(5s));
    Peer requester(options_for(broker, "v5-requester"));
    requester->set_subscriptions({{"v5/replies/me", 1}});
    ASSERT_TRUE(requester->connect(5s));

    Message req = msg("v5/request/status", "{}");
    req.response_topic = "v5/replies/me";
    req.correlation_data = std::string("\x00\x01corr\xfe", 7);
    ASSERT_TRUE(requester->publish(req, false, 5s));

    auto got = responder.wait_message("v5/request/status", 5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->response_topic, "v5/replies/me");
    EXPECT_EQ(got->correlation_data, req.correlation_data);

    Message reply = msg(got->response_topic, "{\"status\":\"ok\"}");
    reply.correlation_data = got->correlation_data;
    ASSERT_TRUE(responder->publish(reply, false, 5s));
    auto back = requester.wait_message("v5/replies/me", 5s);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->correlation_data, req.correlation_data);
    EXPECT_TRUE(back->response_topic.empty());
}

TEST(Mqtt, MosquittoPubWithMqtt311ReachesAV5Subscriber) {
    Mosquitto broker;
    broker.start();
    Peer sub(options_for(broker, "v311-sub"));
    sub->set_subscriptions({{"cli/request/+", 1}});
    ASSERT_TRUE(sub->connect(5s));
    auto r = run_command({"mosquitto_pub", "-V", "mqttv311", "-h", broker.host(), "-p",
                          std::to_string(broker.port()), "-q", "1", "-t", "cli/request/capture",
                          "-m", "{\"count\":1}"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto m = sub.wait_message("cli/request/capture", 5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "{\"count\":1}");
    EXPECT_TRUE(m->response_topic.empty());
    EXPECT_TRUE(m->correlation_data.empty());
}

TEST(Mqtt, Mqtt311ClientRoundTripAndV5PropertiesAreDroppedNotFatal) {
    Mosquitto broker;
    broker.start();
    Options o = options_for(broker, "v311-client");
    o.mqtt_version = 4;
    Peer c(o);
    c->set_subscriptions({{"old/#", 1}});
    ASSERT_TRUE(c->connect(5s)) << broker.log();
    Message m = msg("old/x", "hello");
    m.response_topic = "ignored/under/311";
    ASSERT_TRUE(c->publish(m, false, 5s));
    auto got = c.wait_message("old/x", 5s);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->payload, "hello");
    EXPECT_TRUE(got->response_topic.empty());
}

TEST(Mqtt, SetSubscriptionsWhileConnectedAddsAndRemovesFilters) {
    Mosquitto broker;
    broker.start();
    Peer c(options_for(broker, "late-subs"));
    ASSERT_TRUE(c->connect(5s));
    c->set_subscriptions({{"late/#", 1}});
    // The SUBSCRIBE goes out from the connection thread: publish until it takes effect.
    bool heard = photorig::test::wait_until(
        [&] {
            c->publish_nowait(msg("late/probe", "x"), false);
            return c.wait_message("late/probe", 100ms).has_value();
        },
        5s, 1ms);
    ASSERT_TRUE(heard);

    c->set_subscriptions({{"other/#", 1}});
    ASSERT_TRUE(photorig::test::wait_until(
        [&] {
            c->publish_nowait(msg("other/probe", "x"), false);
            return c.wait_message("other/probe", 100ms).has_value();
        },
        5s, 1ms));
    // late/# is gone: a message there, then a marker on other/#; the marker arrives alone.
    while (c.wait_message("late/probe", 200ms)) {
    }
    ASSERT_TRUE(c->publish(msg("late/after", "x"), false, 5s));
    ASSERT_TRUE(c->publish(msg("other/marker", "x"), false, 5s));
    ASSERT_TRUE(c.wait_message("other/marker", 5s));
    EXPECT_FALSE(c.wait_message("late/after", 200ms));
}

// ---- Persistent sessions ----------------------------------------------------------------

class MqttPersistent : public ::testing::TestWithParam<int> {};

TEST_P(MqttPersistent, OfflineSubscriberGetsAll50Qos1MessagesOnReconnect) {
    Mosquitto broker;
    broker.start();
    Options so = options_for(broker, "uploader-" + std::to_string(GetParam()));
    so.mqtt_version = GetParam();
    so.clean_start = false;
    so.session_expiry_s = 3600;
    {
        Peer sub(so);
        sub->set_subscriptions({{"jobs", 1}});
        ASSERT_TRUE(sub->connect(5s));
        sub->disconnect(2s);
        EXPECT_FALSE(sub->connected());
    }
    Peer pub(options_for(broker, "agent"));
    ASSERT_TRUE(pub->connect(5s));
    for (int i = 0; i < 50; ++i) {
        auto st = pub->publish(msg("jobs", "job-" + std::to_string(i)), false, 5s);
        ASSERT_TRUE(st) << st.error().describe();
    }
    Peer sub(so);
    sub->set_subscriptions({{"jobs", 1}});
    ASSERT_TRUE(sub->connect(5s));
    auto got = sub.collect("jobs", 50, 10s);
    ASSERT_EQ(got.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i].payload, "job-" + std::to_string(i));
    auto ev = sub.wait_event(Event::Kind::connected, 1s);
    ASSERT_TRUE(ev);
    EXPECT_TRUE(ev->session_present);
}

INSTANTIATE_TEST_SUITE_P(Versions, MqttPersistent, ::testing::Values(5, 4),
                         [](const auto& info) { return info.param == 5 ? "v5" : "v311"; });

TEST(MqttPersistentBroker, QueuedMessagesSurviveABrokerRestartAndAKill9) {
    Mosquitto broker;  // persistence on, autosave on every change
    broker.start();
    Options so = options_for(broker, "durable-sub");
    so.clean_start = false;
    so.session_expiry_s = 3600;
    {
        Peer sub(so);
        sub->set_subscriptions({{"durable", 1}});
        ASSERT_TRUE(sub->connect(5s));
        sub->disconnect(2s);
    }
    {
        Peer pub(options_for(broker, "durable-pub"));
        ASSERT_TRUE(pub->connect(5s));
        for (int i = 0; i < 5; ++i)
            ASSERT_TRUE(pub->publish(msg("durable", std::to_string(i)), false, 5s));
        pub->disconnect(2s);
    }
    broker.restart();
    std::this_thread::sleep_for(300ms);  // let the autosave run after the reconnect bookkeeping
    broker.kill9();
    broker.start();
    Peer sub(so);
    ASSERT_TRUE(sub->connect(5s));
    auto got = sub.collect("durable", 5, 10s);
    ASSERT_EQ(got.size(), 5u) << broker.log();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(got[i].payload, std::to_string(i));
}

TEST(MqttPersistentBroker, MoreThanMosquittosDefault1000QueuedMessagesAreKept) {
    Mosquitto::Options bo;
    bo.persistence = false;  // autosave-on-every-change rewrites the whole DB per message: O(n^2)
    Mosquitto broker(bo);    // max_queued_messages 100000
    broker.start();
    Options so = options_for(broker, "backlog-sub");
    so.clean_start = false;
    so.session_expiry_s = 3600;
    {
        Peer sub(so);
        sub->set_subscriptions({{"backlog", 1}});
        ASSERT_TRUE(sub->connect(5s));
        sub->disconnect(2s);
    }
    Peer pub(options_for(broker, "backlog-pub"));
    ASSERT_TRUE(pub->connect(5s));
    for (int i = 0; i < 1500; ++i)
        ASSERT_TRUE(pub->publish(msg("backlog", std::to_string(i)), false, 5s));
    Peer sub(so);
    ASSERT_TRUE(sub->connect(5s));
    auto got = sub.collect("backlog", 1500, 20s);
    ASSERT_EQ(got.size(), 1500u);
    EXPECT_EQ(got.back().payload, "1499");
}

// ---- Reconnection -----------------------------------------------------------------------

class MqttBrokerOutage : public ::testing::TestWithParam<bool> {};  // true: kill -9

TEST_P(MqttBrokerOutage, ClientReconnectsByItselfAndResubscribes) {
    Mosquitto broker;
    broker.start();
    Options o = options_for(broker, "reconnecting");
    o.clean_start = true;  // the broker forgets our subscriptions: we must make them again
    Peer c(o);
    c->set_subscriptions({{"flow/#", 1}});
    ASSERT_TRUE(c->connect(5s));
    ASSERT_TRUE(c.wait_event(Event::Kind::connected, 2s));
    ASSERT_TRUE(c->publish(msg("flow/before", "1"), false, 5s));
    ASSERT_TRUE(c.wait_message("flow/before", 5s));

    if (GetParam()) {
        broker.kill9();
    } else {
        broker.stop();
    }
    auto lost = c.wait_event(Event::Kind::connection_lost, 10s);
    ASSERT_TRUE(lost);
    EXPECT_FALSE(lost->reason.empty());
    EXPECT_FALSE(c->connected());
    std::this_thread::sleep_for(500ms);  // a few failed attempts while the broker is down
    broker.start();

    auto back = c.wait_event(Event::Kind::connected, 10s);
    ASSERT_TRUE(back) << broker.log();
    EXPECT_FALSE(back->session_present);
    EXPECT_TRUE(c->connected());
    // Messages flow again, from another client too: the subscription was made anew.
    Peer other(options_for(broker, "other"));
    ASSERT_TRUE(other->connect(5s));
    ASSERT_TRUE(other->publish(msg("flow/after", "2"), false, 5s));
    auto m = c.wait_message("flow/after", 5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "2");
}

INSTANTIATE_TEST_SUITE_P(Outage, MqttBrokerOutage, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "kill9" : "sigterm"; });

TEST(Mqtt, ASessionTakenOverIsALossAndTheClientComesBack) {
    // Two processes with one client id (a config mistake) take the session from each other;
    // each sees a loss and reconnects with backoff. Once the other is gone, it stays up.
    Mosquitto broker;
    broker.start();
    Peer a(options_for(broker, "same-id"));
    ASSERT_TRUE(a->connect(5s));
    {
        Peer b(options_for(broker, "same-id"));
        ASSERT_TRUE(b->connect(5s));
        auto lost = a.wait_event(Event::Kind::connection_lost, 5s);
        ASSERT_TRUE(lost);
        EXPECT_FALSE(lost->reason.empty());
        b->disconnect(2s);
    }
    EXPECT_TRUE(photorig::test::wait_until([&] { return a->connected(); }, 10s));
    ASSERT_TRUE(a->publish(msg("same/x", "y"), false, 5s));
}

TEST(Mqtt, FirstConnectToADownBrokerFailsThenSucceedsInTheBackground) {
    Mosquitto broker;
    broker.start();
    broker.stop();  // the port is known and nothing listens on it
    Peer c(options_for(broker, "early-bird"));
    c->set_subscriptions({{"early/#", 1}});
    auto st = c->connect(5s);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "unreachable") << st.error().describe();
    broker.start();
    ASSERT_TRUE(c.wait_event(Event::Kind::connected, 10s));
    ASSERT_TRUE(c->publish(msg("early/x", "y"), false, 5s));
    ASSERT_TRUE(c.wait_message("early/x", 5s));
}

TEST(Mqtt, PublishWhileTheBrokerIsDownFailsWithinItsTimeout) {
    Mosquitto broker;
    broker.start();
    Peer c(options_for(broker, "impatient"));
    ASSERT_TRUE(c->connect(5s));
    broker.stop();
    ASSERT_TRUE(c.wait_event(Event::Kind::connection_lost, 10s));
    auto t0 = std::chrono::steady_clock::now();
    auto st = c->publish(msg("x/y", "z"), false, 300ms);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "not_connected") << st.error().describe();
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 1500ms);
    c->publish_nowait(msg("x/y", "dropped"), false);  // no throw, no block
}

TEST(Mqtt, PublishWaitsForTheReconnectionWithinItsTimeout) {
    Mosquitto broker;
    broker.start();
    Peer c(options_for(broker, "patient"));
    c->set_subscriptions({{"patient/#", 1}});
    ASSERT_TRUE(c->connect(5s));
    broker.stop();
    ASSERT_TRUE(c.wait_event(Event::Kind::connection_lost, 10s));
    std::thread restarter([&] {
        std::this_thread::sleep_for(300ms);
        broker.start();
    });
    auto st = c->publish(msg("patient/job", "1"), false, 10s);
    restarter.join();
    ASSERT_TRUE(st) << st.error().describe();
    EXPECT_TRUE(c.wait_message("patient/job", 5s));
}

TEST(Mqtt, DisconnectIsFinalUntilConnectIsCalledAgain) {
    Mosquitto broker;
    broker.start();
    Peer c(options_for(broker, "on-off"));
    c->set_subscriptions({{"onoff/#", 1}});
    ASSERT_TRUE(c->connect(5s));
    c->disconnect(2s);
    EXPECT_FALSE(c->connected());
    auto st = c->publish(msg("onoff/x", "1"), false, 2s);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "not_connected");
    ASSERT_TRUE(c->connect(5s));
    ASSERT_TRUE(c->publish(msg("onoff/x", "2"), false, 5s));
    auto m = c.wait_message("onoff/x", 5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->payload, "2");
}

// ---- Last will --------------------------------------------------------------------------

// Not a test on its own: the body of the child process of LastWillIsPublishedWhenTheClientDies.
TEST(MqttLwtChild, ConnectWithAWillAndWaitToBeKilled) {
    const char* spec = std::getenv(kLwtChildEnv);
    if (!spec) GTEST_SKIP() << "runs only as the child of MqttLwt.*";
    std::istringstream in(spec);
    Options o;
    std::string topic;
    in >> o.port >> o.client_id >> topic;
    o.will = Will{topic, "offline", 1, true};
    MessageQueue<Event> events;
    Client c(o, events);
    auto st = c.connect(5s);
    ASSERT_TRUE(st) << st.error().describe();
    ASSERT_TRUE(c.publish(msg(topic, "online"), true, 5s));
    std::this_thread::sleep_for(60s);  // the parent SIGKILLs us long before
}

TEST(MqttLwt, LastWillIsPublishedWhenTheClientDies) {
    Mosquitto broker;
    broker.start();
    const std::string topic = "lwt/rig1/availability";
    Peer watcher(options_for(broker, "lwt-watcher"));
    watcher->set_subscriptions({{"lwt/#", 1}});
    ASSERT_TRUE(watcher->connect(5s));

    TempDir dir("photorig-lwt");
    photorig::test::ChildProcess child(
        {self_exe(), "--gtest_filter=MqttLwtChild.*"}, dir.file("child.log"),
        {std::string(kLwtChildEnv) + "=" + std::to_string(broker.port()) + " lwt-child " + topic});
    child.start();
    auto online = watcher.wait_message(topic, 10s);
    ASSERT_TRUE(online) << child.log();
    EXPECT_EQ(online->payload, "online");

    child.kill9();  // the socket closes without DISCONNECT
    auto offline = watcher.wait_message(topic, 10s);
    ASSERT_TRUE(offline) << broker.log();
    EXPECT_EQ(offline->payload, "offline");

    // The will was retained: a newcomer reads "offline".
    Peer late(options_for(broker, "lwt-late"));
    late->set_subscriptions({{topic, 1}});
    ASSERT_TRUE(late->connect(5s));
    auto retained = late.wait_message(topic, 5s);
    ASSERT_TRUE(retained);
    EXPECT_EQ(retained->payload, "offline");
    EXPECT_TRUE(retained->retained);
}

TEST(MqttLwt, CleanDisconnectDoesNotSendTheWill) {
    Mosquitto broker;
    broker.start();
    const std::string topic = "lwt2/availability";
    Peer watcher(options_for(broker, "lwt2-watcher"));
    watcher->set_subscriptions({{"lwt2/#", 1}});
    ASSERT_TRUE(watcher->connect(5s));
    Options o = options_for(broker, "lwt2-client");
    o.will = Will{topic, "offline", 1, true};
    {
        Peer c(o);
        ASSERT_TRUE(c->connect(5s));
        ASSERT_TRUE(c->publish(msg(topic, "online"), true, 5s));
        c->disconnect(2s);
    }
    {
        Peer c(o);  // and the destructor alone disconnects cleanly too
        ASSERT_TRUE(c->connect(5s));
    }
    auto online = watcher.wait_message(topic, 5s);
    ASSERT_TRUE(online);
    EXPECT_EQ(online->payload, "online");
    auto more = watcher.wait_message(topic, 1500ms);
    EXPECT_FALSE(more) << more->payload;
}

// ---- Authentication and authorization ---------------------------------------------------

class MqttAuth : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pw = dir_.file("passwd");
        auto r = run_command({"mosquitto_passwd", "-b", "-c", pw, "rig", kSecret});
        ASSERT_EQ(r.exit_code, 0) << r.output;
        photorig::test::write_file(dir_.file("acl"),
                                   "user rig\n"
                                   "topic readwrite rig/#\n");
        Mosquitto::Options bo;
        bo.password_file = pw;
        bo.acl_file = dir_.file("acl");
        broker_ = std::make_unique<Mosquitto>(bo);
        broker_->start();
    }
    Options opts(const std::string& user, const std::string& password, int version = 5) {
        Options o = options_for(*broker_, "auth-" + user + std::to_string(version));
        o.username = user;
        o.password = password;
        o.mqtt_version = version;
        return o;
    }
    static constexpr const char* kSecret = "s3cret-pw-917";
    TempDir dir_{"photorig-auth"};
    std::unique_ptr<Mosquitto> broker_;
};

TEST_F(MqttAuth, RightPasswordConnectsAndPublishes) {
    Peer c(opts("rig", kSecret));
    c->set_subscriptions({{"rig/#", 1}});
    auto st = c->connect(5s);
    ASSERT_TRUE(st) << st.error().describe();
    ASSERT_TRUE(c->publish(msg("rig/x", "y"), false, 5s));
    ASSERT_TRUE(c.wait_message("rig/x", 5s));
}

TEST_F(MqttAuth, WrongPasswordIsNotAuthorizedAndNeverPrinted) {
    const std::string wrong = "wr0ng-pw-4471";
    for (int version : {5, 4}) {
        ::testing::internal::CaptureStderr();
        Peer c(opts("rig", wrong, version));
        auto st = c->connect(5s);
        c.reset();
        std::string logged = ::testing::internal::GetCapturedStderr();
        ASSERT_FALSE(st) << "v" << version;
        EXPECT_EQ(st.error().code, "not_authorized") << st.error().describe();
        EXPECT_EQ(st.error().message.find(wrong), std::string::npos);
        EXPECT_EQ(logged.find(wrong), std::string::npos);
        EXPECT_EQ(logged.find(kSecret), std::string::npos);
    }
    Peer nobody(opts("nobody", kSecret));
    auto st = nobody->connect(5s);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "not_authorized");
}

TEST_F(MqttAuth, AclDeniedV5PublishIsNotAuthorized) {
    // mosquitto 2.0.11 grants every SUBSCRIBE and applies the ACL on delivery, so only the
    // publish side can be refused here: MQTT v5 carries it as PUBACK reason 135.
    Peer c(opts("rig", kSecret));
    c->set_subscriptions({{"rig/#", 1}});
    ASSERT_TRUE(c->connect(5s));
    auto pst = c->publish(msg("forbidden/x", "y"), false, 5s);
    ASSERT_FALSE(pst);
    EXPECT_EQ(pst.error().code, "not_authorized") << pst.error().describe();
    EXPECT_TRUE(c->connected());
    ASSERT_TRUE(c->publish(msg("rig/ok", "y"), false, 5s));
    ASSERT_TRUE(c.wait_message("rig/ok", 5s));
}

// ---- TLS --------------------------------------------------------------------------------

TEST(MqttTls, ConnectsOverTlsWithTheCaAndRefusesAnUnknownCa) {
    TempDir dir("photorig-tls");
    auto sh = [&](const std::string& cmd) {
        auto r = run_command({"sh", "-c", "cd " + dir.path() + " && " + cmd});
        ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out "
       "ca.crt");
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key "
       "-out other.crt");
    sh("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out "
       "server.csr");
    sh("printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && openssl x509 -req -in server.csr -CA "
       "ca.crt -CAkey "
       "ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt");
    int tls_port = photorig::test::free_tcp_port();
    Mosquitto::Options bo;
    bo.extra_lines = {"listener " + std::to_string(tls_port) + " 127.0.0.1",
                      "cafile " + dir.file("ca.crt"), "certfile " + dir.file("server.crt"),
                      "keyfile " + dir.file("server.key")};
    Mosquitto broker(bo);
    broker.start();

    Options o = options_for(broker, "tls-client");
    o.port = tls_port;
    o.tls.ca_file = dir.file("ca.crt");
    Peer c(o);
    c->set_subscriptions({{"tls/#", 1}});
    auto st = c->connect(5s);
    ASSERT_TRUE(st) << st.error().describe() << "\n" << broker.log();
    ASSERT_TRUE(c->publish(msg("tls/x", "secret"), false, 5s));
    ASSERT_TRUE(c.wait_message("tls/x", 5s));

    o.client_id = "tls-wrong-ca";
    o.tls.ca_file = dir.file("other.crt");
    Peer bad(o);
    auto bst = bad->connect(5s);
    ASSERT_FALSE(bst);
    EXPECT_EQ(bst.error().code, "unreachable") << bst.error().describe();
}

// ---- The fixture itself -----------------------------------------------------------------

TEST(MosquittoFixture, WebsocketsListenerAndRestartKeepThePorts) {
    Mosquitto::Options bo;
    bo.websockets = true;
    Mosquitto broker(bo);
    broker.start();
    EXPECT_GT(broker.ws_port(), 0);
    EXPECT_NE(broker.ws_port(), broker.port());
    int port = broker.port();
    int ws = broker.ws_port();
    broker.restart();
    EXPECT_EQ(broker.port(), port);
    EXPECT_EQ(broker.ws_port(), ws);
    EXPECT_NE(broker.log().find("Opening websockets listen socket on port " + std::to_string(ws)),
              std::string::npos)
        << broker.log();
    broker.stop();
    EXPECT_FALSE(broker.running());
}
