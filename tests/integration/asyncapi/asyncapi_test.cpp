// Runs a rig through most of what it does (captures, requests good and bad, camera
// settings, preview, scans, uploads, Home Assistant discovery) and checks every message
// it published against docs/asyncapi.yaml: the topic must be a documented channel the
// rig publishes on, and the payload must satisfy the channel's schema. A small JSON
// Schema subset is implemented here (type, enum, required, properties,
// additionalProperties, items, pattern, minimum/maximum, maxLength, $ref), enough for
// the document, which uses nothing else.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json to_json(const YAML::Node& n) {
    if (n.IsMap()) {
        json j = json::object();
        for (auto it = n.begin(); it != n.end(); ++it)
            j[it->first.as<std::string>()] = to_json(it->second);
        return j;
    }
    if (n.IsSequence()) {
        json j = json::array();
        for (const auto& c : n) j.push_back(to_json(c));
        return j;
    }
    if (n.IsNull()) return nullptr;
    std::string s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted: always a string
    if (s == "null" || s == "~") return nullptr;
    if (s == "true" || s == "false") return s == "true";
    if (std::regex_match(s, std::regex(R"(-?[0-9]+)"))) return std::stoll(s);
    if (std::regex_match(s, std::regex(R"(-?[0-9]+\.[0-9]+)"))) return std::stod(s);
    return s;
}

class Validator {
  public:
    explicit Validator(json doc) : doc_(std::move(doc)) {}
    const json& resolve(const json& schema) const {
        if (schema.is_object() && schema.contains("$ref")) {
            std::string ref = schema["$ref"];
            return resolve(doc_.at(json::json_pointer(ref.substr(1))));
        }
        return schema;
    }
    // Appends "where: why" for each violation.
    void check(const json& raw_schema, const json& v, const std::string& where,
               std::vector<std::string>* errors) const {
        const json& s = resolve(raw_schema);
        if (!s.is_object()) return;
        if (s.contains("type")) {
            json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
            bool ok = false;
            for (const auto& t : types) ok = ok || is_type(v, t.get<std::string>());
            if (!ok)
                return errors->push_back(where + ": " + v.dump().substr(0, 80) + " is not " +
                                         types.dump());
        }
        if (s.contains("enum")) {
            bool found = false;
            for (const auto& e : s["enum"]) found = found || e == v;
            if (!found) errors->push_back(where + ": " + v.dump() + " not in " + s["enum"].dump());
        }
        if (v.is_string()) {
            std::string str = v;
            if (s.contains("pattern") &&
                !std::regex_search(str, std::regex(s["pattern"].get<std::string>()))) {
                errors->push_back(where + ": '" + str + "' does not match " +
                                  s["pattern"].get<std::string>());
            }
            if (s.contains("maxLength") && str.size() > s["maxLength"].get<size_t>()) {
                errors->push_back(where + ": longer than " + s["maxLength"].dump());
            }
        }
        if (v.is_number()) {
            if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>())
                errors->push_back(where + ": below minimum");
            if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>())
                errors->push_back(where + ": above maximum");
        }
        if (v.is_object()) {
            for (const auto& r : s.value("required", json::array())) {
                if (!v.contains(r.get<std::string>()))
                    errors->push_back(where + ": missing " + r.get<std::string>());
            }
            const json props = s.value("properties", json::object());
            for (auto& [k, val] : v.items()) {
                if (props.contains(k)) {
                    check(props[k], val, where + "." + k, errors);
                } else if (s.contains("additionalProperties")) {
                    const json& extra = s["additionalProperties"];
                    if (extra.is_boolean() && !extra.get<bool>()) {
                        errors->push_back(where + ": undocumented field " + k);
                    } else if (extra.is_object()) {
                        check(extra, val, where + "." + k, errors);
                    }
                }
            }
        }
        if (v.is_array() && s.contains("items")) {
            for (size_t i = 0; i < v.size(); ++i)
                check(s["items"], v[i], where + "[" + std::to_string(i) + "]", errors);
        }
    }

  private:
    static bool is_type(const json& v, const std::string& t) {
        if (t == "object") return v.is_object();
        if (t == "array") return v.is_array();
        if (t == "string") return v.is_string();
        if (t == "integer") return v.is_number_integer();
        if (t == "number") return v.is_number();
        if (t == "boolean") return v.is_boolean();
        if (t == "null") return v.is_null();
        return false;
    }
    json doc_;
};

struct Channel {
    std::string name;
    std::regex pattern;
    json message;  // resolved
};

std::vector<Channel> rig_published_channels(const json& doc, const Validator& v) {
    std::vector<Channel> out;
    for (auto& [name, ch] : doc["channels"].items()) {
        if (!ch.contains("subscribe"))
            continue;  // only what the rig publishes (clients subscribe to)
        // A verb may have two levels (config/get); every other parameter is one level.
        std::string re = std::regex_replace(name, std::regex(R"(\{verb\})"), "[^/]+(/[^/]+)?");
        re = std::regex_replace(re, std::regex(R"(\{[^}]+\})"), "[^/]+");
        out.push_back(
            Channel{name, std::regex("^" + re + "$"), v.resolve(ch["subscribe"]["message"])});
    }
    return out;
}

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}
}  // namespace

TEST(AsyncApi, EveryMessageTheRigPublishesIsDocumentedAndValid) {
    json doc = to_json(YAML::LoadFile(std::string(PHOTORIG_SOURCE_DIR) + "/docs/asyncapi.yaml"));
    ASSERT_EQ(doc["asyncapi"], "2.6.0");
    Validator validator(doc);
    auto channels = rig_published_channels(doc, validator);
    ASSERT_GE(channels.size(), 15u);

    HarnessOptions o;
    o.extra_subscriptions = {"homeassistant/#"};
    o.extra_yaml = "telemetry_interval_s: 1\n";
    RigHarness h(o);
    h.start_all();
    auto answered = [&](const std::string& verb, const std::string& txn) {
        return !h.wait_for(
                     h.base() + "/response/" + verb,
                     [&](const Received& r) { return parse(r.payload)["transaction"] == txn; }, 30s)
                    .topic.empty();
    };
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"c","count":2,"batch":"docs"})");
    ASSERT_TRUE(answered("capture", "c"));
    for (std::string verb : {"status", "cameras", "preview", "config/get"}) {
        h.pub_cli(h.base() + "/request/" + verb, R"({"transaction":"v"})");
        EXPECT_TRUE(answered(verb, "v")) << verb;
    }
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"bad","count":-1})");
    EXPECT_TRUE(answered("capture", "bad"));
    h.pub_cli(h.base() + "/request/scan",
              R"({"transaction":"s","action":"start","positions":2,"turntable":false})");
    EXPECT_TRUE(answered("scan", "s"));
    EXPECT_FALSE(h.wait_for(
                      h.base() + "/scan/progress",
                      [](const Received& r) { return parse(r.payload)["state"] == "completed"; },
                      30s)
                     .topic.empty());
    // A scan with a turntable: answer its first move, abort during the second.
    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"t","action":"start","positions":5})");
    auto move = h.wait_for(
        h.base() + "/scan/move", [](const Received&) { return true; }, 10s);
    ASSERT_FALSE(move.topic.empty());
    h.pub_cli(h.base() + "/scan/ready", R"({"step":1})");
    EXPECT_FALSE(h.wait_for(
                      h.base() + "/scan/move",
                      [](const Received& r) { return parse(r.payload)["step"] == 2; }, 10s)
                     .topic.empty());
    h.pub_cli(h.base() + "/request/scan", R"({"transaction":"a","action":"abort"})");
    EXPECT_TRUE(answered("scan", "a"));
    h.pub_cli("homeassistant/status", "online");
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 30s));
    std::this_thread::sleep_for(1500ms);  // a telemetry tick, and the last states

    std::set<std::string> seen_channels;
    int checked = 0;
    for (const auto& msg : h.received("")) {
        if (msg.topic.rfind(h.base() + "/request/", 0) == 0 ||
            msg.topic == h.base() + "/scan/ready" || msg.topic == "homeassistant/status" ||
            msg.topic.rfind("photorig/_", 0) == 0) {
            continue;  // what we (the clients) sent
        }
        const Channel* ch = nullptr;
        for (const auto& c : channels) {
            if (std::regex_match(msg.topic, c.pattern)) ch = &c;
        }
        if (!ch) {
            ADD_FAILURE() << "undocumented topic " << msg.topic;
            continue;
        }
        seen_channels.insert(ch->name);
        ++checked;
        std::string content_type =
            ch->message.value("contentType", doc.value("defaultContentType", ""));
        if (content_type == "image/jpeg") {
            ASSERT_GE(msg.payload.size(), 2u);
            EXPECT_EQ(static_cast<unsigned char>(msg.payload[0]), 0xFF) << msg.topic;
            EXPECT_EQ(static_cast<unsigned char>(msg.payload[1]), 0xD8) << msg.topic;
            continue;
        }
        json value = content_type == "text/plain" ? json(msg.payload) : parse(msg.payload);
        if (value.is_discarded())
            value = msg.payload;  // e.g. an empty retained payload (a deletion)
        std::vector<std::string> errors;
        validator.check(ch->message["payload"], value, msg.topic, &errors);
        for (const auto& e : errors)
            ADD_FAILURE() << e << "\n  payload: " << msg.payload.substr(0, 300);
    }
    EXPECT_GT(checked, 40);
    // The scenario reaches nearly every documented channel; these must have been seen.
    for (std::string name : {"photorig/{rig_id}/availability", "photorig/{rig_id}/state",
                             "photorig/{rig_id}/response/{verb}", "photorig/{rig_id}/capture",
                             "photorig/{rig_id}/upload/jobs", "photorig/{rig_id}/upload/events",
                             "photorig/{rig_id}/uploader/state", "photorig/{rig_id}/telemetry",
                             "photorig/{rig_id}/scan/move", "photorig/{rig_id}/scan/progress",
                             "photorig/{rig_id}/scan/state", "photorig/{rig_id}/preview",
                             "homeassistant/device/{rig_id}/config"}) {
        EXPECT_TRUE(seen_channels.count(name)) << "never saw a message on " << name;
    }
}
