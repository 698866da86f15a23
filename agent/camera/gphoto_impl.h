// Internal to the camera module's gphoto_*.cpp files: libgphoto2's process-wide state and
// the open session's handles, shared by session set-up (gphoto_session.cpp), capture and
// download (gphoto_capture.cpp) and the settings tree (gphoto_settings.cpp).
#pragma once

#include <gphoto2/gphoto2.h>

#include <mutex>
#include <set>
#include <string>

#include "camera/gphoto_session.h"

namespace photorig::camera::detail {

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

Globals& globals();

// Keeps descriptor 0 holding /dev/null (see gphoto_session.cpp). Caller holds globals().mutex.
void keep_fd0_occupied();

// libgphoto2's own text for a result code.
std::string gp_text(int rc);

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

}  // namespace photorig::camera::detail
