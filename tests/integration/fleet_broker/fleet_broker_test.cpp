// The fleet's broker side (issue 14), with real mosquitto brokers, a real bridge and real
// TLS on free loopback ports: deploy/fleet-certs.sh makes the certificates, run-broker.sh
// --central runs the central broker (TLS with client certificates for rigs, a password
// listener and a websockets listener for the dashboard user) and run-broker.sh --bridge-to
// runs rig-a's local broker bridged to it. Observers are photorig's own MQTT client (v5);
// rig certificates are used through mosquitto_pub/mosquitto_sub (-V mqttv5).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/queue.h"
#include "mqtt/client.h"
#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/test_util.h"

using namespace photorig;
using namespace photorig::test;
using namespace std::chrono_literals;

namespace {

const std::string kSource = PHOTORIG_SOURCE_DIR;

int file_mode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
}

std::string first_line(const std::string& path) {
    std::string text = read_file(path);
    return text.substr(0, text.find('\n'));
}

CommandResult fleet_certs(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kSource + "/deploy/fleet-certs.sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, 60s);
}

// An MQTT client that records every message it receives (topic, payload, retained).
class Observer {
  public:
    Observer(mqtt::Options options, std::vector<std::string> filters) {
        options.mqtt_version = 5;
        options.reconnect_min_ms = 100;
        options.reconnect_max_ms = 500;
        client_ = std::make_unique<mqtt::Client>(options, events_);
        std::vector<mqtt::Subscription> subs;
        for (const auto& f : filters) subs.push_back({f, 1});
        client_->set_subscriptions(subs);
        if (auto st = client_->connect(5s); !st)
            throw std::runtime_error(options.client_id + ": " + st.error().describe());
        thread_ = std::thread([this] { drain(); });
    }
    ~Observer() {
        client_.reset();
        events_.close();
        thread_.join();
    }

    mqtt::Client& client() { return *client_; }

    // Whether a message on `topic` with `payload` arrives within `timeout`.
    bool wait_for(const std::string& topic, const std::string& payload,
                  std::chrono::milliseconds timeout) {
        return wait_until([&] { return seen(topic, payload); }, timeout);
    }
    bool seen(const std::string& topic, const std::string& payload) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::any_of(received_.begin(), received_.end(), [&](const mqtt::Message& m) {
            return m.topic == topic && m.payload == payload;
        });
    }
    bool seen_topic(const std::string& topic) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return std::any_of(received_.begin(), received_.end(),
                           [&](const mqtt::Message& m) { return m.topic == topic; });
    }
    // The payload of the last message on `topic` ("" when none came).
    std::string last(const std::string& topic) const {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto it = received_.rbegin(); it != received_.rend(); ++it)
            if (it->topic == topic) return it->payload;
        return "";
    }

  private:
    void drain() {
        while (!events_.closed()) {
            auto event = events_.pop_for(100ms);
            if (!event || event->kind != mqtt::Event::Kind::message) continue;
            std::lock_guard<std::mutex> lock(mutex_);
            received_.push_back(event->message);
        }
    }

    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> client_;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::vector<mqtt::Message> received_;
};

// MQTT.js over websockets, anonymous: prints CONNECTED or REFUSED <reason>.
const char* kAnonymousWsClient = R"JS(
const mqtt = require('mqtt');
const c = mqtt.connect(process.env.WS_URL, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5 });
c.on('connect', () => { console.log('CONNECTED'); c.end(true); process.exit(0); });
c.on('error', (e) => { console.log('REFUSED ' + e.message); process.exit(3); });
c.on('close', () => { console.log('REFUSED closed'); process.exit(3); });
setTimeout(() => { console.log('TIMEOUT'); process.exit(4); }, 8000);
)JS";

// Certificates for rig-a and rig-b (plus a CA nobody trusts), the central broker and rig-a's
// local broker bridged to it, and one observer on each.
class FleetBroker : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(find_program("mosquitto").empty())
            << missing_program_message("mosquitto", "Debian package mosquitto");
        auto certs = fleet_certs({certs_dir(), "rig-a", "rig-b"});
        ASSERT_EQ(certs.exit_code, 0) << certs.output;
        auto other = fleet_certs({dir_.file("other-ca"), "rig-b"});
        ASSERT_EQ(other.exit_code, 0) << other.output;
        start_central();
        start_local();
        central_obs_ =
            std::make_unique<Observer>(dashboard_options("central-observer"),
                                       std::vector<std::string>{"photorig/#", "homeassistant/#"});
        // A persistent session (as the agent's): it gets what arrived while it was away.
        mqtt::Options local = local_options("local-observer");
        local.clean_start = false;
        local.session_expiry_s = 600;
        local_obs_ = std::make_unique<Observer>(local, std::vector<std::string>{"photorig/#"});
        // The bridge is up once mosquitto's notification says so on both sides.
        ASSERT_TRUE(central_obs_->wait_for(kBridgeState, "1", 10s)) << central_->log();
        ASSERT_TRUE(local_obs_->wait_for(kBridgeState, "1", 5s)) << local_->log();
    }

    void TearDown() override {
        central_obs_.reset();
        local_obs_.reset();
    }

    std::string certs_dir() const { return dir_.file("certs"); }
    std::string cert(const std::string& name) const { return certs_dir() + "/" + name; }

    void start_central() {
        central_port_ = free_tcp_port();
        central_tls_port_ = free_tcp_port();
        central_ws_port_ = free_tcp_port();
        central_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{kSource + "/broker/run-broker.sh", "--central", "--port",
                                     std::to_string(central_port_), "--tls-port",
                                     std::to_string(central_tls_port_), "--ws-port",
                                     std::to_string(central_ws_port_), "--data-dir",
                                     dir_.file("central"), "--ca", cert("ca.crt"), "--cert",
                                     cert("central.crt"), "--key", cert("central.key")},
            dir_.file("central.log"));
        central_->start();
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(central_tls_port_); }, 10s))
            << central_->log();
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(central_port_); }, 5s));
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(central_ws_port_); }, 5s));
    }

    void start_local() {
        local_port_ = free_tcp_port();
        local_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{
                kSource + "/broker/run-broker.sh", "--port", std::to_string(local_port_),
                "--data-dir", dir_.file("local-a"), "--rig-id", "rig-a", "--bridge-to",
                "127.0.0.1:" + std::to_string(central_tls_port_), "--bridge-ca", cert("ca.crt"),
                "--bridge-cert", cert("rig-a.crt"), "--bridge-key", cert("rig-a.key")},
            dir_.file("local-a.log"));
        local_->start();
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(local_port_); }, 10s))
            << local_->log();
    }

    mqtt::Options dashboard_options(const std::string& client_id) const {
        mqtt::Options o;
        o.port = central_port_;
        o.client_id = client_id;
        o.username = "photorig-dashboard";
        o.password = first_line(dir_.file("central/secrets/photorig-dashboard.password"));
        return o;
    }
    mqtt::Options local_options(const std::string& client_id) const {
        mqtt::Options o;
        o.port = local_port_;
        o.client_id = client_id;
        o.username = "photorig-agent";
        o.password = first_line(dir_.file("local-a/secrets/photorig-agent.password"));
        return o;
    }

    // mosquitto_pub (MQTT v5, QoS 1) on the central TLS port with `rig`'s certificate;
    // `ca_dir` is where the certificate comes from (another CA's for the refusal).
    CommandResult pub_as_rig(const std::string& rig, const std::string& topic,
                             const std::string& payload, const std::string& ca_dir = "") const {
        const std::string from = ca_dir.empty() ? certs_dir() : ca_dir;
        return run_command({"mosquitto_pub", "-V", "mqttv5", "-h", "127.0.0.1", "-p",
                            std::to_string(central_tls_port_), "--cafile", cert("ca.crt"), "--cert",
                            from + "/" + rig + ".crt", "--key", from + "/" + rig + ".key", "-q",
                            "1", "-t", topic, "-m", payload},
                           15s);
    }

    static Status publish(Observer& as, const std::string& topic, const std::string& payload) {
        mqtt::Message m;
        m.topic = topic;
        m.payload = payload;
        m.qos = 1;
        return as.client().publish(m, false, 5s);
    }

    static constexpr const char* kBridgeState = "photorig/rig-a/bridge/state";
    TempDir dir_{"photorig-fleet-broker"};
    int central_port_ = 0, central_tls_port_ = 0, central_ws_port_ = 0, local_port_ = 0;
    std::unique_ptr<ChildProcess> central_, local_;
    std::unique_ptr<Observer> central_obs_, local_obs_;
};

}  // namespace

TEST(FleetCerts, MakesCaCentralAndRigCertificatesAndKeepsThemOnRerun) {
    TempDir dir("photorig-fleet-certs");
    const std::string d = dir.file("certs");
    auto first = fleet_certs({d, "rig-a", "rig_b", "--central-name", "central.example.org",
                              "--central-name", "10.1.2.3"});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    for (const char* key : {"ca.key", "central.key", "rig-a.key", "rig_b.key"})
        EXPECT_EQ(file_mode(d + "/" + key), 0600) << key;
    for (const char* crt : {"ca.crt", "central.crt", "rig-a.crt", "rig_b.crt"})
        EXPECT_EQ(file_mode(d + "/" + crt), 0644) << crt;

    auto subject = run_command({"openssl", "x509", "-in", d + "/rig-a.crt", "-noout", "-subject"});
    EXPECT_NE(subject.output.find("CN = rig-a"), std::string::npos) << subject.output;
    auto san = run_command(
        {"openssl", "x509", "-in", d + "/central.crt", "-noout", "-ext", "subjectAltName"});
    for (const char* name : {"DNS:localhost", "IP Address:127.0.0.1", "DNS:central.example.org",
                             "IP Address:10.1.2.3"})
        EXPECT_NE(san.output.find(name), std::string::npos) << name << "\n" << san.output;
    auto verify = run_command({"openssl", "verify", "-CAfile", d + "/ca.crt", d + "/central.crt",
                               d + "/rig-a.crt", d + "/rig_b.crt"});
    EXPECT_EQ(verify.exit_code, 0) << verify.output;

    // Again with one more rig: the CA and the existing certificates and keys stay as they were.
    const std::string ca = read_file(d + "/ca.crt"), ca_key = read_file(d + "/ca.key");
    const std::string rig_a = read_file(d + "/rig-a.crt"), rig_a_key = read_file(d + "/rig-a.key");
    auto again = fleet_certs({d, "rig-a", "rig-c"});
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(read_file(d + "/ca.crt"), ca);
    EXPECT_EQ(read_file(d + "/ca.key"), ca_key);
    EXPECT_EQ(read_file(d + "/rig-a.crt"), rig_a);
    EXPECT_EQ(read_file(d + "/rig-a.key"), rig_a_key);
    EXPECT_EQ(file_mode(d + "/rig-c.key"), 0600);
    auto rig_c = run_command({"openssl", "verify", "-CAfile", d + "/ca.crt", d + "/rig-c.crt"});
    EXPECT_EQ(rig_c.exit_code, 0) << rig_c.output;
}

TEST(FleetCerts, RefusesRigIdsThatAreNotTopicLevelsOrTheDashboardUser) {
    TempDir dir("photorig-fleet-certs");
    const std::string d = dir.file("certs");
    for (const char* bad : {"photorig-dashboard", "Rig-A", "rig/a", "rig+", "central", ""}) {
        auto r = fleet_certs({d, bad});
        EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
    }
    EXPECT_EQ(file_mode(d + "/photorig-dashboard.crt"), -1);
}

TEST(FleetBrokerOptions, RunBrokerRefusesIncompleteCentralAndBridgeOptions) {
    TempDir dir("photorig-fleet-options");
    const std::string f = secret_file(dir, "any.pem", "x");
    const std::string script = kSource + "/broker/run-broker.sh";
    const std::vector<std::vector<std::string>> bad{
        {"--central"},                                      // no TLS listener
        {"--central", "--tls-port", "8883", "--ca", f},     // no cert/key
        {"--bridge-to", "central:8883", "--bridge-ca", f},  // no cert/key
        {"--bridge-to", "central", "--bridge-ca", f, "--bridge-cert", f, "--bridge-key", f},
        {"--bridge-to", "h:1", "--bridge-ca", f, "--bridge-cert", f, "--bridge-key",
         dir.file("missing.key")},
        {"--central", "--tls-port", "8883", "--ca", f, "--cert", f, "--key", f, "--bridge-to",
         "h:1", "--bridge-ca", f, "--bridge-cert", f, "--bridge-key", f},
    };
    for (const auto& args : bad) {
        std::vector<std::string> argv{script, "--setup-only", "--data-dir", dir.file("b")};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run_command(argv, 30s);
        EXPECT_EQ(r.exit_code, 2) << args[0] << " " << args.back() << ": " << r.output;
    }
}

TEST_F(FleetBroker, BridgeCarriesRigTopicsOutAndRequestsInButUploadJobsStayLocal) {
    // The local observer is photorig-agent on the rig's broker: it publishes as the agent does.
    Observer& agent = *local_obs_;
    ASSERT_TRUE(publish(agent, "photorig/rig-a/upload/jobs", "job-1"));
    ASSERT_TRUE(publish(agent, "homeassistant/device/rig-a/config", "{\"discovery\":1}"));
    ASSERT_TRUE(publish(agent, "photorig/rig-a/state", "{\"state\":1}"));
    EXPECT_TRUE(central_obs_->wait_for("photorig/rig-a/state", "{\"state\":1}", 5s));
    EXPECT_TRUE(local_obs_->wait_for("photorig/rig-a/upload/jobs", "job-1", 5s));
    // Same publisher, same bridge, in order: had jobs been bridged they would be there now.
    EXPECT_FALSE(central_obs_->seen_topic("photorig/rig-a/upload/jobs"));
    EXPECT_TRUE(
        central_obs_->wait_for("homeassistant/device/rig-a/config", "{\"discovery\":1}", 5s));

    // In: a rig's and a group's requests and turntable acknowledgements from the central.
    ASSERT_TRUE(publish(*central_obs_, "photorig/rig-a/request/x", "rig-request"));
    ASSERT_TRUE(publish(*central_obs_, "photorig/group/g/request/x", "group-request"));
    ASSERT_TRUE(publish(*central_obs_, "photorig/rig-a/scan/ready", "ready"));
    EXPECT_TRUE(local_obs_->wait_for("photorig/rig-a/request/x", "rig-request", 5s));
    EXPECT_TRUE(local_obs_->wait_for("photorig/group/g/request/x", "group-request", 5s));
    EXPECT_TRUE(local_obs_->wait_for("photorig/rig-a/scan/ready", "ready", 5s));
}

TEST_F(FleetBroker, BridgeStateIsOneOnBothSidesAndZeroCentrallyWhenTheRigsBrokerDies) {
    EXPECT_EQ(central_obs_->last(kBridgeState), "1");
    EXPECT_EQ(local_obs_->last(kBridgeState), "1");
    local_->kill9();
    // The bridge's will on the central broker: the TCP connection is gone.
    EXPECT_TRUE(wait_until([&] { return central_obs_->last(kBridgeState) == "0"; }, 10s))
        << central_->log();
}

// A restart of the rig's broker (systemctl restart): the central broker shows `0`, then `1`
// again, and stays at `1` (a stale local `0` must not follow it over the bridge). Then a
// crash: what MQTT 3.1.1 and cleansession false are for, the central broker keeps the
// bridge's session and hands over the requests queued for the rig while its broker was
// down (a v5 bridge from mosquitto 2.0 loses them: run-broker.sh).
TEST_F(FleetBroker, RigBrokerRestartsShowInBridgeStateAndLoseNoRequests) {
    local_->stop();
    ASSERT_TRUE(wait_until([&] { return central_obs_->last(kBridgeState) == "0"; }, 10s));
    local_->start();
    ASSERT_TRUE(wait_until([&] { return central_obs_->last(kBridgeState) == "1"; }, 10s));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(central_obs_->last(kBridgeState), "1");

    // The local observer's session is saved with this message (autosave on changes).
    ASSERT_TRUE(
        wait_until([&] { return !!publish(*local_obs_, "photorig/rig-a/event", "saved"); }, 10s));
    ASSERT_TRUE(central_obs_->wait_for("photorig/rig-a/event", "saved", 5s));
    local_->kill9();
    ASSERT_TRUE(wait_until([&] { return central_obs_->last(kBridgeState) == "0"; }, 10s));
    ASSERT_TRUE(publish(*central_obs_, "photorig/rig-a/request/capture", "while-down"));
    ASSERT_TRUE(publish(*central_obs_, "photorig/group/g/request/capture", "group-while-down"));
    local_->start();
    EXPECT_TRUE(local_obs_->wait_for("photorig/rig-a/request/capture", "while-down", 15s))
        << local_->log();
    EXPECT_TRUE(local_obs_->wait_for("photorig/group/g/request/capture", "group-while-down", 5s));
}

TEST_F(FleetBroker, RigCertificateActsOnlyAsItsOwnRigAndOtherCasAreRefused) {
    // rig-a cannot publish as rig-b (v5 PUBACK reason 135, nothing delivered).
    auto forged = pub_as_rig("rig-a", "photorig/rig-b/state", "forged");
    EXPECT_NE(forged.output.find("Not authorized"), std::string::npos) << forged.output;
    auto own = pub_as_rig("rig-a", "photorig/rig-a/event", "own");
    EXPECT_EQ(own.exit_code, 0) << own.output;
    EXPECT_EQ(own.output.find("Not authorized"), std::string::npos) << own.output;
    ASSERT_TRUE(central_obs_->wait_for("photorig/rig-a/event", "own", 5s));
    EXPECT_FALSE(central_obs_->seen_topic("photorig/rig-b/state"));

    // Nor read rig-b's requests: subscribed to everything a request could be on, it gets
    // only its own.
    ChildProcess sub({"stdbuf",
                      "-oL",
                      "mosquitto_sub",
                      "-V",
                      "mqttv5",
                      "-d",
                      "-v",
                      "-h",
                      "127.0.0.1",
                      "-p",
                      std::to_string(central_tls_port_),
                      "--cafile",
                      cert("ca.crt"),
                      "--cert",
                      cert("rig-a.crt"),
                      "--key",
                      cert("rig-a.key"),
                      "-q",
                      "1",
                      "-t",
                      "photorig/+/request/#",
                      "-t",
                      "photorig/rig-b/request/#"},
                     dir_.file("rig-a-sub.log"));
    sub.start();
    ASSERT_TRUE(wait_until([&] { return sub.log().find("SUBACK") != std::string::npos; }, 10s))
        << sub.log();
    ASSERT_TRUE(publish(*central_obs_, "photorig/rig-b/request/capture", "for-b"));
    ASSERT_TRUE(publish(*central_obs_, "photorig/rig-a/request/capture", "for-a"));
    EXPECT_TRUE(wait_until(
        [&] { return sub.log().find("photorig/rig-a/request/capture for-a") != std::string::npos; },
        5s))
        << sub.log();
    EXPECT_EQ(sub.log().find("for-b"), std::string::npos) << sub.log();

    // A certificate from another CA (same CN) fails the TLS handshake.
    auto r = pub_as_rig("rig-b", "photorig/rig-b/state", "other-ca", dir_.file("other-ca"));
    EXPECT_NE(r.exit_code, 0) << r.output;
    auto own_ca = pub_as_rig("rig-b", "photorig/rig-b/event", "same-ca");
    EXPECT_EQ(own_ca.exit_code, 0) << own_ca.output;
    ASSERT_TRUE(central_obs_->wait_for("photorig/rig-b/event", "same-ca", 5s));
    EXPECT_FALSE(central_obs_->seen("photorig/rig-b/state", "other-ca"));
}

TEST_F(FleetBroker, AnonymousClientsAreRefusedOnEveryListener) {
    for (int port : {central_port_, local_port_}) {
        auto r = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-t",
                              "photorig/rig-a/request/status", "-m", "{}", "-q", "1"},
                             15s);
        EXPECT_NE(r.exit_code, 0) << port << ": " << r.output;
        EXPECT_NE(r.output.find("not authori"), std::string::npos) << r.output;
    }
    // TLS without a client certificate: the handshake itself fails.
    auto no_cert = run_command(
        {"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(central_tls_port_), "--cafile",
         cert("ca.crt"), "-t", "photorig/rig-a/state", "-m", "{}", "-q", "1"},
        15s);
    EXPECT_NE(no_cert.exit_code, 0) << no_cert.output;
    const std::string node = find_program("node");
    ASSERT_FALSE(node.empty()) << missing_program_message("node", "Node.js 20");
    auto ws = run_command({node, "-e", kAnonymousWsClient}, 20s,
                          {"NODE_PATH=" + kSource + "/tests/node_modules",
                           "WS_URL=ws://127.0.0.1:" + std::to_string(central_ws_port_)});
    EXPECT_EQ(ws.exit_code, 3) << ws.output;
    EXPECT_NE(ws.output.find("REFUSED"), std::string::npos) << ws.output;
    EXPECT_FALSE(central_obs_->seen_topic("photorig/rig-a/request/status"));
}

TEST_F(FleetBroker, DashboardUserCanSendRequestsButNeverForgeRigTopics) {
    // The central observer is the dashboard user.
    Observer& dashboard = *central_obs_;
    for (const char* topic :
         {"photorig/rig-a/state", "photorig/rig-a/upload/jobs", "photorig/rig-a/capture",
          "photorig/rig-a/bridge/state", "homeassistant/device/rig-a/config"}) {
        auto st = publish(dashboard, topic, "forged");
        ASSERT_FALSE(st) << topic;
        EXPECT_EQ(st.error().code, "not_authorized") << topic << ": " << st.error().describe();
    }
    ASSERT_TRUE(publish(dashboard, "photorig/rig-a/request/status", "allowed"));
    ASSERT_TRUE(publish(dashboard, "photorig/group/g/request/capture", "allowed"));
    EXPECT_TRUE(local_obs_->wait_for("photorig/rig-a/request/status", "allowed", 5s));
    EXPECT_TRUE(local_obs_->wait_for("photorig/group/g/request/capture", "allowed", 5s));
    EXPECT_FALSE(central_obs_->seen("photorig/rig-a/state", "forged"));
    EXPECT_FALSE(local_obs_->seen("photorig/rig-a/upload/jobs", "forged"));
}
