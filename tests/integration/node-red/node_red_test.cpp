// photorig's Node-RED flows (dashboards/node-red) in a real Node-RED 4 against the real broker,
// agent, uploader and camera simulator. Node-RED gets a temp userDir and a free port; the flows
// go in through its admin API (POST /flows) exactly as a user deploys them, with the broker's
// address and the dashboard user's password filled in at deploy time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "harness/rig_harness.h"
#include "support/http_peers.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

const std::string kSource = PHOTORIG_SOURCE_DIR;

class NodeRed {
  public:
    explicit NodeRed(RigHarness& h) : h_(h), dir_("photorig-node-red") {}
    ~NodeRed() {
        if (red_) red_->stop();
    }

    // Starts Node-RED and deploys `flow_files` (under dashboards/node-red) with `env` flow
    // properties; returns once its MQTT broker node has connected.
    void start(const std::vector<std::string>& flow_files, const std::vector<std::string>& env) {
        node_ = find_program("node");
        ASSERT_FALSE(node_.empty()) << missing_program_message("node", "Node.js 20");
        std::string red_js = kSource + "/tests/node_modules/node-red/red.js";
        ASSERT_EQ(::access(red_js.c_str(), R_OK), 0)
            << "node-red is missing: run `npm ci --prefix tests` (tests/run-all.sh does)";
        port_ = free_tcp_port();
        // Loopback only, no telemetry or update checks: the test needs no internet.
        write_file(
            dir_.file("settings.js"),
            "module.exports = {\n"
            "  uiHost: '127.0.0.1',\n"
            "  uiPort: " +
                std::to_string(port_) +
                ",\n"
                "  flowFile: 'flows.json',\n"
                "  credentialSecret: '" +
                random_hex() +
                "',\n"
                "  diagnostics: { enabled: false },\n"
                "  telemetry: { enabled: false, updateNotification: false },\n"
                "  externalModules: { autoInstall: false, palette: { allowInstall: false } },\n"
                "  editorTheme: { tours: false },\n"
                "  logging: { console: { level: 'info' } },\n"
                "};\n");
        red_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{node_, red_js, "--userDir", dir_.path(), "--settings",
                                     dir_.file("settings.js")},
            dir_.file("node-red.log"),
            std::vector<std::string>{"HOME=" + dir_.path(), "NODE_RED_HOME=" + dir_.path()});
        red_->start();
        ASSERT_TRUE(
            wait_until([&] { return red_->log().find("Server now running") != std::string::npos; },
                       90s, 100ms))
            << "Node-RED did not start:\n"
            << red_->log();

        std::vector<std::string> argv{node_,
                                      kSource + "/dashboards/node-red/deploy-flows.js",
                                      "--url",
                                      url(),
                                      "--broker-host",
                                      "127.0.0.1",
                                      "--broker-port",
                                      std::to_string(h_.broker_port()),
                                      "--username",
                                      "photorig-dashboard",
                                      "--password-file",
                                      h_.password_file("photorig-dashboard")};
        for (const auto& e : env) argv.insert(argv.end(), {"--env", e});
        for (const auto& f : flow_files) argv.push_back(kSource + "/dashboards/node-red/" + f);
        auto deployed = run_command(argv, 60s);
        ASSERT_EQ(deployed.exit_code, 0) << deployed.output << "\n" << red_->log();
        ASSERT_TRUE(
            wait_until([&] { return red_->log().find("Connected to broker") != std::string::npos; },
                       30s, 100ms))
            << "Node-RED's broker node did not connect:\n"
            << red_->log();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    const std::string& node() const { return node_; }
    std::string log() const { return red_ ? red_->log() : std::string(); }
    const TempDir& dir() const { return dir_; }

  private:
    static std::string random_hex() {
        std::string s = read_file("/proc/sys/kernel/random/uuid");
        while (!s.empty() && s.back() == '\n') s.pop_back();
        return s;
    }
    RigHarness& h_;
    TempDir dir_;
    std::string node_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> red_;
};

bool scan_reached(RigHarness& h, const std::string& state, std::chrono::milliseconds timeout) {
    return !h.wait_for(
                 h.base() + "/scan/progress",
                 [&](const Received& m) { return parse(m.payload)["state"] == state; }, timeout)
                .topic.empty();
}
}  // namespace

TEST(NodeRed, TurntableFlowAnswersEveryMoveOfASixPositionScan) {
    RigHarness h;
    h.start_all();
    NodeRed red(h);
    ASSERT_NO_FATAL_FAILURE(red.start({"turntable.json"}, {"TRAVEL_MS=100"}));

    // Nobody but Node-RED answers moves here: the test only asks for the scan and watches.
    h.pub_cli(
        h.base() + "/request/scan",
        R"({"transaction":"nr1","action":"start","positions":6,"settle_ms":20,"batch":"nodered"})");
    auto started = h.wait_for(
        h.base() + "/response/scan",
        [](const Received& m) { return parse(m.payload)["transaction"] == "nr1"; }, 10s);
    ASSERT_EQ(parse(started.payload)["status"], "ok") << started.payload;
    ASSERT_TRUE(scan_reached(h, "completed", 90s)) << h.agent().log() << "\n" << red.log();

    // Every move answered once, with its own scan_id and step, after it was asked for.
    auto moves = h.received(h.base() + "/scan/move");
    auto readies = h.received(h.base() + "/scan/ready");
    ASSERT_EQ(moves.size(), 6u);
    ASSERT_EQ(readies.size(), 6u) << red.log();
    std::map<int, std::string> ready_scan_by_step;
    for (const auto& r : readies) {
        json j = parse(r.payload);
        ASSERT_TRUE(j.is_object()) << r.payload;
        ready_scan_by_step[j["step"].get<int>()] = j["scan_id"].get<std::string>();
    }
    for (const auto& m : moves) {
        json j = parse(m.payload);
        EXPECT_EQ(ready_scan_by_step[j["step"].get<int>()], j["scan_id"].get<std::string>())
            << m.payload;
    }
    // The retained scan/state follows the last progress message: wait for it rather than
    // read whatever arrived by now (under load it was still on its way).
    auto final_state = h.wait_for(
        h.base() + "/scan/state",
        [](const Received& m) { return parse(m.payload)["state"] == "completed"; }, 10s);
    ASSERT_FALSE(final_state.topic.empty()) << "scan/state never said completed";
    json last = parse(final_state.payload);
    EXPECT_EQ(last["state"], "completed");
    EXPECT_EQ(last["step"], 6);
    EXPECT_EQ(last["of"], 6);
    EXPECT_EQ(h.received(h.base() + "/capture").size(), 6u);
}

TEST(NodeRed, DashboardCaptureButtonAndUploadMonitorInChromium) {
    std::string chromium = find_program("chromium");
    ASSERT_FALSE(chromium.empty()) << missing_program_message("chromium", "Debian chromium");
    RigHarness h;
    h.start_all();
    NodeRed red(h);
    ASSERT_NO_FATAL_FAILURE(
        red.start({"turntable.json", "dashboard.json"}, {"TRAVEL_MS=50", "RIG_ID=rig1"}));

    // A short scan first, answered by the turntable flow deployed beside the dashboard.
    h.pub_cli(h.base() + "/request/scan", R"({"action":"start","positions":2,"settle_ms":20})");
    ASSERT_TRUE(scan_reached(h, "completed", 60s)) << red.log();

    auto r =
        run_command({red.node(), kSource + "/tests/integration/node-red/click_capture.js"}, 120s,
                    {"DASHBOARD_URL=" + red.url() + "/dashboard/photorig",
                     "SCREENSHOT_DIR=" + std::string(PHOTORIG_NODE_RED_TEST_OUTPUT_DIR),
                     "CHROMIUM=" + chromium, "HOME=" + red.dir().path()});
    ASSERT_EQ(r.exit_code, 0) << r.output << "\n--- node-red ---\n" << red.log();

    // The click reached the agent as Node-RED's own request.
    auto response = h.wait_for(
        h.base() + "/response/capture",
        [](const Received& m) {
            json j = parse(m.payload);
            return j["transaction"].is_string() &&
                   j["transaction"].get<std::string>().rfind("node-red-", 0) == 0;
        },
        1s);
    ASSERT_FALSE(response.topic.empty());
    EXPECT_EQ(parse(response.payload)["status"], "ok");
}
