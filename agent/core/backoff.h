// Exponential backoff with a cap and optional jitter: the one policy behind every retry
// loop in photorig (broker reconnects, camera re-opens, spool re-offers, upload retries,
// Drive requests). Jitter keeps many clients that lost the same peer from coming back in
// lock-step.
#pragma once

#include <cstdint>

namespace photorig {

struct BackoffPolicy {
    int64_t initial_ms = 1000;
    int64_t max_ms = 30000;
    // none: exactly initial * 2^(n-1), capped; half: a uniform draw from [d/2, d] of that.
    enum class Jitter { none, half } jitter = Jitter::half;
};

// The wait before retry number `attempt` (1 = the first retry) under `policy`.
int64_t backoff_delay_ms(const BackoffPolicy& policy, int attempt);

// A uniform draw from [lo, hi] (hi < lo gives lo), from one per-thread generator.
int64_t uniform_ms(int64_t lo, int64_t hi);

// The stateful form, for loops that count their own failures.
class Backoff {
  public:
    explicit Backoff(BackoffPolicy policy) : policy_(policy) {}

    // Counts one more failure and returns the wait before the next attempt.
    int64_t next_delay_ms() { return backoff_delay_ms(policy_, ++failures_); }
    // The un-jittered delay the next failure will start from (for log lines).
    int64_t current_cap_ms() const;
    int failures() const { return failures_; }
    void reset() { failures_ = 0; }
    const BackoffPolicy& policy() const { return policy_; }

  private:
    BackoffPolicy policy_;
    int failures_ = 0;
};

}  // namespace photorig
