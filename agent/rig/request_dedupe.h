// Never carry a request out twice (issue 14). With a persistent MQTT session a request can
// reach the agent twice: the broker resends a QoS 1 message whose PUBACK it did not get
// before the connection dropped (DUP set), and a bridge that reconnects resends to the
// local broker, which delivers it to us as a new message (DUP is per hop, so not set).
// Paho gives no packet id, so a request is known by its topic and exact payload:
// - with a transaction, the same topic + payload seen within the window is a redelivery
//   (a client that means a second action sends a new transaction);
// - without one, only a message flagged DUP that matches is a redelivery (two identical
//   button presses without transaction are two requests).
// Bounded: at most `capacity` requests remembered (a 64-bit hash and a time each), none
// older than `window_ms`.
//
// Threads: the service thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

namespace photorig::rig {

class RequestDedupe {
  public:
    static constexpr size_t kDefaultCapacity = 4096;
    static constexpr int64_t kDefaultWindowMs = 24LL * 3600 * 1000;  // a day-long WAN outage

    explicit RequestDedupe(size_t capacity = kDefaultCapacity, int64_t window_ms = kDefaultWindowMs)
        : capacity_(capacity), window_ms_(window_ms) {}

    // True: a redelivery of a request already carried out (do nothing). False: remembered
    // now, carry it out. `has_transaction`: the payload names a transaction (not null).
    bool is_redelivery(const std::string& topic, const std::string& payload, bool has_transaction,
                       bool dup_flag, int64_t now_ms);

    size_t remembered() const { return seen_.size(); }

  private:
    void forget_old(int64_t now_ms);

    const size_t capacity_;
    const int64_t window_ms_;
    std::unordered_map<uint64_t, int64_t> seen_;      // hash -> when last remembered
    std::deque<std::pair<uint64_t, int64_t>> order_;  // oldest first
};

}  // namespace photorig::rig
