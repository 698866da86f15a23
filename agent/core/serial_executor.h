// Runs tasks one at a time, in submission order, on its own thread. Used where slow work
// that must stay ordered (committing and publishing photos) should overlap with the thread
// that produces it (the camera taking the next shot).
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <type_traits>

#include "core/queue.h"

namespace photorig {

class SerialExecutor {
  public:
    SerialExecutor() : thread_([this] { loop(); }) {}
    // Runs everything already submitted, then joins.
    ~SerialExecutor() {
        tasks_.close();
        if (thread_.joinable()) thread_.join();
    }
    SerialExecutor(const SerialExecutor&) = delete;
    SerialExecutor& operator=(const SerialExecutor&) = delete;

    template <typename Fn>
    std::future<std::invoke_result_t<Fn>> submit(Fn fn) {
        // std::function needs a copyable target; the packaged task is shared to be one.
        auto task = std::make_shared<std::packaged_task<std::invoke_result_t<Fn>()>>(std::move(fn));
        auto result = task->get_future();
        tasks_.push([task] { (*task)(); });
        return result;
    }

  private:
    void loop() {
        // pop_for returns empty only once the queue is closed and drained (or on timeout).
        for (;;) {
            auto task = tasks_.pop_for(std::chrono::hours(1));
            if (task) {
                (*task)();
            } else if (tasks_.closed()) {
                return;
            }
        }
    }

    MessageQueue<std::function<void()>> tasks_;
    std::thread thread_;  // last: starts after the queue exists
};

}  // namespace photorig
