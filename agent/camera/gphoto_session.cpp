#include "camera/gphoto_session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gphoto2/gphoto2.h>
#include <libintl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

#include "camera/gphoto_impl.h"
#include "core/log.h"
#include "core/text.h"

#if defined(__SANITIZE_ADDRESS__)
#define PHOTORIG_CAMERA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PHOTORIG_CAMERA_ASAN 1
#endif
#endif

#ifdef PHOTORIG_CAMERA_ASAN
#include <dlfcn.h>
// Leaks inside libgphoto2 2.5.30, not ours (sanitizer builds only):
//  - the usb1 port driver drops libusb_get_device_list's array when no USB device exists
//    (8 bytes per port-list load, ~2500 small blocks per USB detection);
//  - ptp2's camera_init returns early when the PTP/IP connect fails and never frees its
//    PTPParams and two iconv descriptors (~66 KB per failed attempt; open() avoids most
//    by probing the TCP port first).
// libgphoto2 dlcloses drivers before LeakSanitizer reports, which leaves those stacks
// unnamed, so pin_driver() keeps them loaded in sanitizer builds for the names to match.
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libusb_get_device_list\nleak:usb1.so\nleak:ptp2.so\n";
}
#endif

namespace photorig::camera {

DownloadSink::~DownloadSink() = default;

namespace detail {

// libgphoto2's ptp_ptpip_disconnect() (run by camera_exit) also closes params->jpgfd, which
// only Fuji PTP/IP sets: for every other camera it is 0, so it closes descriptor 0 (open
// upstream as libgphoto2 PR #1287). Once 0 is free the next open() in any thread gets it (a
// spool file, a socket) and the next camera exit closes that: CI saw a photo's fsync fail
// with EINVAL because a socket had taken the spool file's number. So 0 is kept holding
// /dev/null, at start-up and right after every exit (under the globals lock, so no other
// camera closes it meanwhile). Another thread's open() between libgphoto2's close and ours
// can still win the number: the window is microseconds, not the whole session.
void keep_fd0_occupied() {
    if (::fcntl(0, F_GETFD) != -1 || errno != EBADF) return;
    int fd = ::open("/dev/null", O_RDWR);  // the lowest free number: 0, unless taken meanwhile
    if (fd > 0) ::close(fd);
}

Globals& globals() {
    static Globals* g = new Globals;  // never freed: cameras may close during static destruction
    return *g;
}

std::string gp_text(int rc) {
    const char* s = gp_result_as_string(rc);
    return s ? s : "unknown error";
}

namespace {
constexpr const char* kGphotoTextDomain = "libgphoto2-6";  // GETTEXT_PACKAGE_LIBGPHOTO2

void gphoto_log(GPLogLevel level, const char* domain, const char* str, void*) {
    if (level == GP_LOG_ERROR) {
        LOG_DEBUG("gphoto2", "[error] " << (domain ? domain : "") << ": " << (str ? str : ""));
    } else {
        LOG_DEBUG("gphoto2", (domain ? domain : "") << ": " << (str ? str : ""));
    }
}

// `path` as libgphoto2 stores it: a camlib's without ".so".
void pin_driver(const std::string& path) {
#ifdef PHOTORIG_CAMERA_ASAN
    if (path.empty()) return;
    if (!dlopen(path.c_str(), RTLD_NOW | RTLD_NODELETE))
        (void)dlopen((path + ".so").c_str(), RTLD_NOW | RTLD_NODELETE);
#else
    (void)path;
#endif
}

// Caller holds globals().mutex.
Status ensure_lists_locked(GPContext* context) {
    Globals& g = globals();
    if (!g.log_hooked) {
        g.log_hooked = true;
        // Only when debugging: with a hook registered libgphoto2 formats every message.
        if (log::level() == log::Level::debug) gp_log_add_func(GP_LOG_DEBUG, gphoto_log, nullptr);
        LOG_DEBUG("camera", "libgphoto2's packet hex dumps: "
                                << (gphoto_hexdumps_interposed() ? "skipped" : "formatted"));
    }
    if (!g.ports) {
        pin_driver("libusb-1.0.so.0");
#ifdef PHOTORIG_GPHOTO2_IOLIB_DIR
        pin_driver(std::string(PHOTORIG_GPHOTO2_IOLIB_DIR) + "/usb1.so");
#endif
#if defined(PHOTORIG_CAMERA_ASAN) && defined(PHOTORIG_GPHOTO2_CAMLIB_DIR)
        // Loading the abilities list opens and closes every camera driver; the libraries
        // under some of them (libgd, fontconfig, libxml2) allocate when loaded and are gone
        // at exit, so LeakSanitizer reports those blocks from an unnamed module: keep every
        // driver loaded.
        std::error_code ec;
        for (const auto& entry :
             std::filesystem::directory_iterator(PHOTORIG_GPHOTO2_CAMLIB_DIR, ec))
            if (entry.path().extension() == ".so") pin_driver(entry.path().string());
#endif
    }
    if (!g.abilities) {
        CameraAbilitiesList* al = nullptr;
        gp_abilities_list_new(&al);
        int rc = gp_abilities_list_load(al, context);
        if (rc < GP_OK) {
            gp_abilities_list_free(al);
            return classify_gphoto_error(rc, "", "load camera drivers");
        }
        g.abilities = al;
    }
    if (!g.ports) {
        GPPortInfoList* il = nullptr;
        gp_port_info_list_new(&il);
        int rc = gp_port_info_list_load(il);
        if (rc < GP_OK) {
            gp_port_info_list_free(il);
            return classify_gphoto_error(rc, "", "load port drivers");
        }
        g.ports = il;
    }
    return ok();
}

// Caller holds globals().mutex. USB cameras only: the port list also holds every ptpip:
// path looked up so far, and disk: entries are mass-storage devices that cannot capture.
Expected<std::vector<CameraSpec>> detect_locked(GPContext* context) {
    Globals& g = globals();
    if (auto st = ensure_lists_locked(context); !st) return st.error();
    CameraList* list = nullptr;
    gp_list_new(&list);
    int rc = gp_abilities_list_detect(g.abilities, g.ports, list, context);
    if (rc < GP_OK) {
        gp_list_free(list);
        return classify_gphoto_error(rc, "", "detect cameras");
    }
    std::vector<CameraSpec> specs;
    for (int i = 0; i < gp_list_count(list); ++i) {
        const char* name = nullptr;
        const char* value = nullptr;
        gp_list_get_name(list, i, &name);
        gp_list_get_value(list, i, &value);
        std::string port = value ? value : "";
        if (port.rfind("usb:", 0) != 0 || port == "usb:") continue;
        specs.push_back(CameraSpec{port, name ? name : "", ""});
    }
    gp_list_free(list);
    return specs;
}

bool contains(const std::string& haystack, const char* needle) {
    return !haystack.empty() && haystack.find(needle) != std::string::npos;
}

bool is_store_full_text(const std::string& text) {
    if (contains(text, "PTP Store Full") || contains(text, "ran full")) return true;
    // libgphoto2 reports translated texts; compare with the translation it would use.
    const char* translated = dgettext(kGphotoTextDomain, "PTP Store Full");
    return translated && contains(text, translated);
}

// Whether anything listens on a ptpip: port. A failed gp_camera_init leaks ~66 KB in
// libgphoto2 2.5.30 (see above); a camera that is off would cost that on every reconnect
// attempt, so look before leaping. Returns an error for refused / unreachable / bad ports.
Status probe_ptpip(const std::string& port) {
    // ptpip:HOST[:CMDPORT[:EVENTPORT]]
    std::string rest = port.substr(6);
    std::string host = rest.substr(0, rest.find(':'));
    int cmd_port = 15740;
    if (auto colon = rest.find(':'); colon != std::string::npos) {
        cmd_port = std::atoi(rest.c_str() + colon + 1);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(cmd_port));
    if (cmd_port <= 0 || cmd_port > 65535 ||
        inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        return Error(codes::camera_error,
                     "bad PTP/IP port '" + port + "' (want ptpip:IPV4:PORT:PORT)");
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error(codes::camera_error, std::string("socket: ") + std::strerror(errno));
    int err = 0;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int n = ::poll(&p, 1, 2500);  // libgphoto2's own PTP/IP connect timeout
            if (n == 1) {
                socklen_t len = sizeof err;
                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            } else {
                err = ETIMEDOUT;
            }
        }
    }
    ::close(fd);
    if (err != 0) {
        return Error(codes::camera_disconnected, "connect " + port + ": " + std::strerror(err));
    }
    return ok();
}

// "usb:BBB,DDD" names a device node; when it is gone the camera was unplugged (or
// renumbered by a replug), and libgphoto2 need not be asked.
Status probe_usb(const std::string& port) {
    unsigned bus = 0, dev = 0;
    if (std::sscanf(port.c_str(), "usb:%u,%u", &bus, &dev) != 2) return ok();
    struct stat st;
    if (::stat("/dev/bus/usb", &st) != 0) return ok();  // no usbfs view here: let libgphoto2 decide
    char node[64];
    std::snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", bus, dev);
    if (::stat(node, &st) != 0)
        return Error(codes::camera_disconnected, "no USB device at " + port + " (" + node + ")");
    return ok();
}
}  // namespace

Error classify_gphoto_error(int rc, const std::string& context_text, const std::string& op) {
    std::string message = op + ": " + gp_text(rc) + " (" + std::to_string(rc) + ")";
    if (!context_text.empty() && context_text != gp_text(rc)) message += ": " + context_text;
    switch (rc) {
        case GP_ERROR_CAMERA_BUSY:
            return Error(codes::camera_busy, message);
        case GP_ERROR_NO_SPACE:
            return Error(codes::camera_storage_full, message);
        case GP_ERROR_TIMEOUT:
            return Error(codes::timeout, message + " (the camera stopped answering)");
        case GP_ERROR_IO_USB_CLAIM:
            return Error(
                codes::camera_disconnected,
                message + " (another process holds the camera, often gvfs-gphoto2-volume-monitor)");
        case GP_ERROR_IO:
        case GP_ERROR_IO_INIT:
        case GP_ERROR_IO_READ:
        case GP_ERROR_IO_WRITE:
        case GP_ERROR_IO_UPDATE:
        case GP_ERROR_IO_USB_CLEAR_HALT:
        case GP_ERROR_IO_USB_FIND:
        case GP_ERROR_IO_LOCK:
        case GP_ERROR_HAL:
            return Error(codes::camera_disconnected, message);
        default:
            break;
    }
    if (is_store_full_text(context_text)) return Error(codes::camera_storage_full, message);
    return Error(codes::camera_error, message);
}

bool error_breaks_session(const Error& error) {
    return error.code == codes::camera_disconnected || error.code == codes::timeout ||
           error.code == codes::camera_error ||
           // An aborted transfer, or a camera still announcing files: re-open to resync.
           error.code == codes::file_too_large || error.code == codes::too_many_files ||
           // libgphoto2 keeps the cut name in its file list: start again from the camera's.
           error.code == codes::file_name_too_long;
}

namespace {
// "  Serial Number: X\n" from the summary, for drivers without the status config.
std::string summary_field(const std::string& summary, const std::string& key) {
    auto pos = summary.find(key + ":");
    if (pos == std::string::npos) return "";
    pos += key.size() + 1;
    auto end = summary.find('\n', pos);
    std::string v = summary.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    auto b = v.find_first_not_of(" \t");
    auto e = v.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
}

// What the camera says it is: the status configs first, the summary text for drivers
// without them; `model` (what libgphoto2 was told) when the camera names none.
CameraInfo read_camera_info(GphotoSession::Impl& impl, const std::string& port,
                            const std::string& model) {
    CameraInfo info;
    info.port = port;
    info.serial = impl.text_config("serialnumber");
    info.manufacturer = impl.text_config("manufacturer");
    info.model = impl.text_config("cameramodel");
    info.version = impl.text_config("deviceversion");
    if (info.serial.empty() || info.serial == "None" || info.model.empty()) {
        CameraText text;
        std::memset(&text, 0, sizeof text);
        if (gp_camera_get_summary(impl.camera, &text, impl.context) == GP_OK) {
            std::string summary(text.text, strnlen(text.text, sizeof text.text));
            if (info.serial.empty() || info.serial == "None")
                info.serial = summary_field(summary, "Serial Number");
            if (info.manufacturer.empty())
                info.manufacturer = summary_field(summary, "Manufacturer");
            if (info.model.empty()) info.model = summary_field(summary, "Model");
            if (info.version.empty()) info.version = summary_field(summary, "Version");
        }
    }
    if (info.serial == "None") info.serial.clear();
    if (info.model.empty()) info.model = model;
    // The camera's firmware chose these bytes; they reach JSON, logs and topic names.
    for (std::string* s : {&info.serial, &info.manufacturer, &info.model, &info.version})
        *s = text::valid_utf8(*s);
    return info;
}
}  // namespace

GphotoSession::GphotoSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GphotoSession::~GphotoSession() = default;

Expected<std::unique_ptr<GphotoSession>> GphotoSession::open(const CameraSpec& spec) {
    const bool usb_search =
        !spec.serial.empty() && (spec.port.empty() || spec.port.rfind("usb:", 0) == 0);
    if (!usb_search) {
        auto session = open_port(spec);
        if (session && !spec.serial.empty() && (*session)->info().serial != spec.serial) {
            return Error(codes::camera_disconnected,
                         (*session)->info().port + " now answers as serial '" +
                             (*session)->info().serial + "', not '" + spec.serial +
                             "' (a different camera; not using it)");
        }
        return session;
    }
    // A replugged USB camera comes back on another device number: look for it by serial,
    // its last port first, then every other detected port no session holds.
    auto detected = detect_cameras();
    if (!detected) return detected.error();
    std::vector<CameraSpec> candidates;
    {
        std::lock_guard<std::mutex> lock(globals().mutex);
        for (const auto& c : *detected) {
            if (globals().claimed_ports.count(c.port)) continue;
            if (c.port == spec.port) {
                candidates.insert(candidates.begin(), c);
            } else {
                candidates.push_back(c);
            }
        }
    }
    for (auto candidate : candidates) {
        if (!spec.model.empty()) candidate.model = spec.model;
        auto session = open_port(candidate);
        if (session && (*session)->info().serial == spec.serial) return session;
    }
    return Error(codes::camera_disconnected, "no USB camera with serial '" + spec.serial + "' (" +
                                                 std::to_string(candidates.size()) +
                                                 " free USB camera(s) tried)");
}

Expected<std::unique_ptr<GphotoSession>> GphotoSession::open_port(const CameraSpec& spec) {
    auto impl = std::make_unique<Impl>();
    impl->context = gp_context_new();
    gp_context_set_error_func(impl->context, &Impl::on_context_error, impl.get());

    std::string port = spec.port;
    std::string model = spec.model;
    Globals& g = globals();
    CameraAbilities abilities;
    GPPortInfo port_info;  // points into g.ports, which lives as long as the process
    {
        std::lock_guard<std::mutex> lock(g.mutex);
        if (auto st = ensure_lists_locked(impl->context); !st) return st.error();
        if (port.empty() || (model.empty() && port.rfind("ptpip:", 0) != 0)) {
            auto found = detect_locked(impl->context);
            if (!found) return found.error();
            const CameraSpec* match = nullptr;
            for (const auto& c : *found) {
                if (port.empty() && g.claimed_ports.count(c.port)) continue;
                if (port.empty() || c.port == port) {
                    match = &c;
                    break;
                }
            }
            if (!match) {
                return Error(codes::camera_disconnected, port.empty()
                                                             ? "no USB camera detected"
                                                             : "no camera detected on " + port);
            }
            port = match->port;
            if (model.empty()) model = match->model;
        }
        if (model.empty()) model = "PTP/IP Camera";
        int mi = gp_abilities_list_lookup_model(g.abilities, model.c_str());
        if (mi < GP_OK)
            return Error(codes::camera_error, "libgphoto2 knows no camera model '" + model + "'");
        gp_abilities_list_get_abilities(g.abilities, mi, &abilities);
        pin_driver(abilities.library);
        int pi = gp_port_info_list_lookup_path(g.ports, port.c_str());
        if (pi < GP_OK)
            return Error(codes::camera_error, "libgphoto2 knows no port '" + port + "'");
        gp_port_info_list_get_info(g.ports, pi, &port_info);
    }

    // Outside the lock: a probe may take up to 2.5 s and must not hold up other cameras.
    if (port.rfind("ptpip:", 0) == 0) {
        if (auto st = probe_ptpip(port); !st) return st.error();
    } else if (port.rfind("usb:", 0) == 0) {
        if (auto st = probe_usb(port); !st) return st.error();
    }

    {
        std::lock_guard<std::mutex> lock(g.mutex);
        gp_camera_new(&impl->camera);
        gp_camera_set_abilities(impl->camera, abilities);
        gp_camera_set_port_info(impl->camera, port_info);
        Camera* cam = impl->camera;
        GPContext* ctx = impl->context;
        keep_fd0_occupied();  // before the first session, too: a daemon may start without stdin
        auto st = impl->call("connect " + port, [&] { return gp_camera_init(cam, ctx); });
        if (!st) {
            gp_camera_unref(impl->camera);  // a failed init has already cleaned up
            keep_fd0_occupied();            // ... which may have disconnected
            impl->camera = nullptr;
            return st.error();
        }
        if (g.claimed_ports.insert(port).second) impl->claimed_port = port;
    }

    std::unique_ptr<GphotoSession> session(new GphotoSession(std::move(impl)));
    session->info_ = read_camera_info(*session->impl_, port, model);
    return session;
}

}  // namespace detail

Expected<std::vector<CameraSpec>> detect_cameras() {
    GPContext* context = gp_context_new();
    Expected<std::vector<CameraSpec>> result = std::vector<CameraSpec>{};
    {
        std::lock_guard<std::mutex> lock(detail::globals().mutex);
        result = detail::detect_locked(context);
    }
    gp_context_unref(context);
    return result;
}

}  // namespace photorig::camera
