// MQTT requests as rig-agent takes them off the broker. Input: byte 0 picks the topic (every
// request topic of the rig and of its group, scan/ready, stray topics, or byte 0 >= 200: a
// topic tail from the first line, printable ASCII as a broker would deliver); byte 1 bit 0 is
// the retain flag; the rest is the payload.
//
// A request topic goes through RigTopics::request_verb and RequestRouter::handle with the
// parse function each verb's handler calls in RigService / CameraRequests (parse_no_fields,
// parse_capture, parse_scan, parse_config_get/set, parse_preview); scan/ready goes to
// scan_ready_matches as ScanRunner::on_ready does. Every answer must be one JSON object with
// "status" ok or error (an error with a code) and the transaction.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "protocol/scan.h"
#include "protocol/topics.h"
#include "protocol/wire.h"
#include "rig/request_router.h"

namespace {
using namespace photorig;

class RecordingPublisher : public rig::Publisher {
  public:
    std::vector<mqtt::Message> sent;
    bool connected() const override { return true; }
    void publish_nowait(const mqtt::Message& m, bool) override { sent.push_back(m); }
    Status publish(const mqtt::Message& m, bool, std::chrono::milliseconds) override {
        sent.push_back(m);
        return ok();
    }
    Status publish_queued(const mqtt::Message& m, bool, std::chrono::milliseconds) override {
        sent.push_back(m);
        return ok();
    }
};

using Result = Expected<std::optional<std::string>>;

// The handlers RigService::route_requests installs, down to the parse each one calls first.
void add_handlers(rig::RequestRouter& router, const protocol::Limits& limits) {
    auto no_fields = [](const mqtt::Message& m, const std::string&, const std::string&) -> Result {
        if (auto st = protocol::parse_no_fields(m.payload); !st) return st.error();
        return std::optional<std::string>("{}");
    };
    router.add("status", no_fields);
    router.add("cameras", no_fields);
    router.add("capture",
               [limits](const mqtt::Message& m, const std::string&, const std::string&) -> Result {
                   auto req = protocol::parse_capture(m.payload, limits);
                   if (!req) return req.error();
                   return std::optional<std::string>();  // the pipeline answers later
               });
    router.add("scan",
               [limits](const mqtt::Message& m, const std::string&, const std::string&) -> Result {
                   auto req = protocol::parse_scan(m.payload, limits);
                   if (!req) return req.error();
                   return std::optional<std::string>("{}");
               });
    for (const char* verb : {"config/get", "config/set", "preview"}) {
        router.add(verb,
                   [](const mqtt::Message& m, const std::string& v, const std::string&) -> Result {
                       auto req = v == "config/get"   ? protocol::parse_config_get(m.payload)
                                  : v == "config/set" ? protocol::parse_config_set(m.payload)
                                                      : protocol::parse_preview(m.payload);
                       if (!req) return req.error();
                       return std::optional<std::string>();  // the camera's executor answers later
                   });
    }
}

std::vector<std::string> fixed_topics(const protocol::RigTopics& t) {
    std::vector<std::string> out;
    for (const auto& verb : protocol::known_verbs()) {
        out.push_back(t.request(verb));
        out.push_back(t.group_request("studio", verb));
    }
    out.push_back(t.scan_ready());
    out.push_back(t.request("unknown"));
    out.push_back(t.request(""));
    out.push_back(t.request("capture/extra"));
    out.push_back(t.request("config"));
    out.push_back(t.prefix() + "/group//request/capture");
    out.push_back(t.prefix() + "/group/studio/request/");
    out.push_back(t.prefix() + "/group/other/request/status");
    out.push_back(t.base() + "/state");
    return out;
}

std::string printable_ascii(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c >= 0x20 && c < 0x7f && c != '#' && c != '+') out.push_back(c);
    return out;
}

void check_response(const mqtt::Message& m) {
    auto j = nlohmann::json::parse(m.payload, nullptr, false);
    PHOTORIG_FUZZ_CHECK(!j.is_discarded() && j.is_object());
    PHOTORIG_FUZZ_CHECK(j.contains("status") && j.contains("transaction"));
    if (j["status"] == "error")
        PHOTORIG_FUZZ_CHECK(j.contains("error") && j["error"]["code"].is_string());
    else
        PHOTORIG_FUZZ_CHECK(j["status"] == "ok");
    PHOTORIG_FUZZ_CHECK(!m.topic.empty());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const protocol::RigTopics topics("photorig", "rig1");
    static const std::vector<std::string> topic_list = fixed_topics(topics);
    fuzz::Input in(data, size);
    const uint8_t pick = in.byte();
    const uint8_t flags = in.byte();
    mqtt::Message message;
    message.topic = pick >= 200 ? topics.base() + "/request/" + printable_ascii(in.line())
                                : topic_list[pick % topic_list.size()];
    message.retained = flags & 1;
    message.qos = 1;
    message.payload = in.rest();

    if (message.topic == topics.scan_ready()) {
        protocol::ScanRecord record;
        record.scan_id = "scan-1";
        record.state = "running";
        (void)protocol::scan_ready_matches(message.payload, record, 3);
        return 0;
    }
    auto verb = topics.request_verb(message.topic);
    if (!verb) return 0;

    RecordingPublisher publisher;
    rig::Responder responder(publisher, topics);
    rig::RigStats stats;
    protocol::Limits limits;
    rig::RequestRouter router(responder, limits, stats);
    add_handlers(router, limits);
    router.handle(message, *verb);
    PHOTORIG_FUZZ_CHECK(publisher.sent.size() <= 1);
    for (const auto& m : publisher.sent) check_response(m);
    return 0;
}
