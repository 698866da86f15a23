// USB cameras outside libgphoto2: which processes hold a camera (gvfs's gphoto2 volume
// monitor claims every PTP camera a desktop session sees, and then ours cannot: "Could not
// claim the USB device"), resetting a camera that stopped answering (USBDEVFS_RESET on its
// /dev/bus/usb node), and the decision when to reset it and when to call it stuck.
//
// The roots (/dev/bus/usb, /proc) are parameters so tests can point them at a temp dir.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace photorig::camera {

constexpr const char* kUsbDeviceRoot = "/dev/bus/usb";
constexpr const char* kProcRoot = "/proc";

// "usb:001,004" -> {1, 4}; nullopt for "usb:", ptpip: and anything else.
std::optional<std::pair<int, int>> parse_usb_port(const std::string& port);
// "<root>/001/004".
std::string usb_device_path(const std::string& usb_root, int bus, int dev);

struct ProcessInfo {
    pid_t pid = 0;
    std::string name;  // /proc/<pid>/comm (15 characters at most)
};

// Processes with an open file descriptor on `path` (readlink of /proc/<pid>/fd/*). Only
// processes we may look into are seen: run as the same user or root.
std::vector<ProcessInfo> processes_holding(const std::string& path,
                                           const std::string& proc_root = kProcRoot);
// gvfs-gphoto2-volume-monitor and gvfsd-gphoto2 processes (by /proc/<pid>/comm).
std::vector<ProcessInfo> gvfs_gphoto_processes(const std::string& proc_root = kProcRoot);
bool is_gvfs_gphoto_name(const std::string& comm);

// One log line: who holds the camera (`holding`: they have its node open; else they merely
// run) and how to stop it.
std::string gvfs_advice(const std::vector<ProcessInfo>& processes, const std::string& port,
                        bool holding);

// For a camera that cannot be claimed or is about to be opened: the gvfs processes that
// hold its node (USB port known) or, failing that, any that run; "" when none.
std::string check_camera_holders(const std::string& port,
                                 const std::string& usb_root = kUsbDeviceRoot,
                                 const std::string& proc_root = kProcRoot);

// USBDEVFS_RESET on the camera's node: "done", "not a USB camera" (PTP/IP: nothing to
// reset), or "failed: <why>".
std::string reset_usb_camera(const std::string& port, const std::string& usb_root = kUsbDeviceRoot);

// When a camera that keeps failing to re-open is reset, and when it is declared stuck:
// after `after_reinits` failed re-opens in a row, one reset; if the next re-open fails too,
// stuck (reported once, until it connects again). after_reinits <= 0: never.
class StuckDetector {
  public:
    enum class Action { none, reset_usb, report_stuck };
    explicit StuckDetector(int after_reinits) : after_(after_reinits) {}
    Action on_reinit_failed();
    void on_connected() { failures_ = 0, reset_tried_ = false, reported_ = false; }
    int failed_reinits() const { return failures_; }
    bool stuck() const { return reported_; }

  private:
    int after_;
    int failures_ = 0;
    bool reset_tried_ = false, reported_ = false;
};

}  // namespace photorig::camera
