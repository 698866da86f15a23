#include "core/bandwidth_limiter.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace photorig {
namespace {
int64_t steady_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}
}  // namespace

size_t BandwidthLimiter::step(size_t max_step) const {
    if (rate_ == 0) return max_step;
    return static_cast<size_t>(
        std::clamp<uint64_t>(rate_ / 8, std::min<uint64_t>(16 * 1024, max_step), max_step));
}

bool BandwidthLimiter::acquire(uint64_t bytes, const std::atomic<bool>* cancel) {
    if (rate_ == 0 || bytes == 0) return true;
    int64_t until;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const int64_t now = steady_us();
        // No credit for idle time, but a short gap is the sender's own work: continuous.
        int64_t start = next_free_us_ >= now - kContinuousUs ? next_free_us_ : now;
        next_free_us_ = start + static_cast<int64_t>(static_cast<double>(bytes) * 1e6 /
                                                     static_cast<double>(rate_));
        until = next_free_us_;
    }
    // Wait out the booked slot, then hand the bytes on: N bytes alone take N / rate.
    for (;;) {
        int64_t wait = until - steady_us();
        if (wait <= 0) return true;
        if (cancel && cancel->load(std::memory_order_relaxed)) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(wait, 50000)));
    }
}

bool LinkGate::Turn::hold(const std::atomic<bool>* cancel) {
    if (!gate_ || held_) return true;
    held_ = gate_->enter(cancel);
    return held_;
}

void LinkGate::Turn::release() {
    if (!held_) return;
    held_ = false;
    if (gate_) gate_->leave();
}

size_t LinkGate::waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
}

bool LinkGate::busy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return busy_;
}

bool LinkGate::enter(const std::atomic<bool>* cancel) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t ticket = next_ticket_++;
    queue_.push_back(ticket);
    for (;;) {
        if (!busy_ && queue_.front() == ticket) {
            queue_.pop_front();
            busy_ = true;
            return true;
        }
        if (cancel && cancel->load(std::memory_order_relaxed)) {
            for (auto it = queue_.begin(); it != queue_.end(); ++it) {
                if (*it != ticket) continue;
                queue_.erase(it);
                break;
            }
            cv_.notify_all();  // the next waiter may be first now
            return false;
        }
        cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
}

void LinkGate::leave() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        busy_ = false;
    }
    cv_.notify_all();
}

}  // namespace photorig
