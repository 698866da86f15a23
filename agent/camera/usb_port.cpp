#include "camera/usb_port.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace photorig::camera {
namespace {

std::vector<pid_t> all_pids(const std::string& proc_root) {
    std::vector<pid_t> pids;
    DIR* dir = ::opendir(proc_root.c_str());
    if (!dir) return pids;
    while (dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid > 0 && end && *end == '\0') pids.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(dir);
    return pids;
}

std::string comm_of(const std::string& proc_root, pid_t pid) {
    std::ifstream in(proc_root + "/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(in, name);
    return name;
}

bool has_fd_on(const std::string& proc_root, pid_t pid, const std::string& path) {
    const std::string fd_dir = proc_root + "/" + std::to_string(pid) + "/fd";
    DIR* dir = ::opendir(fd_dir.c_str());
    if (!dir) return false;  // not ours to look into, or gone
    bool found = false;
    while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        char target[4096];
        ssize_t n = ::readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        if (path.compare(0, std::string::npos, target, static_cast<size_t>(n)) == 0) {
            found = true;
            break;
        }
    }
    ::closedir(dir);
    return found;
}

std::string names_of(const std::vector<ProcessInfo>& ps) {
    std::string s;
    for (const auto& p : ps)
        s += (s.empty() ? "" : ", ") + p.name + " (pid " + std::to_string(p.pid) + ")";
    return s;
}
}  // namespace

std::optional<std::pair<int, int>> parse_usb_port(const std::string& port) {
    int bus = 0, dev = 0;
    char tail = 0;
    if (std::sscanf(port.c_str(), "usb:%d,%d%c", &bus, &dev, &tail) != 2) return std::nullopt;
    if (bus <= 0 || dev <= 0 || bus > 999 || dev > 999) return std::nullopt;
    return std::make_pair(bus, dev);
}

std::string usb_device_path(const std::string& usb_root, int bus, int dev) {
    char tail[16];
    std::snprintf(tail, sizeof tail, "/%03d/%03d", bus, dev);
    return usb_root + tail;
}

bool is_gvfs_gphoto_name(const std::string& comm) {
    // comm is cut at 15 characters: "gvfs-gphoto2-vo", "gvfsd-gphoto2".
    return comm.rfind("gvfs-gphoto2", 0) == 0 || comm.rfind("gvfsd-gphoto2", 0) == 0;
}

std::vector<ProcessInfo> processes_holding(const std::string& path, const std::string& proc_root) {
    std::vector<ProcessInfo> holders;
    const pid_t self = ::getpid();
    for (pid_t pid : all_pids(proc_root)) {
        if (pid == self) continue;
        if (has_fd_on(proc_root, pid, path)) holders.push_back({pid, comm_of(proc_root, pid)});
    }
    return holders;
}

std::vector<ProcessInfo> gvfs_gphoto_processes(const std::string& proc_root) {
    std::vector<ProcessInfo> found;
    for (pid_t pid : all_pids(proc_root)) {
        std::string name = comm_of(proc_root, pid);
        if (is_gvfs_gphoto_name(name)) found.push_back({pid, name});
    }
    return found;
}

std::string gvfs_advice(const std::vector<ProcessInfo>& processes, const std::string& port,
                        bool holding) {
    const std::string camera = "camera " + (port.empty() ? std::string("auto") : port);
    return (holding ? camera + " is held by " + names_of(processes)
                    : "gvfs's gphoto2 monitor runs (" + names_of(processes) + "); " + camera +
                          " may be held by it") +
           ": gvfs claims every PTP camera a desktop session sees, and then rig-agent cannot. "
           "Fix: `systemctl --user mask --now gvfs-gphoto2-volume-monitor` (as the desktop "
           "user) and `pkill -f gvfs-gphoto2`, or for all users `chmod -x "
           "/usr/libexec/gvfs-gphoto2-volume-monitor` (README, \"Camera in use by gvfs\")";
}

std::string check_camera_holders(const std::string& port, const std::string& usb_root,
                                 const std::string& proc_root) {
    if (auto bus_dev = parse_usb_port(port)) {
        auto holders = processes_holding(usb_device_path(usb_root, bus_dev->first, bus_dev->second),
                                         proc_root);
        if (!holders.empty()) return gvfs_advice(holders, port, true);
    }
    auto gvfs = gvfs_gphoto_processes(proc_root);
    return gvfs.empty() ? std::string() : gvfs_advice(gvfs, port, false);
}

std::string reset_usb_camera(const std::string& port, const std::string& usb_root) {
    auto bus_dev = parse_usb_port(port);
    if (!bus_dev) return "not a USB camera";
    const std::string path = usb_device_path(usb_root, bus_dev->first, bus_dev->second);
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return "failed: open " + path + ": " + std::strerror(errno);
    int rc = ::ioctl(fd, USBDEVFS_RESET, 0);
    int err = errno;
    ::close(fd);
    if (rc < 0) return "failed: USBDEVFS_RESET " + path + ": " + std::strerror(err);
    return "done";
}

StuckDetector::Action StuckDetector::on_reinit_failed() {
    if (after_ <= 0) return Action::none;
    ++failures_;
    if (!reset_tried_ && failures_ >= after_) {
        reset_tried_ = true;
        return Action::reset_usb;
    }
    if (reset_tried_ && !reported_ && failures_ > after_) {
        reported_ = true;
        return Action::report_stuck;
    }
    return Action::none;
}

}  // namespace photorig::camera
