// One upload link's bandwidth budget, shared by every transfer that uses the link.
//
// Why shared and not split: `upload.bandwidth_limit_bytes_per_s` is what the operator lets
// the rig use of its uplink. Dividing it by the concurrency would leave a lone upload (the
// common case once a backlog drains) with half the link; one bucket gives each transfer
// what the others leave, and their sum never exceeds the limit.
//
// A pacing token bucket without credit for idle time: each caller books its bytes on the
// link after everything already booked and waits until its slot has passed, so a burst after
// a quiet minute does not exceed the rate either. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace photorig {

class BandwidthLimiter {
  public:
    explicit BandwidthLimiter(uint64_t bytes_per_s) : rate_(bytes_per_s) {}

    uint64_t rate() const { return rate_; }

    // How many bytes to book at a time so one wait lasts about 1/8 s at this rate: small
    // steps keep several transfers interleaved and a cancel prompt.
    size_t step(size_t max_step) const;

    // Waits until `bytes` may leave. Returns false if `cancel` became true while waiting
    // (checked every 50 ms); the booking is kept, which only delays later callers a little.
    bool acquire(uint64_t bytes, const std::atomic<bool>* cancel = nullptr);

  private:
    const uint64_t rate_;
    std::mutex mutex_;
    int64_t next_free_us_ = 0;  // monotonic µs when the link is next idle
};

}  // namespace photorig
