#include "protocol/response_topic.h"

#include "core/text.h"
#include "protocol/wire.h"

namespace photorig::protocol {
namespace {

std::vector<std::string> levels(const std::string& topic) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t slash = topic.find('/', start);
        out.push_back(topic.substr(start, slash == std::string::npos ? slash : slash - start));
        if (slash == std::string::npos) return out;
        start = slash + 1;
    }
}

Status refused(const std::string& why) {
    return make_error(codes::bad_request, "response topic refused: " + why);
}

}  // namespace

ResponseTopicPolicy response_topic_policy(const std::string& topic_prefix,
                                          const std::string& rig_id, const std::string& ha_prefix,
                                          std::vector<std::string> allow) {
    ResponseTopicPolicy p;
    p.own_response_root = topic_prefix + "/" + rig_id + "/response/";
    p.reserved_roots = {topic_prefix, ha_prefix};
    p.allow = std::move(allow);
    return p;
}

bool topic_matches(const std::string& filter, const std::string& topic) {
    if (topic.empty()) return false;
    const auto f = levels(filter), t = levels(topic);
    if (topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
    for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] == "#") return true;
        if (i >= t.size()) return false;
        if (f[i] != "+" && f[i] != t[i]) return false;
    }
    return f.size() == t.size();
}

Status check_response_topic(const std::string& topic, const ResponseTopicPolicy& policy) {
    if (topic.size() > kMaxResponseTopicBytes)
        return refused("longer than " + std::to_string(kMaxResponseTopicBytes) + " bytes");
    if (!text::is_valid_utf8(topic)) return refused("not valid UTF-8");
    for (char c : topic) {
        if (c == '#' || c == '+') return refused("wildcards (# +) are not allowed");
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return refused("control characters are not allowed");
    }
    if (topic.compare(0, policy.own_response_root.size(), policy.own_response_root) == 0 &&
        topic.size() > policy.own_response_root.size())
        return ok();
    for (const auto& filter : policy.allow)
        if (topic_matches(filter, topic)) return ok();
    if (topic[0] == '$') return refused("'$' topics are the broker's");
    for (const auto& root : policy.reserved_roots)
        if (!root.empty() && (topic == root || topic.compare(0, root.size() + 1, root + "/") == 0))
            return refused("only " + policy.own_response_root +
                           "... or mqtt.response_topic_allow is allowed under '" + root + "/'");
    return ok();
}

}  // namespace photorig::protocol
