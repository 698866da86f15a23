#include "protocol/topics.h"

#include <utility>

namespace photorig::protocol {
namespace {
constexpr const char* kRequestLevel = "/request/";
constexpr const char* kGroupLevel = "/group/";
}  // namespace

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
