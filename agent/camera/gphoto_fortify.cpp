// A hostile camera's names must not crash rig-agent inside libgphoto2 2.5.30's PTP driver
// (camlibs/ptp2/library.c). On every ObjectAdded event (gp_camera_wait_for_event), and the
// same on ObjectInfoChanged, add_object_to_fs_and_path() fills a CameraFilePath
// {char name[128]; char folder[1024];}:
//  - strcpy(path->name, Filename): a camera name has up to 254 characters. Debian builds
//    with _FORTIFY_SOURCE, so this is __strcpy_chk(dest, src, 128), which aborts the whole
//    process ("buffer overflow detected") on a name of 128 bytes or more;
//  - get_folder_from_handle(path->folder): "/store_xxxxxxxx/", then per folder level
//    strcat(folder, name); strcat(folder, "/"), which gcc turned into strlen + stpcpy and a
//    two-byte store of "/\0" after the pointer stpcpy returns. Nothing checks that: folders
//    of 254 characters three levels deep overflow the heap ("double free or corruption").
//
// These definitions, exported from the executable (--export-dynamic-symbol, see
// CMakeLists.txt), take the place of glibc's for every caller in the process and behave
// exactly like glibc's, except for callers in libgphoto2's camera drivers:
//  - an over-long __strcpy_chk / __strncpy_chk copy is cut to the buffer (NUL-terminated)
//    instead of aborting. Anyone else still aborts (__chk_fail).
//  - a copy of 128 bytes' room from a camera driver is taken to be CameraFilePath.name
//    (its size in the public ABI), and its folder member, the 1024 bytes after it, is
//    remembered for the thread. stpcpy and strcat from a camera driver into that folder
//    stay inside it, and leave room for the "/\0" the caller stores after stpcpy's result.
// Every cut is counted for the calling thread, so the camera worker refuses that file
// (file_name_too_long) instead of using a cut name.
//
// Not covered: __stpcpy_chk overflows (fortified, so they abort rather than corrupt), and a
// camera whose folders name each other as parents (get_folder_from_handle recurses forever).
#undef _FORTIFY_SOURCE  // this file defines stpcpy and strcat itself
#include <dlfcn.h>
#include <gphoto2/gphoto2-camera.h>

#include <cstddef>
#include <cstring>

#include "camera/gphoto_session.h"

namespace photorig::camera::detail {
namespace {
static_assert(sizeof(CameraFilePath::name) == 128 && sizeof(CameraFilePath::folder) == 1024 &&
                  offsetof(CameraFilePath, folder) == sizeof(CameraFilePath::name),
              "libgphoto2's CameraFilePath layout changed: revisit gphoto_fortify.cpp");

thread_local unsigned long truncated_copies = 0;
// CameraFilePath.folder of the last path a camera driver on this thread filled in.
thread_local char* folder_begin = nullptr;
thread_local char* folder_end = nullptr;

// True when `code` (a return address) lies in a libgphoto2 camera driver (camlibs are
// installed under .../libgphoto2/<version>/, e.g. ptp2.so; not libgphoto2.so itself).
bool called_from_camlib(const void* code) {
    Dl_info info{};
    if (dladdr(code, &info) == 0 || !info.dli_fname) return false;
    return std::strstr(info.dli_fname, "/libgphoto2/") != nullptr;
}

// A camera driver's copy into `dest` of `destlen` bytes: CameraFilePath.name?
void note_driver_copy(char* dest, size_t destlen) {
    if (destlen != sizeof(CameraFilePath::name)) return;
    folder_begin = dest + offsetof(CameraFilePath, folder);
    folder_end = folder_begin + sizeof(CameraFilePath::folder);
}

// Copies the first `size - 1` bytes of `src` to `dest` and terminates it; counts the cut.
char* copy_truncated(char* dest, const char* src, size_t size) {
    std::memcpy(dest, src, size - 1);
    dest[size - 1] = '\0';
    ++truncated_copies;
    return dest;
}

bool in_driver_folder(const char* p) {
    return folder_begin && p >= folder_begin && p < folder_end;
}

// stpcpy(dest, src) into the remembered folder, which ends at folder_end: copies what fits
// with two bytes to spare and returns where the caller will store "/\0" (never past the
// folder, even if that overwrites the copy's end: the file is refused anyway).
char* bounded_folder_stpcpy(char* dest, const char* src, size_t len) {
    char* last_pair = folder_end - 2;  // the caller's "/\0" goes here at the latest
    if (dest + len <= last_pair) {
        std::memcpy(dest, src, len + 1);
        return dest + len;
    }
    ++truncated_copies;
    if (dest < last_pair) {
        size_t fits = static_cast<size_t>(last_pair - dest);
        std::memcpy(dest, src, fits);
    }
    *last_pair = '\0';
    return last_pair;
}
}  // namespace

unsigned long gphoto_truncated_copies() {
    return truncated_copies;
}

}  // namespace photorig::camera::detail

namespace fortify = photorig::camera::detail;

extern "C" {
[[noreturn]] void __chk_fail(void);  // glibc's: "*** buffer overflow detected ***", abort

char* __strcpy_chk(char* dest, const char* src, size_t destlen) {
    const bool driver = fortify::called_from_camlib(__builtin_return_address(0));
    if (driver) fortify::note_driver_copy(dest, destlen);
    size_t len = std::strlen(src);
    if (len < destlen) return static_cast<char*>(std::memcpy(dest, src, len + 1));
    if (destlen == 0 || !driver) __chk_fail();
    return fortify::copy_truncated(dest, src, destlen);
}

char* __strncpy_chk(char* dest, const char* src, size_t n, size_t destlen) {
    if (n > destlen) __chk_fail();
    if (fortify::called_from_camlib(__builtin_return_address(0)))
        fortify::note_driver_copy(dest, destlen);
    return std::strncpy(dest, src, n);
}

char* __strcat_chk(char* dest, const char* src, size_t destlen) {
    size_t have = strnlen(dest, destlen);
    if (have == destlen) __chk_fail();  // dest itself is not terminated within its size
    size_t len = std::strlen(src);
    if (len < destlen - have) {
        std::memcpy(dest + have, src, len + 1);
        return dest;
    }
    if (!fortify::called_from_camlib(__builtin_return_address(0))) __chk_fail();
    fortify::copy_truncated(dest + have, src, destlen - have);
    return dest;
}

char* stpcpy(char* dest, const char* src) noexcept {
    size_t len = std::strlen(src);
    if (fortify::in_driver_folder(dest) &&
        fortify::called_from_camlib(__builtin_return_address(0))) {
        return fortify::bounded_folder_stpcpy(dest, src, len);
    }
    return static_cast<char*>(std::memcpy(dest, src, len + 1)) + len;
}

char* strcat(char* dest, const char* src) noexcept {
    if (fortify::in_driver_folder(dest) &&
        fortify::called_from_camlib(__builtin_return_address(0))) {
        size_t have = strnlen(dest, static_cast<size_t>(fortify::folder_end - dest));
        fortify::bounded_folder_stpcpy(dest + have, src, std::strlen(src));
        return dest;
    }
    size_t have = std::strlen(dest);
    std::memcpy(dest + have, src, std::strlen(src) + 1);
    return dest;
}
}
