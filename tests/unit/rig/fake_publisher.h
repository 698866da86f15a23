// An in-process Publisher that records what the rig's parts send.
#pragma once

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
    };

    bool connected() const override { return connected_; }
    void publish_nowait(const mqtt::Message& m, bool retain) override {
        record(m, retain, How::nowait);
    }
    Status publish(const mqtt::Message& m, bool retain, std::chrono::milliseconds) override {
        record(m, retain, How::acked);
        return fail_acked_ ? Status(make_error("timeout", "no PUBACK")) : ok();
    }
    Status publish_queued(const mqtt::Message& m, bool retain, std::chrono::milliseconds) override {
        record(m, retain, How::queued);
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

    bool connected_ = true;
    bool fail_acked_ = false;

  private:
    void record(const mqtt::Message& m, bool retain, How how) {
        std::lock_guard<std::mutex> lock(mutex_);
        sent_.push_back(Sent{m, retain, how});
    }
    mutable std::mutex mutex_;
    std::vector<Sent> sent_;
};

}  // namespace photorig::rig::test
