// libgphoto2 2.5.30's PTP driver copies the file name a camera gives in ObjectInfo (up to
// 254 characters) into CameraFilePath.name, a char[128], with strcpy: camlibs/ptp2/library.c,
// add_object_to_fs_and_path(), on every ObjectAdded event (gp_camera_wait_for_event), and
// the same on ObjectInfoChanged. Debian builds it with _FORTIFY_SOURCE, so that strcpy is
// __strcpy_chk(dest, src, 128), which aborts the whole process ("buffer overflow
// detected"): a camera naming a file with 128 bytes or more would kill rig-agent, and again
// on every capture. Folder paths are built the same way with strcat into char[1024].
//
// These definitions, exported from the executable (--export-dynamic-symbol, see
// CMakeLists.txt), take the place of glibc's for every caller in the process. A copy that
// fits behaves exactly like glibc's. A copy that does not fit aborts like glibc's
// (__chk_fail), unless the caller is one of libgphoto2's camera drivers: then what fits is
// copied, NUL-terminated, and the truncation is counted for the calling thread, so the
// camera worker can refuse that file (file_name_too_long) instead of using the cut name.
#include <dlfcn.h>

#include <cstring>

#include "camera/gphoto_session.h"

namespace photorig::camera::detail {
namespace {
thread_local unsigned long truncated_copies = 0;

// True when `code` (a return address) lies in a libgphoto2 camera driver (camlibs are
// installed under .../libgphoto2/<version>/, e.g. ptp2.so).
bool called_from_camlib(const void* code) {
    Dl_info info{};
    if (dladdr(code, &info) == 0 || !info.dli_fname) return false;
    return std::strstr(info.dli_fname, "/libgphoto2/") != nullptr;
}

// Copies the first `size - 1` bytes of `src` to `dest` and terminates it; counts the cut.
char* copy_truncated(char* dest, const char* src, size_t size) {
    std::memcpy(dest, src, size - 1);
    dest[size - 1] = '\0';
    ++truncated_copies;
    return dest;
}
}  // namespace

unsigned long gphoto_truncated_copies() {
    return truncated_copies;
}

}  // namespace photorig::camera::detail

extern "C" {
[[noreturn]] void __chk_fail(void);  // glibc's: "*** buffer overflow detected ***", abort

char* __strcpy_chk(char* dest, const char* src, size_t destlen) {
    size_t len = std::strlen(src);
    if (len < destlen) return static_cast<char*>(std::memcpy(dest, src, len + 1));
    if (destlen == 0 || !photorig::camera::detail::called_from_camlib(__builtin_return_address(0)))
        __chk_fail();
    return photorig::camera::detail::copy_truncated(dest, src, destlen);
}

char* __strcat_chk(char* dest, const char* src, size_t destlen) {
    size_t have = strnlen(dest, destlen);
    if (have == destlen) __chk_fail();  // dest itself is not terminated within its size
    size_t len = std::strlen(src);
    if (len < destlen - have) {
        std::memcpy(dest + have, src, len + 1);
        return dest;
    }
    if (!photorig::camera::detail::called_from_camlib(__builtin_return_address(0))) __chk_fail();
    photorig::camera::detail::copy_truncated(dest + have, src, destlen - have);
    return dest;
}
}
