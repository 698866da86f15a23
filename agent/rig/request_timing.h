// Issue 14: when a request is too old to act on, and what to say about the clock. Pure
// functions of the request's times, now, and the clock's NTP status (injected: unit tests
// pass both a synced and an unsynced one; the agent reads the kernel's).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/clock_sync.h"
#include "core/expected.h"

namespace photorig::rig {

// `expired` when now is past the request's expires_at (epoch ms).
Status check_not_expired(const std::optional<int64_t>& expires_at_ms, int64_t now_ms);

// `too_late` when capture_at lies more than `tolerance_ms` in the past.
Status check_not_too_late(const std::optional<int64_t>& capture_at_ms, int64_t now_ms,
                          int64_t tolerance_ms);

// The warnings of a capture request's response: `clock_unsynced` when it names a capture_at
// and the clock is not NTP-synchronised (rigs may then fire apart).
std::vector<Error> capture_warnings(const std::optional<int64_t>& capture_at_ms,
                                    const clock::SyncStatus& clock);

}  // namespace photorig::rig
