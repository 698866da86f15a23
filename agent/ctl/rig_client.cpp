#include "ctl/rig_client.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/clock.h"
#include "core/ids.h"

namespace photorig::ctl {
namespace subtopics = protocol::subtopics;
using Clock = std::chrono::steady_clock;

RigClient::RigClient(mqtt::Options options, std::string topic_prefix)
    : options_(std::move(options)), fleet_(std::move(topic_prefix)) {
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
    return {fleet_.any_rig(subtopics::availability), fleet_.any_rig(subtopics::state),
            fleet_.any_rig(subtopics::uploader_availability),
            fleet_.any_rig(subtopics::uploader_state), fleet_.any_rig(subtopics::scan_state)};
}

std::vector<std::string> RigClient::fleet_filters() const {
    auto filters = list_filters();
    filters.push_back(fleet_.any_rig(subtopics::bridge_state));
    return filters;
}

Expected<std::vector<RigSummary>> RigClient::list(std::chrono::milliseconds wait,
                                                  std::chrono::milliseconds quiet) {
    std::map<std::string, RigSummary> rigs;
    std::set<std::string> seen;  // topics
    auto deadline = Clock::now() + wait;
    auto quiet_until = Clock::now() + std::max(quiet, std::chrono::milliseconds(500));
    while (Clock::now() < deadline && Clock::now() < quiet_until) {
        auto ev = events_.pop_for(std::chrono::milliseconds(50));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        // Retained messages arrive in a burst right after subscribing; a pause ends it. Only
        // a topic not seen yet extends it: rigs publishing state all the time must not.
        if (seen.insert(ev->message.topic).second) quiet_until = Clock::now() + quiet;
        auto split = fleet_.split(ev->message.topic);
        if (!split || split->rig_id == "group" || ev->message.payload.empty()) continue;
        RigSummary& s = rigs[split->rig_id];
        s.rig_id = split->rig_id;
        const std::string& what = split->subtopic;
        const std::string& payload = ev->message.payload;
        if (what == subtopics::availability) s.availability = payload;
        if (what == subtopics::state) s.state_json = payload;
        if (what == subtopics::uploader_availability) s.uploader_availability = payload;
        if (what == subtopics::uploader_state) s.uploader_state_json = payload;
        if (what == subtopics::scan_state) s.scan_state_json = payload;
        if (what == subtopics::bridge_state) s.bridge_state = payload;
    }
    std::vector<RigSummary> out;
    for (auto& [id, s] : rigs) out.push_back(std::move(s));
    return out;
}

Expected<std::string> RigClient::request(const std::string& rig, const std::string& verb,
                                         const protocol::client::RequestBody& body,
                                         std::chrono::milliseconds timeout) {
    const std::string txn = "rigctl-" + ids::random_hex(12);
    const protocol::RigTopics topics = fleet_.rig(rig);
    const std::string response_topic = topics.response(verb);
    auto st = client_->publish(
        mqtt::Message{topics.request(verb), body.json(txn), 1, false, "", ""}, false, timeout);
    if (!st) return st.error();
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto ev = events_.pop_for(std::chrono::milliseconds(100));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        if (ev->message.topic != response_topic) continue;
        auto r = protocol::client::parse_response(ev->message.payload);
        if (!r || r->transaction != txn) continue;
        if (r->ok) return r->data_json;
        return r->error;
    }
    return make_error("timeout", "no response from rig '" + rig + "' within " +
                                     std::to_string(timeout.count()) +
                                     " ms (is it online? try: rigctl list)");
}

Status RigClient::publish(const std::string& topic, const std::string& payload,
                          std::chrono::milliseconds timeout) {
    auto st = client_->publish(mqtt::Message{topic, payload, 1, false, "", ""}, false, timeout);
    if (!st) return st.error();
    return ok();
}

Status RigClient::follow_all(
    const std::function<bool(const std::string&, const std::string&)>& on_message,
    std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto ev = events_.pop_for(std::min(left, std::chrono::milliseconds(100)));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        if (!on_message(ev->message.topic, ev->message.payload)) return ok();
    }
    return make_error("timeout",
                      "stopped waiting after " + std::to_string(timeout.count() / 1000) + " s");
}

Status RigClient::follow(
    const std::vector<std::string>& topics,
    const std::function<bool(const std::string&, const std::string&)>& on_message,
    std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto ev = events_.pop_for(std::chrono::milliseconds(100));
        if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
        const std::string& topic = ev->message.topic;
        bool wanted = std::find(topics.begin(), topics.end(), topic) != topics.end();
        if (wanted && !on_message(topic, ev->message.payload)) return ok();
    }
    return make_error("timeout",
                      "stopped following after " + std::to_string(timeout.count() / 1000) + " s");
}

}  // namespace photorig::ctl
