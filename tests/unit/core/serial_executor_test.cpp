#include "core/serial_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using photorig::SerialExecutor;

TEST(SerialExecutor, RunsTasksOneAtATimeInSubmissionOrder) {
    std::vector<int> order;
    std::atomic<int> running{0};
    std::atomic<int> max_running{0};
    std::vector<std::future<int>> results;
    {
        SerialExecutor ex;
        for (int i = 0; i < 50; ++i) {
            results.push_back(ex.submit([&, i] {
                int now = ++running;
                max_running = std::max(max_running.load(), now);
                // Earlier tasks sleep longer: only strict serial execution keeps the order.
                std::this_thread::sleep_for(std::chrono::microseconds((50 - i) * 20));
                order.push_back(i);
                --running;
                return i * i;
            }));
        }
        for (int i = 0; i < 50; ++i) EXPECT_EQ(results[i].get(), i * i);
    }
    ASSERT_EQ(order.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
    EXPECT_EQ(max_running.load(), 1);
}

TEST(SerialExecutor, DestructionRunsEverythingAlreadySubmitted) {
    std::atomic<int> done{0};
    std::future<void> last;
    {
        SerialExecutor ex;
        for (int i = 0; i < 20; ++i) {
            last = ex.submit([&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                ++done;
            });
        }
    }
    EXPECT_EQ(done.load(), 20);
    EXPECT_EQ(last.wait_for(std::chrono::seconds(0)), std::future_status::ready);
}

TEST(SerialExecutor, ATaskMaySubmitToAnotherExecutor) {
    // The capture path chains a finishing stage into a publishing stage this way.
    SerialExecutor second;
    std::mutex m;
    std::vector<int> seen;
    {
        SerialExecutor first;
        for (int i = 0; i < 10; ++i) {
            first.submit([&, i] {
                second.submit([&, i] {
                    std::lock_guard<std::mutex> lock(m);
                    seen.push_back(i);
                });
            });
        }
    }
    second.submit([] {}).wait();
    std::lock_guard<std::mutex> lock(m);
    ASSERT_EQ(seen.size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[i], i);
}
