#pragma once
// The moment a timed trigger fires: from the wake-up at capture_at until the command has left.
// Every rig of a fleet (and every camera of a rig) wakes at the same instant; on a busy board
// a woken camera thread may wait behind uploads, brokers and the other cameras' threads for
// a CPU, and that wait is the trigger spread. For those few hundred microseconds the thread
// runs SCHED_FIFO (it preempts every ordinary thread) with no timer slack, and goes back to
// its own policy right after the trigger. Needs RLIMIT_RTPRIO >= priority (the packaged
// unit sets LimitRTPRIO) or CAP_SYS_NICE; without them the window only tightens the timer.
#include <sched.h>

#include <cstdint>
#include <string>

namespace photorig::trigger_window {

class Window {
  public:
    // priority 0: no SCHED_FIFO, only the timer slack.
    explicit Window(int priority);
    ~Window();
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;

    bool raised() const { return raised_; }

  private:
    bool raised_ = false;
    int old_policy_ = SCHED_OTHER;
    sched_param old_param_{};
    long old_slack_ns_ = -1;
};

// Sleeps until the wall-clock instant `at_us` (epoch us) in one absolute sleep on
// CLOCK_REALTIME, so a clock step while asleep is followed.
void sleep_until_epoch_us(int64_t at_us);

// Why SCHED_FIFO was refused the first time it was ("" until then): said once in the log.
std::string refusal();

}  // namespace photorig::trigger_window
