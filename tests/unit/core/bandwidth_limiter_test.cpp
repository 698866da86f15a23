// The upload link (core/bandwidth_limiter.h). The limiter: a lone sender that works between
// its bookings still gets the whole rate, an idle link earns no burst. The body gate: one
// holder at a time, waiters served in arrival order, a cancelled waiter leaves the queue at
// once and never blocks the others.
#include "core/bandwidth_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using photorig::BandwidthLimiter;
using photorig::LinkGate;
using namespace std::chrono_literals;

namespace {
// Polls `pred` every millisecond for up to 5 s.
template <typename Pred>
bool eventually(Pred pred) {
    for (int i = 0; i < 5000; ++i) {
        if (pred()) return true;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}
}  // namespace

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(BandwidthLimiter, ALoneSenderWorkingBetweenBookingsKeepsTheWholeRate) {
    BandwidthLimiter limiter(1000 * 1000);  // 1 MB/s
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(limiter.acquire(50 * 1000));  // 50 ms of the link
        std::this_thread::sleep_for(3ms);         // reading, hashing, writing the step
    }
    // 1.0 s of bytes; without the follow-on rule each step's work added 3 ms (1.06 s).
    double secs = seconds_since(t0);
    EXPECT_GE(secs, 0.98);
    EXPECT_LT(secs, 1.045);
}

TEST(BandwidthLimiter, AnIdleLinkEarnsNoBurst) {
    BandwidthLimiter limiter(1000 * 1000);
    ASSERT_TRUE(limiter.acquire(10 * 1000));
    std::this_thread::sleep_for(200ms);  // idle, far longer than kContinuousUs
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(limiter.acquire(100 * 1000));
    EXPECT_GE(seconds_since(t0), 0.095) << "100 KB after a pause still take 100 ms";
}

TEST(LinkGate, OneHolderAtATime) {
    LinkGate gate;
    std::atomic<int> inside{0}, most{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 20; ++i) {
                LinkGate::Turn turn(&gate);
                ASSERT_TRUE(turn.hold(nullptr));
                int now = ++inside;
                most = std::max(most.load(), now);
                std::this_thread::sleep_for(200us);
                --inside;
            }  // the destructor gives the turn back
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(most.load(), 1);
    EXPECT_FALSE(gate.busy());
    EXPECT_EQ(gate.waiting(), 0u);
}

TEST(LinkGate, WaitersAreServedInArrivalOrder) {
    LinkGate gate;
    LinkGate::Turn first(&gate);
    ASSERT_TRUE(first.hold(nullptr));
    std::mutex m;
    std::vector<int> order;
    std::vector<std::thread> waiters;
    for (int i = 0; i < 4; ++i) {
        waiters.emplace_back([&, i] {
            LinkGate::Turn turn(&gate);
            ASSERT_TRUE(turn.hold(nullptr));
            std::lock_guard<std::mutex> lock(m);
            order.push_back(i);
        });
        // The next waiter arrives only once this one is queued.
        ASSERT_TRUE(eventually([&] { return gate.waiting() == static_cast<size_t>(i + 1); }));
    }
    first.release();
    for (auto& t : waiters) t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(LinkGate, HoldIsHeldAcrossRequestsUntilReleased) {
    LinkGate gate;
    LinkGate::Turn turn(&gate);
    ASSERT_TRUE(turn.hold(nullptr));
    ASSERT_TRUE(turn.hold(nullptr)) << "a second body request of the same file goes on at once";
    EXPECT_TRUE(turn.held());
    EXPECT_TRUE(gate.busy());
    turn.release();
    turn.release();  // harmless
    EXPECT_FALSE(gate.busy());

    LinkGate::Turn no_gate;  // parallel bodies: always granted, nothing to give back
    EXPECT_TRUE(no_gate.hold(nullptr));
}

TEST(LinkGate, CancelEndsAWaitPromptlyAndTheNextWaiterStillGetsTheLink) {
    LinkGate gate;
    LinkGate::Turn holder(&gate);
    ASSERT_TRUE(holder.hold(nullptr));

    std::atomic<bool> cancel{false};
    std::atomic<int> cancelled_result{-1};
    std::thread cancelled([&] {
        LinkGate::Turn turn(&gate);
        cancelled_result = turn.hold(&cancel) ? 1 : 0;
        EXPECT_FALSE(turn.held());
    });
    ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }));
    std::atomic<bool> next_got_it{false};
    std::thread next([&] {
        LinkGate::Turn turn(&gate);
        next_got_it = turn.hold(nullptr);
    });
    ASSERT_TRUE(eventually([&] { return gate.waiting() == 2; }));

    auto t0 = std::chrono::steady_clock::now();
    cancel = true;
    cancelled.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "a cancel must not hang on the gate";
    EXPECT_EQ(cancelled_result.load(), 0);
    EXPECT_EQ(gate.waiting(), 1u) << "the cancelled waiter left the queue";

    holder.release();
    next.join();
    EXPECT_TRUE(next_got_it.load()) << "a cancelled waiter ahead must not block the next one";
    EXPECT_FALSE(gate.busy());
}

TEST(LinkGate, ACancelledHolderGivesTheLinkBackWhenItsTurnEnds) {
    LinkGate gate;
    std::atomic<bool> waiter_got_it{false};
    std::thread waiter;
    {
        LinkGate::Turn holder(&gate);
        ASSERT_TRUE(holder.hold(nullptr));
        waiter = std::thread([&] {
            LinkGate::Turn turn(&gate);
            waiter_got_it = turn.hold(nullptr);
        });
        ASSERT_TRUE(eventually([&] { return gate.waiting() == 1; }));
    }  // an upload that ends on an error path: the destructor releases
    waiter.join();
    EXPECT_TRUE(waiter_got_it.load());
}
