#include "core/trigger_window.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace photorig::trigger_window {
namespace {
// Once refused (no RLIMIT_RTPRIO, no CAP_SYS_NICE) it stays refused: not asked again.
std::atomic<bool> refused{false};
std::mutex refusal_mutex;
std::string refusal_text;

void note_refusal(int err, int priority) {
    refused = true;
    std::lock_guard<std::mutex> lock(refusal_mutex);
    if (refusal_text.empty())
        refusal_text = "SCHED_FIFO priority " + std::to_string(priority) + " refused (" +
                       std::strerror(err) + ")";
}
}  // namespace

Window::Window(int priority) {
    old_slack_ns_ = ::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    ::prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);  // 1 ns: wake on time, not up to 50 us late
    if (priority <= 0 || refused) return;
    pthread_t self = ::pthread_self();
    if (::pthread_getschedparam(self, &old_policy_, &old_param_) != 0) return;
    sched_param fifo{};
    fifo.sched_priority = priority;
    int rc = ::pthread_setschedparam(self, SCHED_FIFO, &fifo);
    if (rc == 0) {
        raised_ = true;
    } else {
        note_refusal(rc, priority);
    }
}

Window::~Window() {
    if (raised_) ::pthread_setschedparam(::pthread_self(), old_policy_, &old_param_);
    if (old_slack_ns_ > 0) ::prctl(PR_SET_TIMERSLACK, old_slack_ns_, 0, 0, 0);
}

void sleep_until_epoch_us(int64_t at_us) {
    timespec at{};
    at.tv_sec = static_cast<time_t>(at_us / 1000000);
    at.tv_nsec = static_cast<long>(at_us % 1000000) * 1000;
    while (::clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
}

std::string refusal() {
    std::lock_guard<std::mutex> lock(refusal_mutex);
    return refusal_text;
}

}  // namespace photorig::trigger_window
