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
//   unknown_setting      set_setting: the camera has no setting of that name
//   bad_setting_value    set_setting: not one of the choices, outside the range, or refused
//   setting_read_only    set_setting: the camera marks that setting read-only
//   preview_unavailable  preview: no live view and no photo taken yet to show instead
//   (a sink factory's or sink's own error is passed through unchanged)
//
// Identity: a camera is its serial number. A worker pins the serial it first sees (or the
// one it is given); a different camera answering on the same port later is refused
// (camera_disconnected), and a USB camera is looked for on every USB port by its serial
// when its old port is gone (a replug renumbers it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/error_codes.h"
#include "core/expected.h"

namespace photorig::camera {

// The codes above, declared once in core for the camera module and the wire format.
namespace codes = photorig::codes;

struct CameraSpec {
    std::string port;    // "ptpip:127.0.0.1:P:P", "usb:001,004", or "" for the first detected
    std::string model;   // libgphoto2 model name, "" = detect ("PTP/IP Camera" for ptpip:)
    std::string serial;  // "" = whichever camera answers first (then pinned); else only this one
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
    // Every byte arrived, as many as announced; the worker then reads the camera's events
    // on (CaptureComplete, more files). A sink may start making the file durable here.
    virtual void complete() {}
};

// Called on the worker thread once per added file, in the order of the result vector.
using SinkFactory = std::function<Expected<std::unique_ptr<DownloadSink>>(const FileHeader&)>;

struct CapturedFile {
    FileHeader header;
    int64_t triggered_at_ms = 0;  // wall clock (epoch ms) when the trigger was sent
    int64_t triggered_at_us = 0;  // the same in microseconds, for the spread between cameras
    int64_t trigger_ms = 0;       // trigger sent -> this file announced by the camera
    int64_t download_ms = 0;      // this file's download into its sink
    // Where the capture's time went, in microseconds: the first file of a capture carries
    // the trigger call, the wait for the camera's events and the deletion from the card;
    // every file its own download (which includes its sink's writing and hashing).
    int64_t trigger_call_us = 0, event_wait_us = 0, download_us = 0, delete_us = 0;
    // First file only: the shot was handed on (answered after the next shot's trigger, its
    // CaptureComplete read among that shot's events; camera_worker.cpp).
    bool handed_on = false;
};

struct WorkerOptions {
    int capture_timeout_ms = 30000;  // trigger -> first file added
    int busy_retries = 3;            // extra trigger attempts on DeviceBusy
    int busy_backoff_ms = 200;       // doubles after each busy answer
    bool delete_after_download = true;
    int keepalive_interval_ms = 5000;  // idle event poll; reconnect attempts when disconnected
    int file_grace_ms = 300;  // after a file without CaptureComplete: wait this long for more
    int reconnect_backoff_max_ms = 30000;
    // Hostile or faulty cameras (issue 15): one trigger gives at most this many files, and
    // collecting them ends at capture_timeout_ms + file_grace_ms * max_files_per_shot after
    // the trigger (too_many_files otherwise), so a flood of new-file events cannot hold a
    // capture open. A file over max_file_bytes (announced or sent) fails with file_too_large
    // before or while it is written; a camera thumbnail over max_thumbnail_bytes is dropped.
    int max_files_per_shot = 16;
    uint64_t max_file_bytes = uint64_t{2} << 30;
    size_t max_thumbnail_bytes = size_t{4} << 20;
    // Applied in order after every connect (presets); a failure is logged, not fatal.
    std::vector<std::pair<std::string, std::string>> settings;
    // "" = leave as is; "card" or "ram": set the camera's capturetarget setting where it
    // has one (Canon, Nikon); generic PTP cameras store on their card either way.
    std::string capture_target;
    // Keep the camera's thumbnail of the last JPEG (one GetThumb per capture, left out when
    // the next capture is already queued) so preview() has a picture on cameras without
    // live view.
    bool keep_last_thumbnail = true;
    // After this many failed re-opens in a row a USB camera is reset (USBDEVFS_RESET); if the
    // next re-open fails too it is reported stuck (CameraHealth). <= 0: never.
    int stuck_after_reinits = 3;
    std::string usb_root = "/dev/bus/usb";  // where usb:BBB,DDD nodes live (tests: a temp dir)
    // SCHED_FIFO priority of this camera's thread from a timed trigger's wake-up until the
    // command has left (core/trigger_window.h); 0: ordinary scheduling throughout.
    int trigger_priority = 0;
};

// How a camera is doing, for the service: polled, never pushed.
struct CameraHealth {
    int failed_reinits = 0;      // failed re-opens in a row (0 once connected)
    uint64_t stuck_reports = 0;  // times it was declared stuck; each one is reported once
    std::string usb_reset;       // outcome of the last reset ("done", "not a USB camera", ...)
    std::string last_error;      // the last re-open's error
};

// One node of the camera's settings tree (libgphoto2's widget tree).
struct Setting {
    std::string name, label;
    std::string type;   // window | section | text | range | toggle | radio | menu | button | date
    std::string value;  // current value as text ("" for window, section, button)
    std::vector<std::string> choices;   // radio, menu
    double min = 0, max = 0, step = 0;  // range
    bool read_only = false;
    std::vector<Setting> children;  // window, section
};

struct Preview {
    std::string jpeg;
    std::string source;  // "live_view" | "last_photo" (the camera's thumbnail of it)
    int64_t taken_at_ms = 0;
};

struct CaptureOptions {
    // Wall clock (epoch us) at which to send the trigger; 0 = at once. Lets several workers
    // (and several rigs) fire together: each waits on its own thread, so the spread is
    // wake-up jitter rather than the order the triggers were posted in.
    int64_t trigger_at_us = 0;
};

// Cameras libgphoto2 finds on USB (gp_abilities_list_detect); may be empty.
Expected<std::vector<CameraSpec>> detect_cameras();

// libgphoto2 formats a hex dump of every PTP data packet even when no log function takes it
// (gphoto_hexdump.cpp): photorig's own gp_log_data skips that unless told otherwise. True
// (a benchmark's stock-library run) hands every dump to libgphoto2's gp_log_data again.
void set_gphoto_hexdumps(bool wanted);
// Whether libgphoto2's drivers call photorig's gp_log_data (the executable exports it).
bool gphoto_hexdumps_interposed();

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
    CameraHealth health() const;
    // How long the worker thread has been inside one libgphoto2 call (or one step of an
    // order) without coming back; 0 while it waits for work. For the systemd watchdog.
    int64_t busy_for_ms() const;

    // Queues a capture. The future holds one CapturedFile per file the camera added
    // (RAW+JPEG gives two), or the first error.
    std::future<Expected<std::vector<CapturedFile>>> capture(SinkFactory sink_factory,
                                                             CaptureOptions opts = {});

    // The whole settings tree, or the subtree `name` ("" = all).
    std::future<Expected<Setting>> settings(std::string name = "");
    // Validates against the tree, sets, and returns the value the camera reports back.
    std::future<Expected<std::string>> set_setting(std::string name, std::string value);
    // A live-view frame, or the thumbnail of the last photo where there is no live view.
    std::future<Expected<Preview>> preview();

  private:
    struct Impl;
    template <typename T>
    std::future<Expected<T>> post(const char* what, std::function<Expected<T>()> work);
    std::unique_ptr<Impl> impl_;
};

}  // namespace photorig::camera
