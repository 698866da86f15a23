// Answers a request: on the reply topic an MQTT v5 client named, else on response/<verb>.
//
// An answer given while the client is offline (a capture that finished during a broker
// restart, a request read right after CONNACK) is held, up to kMaxHeld, and sent by
// send_held() once the client is back online (RigService calls it on `connected`), instead
// of being dropped by publish_nowait(). Threads: respond() from the service and capture
// threads, send_held() from the service thread. respond() checks and holds under the lock
// send_held() takes, and the client is online before its `connected` Event is handled, so
// an answer is either sent at once or taken by the next send_held().
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>

#include "protocol/topics.h"
#include "rig/publisher.h"

namespace photorig::rig {

class Responder {
  public:
    static constexpr size_t kMaxHeld = 4096;

    Responder(Publisher& publisher, protocol::RigTopics topics)
        : publisher_(publisher), topics_(std::move(topics)) {}

    void respond(const std::string& verb, const std::string& response_topic,
                 const std::string& correlation_data, const std::string& payload) {
        mqtt::Message m;
        m.topic = response_topic.empty() ? topics_.response(verb) : response_topic;
        m.payload = payload;
        m.qos = 1;
        m.correlation_data = correlation_data;
        {
            // Checked and held under the lock send_held() takes; published outside it (a
            // publish may wait, and other threads answer meanwhile).
            std::lock_guard<std::mutex> lock(mutex_);
            if (!publisher_.connected() && held_.size() < kMaxHeld) {
                held_.push_back(std::move(m));
                return;
            }
        }
        publisher_.publish_nowait(m, false);
    }
    void respond(const std::string& verb, const mqtt::Message& request,
                 const std::string& payload) {
        respond(verb, request.response_topic, request.correlation_data, payload);
    }

    // Sends what was held while offline, oldest first. Returns how many went out.
    size_t send_held() {
        std::deque<mqtt::Message> out;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!publisher_.connected()) return 0;
            out.swap(held_);
        }
        for (const auto& m : out) publisher_.publish_nowait(m, false);
        return out.size();
    }

  private:
    Publisher& publisher_;
    const protocol::RigTopics topics_;
    std::mutex mutex_;
    std::deque<mqtt::Message> held_;
};

}  // namespace photorig::rig
