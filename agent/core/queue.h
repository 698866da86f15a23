// The hand-off between threads: callbacks (Paho, libgphoto2, libcurl) only push typed
// messages here; the thread that owns the state pops them. push() never blocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

namespace photorig {

template <typename T>
class MessageQueue {
  public:
    void push(T item) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            items_.push_back(std::move(item));
        }
        cv_.notify_one();
    }

    // As push(), unless `max` items wait already: then the item is not taken (false). For
    // queues fed by a peer (a broker flood) that must stay bounded.
    bool push_bounded(T item, size_t max) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (items_.size() >= max) return false;
            items_.push_back(std::move(item));
        }
        cv_.notify_one();
        return true;
    }

    // Waits up to `timeout`; empty optional on timeout or after close() with nothing left.
    std::optional<T> pop_for(std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, timeout, [&] { return !items_.empty() || closed_; });
        if (items_.empty()) return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        return item;
    }

    void close() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        cv_.notify_all();
    }

    bool closed() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return closed_;
    }

    size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return items_.size();
    }

  private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<T> items_;
    bool closed_ = false;
};

}  // namespace photorig
