// broker/run-broker.sh started with a plain TCP, a websockets and a TLS listener (a
// throwaway CA and server certificate made with openssl in a temp dir). Every listener
// refuses anonymous clients and wrong passwords and lets the dashboard user in; the TLS
// listener speaks only TLS and its certificate verifies against the CA. Clients:
// mosquitto_pub (TCP, TLS) and MQTT.js under node (websockets).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/test_util.h"

using namespace photorig::test;
using namespace std::chrono_literals;

namespace {

const std::string kSource = PHOTORIG_SOURCE_DIR;

// Connects over websockets with MQTT.js; prints CONNECTED or REFUSED <reason>.
const char* kWsClient = R"JS(
const mqtt = require('mqtt');
const o = { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 5 };
if (process.env.MQTT_USER) { o.username = process.env.MQTT_USER; o.password = process.env.MQTT_PASSWORD; }
const c = mqtt.connect(process.env.WS_URL, o);
c.on('connect', () => { console.log('CONNECTED'); c.end(true); process.exit(0); });
c.on('error', (e) => { console.log('REFUSED ' + e.message); process.exit(3); });
c.on('close', () => { console.log('REFUSED closed'); process.exit(3); });
setTimeout(() => { console.log('TIMEOUT'); process.exit(4); }, 8000);
)JS";

class BrokerSecurity : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(find_program("mosquitto").empty())
            << missing_program_message("mosquitto", "Debian package mosquitto");
        node_ = find_program("node");
        ASSERT_FALSE(node_.empty()) << missing_program_message("node", "Node.js 20");
        make_certificates();
        port_ = free_tcp_port();
        ws_port_ = free_tcp_port();
        tls_port_ = free_tcp_port();
        broker_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{
                kSource + "/broker/run-broker.sh", "--port", std::to_string(port_), "--data-dir",
                dir_.file("broker"), "--ws-port", std::to_string(ws_port_), "--tls-port",
                std::to_string(tls_port_), "--ca", dir_.file("ca.pem"), "--cert",
                dir_.file("server.pem"), "--key", dir_.file("server.key")},
            dir_.file("broker.log"));
        broker_->start();
        ASSERT_TRUE(wait_until([&] { return pub(port_, true, {}).exit_code == 0; }, 15s, 100ms))
            << broker_->log();
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(ws_port_); }, 10s));
        ASSERT_TRUE(wait_until([&] { return loopback_port_accepts(tls_port_); }, 10s));
    }

    void make_certificates() {
        const std::string d = dir_.path();
        const std::string script =
            "set -e; cd '" + d +
            "'; openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=photorig-test-ca"
            " -keyout ca.key -out ca.pem;"
            " openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key"
            " -out server.csr;"
            " printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext;"
            " openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
            " -extfile san.ext -out server.pem;"
            " openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca"
            " -keyout other.key -out other.pem";
        auto r = run_command({"sh", "-c", script}, 60s);
        ASSERT_EQ(r.exit_code, 0) << "openssl (Debian package openssl): " << r.output;
    }

    std::string password() const {
        std::string pw = read_file(dir_.file("broker/secrets/photorig-dashboard.password"));
        return pw.substr(0, pw.find('\n'));
    }

    // mosquitto_pub to a request topic the dashboard may write; `login` adds its user and
    // password (`wrong` spoils the password); `tls` are the --cafile/... options.
    CommandResult pub(int port, bool login, const std::vector<std::string>& tls,
                      bool wrong = false) const {
        std::vector<std::string> argv{"mosquitto_pub",
                                      "-h",
                                      "127.0.0.1",
                                      "-p",
                                      std::to_string(port),
                                      "-t",
                                      "photorig/rig1/request/status",
                                      "-m",
                                      "{}",
                                      "-q",
                                      "1"};
        if (login)
            argv.insert(argv.end(),
                        {"-u", "photorig-dashboard", "-P", wrong ? password() + "x" : password()});
        argv.insert(argv.end(), tls.begin(), tls.end());
        return run_command(argv, 15s);
    }

    CommandResult ws(bool login, bool wrong = false) const {
        std::vector<std::string> env{"NODE_PATH=" + kSource + "/tests/node_modules",
                                     "WS_URL=ws://127.0.0.1:" + std::to_string(ws_port_)};
        if (login) {
            env.push_back("MQTT_USER=photorig-dashboard");
            env.push_back("MQTT_PASSWORD=" + (wrong ? password() + "x" : password()));
        }
        return run_command({node_, "-e", kWsClient}, 20s, env);
    }

    TempDir dir_{"photorig-broker-security"};
    std::string node_;
    int port_ = 0, ws_port_ = 0, tls_port_ = 0;
    std::unique_ptr<ChildProcess> broker_;
};

}  // namespace

TEST_F(BrokerSecurity, TcpListenerRefusesAnonymousAndWrongPasswords) {
    auto anonymous = pub(port_, false, {});
    EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
    EXPECT_NE(anonymous.output.find("not authori"), std::string::npos) << anonymous.output;
    auto wrong = pub(port_, true, {}, true);
    EXPECT_NE(wrong.exit_code, 0) << wrong.output;
    auto good = pub(port_, true, {});
    EXPECT_EQ(good.exit_code, 0) << good.output;
}

TEST_F(BrokerSecurity, WebsocketsListenerRefusesAnonymousAndWrongPasswords) {
    auto anonymous = ws(false);
    EXPECT_EQ(anonymous.exit_code, 3) << anonymous.output;
    EXPECT_NE(anonymous.output.find("REFUSED"), std::string::npos) << anonymous.output;
    auto wrong = ws(true, true);
    EXPECT_EQ(wrong.exit_code, 3) << wrong.output;
    auto good = ws(true);
    EXPECT_EQ(good.exit_code, 0) << good.output << "\n" << broker_->log();
    EXPECT_NE(good.output.find("CONNECTED"), std::string::npos) << good.output;
}

TEST_F(BrokerSecurity, TlsListenerVerifiesAndAuthenticates) {
    const std::vector<std::string> ca{"--cafile", dir_.file("ca.pem")};
    auto good = pub(tls_port_, true, ca);
    EXPECT_EQ(good.exit_code, 0) << good.output << "\n" << broker_->log();
    auto anonymous = pub(tls_port_, false, ca);
    EXPECT_NE(anonymous.exit_code, 0) << anonymous.output;
    EXPECT_NE(anonymous.output.find("not authori"), std::string::npos) << anonymous.output;
    auto wrong = pub(tls_port_, true, ca, true);
    EXPECT_NE(wrong.exit_code, 0) << wrong.output;
    // A client trusting another CA does not accept the broker's certificate.
    auto untrusted = pub(tls_port_, true, {"--cafile", dir_.file("other.pem")});
    EXPECT_NE(untrusted.exit_code, 0) << untrusted.output;
    // Plain MQTT on the TLS port gets nowhere (and its password is never read in clear).
    auto plain = pub(tls_port_, true, {});
    EXPECT_NE(plain.exit_code, 0) << plain.output;
}
