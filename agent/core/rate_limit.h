// A token bucket: `rate_per_s` tokens a second, at most `burst` saved up. Used to bound
// how many requests a flooding client gets served, and how many refusals it gets answered.
// Not thread-safe: one owner thread.
#pragma once

#include <algorithm>
#include <cstdint>

namespace photorig {

class TokenBucket {
  public:
    TokenBucket(double rate_per_s, double burst)
        : rate_per_ms_(rate_per_s / 1000.0), burst_(burst), tokens_(burst) {}

    // Takes one token at monotonic time `now_ms`; false when none is left.
    bool take(int64_t now_ms) {
        if (last_ms_ >= 0 && now_ms > last_ms_)
            tokens_ = std::min(burst_, tokens_ + double(now_ms - last_ms_) * rate_per_ms_);
        if (last_ms_ < 0 || now_ms > last_ms_) last_ms_ = now_ms;
        if (tokens_ < 1.0) return false;
        tokens_ -= 1.0;
        return true;
    }

  private:
    double rate_per_ms_, burst_, tokens_;
    int64_t last_ms_ = -1;
};

}  // namespace photorig
