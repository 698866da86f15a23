#include "rig/request_dedupe.h"

#include <functional>

namespace photorig::rig {

void RequestDedupe::forget_old(int64_t now_ms) {
    while (!order_.empty() &&
           (order_.size() > capacity_ || now_ms - order_.front().second > window_ms_)) {
        auto [hash, at] = order_.front();
        order_.pop_front();
        auto it = seen_.find(hash);
        // Remembered again later: a newer entry in order_ stands for it.
        if (it != seen_.end() && it->second == at) seen_.erase(it);
    }
}

bool RequestDedupe::is_redelivery(const std::string& topic, const std::string& payload,
                                  bool has_transaction, bool dup_flag, int64_t now_ms) {
    forget_old(now_ms);
    const uint64_t hash = std::hash<std::string>{}(topic + '\0' + payload);
    auto it = seen_.find(hash);
    if (it != seen_.end() && (has_transaction || dup_flag)) return true;
    seen_[hash] = now_ms;
    order_.emplace_back(hash, now_ms);
    forget_old(now_ms);
    return false;
}

}  // namespace photorig::rig
