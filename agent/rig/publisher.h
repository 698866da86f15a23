// What the rig's parts need of the broker: a seam, so each part is tested against a
// recording fake instead of a broker. MqttPublisher is the real one.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "core/expected.h"
#include "mqtt/client.h"

namespace photorig::rig {

class Publisher {
  public:
    virtual ~Publisher() = default;
    virtual bool connected() const = 0;
    // Fire and forget (dropped while disconnected).
    virtual void publish_nowait(const mqtt::Message& m, bool retain) = 0;
    // Waits for the broker's PUBACK.
    virtual Status publish(const mqtt::Message& m, bool retain,
                           std::chrono::milliseconds timeout) = 0;
    // As publish(), calling `taken` once the client has the message and before the wait for
    // its PUBACK (what is published after `taken` follows it on the wire). Not called when
    // the message never reached the client. This default (recording fakes) calls it after.
    virtual Status publish_then_wait(const mqtt::Message& m, bool retain,
                                     std::chrono::milliseconds timeout,
                                     const std::function<void()>& taken) {
        auto st = publish(m, retain, timeout);
        if (st) taken();
        return st;
    }
    // Returns once the client has taken the message (no PUBACK wait).
    virtual Status publish_queued(const mqtt::Message& m, bool retain,
                                  std::chrono::milliseconds timeout) = 0;

    // QoS 1 helpers for the common case.
    void send(const std::string& topic, const std::string& payload, bool retain) {
        publish_nowait(mqtt::Message{topic, payload, 1, retain, "", ""}, retain);
    }
};

class MqttPublisher : public Publisher {
  public:
    explicit MqttPublisher(mqtt::Client& client) : client_(client) {}
    bool connected() const override { return client_.connected(); }
    void publish_nowait(const mqtt::Message& m, bool retain) override {
        client_.publish_nowait(m, retain);
    }
    Status publish(const mqtt::Message& m, bool retain,
                   std::chrono::milliseconds timeout) override {
        return client_.publish(m, retain, timeout);
    }
    Status publish_then_wait(const mqtt::Message& m, bool retain, std::chrono::milliseconds timeout,
                             const std::function<void()>& taken) override {
        return client_.publish(m, retain, timeout, taken);
    }
    Status publish_queued(const mqtt::Message& m, bool retain,
                          std::chrono::milliseconds timeout) override {
        return client_.publish_queued(m, retain, timeout);
    }

  private:
    mqtt::Client& client_;
};

}  // namespace photorig::rig
