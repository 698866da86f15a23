#pragma once
// What one test observer received, in arrival order: its own MQTT client, and a thread that
// moves every message from the client's queue into the list. RigHarness records the rig's
// broker with one, FleetHarness the central broker.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/queue.h"
#include "mqtt/client.h"

namespace photorig::test {

struct Received {
    std::string topic, payload, correlation_data;
    bool retained = false;
    std::chrono::steady_clock::time_point at;  // when the observer got it
};

class MessageRecorder {
  public:
    MessageRecorder() = default;
    MessageRecorder(const MessageRecorder&) = delete;
    MessageRecorder& operator=(const MessageRecorder&) = delete;
    ~MessageRecorder() { stop(); }

    // Connects with `subscriptions` in place and starts recording; throws, naming `who`,
    // when the client cannot connect within 5 s.
    void start(const mqtt::Options& options, const std::vector<mqtt::Subscription>& subscriptions,
               const std::string& who);
    // Ends the recording thread and disconnects; again is a no-op. Call it before the broker
    // stops, or the disconnect waits for an answer that never comes.
    void stop();
    bool started() const { return client_ != nullptr; }
    mqtt::Client& client() { return *client_; }

    std::vector<Received> received(const std::string& topic) const;  // "" = every message
    void clear();
    // At least `n` messages on `topic` matching `pred` within `timeout`.
    bool wait_count(const std::string& topic, size_t n,
                    const std::function<bool(const Received&)>& pred,
                    std::chrono::milliseconds timeout) const;

  private:
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> client_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    bool stopped_ = false;
    mutable std::mutex mutex_;
    std::vector<Received> received_;
};

}  // namespace photorig::test
