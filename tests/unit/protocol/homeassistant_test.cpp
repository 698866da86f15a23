// Home Assistant cannot run here, so its discovery payload is checked against the
// documented schema of device-based discovery: required keys, allowed platforms, each
// platform's required options, topics that are valid and that photorig really uses, and
// templates that read fields the rig really publishes.
#include "protocol/homeassistant.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "protocol/scan.h"
#include "protocol/wire.h"

using namespace photorig::protocol;
using nlohmann::json;

namespace {
DiscoveryInfo two_camera_rig() {
    DiscoveryInfo info;
    info.rig_id = "rig1";
    info.base_topic = "photorig/rig1";
    info.version = "0.1.0";
    info.cameras = {CameraRef{"PTP/IP Camera", "SIM0001", "ptpip:127.0.0.1:1:1", true},
                    CameraRef{"PTP/IP Camera", "SN'2 x", "usb:001,004", false}};
    return info;
}

bool valid_publish_topic(const std::string& t) {
    return !t.empty() && t.find_first_of("+#") == std::string::npos && t.front() != '/' &&
           t.back() != '/' && t.find("//") == std::string::npos;
}

// Topics the agent or the uploader publish (retained where an entity reads them) and
// the request topics the agent subscribes to.
const std::set<std::string> kPublished = {"photorig/rig1/state",
                                          "photorig/rig1/uploader/state",
                                          "photorig/rig1/preview",
                                          "photorig/rig1/availability",
                                          "photorig/rig1/uploader/availability",
                                          "photorig/rig1/scan/state"};

std::set<std::string> fields_read(const std::string& tmpl) {
    std::set<std::string> out;
    // A field read through `| default(...)` may be absent; every other one must be there.
    std::regex field(R"(value_json\.([a-z_]+)(\s*\|\s*default\()?)");
    for (std::sregex_iterator it(tmpl.begin(), tmpl.end(), field), end; it != end; ++it) {
        if (!(*it)[2].matched) out.insert((*it)[1]);
    }
    return out;
}
}  // namespace

TEST(HomeAssistantDiscovery, TopicFollowsDeviceDiscoveryLayout) {
    EXPECT_EQ(ha_discovery_topic("homeassistant", "rig1"), "homeassistant/device/rig1/config");
    EXPECT_EQ(ha_discovery_topic("ha/test", "r-2"), "ha/test/device/r-2/config");
}

TEST(HomeAssistantDiscovery, PayloadMatchesTheDocumentedSchema) {
    json j = json::parse(ha_discovery_json(two_camera_rig()));
    // Device: identifiers and a name; origin: a name (required for device discovery).
    ASSERT_TRUE(j.contains("dev"));
    ASSERT_TRUE(j["dev"]["ids"].is_array());
    EXPECT_FALSE(j["dev"]["ids"].empty());
    EXPECT_TRUE(j["dev"]["name"].is_string());
    ASSERT_TRUE(j.contains("o"));
    EXPECT_TRUE(j["o"]["name"].is_string());
    ASSERT_TRUE(j["cmps"].is_object());
    EXPECT_FALSE(j.contains("availability_topic"))
        << "shared availability must be a list (see homeassistant.cpp)";
    ASSERT_TRUE(j["availability"].is_array());
    EXPECT_EQ(j["availability"][0]["topic"], "photorig/rig1/availability");

    const std::set<std::string> platforms{"button", "sensor", "binary_sensor", "image"};
    const std::set<std::string> state_classes{"measurement", "total", "total_increasing"};
    std::set<std::string> unique_ids;
    json agent_state = json::parse(agent_state_json(AgentState{}));
    json uploader_state = json::parse(uploader_state_json(UploaderState{}));
    ScanRecord scan;
    scan.request.positions = 36;
    json scan_state = json::parse(scan_progress_json(scan, "step", 10));
    for (auto& [key, c] : j["cmps"].items()) {
        SCOPED_TRACE(key);
        ASSERT_TRUE(c.contains("p"));
        std::string p = c["p"];
        EXPECT_TRUE(platforms.count(p)) << p;
        ASSERT_TRUE(c["unique_id"].is_string());
        EXPECT_TRUE(unique_ids.insert(c["unique_id"]).second)
            << "duplicate unique_id " << c["unique_id"];
        EXPECT_TRUE(std::regex_match(key, std::regex("[a-z0-9_]+"))) << "component key " << key;
        // Shared options are merged in; these pairs exclude each other in Home Assistant.
        json merged = c;
        for (auto& [k, v] : j.items()) {
            if (k != "dev" && k != "o" && k != "cmps" && !merged.contains(k)) merged[k] = v;
        }
        EXPECT_FALSE(merged.contains("availability") && merged.contains("availability_topic"));
        if (merged.contains("availability_mode")) {
            EXPECT_TRUE(merged["availability_mode"] == "all" ||
                        merged["availability_mode"] == "any" ||
                        merged["availability_mode"] == "latest");
        }
        for (auto& a : merged["availability"]) {
            EXPECT_TRUE(kPublished.count(a["topic"].get<std::string>())) << a["topic"];
        }
        for (auto& [opt, v] : c.items()) {
            if (opt.size() > 6 && opt.compare(opt.size() - 6, 6, "_topic") == 0) {
                std::string t = v;
                EXPECT_TRUE(valid_publish_topic(t)) << opt << "=" << t;
                if (opt == "command_topic") {
                    EXPECT_EQ(t.rfind("photorig/rig1/request/", 0), 0u) << t;
                } else {
                    EXPECT_TRUE(kPublished.count(t))
                        << opt << "=" << t << " is not a topic photorig publishes";
                }
            }
        }
        if (p == "button") {
            // What the button sends must be a request the agent accepts.
            std::string topic = c["command_topic"], press = c["payload_press"];
            Limits limits;
            if (topic == "photorig/rig1/request/capture") {
                EXPECT_TRUE(parse_capture(press, limits)) << press;
            } else if (topic == "photorig/rig1/request/scan") {
                EXPECT_TRUE(parse_scan(press, limits)) << press;
            } else if (topic == "photorig/rig1/request/preview") {
                EXPECT_TRUE(parse_preview(press)) << press;
            } else {
                ADD_FAILURE() << "button for an unexpected verb: " << topic;
            }
        }
        if (p == "sensor" || p == "binary_sensor") {
            ASSERT_TRUE(c["state_topic"].is_string());
            ASSERT_TRUE(c["value_template"].is_string());
            const json& source = c["state_topic"] == "photorig/rig1/uploader/state" ? uploader_state
                                 : c["state_topic"] == "photorig/rig1/scan/state"   ? scan_state
                                                                                    : agent_state;
            for (const auto& f : fields_read(c["value_template"])) {
                EXPECT_TRUE(source.contains(f))
                    << "template reads " << f << ", not in " << c["state_topic"];
            }
            if (c.contains("state_class")) {
                EXPECT_TRUE(state_classes.count(c["state_class"]));
            }
        }
        if (p == "binary_sensor") {
            EXPECT_EQ(c["device_class"], "connectivity");
        }
        if (p == "image") {
            EXPECT_TRUE(c.contains("image_topic") != c.contains("url_topic"));
            EXPECT_EQ(c["content_type"], "image/jpeg");
        }
    }
    // One connectivity sensor per camera, named by serial (serials never confused).
    EXPECT_TRUE(j["cmps"].contains("camera_sim0001"));
    EXPECT_TRUE(j["cmps"].contains("camera_sn_2_x"));
    EXPECT_TRUE(j["cmps"].contains("capture"));
    EXPECT_TRUE(j["cmps"].contains("upload_queue"));
    EXPECT_TRUE(j["cmps"].contains("preview"));
    EXPECT_TRUE(j["cmps"].contains("preview_sim0001"));
    EXPECT_EQ(json::parse(j["cmps"]["scan_start"]["payload_press"].get<std::string>())["action"],
              "start");
    EXPECT_EQ(json::parse(j["cmps"]["scan_abort"]["payload_press"].get<std::string>())["action"],
              "abort");
}

TEST(HomeAssistantDiscovery, CameraTemplateQuotesTheSerial) {
    json j = json::parse(ha_discovery_json(two_camera_rig()));
    std::string t = j["cmps"]["camera_sn_2_x"]["value_template"];
    EXPECT_NE(t.find(R"('SN\'2 x')"), std::string::npos) << t;
}
