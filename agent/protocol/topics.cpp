#include "protocol/topics.h"

#include <algorithm>
#include <utility>

#include "core/text.h"

namespace photorig::protocol {
namespace {
constexpr const char* kRequestLevel = "/request/";
constexpr const char* kGroupLevel = "/group/";

bool needs_escape(unsigned char c) {
    return c == '%' || c == '/' || c == '+' || c == '#' || c < 0x20 || c == 0x7f;
}

void append_escaped(std::string& out, unsigned char c) {
    static const char kHex[] = "0123456789ABCDEF";
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
}
}  // namespace

std::string topic_level(const std::string& name) {
    std::string out;
    for (size_t i = 0; i < name.size();) {
        const auto c = static_cast<unsigned char>(name[i]);
        size_t n = text::utf8_sequence_length(name, i);
        // C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F.
        bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(name[i + 1]) < 0xA0;
        if (n == 0 || c1 || (n == 1 && needs_escape(c))) {
            for (size_t k = 0; k < std::max<size_t>(n, 1); ++k)
                append_escaped(out, static_cast<unsigned char>(name[i + k]));
            i += std::max<size_t>(n, 1);
        } else {
            out.append(name, i, n);
            i += n;
        }
    }
    return out;
}

RigTopics::RigTopics(std::string topic_prefix, std::string rig_id)
    : prefix_(std::move(topic_prefix)),
      rig_id_(std::move(rig_id)),
      base_(prefix_ + "/" + rig_id_) {}

std::string RigTopics::group_request(const std::string& group, const std::string& verb) const {
    return prefix_ + kGroupLevel + group + kRequestLevel + verb;
}

std::string RigTopics::group_request_filter(const std::string& group) const {
    return group_request(group, "#");
}

std::optional<std::string> RigTopics::request_verb(const std::string& topic) const {
    const std::string own = base_ + kRequestLevel;
    if (topic.compare(0, own.size(), own) == 0) return topic.substr(own.size());
    // <prefix>/group/<group>/request/<verb>: the group is one topic level.
    const std::string group_root = prefix_ + kGroupLevel;
    if (topic.compare(0, group_root.size(), group_root) != 0) return std::nullopt;
    auto slash = topic.find('/', group_root.size());
    if (slash == std::string::npos || slash == group_root.size()) return std::nullopt;
    const std::string request_level = kRequestLevel;
    if (topic.compare(slash, request_level.size(), request_level) != 0) return std::nullopt;
    return topic.substr(slash + request_level.size());
}

std::optional<FleetTopics::RigAndSubtopic> FleetTopics::split(const std::string& topic) const {
    if (topic.size() <= prefix_.size() + 1 || topic.compare(0, prefix_.size(), prefix_) != 0 ||
        topic[prefix_.size()] != '/') {
        return std::nullopt;
    }
    auto slash = topic.find('/', prefix_.size() + 1);
    if (slash == std::string::npos) return std::nullopt;
    return RigAndSubtopic{topic.substr(prefix_.size() + 1, slash - prefix_.size() - 1),
                          topic.substr(slash + 1)};
}

std::string ha_status_topic(const std::string& discovery_prefix) {
    return discovery_prefix + "/status";
}

std::string ha_discovery_topic(const std::string& discovery_prefix, const std::string& rig_id) {
    return discovery_prefix + "/device/" + rig_id + "/config";
}

}  // namespace photorig::protocol
