// docs/asyncapi.yaml, checked with maintained tools (asyncapi_check.js: the official
// @asyncapi/parser and Ajv from tests/node_modules): the document parses with no error or
// warning, and every message a real rig publishes is documented and valid. The rig runs
// through most of what it does (captures, requests good and bad, camera settings, preview,
// scans, uploads, Home Assistant discovery); each topic must be a documented channel the rig
// publishes on, and each payload must satisfy the channel's schema.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "harness/rig_harness.h"
#include "support/http_peers.h"

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

struct Channel {
    std::string name;
    std::regex pattern;
    json message;  // resolved
};

const std::string kSource = PHOTORIG_SOURCE_DIR;
const std::string kDocument = kSource + "/docs/asyncapi.yaml";

json load_document() {
    return to_json(YAML::LoadFile(kDocument));
}

// A message given by reference (#/components/messages/...) or inline.
json resolve(const json& doc, const json& message) {
    if (!message.contains("$ref")) return message;
    return doc.at(json::json_pointer(message["$ref"].get<std::string>().substr(1)));
}

std::vector<Channel> rig_published_channels(const json& doc) {
    std::vector<Channel> out;
    for (auto& [name, ch] : doc["channels"].items()) {
        if (!ch.contains("subscribe"))
            continue;  // only what the rig publishes (clients subscribe to)
        // A verb may have two levels (config/get); every other parameter is one level.
        std::string re = std::regex_replace(name, std::regex(R"(\{verb\})"), "[^/]+(/[^/]+)?");
        re = std::regex_replace(re, std::regex(R"(\{[^}]+\})"), "[^/]+");
        out.push_back(
            Channel{name, std::regex("^" + re + "$"), resolve(doc, ch["subscribe"]["message"])});
    }
    return out;
}

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

// Runs asyncapi_check.js with `args` after the mode; fails the test if node or the npm
// packages are missing.
CommandResult run_check(const std::vector<std::string>& args) {
    std::string node = find_program("node");
    EXPECT_FALSE(node.empty()) << missing_program_message("node", "Node.js 20");
    EXPECT_EQ(
        ::access((kSource + "/tests/node_modules/@asyncapi/parser/package.json").c_str(), R_OK), 0)
        << "@asyncapi/parser is missing: run `npm ci --prefix tests` (tests/run-all.sh does)";
    std::vector<std::string> argv{node, kSource + "/tests/integration/asyncapi/asyncapi_check.js"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, std::chrono::seconds(120));
}

struct Payload {
    std::string channel;  // as the document names it, e.g. photorig/{rig_id}/state
    json value;
};

// Validates each payload against its channel's message schema (Ajv); returns one list of
// errors per payload, empty when it is valid.
std::vector<std::vector<std::string>> schema_errors(const std::vector<Payload>& payloads) {
    TempDir dir("photorig-asyncapi");
    json in = json::array();
    for (const auto& p : payloads) in.push_back({{"channel", p.channel}, {"value", p.value}});
    write_file(dir.file("payloads.json"), in.dump());
    CommandResult r =
        run_check({"validate", kDocument, dir.file("payloads.json"), dir.file("results.json")});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json results = parse(r.exit_code == 0 ? read_file(dir.file("results.json")) : "");
    std::vector<std::vector<std::string>> out(payloads.size());
    if (!results.is_array() || results.size() != payloads.size()) {
        ADD_FAILURE() << "asyncapi_check.js validate gave no results:\n" << r.output;
        return out;
    }
    for (size_t i = 0; i < payloads.size(); ++i)
        out[i] = results[i].get<std::vector<std::string>>();
    return out;
}
}  // namespace

TEST(AsyncApi, DocumentParsesWithoutErrorsOrWarnings) {
    CommandResult r = run_check({"lint", kDocument});
    EXPECT_EQ(r.exit_code, 0) << "@asyncapi/parser on docs/asyncapi.yaml:\n" << r.output;
}

// The validator the scenario relies on does reject what breaks the document's schemas.
TEST(AsyncApi, SchemaValidatorRejectsPayloadsThatBreakTheirSchema) {
    const std::string rig = "photorig/{rig_id}";
    std::vector<Payload> valid{
        {rig + "/availability", "online"},
        {rig + "/telemetry", {{"ts", "2026-01-02T03:04:05.678Z"}, {"captures", 3}}},
        {rig + "/scan/move",
         {{"scan_id", "s"}, {"step", 1}, {"of", 2}, {"degrees", 180.0}, {"position_deg", 0}}},
        {"homeassistant/device/{rig_id}/config", ""},
        {rig + "/state",
         {{"cameras", json::array()},
          {"busy", true},
          {"spool_files", 0},
          {"disk_free_bytes", 1},
          {"version", "v"},
          {"pending_requests", 20},
          {"capture_queue", {{"depth", 20}, {"max", 4096}}},
          {"photos_today", 0},
          {"last_capture_at", nullptr}}},
        {rig + "/response/{verb}",
         {{"status", "error"},
          {"transaction", 7},
          {"error", {{"code", "queue_full"}, {"message", "capture queue is full: 3 ..."}}}}},
    };
    std::vector<Payload> invalid{
        {rig + "/availability", "maybe"},                                          // enum
        {rig + "/telemetry", {{"ts", "yesterday"}}},                               // format
        {rig + "/telemetry", {{"ts", "2026-01-02T03:04:05Z"}, {"captures", -1}}},  // minimum
        {rig + "/scan/move",
         {{"scan_id", "s"},
          {"step", 1},
          {"of", 2},
          {"degrees", 1},
          {"position_deg", 1},
          {"extra", true}}},                  // additionalProperties
        {rig + "/state", {{"busy", false}}},  // required
        {rig + "/state",
         {{"cameras", json::array()},
          {"busy", true},
          {"spool_files", 0},
          {"disk_free_bytes", 1},
          {"version", "v"},
          {"pending_requests", 1},
          {"capture_queue", {{"depth", -1}, {"max", 4096}}},  // minimum
          {"photos_today", 0},
          {"last_capture_at", nullptr}}},
        {rig + "/response/{verb}",
         {{"status", "error"},
          {"transaction", nullptr},
          {"error", {{"code", "Not Snake"}, {"message", "m"}}}}},  // pattern
        {rig + "/upload/jobs", json::array()},                     // type
        {"homeassistant/device/{rig_id}/config", "not empty"},     // maxLength
    };
    std::vector<Payload> all = valid;
    all.insert(all.end(), invalid.begin(), invalid.end());
    auto errors = schema_errors(all);
    ASSERT_EQ(errors.size(), all.size());
    for (size_t i = 0; i < all.size(); ++i) {
        if (i < valid.size()) {
            EXPECT_TRUE(errors[i].empty()) << all[i].value.dump() << ": " << errors[i].front();
        } else {
            EXPECT_FALSE(errors[i].empty()) << "accepted " << all[i].value.dump();
        }
    }
}

TEST(AsyncApi, EveryMessageTheRigPublishesIsDocumentedAndValid) {
    json doc = load_document();
    ASSERT_EQ(doc["asyncapi"], "2.6.0");
    auto channels = rig_published_channels(doc);
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
    std::vector<Payload> payloads;
    std::vector<Received> sources;  // the message each payload came from
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
        payloads.push_back({ch->name, value});
        sources.push_back(msg);
    }
    auto errors = schema_errors(payloads);
    for (size_t i = 0; i < errors.size(); ++i) {
        for (const auto& e : errors[i])
            ADD_FAILURE() << sources[i].topic << ": " << e
                          << "\n  payload: " << sources[i].payload.substr(0, 300);
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
