// Cameras through libgphoto2. One CameraWorker owns one camera session on its own thread;
// callers post capture orders and get a future back. Knows nothing of MQTT or JSON.
//
// A capture is gp_camera_trigger_capture, then a poll of gp_camera_wait_for_event under
// our own deadline (never gp_camera_capture: it can wait forever), then each added file is
// streamed into a DownloadSink the caller creates per file, then deleted from the camera.
//
// Error codes (Error::code) a caller may switch on:
//   camera_busy          the camera answered DeviceBusy more than busy_retries times
//   camera_disconnected  no session: I/O error, connection refused, device gone or claimed
//                        by another process; the worker re-opens it in the background
//   camera_storage_full  the camera's card is full (PTP StoreFull response or event)
//   timeout              no file was added within capture_timeout_ms, or the camera
//                        stopped answering mid-command (PTP/IP 2.5 s read timeout)
//   camera_error         anything else; the message carries libgphoto2's error text
//   (a sink factory's or sink's own error is passed through unchanged)
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.h"

namespace photorig::camera {

namespace codes {
inline constexpr const char* camera_busy = "camera_busy";
inline constexpr const char* camera_disconnected = "camera_disconnected";
inline constexpr const char* camera_storage_full = "camera_storage_full";
inline constexpr const char* timeout = "timeout";
inline constexpr const char* camera_error = "camera_error";
}  // namespace codes

struct CameraSpec {
    std::string port;   // "ptpip:127.0.0.1:P:P", "usb:001,004", or "" for the first detected
    std::string model;  // libgphoto2 model name, "" = detect ("PTP/IP Camera" for ptpip:)
};

struct CameraInfo {
    std::string model, manufacturer, serial, port, version;
};

struct FileHeader {
    std::string camera_folder;  // "/store_00010001/DCIM/100PHOTO"
    std::string camera_name;    // "IMG_0001.JPG"
    std::string mime;           // "image/jpeg"; "" if the camera did not say
    uint64_t size = 0;          // bytes, as the camera announced them
};

// Receives a file's bytes in order, in pieces, on the worker thread. Keep write() quick.
class DownloadSink {
public:
    virtual ~DownloadSink();
    virtual Status write(const char* data, size_t len) = 0;
};

// Called on the worker thread once per added file, in the order of the result vector.
using SinkFactory = std::function<Expected<std::unique_ptr<DownloadSink>>(const FileHeader&)>;

struct CapturedFile {
    FileHeader header;
    int64_t triggered_at_ms = 0;  // wall clock (epoch ms) when the trigger was sent
    int64_t trigger_ms = 0;       // trigger sent -> this file announced by the camera
    int64_t download_ms = 0;      // this file's download into its sink
};

struct WorkerOptions {
    int capture_timeout_ms = 30000;  // trigger -> first file added
    int busy_retries = 3;            // extra trigger attempts on DeviceBusy
    int busy_backoff_ms = 200;       // doubles after each busy answer
    bool delete_after_download = true;
    int keepalive_interval_ms = 5000;  // idle event poll; reconnect attempts when disconnected
    int file_grace_ms = 300;  // after a file without CaptureComplete: wait this long for more
    int reconnect_backoff_max_ms = 30000;
};

// Cameras libgphoto2 finds on USB (gp_abilities_list_detect); may be empty.
Expected<std::vector<CameraSpec>> detect_cameras();

class CameraWorker {
public:
    CameraWorker(CameraSpec spec, WorkerOptions opts);
    ~CameraWorker();  // stop()
    CameraWorker(const CameraWorker&) = delete;
    CameraWorker& operator=(const CameraWorker&) = delete;

    // Starts the thread and waits for its first connect attempt; returns that attempt's
    // error if any (the worker keeps retrying in the background either way).
    Status start();
    // Fails queued orders with camera_disconnected, closes the session, joins the thread.
    void stop();

    bool connected() const;
    CameraInfo info() const;  // filled after the first successful connect; port always set

    // Queues a capture. The future holds one CapturedFile per file the camera added
    // (RAW+JPEG gives two), or the first error.
    std::future<Expected<std::vector<CapturedFile>>> capture(SinkFactory sink_factory);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace photorig::camera
