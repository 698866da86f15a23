// Internal to the camera module: one open libgphoto2 camera session, used by exactly one
// thread, and the mapping of libgphoto2 results onto photorig error codes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "camera/camera.h"
#include "core/expected.h"

namespace photorig::camera::detail {

// Maps a libgphoto2 result (plus the text libgphoto2 reported through the context) onto
// a stable code. `op` names what was attempted ("trigger", "download IMG_0001.JPG").
Error classify_gphoto_error(int gp_result, const std::string& context_text, const std::string& op);

// Whether the session must be closed and re-opened before the next use after this error:
// everything except camera_busy and camera_storage_full (a PTP/IP read timeout or an
// unexpected answer leaves the session out of step).
bool error_breaks_session(const Error& error);

enum class EventKind { timeout, file_added, folder_added, capture_complete, storage_full, other };

struct Event {
    EventKind kind = EventKind::timeout;
    std::string folder, name;  // file_added / folder_added
    std::string text;          // other: libgphoto2's description
    // file_added: libgphoto2 had to cut the camera's file name to fit its char[128]
    // (or the folder path its char[1024]; see gphoto_fortify.cpp): `name` is then not the
    // file's name and must not be used.
    bool name_truncated = false;
};

// How many over-long copies libgphoto2's camera drivers made on this thread, each cut to
// its buffer instead of aborting the process or overflowing it (gphoto_fortify.cpp).
unsigned long gphoto_truncated_copies();

class GphotoSession {
  public:
    // Connects (gp_camera_init). Serialised process-wide with every other init/exit.
    // With spec.serial set, a camera reporting another serial is closed again
    // (camera_disconnected), and a USB camera whose port is gone or empty is looked for on
    // every detected USB port no other session holds.
    static Expected<std::unique_ptr<GphotoSession>> open(const CameraSpec& spec);
    ~GphotoSession();  // gp_camera_exit + unref
    GphotoSession(const GphotoSession&) = delete;
    GphotoSession& operator=(const GphotoSession&) = delete;

    const CameraInfo& info() const { return info_; }

    Status trigger();
    Expected<Event> wait_event(int timeout_ms);
    Expected<FileHeader> file_info(const std::string& folder, const std::string& name);
    // Streams the file into `sink` (CameraFileHandler: no whole-file buffer). Returns bytes.
    // More than `max_bytes` fails with file_too_large as soon as they arrive: the transfer is
    // aborted (the session is then out of step: the caller re-opens it).
    Expected<uint64_t> download(const std::string& folder, const std::string& name,
                                DownloadSink& sink, uint64_t max_bytes);
    Status remove(const std::string& folder, const std::string& name);
    // The camera's own thumbnail of a file (PTP GetThumb on PTP cameras).
    Expected<std::string> thumbnail(const std::string& folder, const std::string& name);
    // One live-view frame; preview_unavailable where the driver has none (generic PTP).
    Expected<std::string> capture_preview();

    Expected<Setting> settings(const std::string& name);
    Expected<std::string> set_setting(const std::string& name, const std::string& value);

    struct Impl;

  private:
    static Expected<std::unique_ptr<GphotoSession>> open_port(const CameraSpec& spec);
    explicit GphotoSession(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
    CameraInfo info_;
};

}  // namespace photorig::camera::detail
