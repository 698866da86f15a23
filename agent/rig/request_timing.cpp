#include "rig/request_timing.h"

#include <string>

#include "core/error_codes.h"

namespace photorig::rig {

Status check_not_expired(const std::optional<int64_t>& expires_at_ms, int64_t now_ms) {
    if (!expires_at_ms || now_ms <= *expires_at_ms) return ok();
    return make_error(codes::expired, "the request expired " +
                                          std::to_string(now_ms - *expires_at_ms) +
                                          " ms before the agent read it (expires_at); not done");
}

Status check_not_too_late(const std::optional<int64_t>& capture_at_ms, int64_t now_ms,
                          int64_t tolerance_ms) {
    if (!capture_at_ms || now_ms - *capture_at_ms <= tolerance_ms) return ok();
    return make_error(codes::too_late,
                      "capture_at was " + std::to_string(now_ms - *capture_at_ms) +
                          " ms in the past when the agent read the request (tolerance " +
                          std::to_string(tolerance_ms) +
                          " ms, capture.late_tolerance_ms); not fired");
}

std::vector<Error> capture_warnings(const std::optional<int64_t>& capture_at_ms,
                                    const clock::SyncStatus& clock) {
    std::vector<Error> warnings;
    if (capture_at_ms && !clock.synced) {
        warnings.push_back(
            make_error(codes::clock_unsynced,
                       "the rig's clock is not NTP-synchronised (max error " +
                           std::to_string(clock.max_error_us) +
                           " us): capture_at fired by this clock may be apart from other rigs"));
    }
    return warnings;
}

}  // namespace photorig::rig
