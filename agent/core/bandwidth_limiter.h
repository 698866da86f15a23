// One upload link, shared by every transfer that uses it: its bandwidth budget
// (BandwidthLimiter) and its body gate (LinkGate).
//
// Why shared and not split: `upload.bandwidth_limit_bytes_per_s` is what the operator lets
// the rig use of its uplink. Dividing it by the concurrency would leave a lone upload (the
// common case once a backlog drains) with half the link; one bucket gives each transfer
// what the others leave, and their sum never exceeds the limit.
//
// A pacing token bucket without credit for idle time: each caller books its bytes on the
// link after everything already booked and waits until its slot has passed, so a burst after
// a quiet minute does not exceed the rate either. A booking that comes at most
// kContinuousUs after the link's last one ended follows on from it, though: that gap is the
// sender's own work between two bookings (reading, hashing, writing a step; the hand-over
// from one body to the next), during which a real link would still be sending what is in
// its buffers. Without it a lone transfer reached only ~97% of the rate. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
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

    static constexpr int64_t kContinuousUs = 20000;

  private:
    const uint64_t rate_;
    std::mutex mutex_;
    int64_t next_free_us_ = 0;  // monotonic µs when the link is next idle
};

// At most one transfer sends its body bytes on the link at a time; the others do their
// per-file work meanwhile (connection set-up, folders, HEAD/PROPFIND, hashing, verifying,
// renaming, the journal). Why: when the link is the bottleneck, two bodies sharing it both
// finish late (each at half speed), so the first photo is safe only after two uploads'
// time; one after the other, it is safe after one, and the link stays as busy, because the
// next body starts the moment the previous one ends (its transfer is already set up).
//
// A transfer takes a Turn right before its first body byte and gives it back right after
// its last (before verifying): one Turn spans every request of a file (S3 parts, Drive
// chunks). Waiters are served in the order they arrived; jobs start oldest first, so bodies
// go oldest first too, except that a job still setting up never holds the link idle for
// a younger one that is ready. Thread-safe; `upload.parallel_bodies: true` (or concurrency
// 1, where it is moot) runs without one.
class LinkGate {
  public:
    // One transfer's use of the gate. Default-constructed (no gate): hold() is always
    // granted at once. Released by release() or the destructor, whatever path ends the upload.
    class Turn {
      public:
        Turn() = default;
        explicit Turn(LinkGate* gate) : gate_(gate) {}
        Turn(const Turn&) = delete;
        Turn& operator=(const Turn&) = delete;
        ~Turn() { release(); }

        // Waits until this transfer may send (at once if it already holds the link).
        // False if `cancel` became true while waiting (checked every 50 ms): nothing held.
        bool hold(const std::atomic<bool>* cancel);
        void release();
        bool held() const { return held_; }

      private:
        LinkGate* gate_ = nullptr;
        bool held_ = false;
    };

    // For tests and logs: transfers waiting for the link, and whether one is sending.
    size_t waiting() const;
    bool busy() const;

  private:
    bool enter(const std::atomic<bool>* cancel);
    void leave();

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool busy_ = false;
    uint64_t next_ticket_ = 0;
    std::deque<uint64_t> queue_;  // tickets of the waiters, in arrival order
};

}  // namespace photorig
