// Answers a request: on the reply topic an MQTT v5 client named, else on response/<verb>.
#pragma once

#include <string>

#include "protocol/topics.h"
#include "rig/publisher.h"

namespace photorig::rig {

class Responder {
  public:
    Responder(Publisher& publisher, protocol::RigTopics topics)
        : publisher_(publisher), topics_(std::move(topics)) {}

    void respond(const std::string& verb, const std::string& response_topic,
                 const std::string& correlation_data, const std::string& payload) {
        mqtt::Message m;
        m.topic = response_topic.empty() ? topics_.response(verb) : response_topic;
        m.payload = payload;
        m.qos = 1;
        m.correlation_data = correlation_data;
        publisher_.publish_nowait(m, false);
    }
    void respond(const std::string& verb, const mqtt::Message& request,
                 const std::string& payload) {
        respond(verb, request.response_topic, request.correlation_data, payload);
    }

  private:
    Publisher& publisher_;
    const protocol::RigTopics topics_;
};

}  // namespace photorig::rig
