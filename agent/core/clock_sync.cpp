#include "core/clock_sync.h"

#include <sys/timex.h>

namespace photorig::clock {

SyncStatus read_sync_status() {
    struct timex tx {};
    tx.modes = 0;  // read only
    const int state = ntp_adjtime(&tx);
    SyncStatus s;
    if (state == -1) return s;
    s.synced = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
    s.est_error_us = static_cast<int64_t>(tx.esterror);
    s.max_error_us = static_cast<int64_t>(tx.maxerror);
    return s;
}

}  // namespace photorig::clock
