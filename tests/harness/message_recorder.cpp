#include "harness/message_recorder.h"

#include <stdexcept>

#include "support/test_util.h"

namespace photorig::test {

void MessageRecorder::start(const mqtt::Options& options,
                            const std::vector<mqtt::Subscription>& subscriptions,
                            const std::string& who) {
    client_ = std::make_unique<mqtt::Client>(options, events_);
    client_->set_subscriptions(subscriptions);
    if (auto st = client_->connect(std::chrono::seconds(5)); !st)
        throw std::runtime_error(who + " could not connect: " + st.error().describe());
    thread_ = std::thread([this] {
        while (!stop_) {
            auto ev = events_.pop_for(std::chrono::milliseconds(50));
            if (!ev || ev->kind != mqtt::Event::Kind::message) continue;
            std::lock_guard<std::mutex> lock(mutex_);
            received_.push_back(Received{ev->message.topic, ev->message.payload,
                                         ev->message.correlation_data, ev->message.retained,
                                         std::chrono::steady_clock::now()});
        }
    });
}

void MessageRecorder::stop() {
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (client_) client_->disconnect(std::chrono::milliseconds(500));
}

std::vector<Received> MessageRecorder::received(const std::string& topic) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Received> out;
    for (const auto& r : received_) {
        if (topic.empty() || r.topic == topic) out.push_back(r);
    }
    return out;
}

void MessageRecorder::clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    received_.clear();
}

bool MessageRecorder::wait_count(const std::string& topic, size_t n,
                                 const std::function<bool(const Received&)>& pred,
                                 std::chrono::milliseconds timeout) const {
    return wait_until(
        [&] {
            size_t count = 0;
            for (const auto& r : received(topic)) count += pred(r) ? 1 : 0;
            return count >= n;
        },
        timeout);
}

}  // namespace photorig::test
