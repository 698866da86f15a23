// The trigger window on this thread: SCHED_FIFO while it is open (where this process may ask
// for it), the thread's own policy and timer slack back once it closes, and the absolute
// wall-clock sleep that ends its wait.
#include "core/trigger_window.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/prctl.h>

#include <thread>

#include "core/clock.h"

using namespace photorig;

namespace {
int policy_of_this_thread() {
    int policy = -1;
    sched_param param{};
    ::pthread_getschedparam(::pthread_self(), &policy, &param);
    return policy;
}
}  // namespace

TEST(TriggerWindow, RaisesToFifoWhilePermittedAndRestoresPolicyAndSlack) {
    // Runs on its own thread: a refusal is remembered process-wide, a raise must not leak.
    std::thread([] {
        ::prctl(PR_SET_TIMERSLACK, 50000, 0, 0, 0);
        ASSERT_EQ(policy_of_this_thread(), SCHED_OTHER);
        {
            trigger_window::Window window(4);
            // 1 ns as set, or 0: recent kernels give a realtime thread no slack at all.
            EXPECT_LE(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1);
            if (window.raised()) {
                int policy = -1;
                sched_param param{};
                ::pthread_getschedparam(::pthread_self(), &policy, &param);
                EXPECT_EQ(policy, SCHED_FIFO);
                EXPECT_EQ(param.sched_priority, 4);
                EXPECT_EQ(trigger_window::refusal(), "");
            } else {
                // No CAP_SYS_NICE and no RLIMIT_RTPRIO here: refused, and said why.
                EXPECT_NE(trigger_window::refusal().find("SCHED_FIFO priority 4 refused"),
                          std::string::npos)
                    << trigger_window::refusal();
                EXPECT_EQ(policy_of_this_thread(), SCHED_OTHER);
            }
        }
        EXPECT_EQ(policy_of_this_thread(), SCHED_OTHER);
        EXPECT_EQ(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000);
    }).join();
}

TEST(TriggerWindow, PriorityZeroOnlyTightensTheTimer) {
    std::thread([] {
        trigger_window::Window window(0);
        EXPECT_FALSE(window.raised());
        EXPECT_EQ(policy_of_this_thread(), SCHED_OTHER);
        EXPECT_EQ(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 1);
    }).join();
}

TEST(TriggerWindow, SleepsUntilTheWallClockInstantNotBefore) {
    for (int64_t ahead_us : {-1000, 0, 3000, 20000}) {
        const int64_t at_us = clock::now_us() + ahead_us;
        trigger_window::sleep_until_epoch_us(at_us);
        const int64_t late_us = clock::now_us() - at_us;
        EXPECT_GE(late_us, 0) << ahead_us;
        if (ahead_us > 0) {
            EXPECT_LT(late_us, 50000) << ahead_us;  // a loaded CI machine
        }
    }
}
