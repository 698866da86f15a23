// An in-process Publisher that records what the rig's parts send.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "rig/publisher.h"

namespace photorig::rig::test {

class FakePublisher : public Publisher {
  public:
    enum class How { nowait, acked, queued };
    struct Sent {
        mqtt::Message message;
        bool retain = false;
        How how = How::nowait;
        std::chrono::milliseconds timeout{0};  // how long the caller lets it wait
    };

    bool connected() const override { return connected_; }
    void publish_nowait(const mqtt::Message& m, bool retain) override {
        record(m, retain, How::nowait);
    }
    Status publish(const mqtt::Message& m, bool retain, std::chrono::milliseconds t) override {
        record(m, retain, How::acked, t);
        return fail_acked_ ? Status(make_error("timeout", "no PUBACK")) : ok();
    }
    Status publish_queued(const mqtt::Message& m, bool retain,
                          std::chrono::milliseconds t) override {
        record(m, retain, How::queued, t);
        return ok();
    }

    std::vector<Sent> sent() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return sent_;
    }
    std::vector<Sent> on(const std::string& topic) const {
        std::vector<Sent> out;
        for (const auto& s : sent())
            if (s.message.topic == topic) out.push_back(s);
        return out;
    }
    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        sent_.clear();
    }

    // The next send on `topic` waits until release(): whoever sends it (the capture thread
    // answering a request) is held there, so a test can fill a queue behind it. Later
    // sends on the topic (a refusal answered at once) go through.
    void hold(const std::string& topic) {
        std::lock_guard<std::mutex> lock(mutex_);
        held_topic_ = topic;
        hold_next_ = true;
    }
    void release() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            held_topic_.clear();
            hold_next_ = false;
        }
        released_.notify_all();
    }
    int held() const {  // sends waiting for release()
        std::lock_guard<std::mutex> lock(mutex_);
        return held_;
    }

    bool connected_ = true;
    bool fail_acked_ = false;

  private:
    void record(const mqtt::Message& m, bool retain, How how,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (hold_next_ && m.topic == held_topic_) {
            hold_next_ = false;
            ++held_;
            released_.wait(lock, [&] { return held_topic_ != m.topic; });
            --held_;
        }
        sent_.push_back(Sent{m, retain, how, timeout});
    }
    mutable std::mutex mutex_;
    std::condition_variable released_;
    std::string held_topic_;
    bool hold_next_ = false;
    int held_ = 0;
    std::vector<Sent> sent_;
};

}  // namespace photorig::rig::test
