#include "ctl/rig_client.h"

#include <map>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/ids.h"

namespace photorig::ctl {
using nlohmann::json;
using Clock = std::chrono::steady_clock;

RigClient::RigClient(mqtt::Options options, std::string topic_prefix)
    : options_(std::move(options)), prefix_(std::move(topic_prefix)) {
    if (options_.client_id.empty()) options_.client_id = "rigctl-" + ids::random_hex(8);
    options_.clean_start = true;
}

RigClient::~RigClient() {
    if (client_) client_->disconnect(std::chrono::seconds(1));
}

Status RigClient::connect(std::chrono::milliseconds timeout,
                          const std::vector<std::string>& filters) {
    client_ = std::make_unique<mqtt::Client>(options_, events_);
    std::vector<mqtt::Subscription> subs;
    for (const auto& f : filters) subs.push_back({f, 1});
    client_->set_subscriptions(subs);
    // connect() returns once the first attempt, subscriptions included, is done.
    auto st = client_->connect(timeout);
    if (!st) return st.error();
    return ok();
}

std::vector<std::string> RigClient::list_filters() const {
    return {prefix_ + "/+/availability", prefix_ + "/+/state", prefix_ + "/+/uploader/availability",
            prefix_ + "/+/uploader/state", prefix_ + "/+/scan/state"};
}

std::string RigClient::topic(const std::string& rig, const std::string& suffix) const {
    return prefix_ + "/" + rig + "/" + suffix;
}

Expected<std::vector<RigSummary>> RigClient::list(std::chrono::milliseconds wait) {
    std::map<std::string, RigSummary> rigs;
    auto deadline = Clock::now() + wait;
    auto quiet_until = Clock::now() + std::chrono::milliseconds(500);
    while (Clock::now() < deadline && Clock::now() < quiet_until) {
        auto ev = events_.pop_for(std::chrono::milliseconds(50));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        // Retained messages arrive in a burst right after subscribing; a pause ends it.
        quiet_until = Clock::now() + std::chrono::milliseconds(300);
        const std::string& topic = ev->message.topic;
        if (topic.compare(0, prefix_.size() + 1, prefix_ + "/") != 0) continue;
        std::string rest = topic.substr(prefix_.size() + 1);
        auto slash = rest.find('/');
        if (slash == std::string::npos) continue;
        std::string rig = rest.substr(0, slash), what = rest.substr(slash + 1);
        if (rig == "group" || ev->message.payload.empty()) continue;
        RigSummary& s = rigs[rig];
        s.rig_id = rig;
        if (what == "availability") s.availability = ev->message.payload;
        if (what == "state") s.state_json = ev->message.payload;
        if (what == "uploader/availability") s.uploader_availability = ev->message.payload;
        if (what == "uploader/state") s.uploader_state_json = ev->message.payload;
        if (what == "scan/state") s.scan_state_json = ev->message.payload;
    }
    std::vector<RigSummary> out;
    for (auto& [id, s] : rigs) out.push_back(std::move(s));
    return out;
}

Expected<std::string> RigClient::request(const std::string& rig, const std::string& verb,
                                         const std::string& payload,
                                         std::chrono::milliseconds timeout) {
    json body = payload.empty() ? json::object() : json::parse(payload, nullptr, false);
    if (!body.is_object()) return make_error("bad_request", "the request must be a JSON object");
    const std::string txn = "rigctl-" + ids::random_hex(12);
    body["transaction"] = txn;
    const std::string base = prefix_ + "/" + rig;
    auto st = client_->publish(
        mqtt::Message{base + "/request/" + verb, body.dump(), 1, false, "", ""}, false, timeout);
    if (!st) return st.error();
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto ev = events_.pop_for(std::chrono::milliseconds(100));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        if (ev->message.topic != base + "/response/" + verb) continue;
        json r = json::parse(ev->message.payload, nullptr, false);
        if (!r.is_object() || r.value("transaction", json()) != txn) continue;
        if (r.value("status", "") == "ok") return r.value("data", json::object()).dump();
        const json& e = r.value("error", json::object());
        return make_error(e.value("code", "error"),
                          e.value("message", "the agent refused the request"));
    }
    return make_error("timeout", "no response from rig '" + rig + "' within " +
                                     std::to_string(timeout.count()) +
                                     " ms (is it online? try: rigctl list)");
}

Status RigClient::follow(
    const std::string& rig, const std::vector<std::string>& suffixes,
    const std::function<bool(const std::string&, const std::string&)>& on_message,
    std::chrono::milliseconds timeout) {
    const std::string base = prefix_ + "/" + rig + "/";
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto ev = events_.pop_for(std::chrono::milliseconds(100));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        const std::string& topic = ev->message.topic;
        if (topic.compare(0, base.size(), base) != 0) continue;
        std::string suffix = topic.substr(base.size());
        bool wanted = false;
        for (const auto& s : suffixes) wanted = wanted || s == suffix;
        if (wanted && !on_message(suffix, ev->message.payload)) return ok();
    }
    return make_error("timeout",
                      "stopped following after " + std::to_string(timeout.count() / 1000) + " s");
}

}  // namespace photorig::ctl
