// libgphoto2 2.5.30's gp_log_data() (libgphoto2_port) formats a hex dump of the data it is
// given (up to 1 MiB, about 4.5 bytes of text per byte) before it hands the text to the log
// functions, whether any is registered or not, and the PTP/IP driver gives it every packet
// of every download. `perf record` on the pipeline benchmark put about half of rig-agent's
// user CPU in it during a burst, on a board whose cores the camera, broker and uploader
// share. Nothing here wants those dumps (the agent's hook, when debugging, takes GP_LOG_DEBUG
// and below, never GP_LOG_DATA), so this definition, exported from the executable
// (--export-dynamic-symbol, see CMakeLists.txt), takes the place of the library's: it does
// nothing unless set_gphoto_hexdumps(true), which hands the message on to libgphoto2's own.
#include <dlfcn.h>
#include <gphoto2/gphoto2-port-log.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

#include "camera/camera.h"

namespace photorig::camera {
namespace {
std::atomic<bool> hexdumps_wanted{false};

using LogDataFn = void (*)(const char*, const char*, unsigned int, const char*, ...);

LogDataFn library_log_data() {
    static const LogDataFn fn = reinterpret_cast<LogDataFn>(dlsym(RTLD_NEXT, "gp_log_data"));
    return fn;
}
}  // namespace

void set_gphoto_hexdumps(bool wanted) {
    hexdumps_wanted = wanted;
}

bool gphoto_hexdumps_interposed() {
    return reinterpret_cast<void*>(dlsym(RTLD_DEFAULT, "gp_log_data")) ==
           reinterpret_cast<void*>(&gp_log_data);
}

}  // namespace photorig::camera

extern "C" void gp_log_data(const char* domain, const char* data, unsigned int size,
                            const char* format, ...) {
    if (!photorig::camera::hexdumps_wanted.load(std::memory_order_relaxed)) return;
    auto forward = photorig::camera::library_log_data();
    if (!forward) return;
    char message[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(message, sizeof message, format, args);
    va_end(args);
    forward(domain, data, size, "%s", message);
}
