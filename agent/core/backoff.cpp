#include "core/backoff.h"

#include <algorithm>
#include <random>

namespace photorig {

int64_t uniform_ms(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

int64_t backoff_delay_ms(const BackoffPolicy& policy, int attempt) {
    const int64_t initial = std::max<int64_t>(policy.initial_ms, 0);
    const int64_t cap = std::max(policy.max_ms, initial);
    // Doubling past 2^30 overflows nothing but means nothing either: the cap has long won.
    const int shift = std::clamp(attempt - 1, 0, 30);
    int64_t delay = initial;
    for (int i = 0; i < shift && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
    if (policy.jitter == BackoffPolicy::Jitter::half) return uniform_ms(delay / 2, delay);
    return delay;
}

int64_t Backoff::current_cap_ms() const {
    BackoffPolicy exact = policy_;
    exact.jitter = BackoffPolicy::Jitter::none;
    return backoff_delay_ms(exact, failures_ + 1);
}

}  // namespace photorig
