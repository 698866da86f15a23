// The Home Assistant examples in dashboards/home-assistant are YAML a user pastes in; Home
// Assistant cannot run here, so check what can go wrong on our side: the files parse,
// every MQTT payload they publish (templates filled in) is a request the agent accepts,
// every topic they use is one the rig has, and every entity id they name is one the
// rig's discovery creates.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "protocol/homeassistant.h"
#include "protocol/scan.h"
#include "protocol/wire.h"

using namespace photorig::protocol;
using nlohmann::json;

namespace {
const std::string kDir = std::string(PHOTORIG_SOURCE_DIR) + "/dashboards/home-assistant/";

// Home Assistant's entity id for a device-discovered entity: slug of "<device> <entity>".
std::string entity_slug(const std::string& s) {
    std::string out;
    for (char ch : s) {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            out += c;
        } else if (!out.empty() && out.back() != '_') {
            out += '_';
        }
    }
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out;
}

std::set<std::string> discovered_entity_ids() {
    DiscoveryInfo info{
        "rig1", "photorig/rig1", "0", {CameraRef{"PTP/IP Camera", "SIM0001", "", true}}};
    json d = json::parse(ha_discovery_json(info));
    std::set<std::string> ids;
    for (auto& [key, c] : d["cmps"].items()) {
        ids.insert(
            c["p"].get<std::string>() + "." +
            entity_slug(d["dev"]["name"].get<std::string>() + " " + c["name"].get<std::string>()));
    }
    return ids;
}

void walk(const YAML::Node& n, const std::function<void(const YAML::Node&)>& visit) {
    visit(n);
    if (n.IsMap()) {
        for (auto it = n.begin(); it != n.end(); ++it) walk(it->second, visit);
    } else if (n.IsSequence()) {
        for (const auto& child : n) walk(child, visit);
    }
}

std::string fill_templates(const std::string& s) {
    return std::regex_replace(s, std::regex(R"(\{\{[^}]*\}\})"), "1");
}
}  // namespace

TEST(HomeAssistantExamples, PublishedPayloadsAreRequestsTheAgentAccepts) {
    int publishes = 0;
    for (const char* file : {"scripts.yaml", "automations.yaml"}) {
        SCOPED_TRACE(file);
        YAML::Node root;
        ASSERT_NO_THROW(root = YAML::LoadFile(kDir + file));
        walk(root, [&](const YAML::Node& n) {
            if (!n.IsMap() || !n["action"] || n["action"].as<std::string>() != "mqtt.publish")
                return;
            ++publishes;
            std::string topic = n["data"]["topic"].as<std::string>();
            std::string payload = fill_templates(n["data"]["payload"].as<std::string>());
            SCOPED_TRACE(topic + " " + payload);
            Limits limits;
            if (topic == "photorig/rig1/request/scan") {
                EXPECT_TRUE(parse_scan(payload, limits));
            } else if (topic == "photorig/rig1/request/capture") {
                EXPECT_TRUE(parse_capture(payload, limits));
            } else if (topic == "photorig/rig1/scan/ready") {
                json j = json::parse(payload, nullptr, false);
                ASSERT_TRUE(j.is_object());
                EXPECT_TRUE(j["step"].is_number_integer());
                EXPECT_TRUE(j["scan_id"].is_string());
            } else {
                ADD_FAILURE() << "publishes to a topic the rig does not read";
            }
        });
    }
    EXPECT_GE(publishes, 3);
}

TEST(HomeAssistantExamples, TopicsAndEntitiesExist) {
    const std::set<std::string> rig_topics{"photorig/rig1/scan/progress", "photorig/rig1/scan/move",
                                           "photorig/rig1/scan/state", "photorig/rig1/event"};
    const auto entities = discovered_entity_ids();
    YAML::Node root = YAML::LoadFile(kDir + "automations.yaml");
    int checked = 0;
    walk(root, [&](const YAML::Node& n) {
        if (!n.IsMap()) return;
        if (n["trigger"] && n["trigger"].as<std::string>() == "mqtt") {
            EXPECT_TRUE(rig_topics.count(n["topic"].as<std::string>()))
                << n["topic"].as<std::string>();
            ++checked;
        }
        if (n["entity_id"] && n["entity_id"].IsScalar()) {
            std::string id = n["entity_id"].as<std::string>();
            if (id.rfind("number.turntable", 0) == 0) return;  // the user's own turntable
            if (id.find("{{") != std::string::npos) return;    // the user's plug, mapped
            EXPECT_TRUE(entities.count(id))
                << id << " is not an entity the rig's discovery creates";
            ++checked;
        }
    });
    EXPECT_GE(checked, 4);
}

// The power-cycle automation triggers on the event the agent publishes for a stuck camera,
// and reads fields that event has.
TEST(HomeAssistantExamples, StuckCameraAutomationMatchesTheCameraStuckEvent) {
    json event =
        json::parse(camera_stuck_json(CameraRef{"PTP/IP Camera", "SIM0001", "usb:001,004", false},
                                      4, "done", "connect: I/O error"));
    YAML::Node root = YAML::LoadFile(kDir + "automations.yaml");
    bool found = false;
    for (const auto& automation : root) {
        if (automation["id"].as<std::string>() != "photorig_power_cycle_stuck_camera") continue;
        found = true;
        const auto& trigger = automation["triggers"][0];
        EXPECT_EQ(trigger["topic"].as<std::string>(), "photorig/rig1/event");
        EXPECT_EQ(trigger["payload"].as<std::string>(), event["type"].get<std::string>());
        std::string text;
        walk(automation["actions"], [&](const YAML::Node& n) {
            if (n.IsScalar()) text += n.as<std::string>() + "\n";
        });
        std::smatch m;
        std::string rest = text;
        int fields = 0;
        while (std::regex_search(rest, m,
                                 std::regex(R"(trigger\.payload_json\.([a-z_]+)(\.([a-z_]+))?)"))) {
            ASSERT_TRUE(event.contains(m[1].str())) << m[0];
            if (m[3].matched) {
                EXPECT_TRUE(event[m[1].str()].contains(m[3].str())) << m[0];
            }
            ++fields;
            rest = m.suffix();
        }
        EXPECT_GE(fields, 4);
        EXPECT_NE(text.find("switch.turn_off"), std::string::npos);
        EXPECT_NE(text.find("switch.turn_on"), std::string::npos);
    }
    EXPECT_TRUE(found);
}
