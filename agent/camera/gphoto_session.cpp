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
#include <mutex>
#include <optional>
#include <set>

#include "core/log.h"

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
namespace {
constexpr const char* kGphotoTextDomain = "libgphoto2-6";  // GETTEXT_PACKAGE_LIBGPHOTO2

// libgphoto2 keeps global state that is not thread-safe: libltdl's refcount in
// gp_camera_init/exit, the settings file (PTP/IP GUID), and the port list, which
// lookup_path appends to. Every init, exit, detection and list access takes this lock;
// operations on an open camera do not.
struct Globals {
    std::mutex mutex;
    CameraAbilitiesList* abilities = nullptr;  // loaded once: about 200 ms, 2600 models
    GPPortInfoList* ports = nullptr;
    bool log_hooked = false;
    // Ports with an open session: a search by serial or by "first detected" skips them, so
    // two workers never open (and confuse) the same camera.
    std::set<std::string> claimed_ports;
};

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
    }
    if (!g.ports) {
        pin_driver("libusb-1.0.so.0");
#ifdef PHOTORIG_GPHOTO2_IOLIB_DIR
        pin_driver(std::string(PHOTORIG_GPHOTO2_IOLIB_DIR) + "/usb1.so");
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

std::string gp_text(int rc) {
    const char* s = gp_result_as_string(rc);
    return s ? s : "unknown error";
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
           error.code == codes::camera_error;
}

struct GphotoSession::Impl {
    GPContext* context = nullptr;
    Camera* camera = nullptr;
    std::string claimed_port;        // in globals().claimed_ports while this session is open
    std::string last_context_error;  // written by libgphoto2 on the calling thread

    ~Impl() {
        if (camera) {
            std::lock_guard<std::mutex> lock(globals().mutex);
            gp_camera_exit(camera, context);
            gp_camera_unref(camera);
            keep_fd0_occupied();
            if (!claimed_port.empty()) globals().claimed_ports.erase(claimed_port);
        }
        if (context) gp_context_unref(context);
    }

    static void on_context_error(GPContext*, const char* text, void* data) {
        auto* self = static_cast<Impl*>(data);
        if (!self->last_context_error.empty()) self->last_context_error += "; ";
        self->last_context_error += text ? text : "";
    }

    // Runs one libgphoto2 call with a fresh context error buffer; maps a failure.
    template <typename F>
    Status call(const std::string& op, F&& f) {
        last_context_error.clear();
        int rc = f();
        if (rc < GP_OK) return classify_gphoto_error(rc, last_context_error, op);
        return ok();
    }

    std::string text_config(const char* name) {
        CameraWidget* widget = nullptr;
        last_context_error.clear();
        if (gp_camera_get_single_config(camera, name, &widget, context) < GP_OK || !widget)
            return "";
        const char* value = nullptr;
        std::string out;
        if (gp_widget_get_value(widget, &value) == GP_OK && value) out = value;
        gp_widget_free(widget);
        return out;
    }
};

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
    CameraInfo& info = session->info_;
    info.port = port;
    info.serial = session->impl_->text_config("serialnumber");
    info.manufacturer = session->impl_->text_config("manufacturer");
    info.model = session->impl_->text_config("cameramodel");
    info.version = session->impl_->text_config("deviceversion");
    if (info.serial.empty() || info.serial == "None" || info.model.empty()) {
        CameraText text;
        std::memset(&text, 0, sizeof text);
        if (gp_camera_get_summary(session->impl_->camera, &text, session->impl_->context) ==
            GP_OK) {
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
    return session;
}

Status GphotoSession::trigger() {
    return impl_->call("trigger",
                       [&] { return gp_camera_trigger_capture(impl_->camera, impl_->context); });
}

Expected<Event> GphotoSession::wait_event(int timeout_ms) {
    CameraEventType type = GP_EVENT_UNKNOWN;
    void* data = nullptr;
    // Never 0: on USB a port timeout of 0 means "wait forever".
    auto st = impl_->call("wait for event", [&] {
        return gp_camera_wait_for_event(impl_->camera, timeout_ms < 1 ? 1 : timeout_ms, &type,
                                        &data, impl_->context);
    });
    if (!st) {
        std::free(data);
        return st.error();
    }
    Event ev;
    switch (type) {
        case GP_EVENT_TIMEOUT:
            ev.kind = EventKind::timeout;
            break;
        case GP_EVENT_FILE_ADDED:
        case GP_EVENT_FOLDER_ADDED: {
            ev.kind = type == GP_EVENT_FILE_ADDED ? EventKind::file_added : EventKind::folder_added;
            if (auto* path = static_cast<CameraFilePath*>(data)) {
                ev.folder.assign(path->folder, strnlen(path->folder, sizeof path->folder));
                ev.name.assign(path->name, strnlen(path->name, sizeof path->name));
            }
            break;
        }
        case GP_EVENT_CAPTURE_COMPLETE:
            ev.kind = EventKind::capture_complete;
            break;
        case GP_EVENT_FILE_CHANGED:
            ev.kind = EventKind::other;
            if (auto* path = static_cast<CameraFilePath*>(data))
                ev.text = std::string("file changed: ") + path->name;
            break;
        case GP_EVENT_UNKNOWN:
        default: {
            ev.kind = EventKind::other;
            if (data) ev.text = static_cast<const char*>(data);
            // The generic PTP driver reports StoreFull (0x400a) as "PTP Event 400a, ...".
            if (ev.text.rfind("PTP Event 400a", 0) == 0 ||
                ev.text.rfind("PTP Event 400A", 0) == 0) {
                ev.kind = EventKind::storage_full;
            }
            break;
        }
    }
    std::free(data);
    return ev;
}

Expected<FileHeader> GphotoSession::file_info(const std::string& folder, const std::string& name) {
    CameraFileInfo info;
    std::memset(&info, 0, sizeof info);
    auto st = impl_->call("file info " + folder + "/" + name, [&] {
        return gp_camera_file_get_info(impl_->camera, folder.c_str(), name.c_str(), &info,
                                       impl_->context);
    });
    if (!st) return st.error();
    FileHeader h;
    h.camera_folder = folder;
    h.camera_name = name;
    if (info.file.fields & GP_FILE_INFO_SIZE) h.size = info.file.size;
    if (info.file.fields & GP_FILE_INFO_TYPE)
        h.mime.assign(info.file.type, strnlen(info.file.type, sizeof info.file.type));
    return h;
}

namespace {
struct StreamState {
    DownloadSink* sink = nullptr;
    uint64_t written = 0;
    std::optional<Error> sink_error;
};

// Called by libgphoto2 once per PTP data packet (or 1 MiB GetPartialObject piece).
int stream_write(void* priv, unsigned char* data, uint64_t* len) {
    auto* s = static_cast<StreamState*>(priv);
    if (s->sink_error) return GP_OK;  // keep reading so the PTP session stays in step
    auto st = s->sink->write(reinterpret_cast<const char*>(data), static_cast<size_t>(*len));
    if (!st) {
        s->sink_error = st.error();
        return GP_OK;
    }
    s->written += *len;
    return GP_OK;
}
int stream_read(void*, unsigned char*, uint64_t* len) {
    *len = 0;
    return GP_ERROR_NOT_SUPPORTED;
}
int stream_size(void*, uint64_t* size) {
    *size = 0;
    return GP_OK;
}
}  // namespace

Expected<uint64_t> GphotoSession::download(const std::string& folder, const std::string& name,
                                           DownloadSink& sink) {
    StreamState state;
    state.sink = &sink;
    CameraFileHandler handler{stream_size, stream_read, stream_write};
    CameraFile* file = nullptr;
    if (gp_file_new_from_handler(&file, &handler, &state) < GP_OK) {
        return Error(codes::camera_error, "gp_file_new_from_handler failed");
    }
    auto st = impl_->call("download " + folder + "/" + name, [&] {
        return gp_camera_file_get(impl_->camera, folder.c_str(), name.c_str(), GP_FILE_TYPE_NORMAL,
                                  file, impl_->context);
    });
    gp_file_unref(file);
    if (state.sink_error) return *state.sink_error;
    if (!st) return st.error();
    return state.written;
}

Status GphotoSession::remove(const std::string& folder, const std::string& name) {
    return impl_->call("delete " + folder + "/" + name, [&] {
        return gp_camera_file_delete(impl_->camera, folder.c_str(), name.c_str(), impl_->context);
    });
}

namespace {
// A whole file in memory: for thumbnails and live-view frames, which are small.
Expected<std::string> file_bytes(CameraFile* file) {
    const char* data = nullptr;
    unsigned long size = 0;
    if (gp_file_get_data_and_size(file, &data, &size) < GP_OK || !data) {
        return Error(codes::camera_error, "the camera returned no data");
    }
    return std::string(data, size);
}

const char* widget_type_name(CameraWidgetType type) {
    switch (type) {
        case GP_WIDGET_WINDOW:
            return "window";
        case GP_WIDGET_SECTION:
            return "section";
        case GP_WIDGET_TEXT:
            return "text";
        case GP_WIDGET_RANGE:
            return "range";
        case GP_WIDGET_TOGGLE:
            return "toggle";
        case GP_WIDGET_RADIO:
            return "radio";
        case GP_WIDGET_MENU:
            return "menu";
        case GP_WIDGET_BUTTON:
            return "button";
        case GP_WIDGET_DATE:
            return "date";
    }
    return "unknown";
}

std::string format_number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string widget_value_text(CameraWidget* w) {
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    switch (type) {
        case GP_WIDGET_TEXT:
        case GP_WIDGET_RADIO:
        case GP_WIDGET_MENU: {
            const char* v = nullptr;
            if (gp_widget_get_value(w, &v) == GP_OK && v) return v;
            return "";
        }
        case GP_WIDGET_RANGE: {
            float v = 0;
            gp_widget_get_value(w, &v);
            return format_number(v);
        }
        case GP_WIDGET_TOGGLE:
        case GP_WIDGET_DATE: {
            int v = 0;
            gp_widget_get_value(w, &v);
            return std::to_string(v);
        }
        default:
            return "";
    }
}

Setting describe_widget(CameraWidget* w) {
    Setting s;
    const char* text = nullptr;
    if (gp_widget_get_name(w, &text) == GP_OK && text) s.name = text;
    if (gp_widget_get_label(w, &text) == GP_OK && text) s.label = text;
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    s.type = widget_type_name(type);
    int ro = 0;
    gp_widget_get_readonly(w, &ro);
    s.read_only = ro != 0;
    s.value = widget_value_text(w);
    if (type == GP_WIDGET_RADIO || type == GP_WIDGET_MENU) {
        for (int i = 0; i < gp_widget_count_choices(w); ++i) {
            const char* c = nullptr;
            if (gp_widget_get_choice(w, i, &c) == GP_OK && c) s.choices.push_back(c);
        }
    } else if (type == GP_WIDGET_RANGE) {
        float lo = 0, hi = 0, step = 0;
        gp_widget_get_range(w, &lo, &hi, &step);
        s.min = lo;
        s.max = hi;
        s.step = step;
    }
    for (int i = 0; i < gp_widget_count_children(w); ++i) {
        CameraWidget* child = nullptr;
        if (gp_widget_get_child(w, i, &child) == GP_OK && child)
            s.children.push_back(describe_widget(child));
    }
    return s;
}

bool parse_double(const std::string& text, double* out) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    *out = std::strtod(text.c_str(), &end);
    return errno == 0 && end && *end == '\0';
}

// Checks `value` against the widget and stores it there. The camera is not touched yet.
Status put_widget_value(CameraWidget* w, const std::string& name, const std::string& value) {
    auto bad = [&](const std::string& why) {
        return Error(codes::bad_setting_value, name + ": " + why + ", got '" + value + "'");
    };
    CameraWidgetType type;
    gp_widget_get_type(w, &type);
    int rc = GP_OK;
    switch (type) {
        case GP_WIDGET_TEXT:
            rc = gp_widget_set_value(w, value.c_str());
            break;
        case GP_WIDGET_RADIO:
        case GP_WIDGET_MENU: {
            std::string allowed;
            bool found = false;
            for (int i = 0; i < gp_widget_count_choices(w); ++i) {
                const char* c = nullptr;
                if (gp_widget_get_choice(w, i, &c) != GP_OK || !c) continue;
                if (value == c) found = true;
                if (i < 24) allowed += std::string(allowed.empty() ? "" : ", ") + c;
            }
            if (!found) return bad("must be one of: " + allowed);
            rc = gp_widget_set_value(w, value.c_str());
            break;
        }
        case GP_WIDGET_RANGE: {
            double v = 0;
            float lo = 0, hi = 0, step = 0;
            gp_widget_get_range(w, &lo, &hi, &step);
            if (!parse_double(value, &v)) return bad("must be a number");
            if (v < lo || v > hi)
                return bad("must be between " + format_number(lo) + " and " + format_number(hi));
            float f = static_cast<float>(v);
            rc = gp_widget_set_value(w, &f);
            break;
        }
        case GP_WIDGET_TOGGLE: {
            int v;
            if (value == "1" || value == "true" || value == "on") {
                v = 1;
            } else if (value == "0" || value == "false" || value == "off") {
                v = 0;
            } else {
                return bad("must be 0 or 1");
            }
            rc = gp_widget_set_value(w, &v);
            break;
        }
        case GP_WIDGET_DATE: {
            double v = 0;
            if (!parse_double(value, &v) || v < 0 || v > 4e9)
                return bad("must be seconds since the Unix epoch");
            int i = static_cast<int>(v);
            rc = gp_widget_set_value(w, &i);
            break;
        }
        default:
            return Error(codes::setting_read_only,
                         name + ": a " + widget_type_name(type) + " has no value to set");
    }
    if (rc < GP_OK) return bad(gp_text(rc));
    return ok();
}
}  // namespace

Expected<std::string> GphotoSession::thumbnail(const std::string& folder, const std::string& name) {
    CameraFile* file = nullptr;
    gp_file_new(&file);
    auto st = impl_->call("thumbnail " + folder + "/" + name, [&] {
        return gp_camera_file_get(impl_->camera, folder.c_str(), name.c_str(), GP_FILE_TYPE_PREVIEW,
                                  file, impl_->context);
    });
    Expected<std::string> out = st ? file_bytes(file) : Expected<std::string>(st.error());
    gp_file_unref(file);
    return out;
}

Expected<std::string> GphotoSession::capture_preview() {
    CameraFile* file = nullptr;
    gp_file_new(&file);
    impl_->last_context_error.clear();
    int rc = gp_camera_capture_preview(impl_->camera, file, impl_->context);
    Expected<std::string> out = std::string();
    if (rc == GP_ERROR_NOT_SUPPORTED) {
        out = Error(codes::preview_unavailable, "the camera's driver has no live view");
    } else if (rc < GP_OK) {
        out = classify_gphoto_error(rc, impl_->last_context_error, "live view");
    } else {
        out = file_bytes(file);
    }
    gp_file_unref(file);
    return out;
}

Expected<Setting> GphotoSession::settings(const std::string& name) {
    CameraWidget* root = nullptr;
    auto st = impl_->call("read settings", [&] {
        return gp_camera_get_config(impl_->camera, &root, impl_->context);
    });
    if (!st) return st.error();
    Expected<Setting> out = Setting{};
    CameraWidget* start = root;
    if (!name.empty() && gp_widget_get_child_by_name(root, name.c_str(), &start) < GP_OK) {
        out = Error(codes::unknown_setting, "the camera has no setting '" + name + "'");
    } else {
        out = describe_widget(start);
    }
    gp_widget_free(root);
    return out;
}

Expected<std::string> GphotoSession::set_setting(const std::string& name,
                                                 const std::string& value) {
    CameraWidget* root = nullptr;
    auto st = impl_->call("read settings", [&] {
        return gp_camera_get_config(impl_->camera, &root, impl_->context);
    });
    if (!st) return st.error();
    Expected<std::string> out = std::string();
    CameraWidget* w = nullptr;
    int ro = 0;
    if (name.empty() || gp_widget_get_child_by_name(root, name.c_str(), &w) < GP_OK || !w) {
        out = Error(codes::unknown_setting, "the camera has no setting '" + name + "'");
    } else if (gp_widget_get_readonly(w, &ro) == GP_OK && ro) {
        out = Error(codes::setting_read_only, name + " is read-only on this camera");
    } else if (auto put = put_widget_value(w, name, value); !put) {
        out = put.error();
    } else {
        impl_->last_context_error.clear();
        int rc = gp_camera_set_single_config(impl_->camera, name.c_str(), w, impl_->context);
        if (rc == GP_ERROR_BAD_PARAMETERS || rc == GP_ERROR_NOT_SUPPORTED) {
            out = Error(
                codes::bad_setting_value,
                "the camera refused " + name + " = '" + value + "': " + gp_text(rc) +
                    (impl_->last_context_error.empty() ? "" : ": " + impl_->last_context_error));
        } else if (rc < GP_OK) {
            out = classify_gphoto_error(rc, impl_->last_context_error, "set " + name);
        } else {
            // What the camera reports now, not what we asked for: it may round or refuse silently.
            CameraWidget* back = nullptr;
            auto got = impl_->call("read back " + name, [&] {
                return gp_camera_get_single_config(impl_->camera, name.c_str(), &back,
                                                   impl_->context);
            });
            if (!got) {
                out = got.error();
            } else {
                out = widget_value_text(back);
                gp_widget_free(back);
            }
        }
    }
    gp_widget_free(root);
    return out;
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
