// Is the system clock disciplined by NTP (chrony, systemd-timesyncd, ntpd)? Read from the
// kernel with ntp_adjtime(), which every NTP daemon on Linux keeps up to date. Rigs that
// fire together at one capture_at need their clocks in step; the agent reports this in
// base/state and warns (clock_unsynced) on a capture_at request when it is not synced.
#pragma once

#include <cstdint>
#include <functional>

namespace photorig::clock {

struct SyncStatus {
    // Not STA_UNSYNC and ntp_adjtime() did not answer TIME_ERROR.
    bool synced = false;
    int64_t est_error_us = 0;  // the kernel's estimated error (timex.esterror)
    int64_t max_error_us = 0;  // its maximum error (timex.maxerror)
};

// The kernel's view now. A failing call reads as unsynced with zero errors.
SyncStatus read_sync_status();

// Where the rig reads its clock's status: the kernel by default, a fake in unit tests.
using SyncSource = std::function<SyncStatus()>;

}  // namespace photorig::clock
