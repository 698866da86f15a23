// The web dashboard, driven in headless chromium by drive_dashboard.js: it connects over the
// broker's websockets listener as photorig-dashboard, shows the rig, its camera, the upload
// queue and a preview, captures, runs a 3-position scan to completion and saves a screenshot
// in this test's build directory. The test then checks from the broker's side that the
// requests really came from the page. Markup published in MQTT text is shown as text and
// never runs (issue 15), and the page's Content-Security-Policy is in force. The fleet view
// (issue 14): fake rigs' health rows, a group capture from the page that the real rig (in group
// `studio`) carries out, per-rig batch counts and the rigs that missed photos marked.
#include <gtest/gtest.h>
#include <unistd.h>

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
}  // namespace

TEST(WebDashboard, ShowsTheRigCapturesAndRunsAScanInChromium) {
    std::string node = find_program("node");
    ASSERT_FALSE(node.empty()) << missing_program_message("node", "Node.js 20");
    ASSERT_EQ(
        ::access((kSource + "/tests/node_modules/playwright-core/package.json").c_str(), R_OK), 0)
        << "playwright-core is missing: run `npm ci --prefix tests` (tests/run-all.sh does)";
    std::string chromium = find_program("chromium");
    ASSERT_FALSE(chromium.empty()) << missing_program_message("chromium", "Debian chromium");

    HarnessOptions o;
    o.websockets = true;
    o.top_yaml = "groups: [studio]\n";
    o.extra_subscriptions = {"photorig/group/#"};
    RigHarness h(o);
    h.start_all();

    TempDir web("photorig-web");
    auto built = run_command({kSource + "/dashboards/web/build.sh", web.path()}, 120s);
    ASSERT_EQ(built.exit_code, 0) << built.output;

    auto r = run_command(
        {node, kSource + "/tests/integration/web-dashboard/drive_dashboard.js"}, 180s,
        {"WEB_DIR=" + web.path(), "WS_URL=ws://127.0.0.1:" + std::to_string(h.ws_port()),
         "MQTT_URL=mqtt://127.0.0.1:" + std::to_string(h.broker_port()), "BASE=" + h.base(),
         "RIG_ID=rig1", "DASHBOARD_PASSWORD_FILE=" + h.password_file("photorig-dashboard"),
         "AGENT_PASSWORD_FILE=" + h.password_file("photorig-agent"),
         "SCREENSHOT_DIR=" + std::string(PHOTORIG_WEB_TEST_OUTPUT_DIR), "CHROMIUM=" + chromium,
         "HOME=" + h.root() + "/home", "NODE_PATH=" + kSource + "/tests/node_modules"});
    ASSERT_EQ(r.exit_code, 0) << r.output << "\n--- agent ---\n" << h.agent().log();
    EXPECT_NE(r.output.find("DASHBOARD OK"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("a password in the URL is refused"), std::string::npos) << r.output;

    // The broker saw the page's own requests (transactions it made up) and their answers.
    auto from_page = [](const Received& m) {
        json j = parse(m.payload);
        return j.is_object() && j["transaction"].is_string() &&
               j["transaction"].get<std::string>().rfind("web-", 0) == 0;
    };
    auto capture = h.wait_for(h.base() + "/response/capture", from_page, 1s);
    ASSERT_FALSE(capture.topic.empty());
    EXPECT_EQ(parse(capture.payload)["status"], "ok");
    auto scan = h.wait_for(
        h.base() + "/scan/state",
        [](const Received& m) { return parse(m.payload)["state"] == "completed"; }, 1s);
    ASSERT_FALSE(scan.topic.empty());
    EXPECT_EQ(parse(scan.payload)["batch"], "webscan");

    // The page's group capture: camera all, a batch, capture_at ahead; the real rig answered it
    // with one photo of that batch, which was uploaded.
    auto group = h.wait_for("photorig/group/studio/request/capture", from_page, 1s);
    ASSERT_FALSE(group.topic.empty());
    json request = parse(group.payload);
    EXPECT_EQ(request["camera"], "all");
    ASSERT_TRUE(request["batch"].is_string());
    EXPECT_TRUE(request["capture_at"].is_number_integer());
    auto answered = h.wait_for(
        h.base() + "/response/capture",
        [&](const Received& m) {
            return parse(m.payload)["transaction"] == request["transaction"];
        },
        1s);
    ASSERT_FALSE(answered.topic.empty());
    EXPECT_EQ(parse(answered.payload)["status"], "ok") << answered.payload;
    EXPECT_EQ(parse(answered.payload)["data"]["batch"], request["batch"]);
    EXPECT_NE(
        r.output.find("fleet-c, fleet-d and the silent member fleet-e marked as missing photos"),
        std::string::npos)
        << r.output;
    EXPECT_EQ(
        ::access((std::string(PHOTORIG_WEB_TEST_OUTPUT_DIR) + "/web-dashboard-fleet.png").c_str(),
                 R_OK),
        0);
    EXPECT_EQ(
        ::access((std::string(PHOTORIG_WEB_TEST_OUTPUT_DIR) + "/web-dashboard.png").c_str(), R_OK),
        0);
}
