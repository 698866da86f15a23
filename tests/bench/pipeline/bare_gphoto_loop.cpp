#include "bare_gphoto_loop.h"

#include <fcntl.h>
#include <gphoto2/gphoto2.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace photorig::bench {
namespace {
using Clock = std::chrono::steady_clock;

struct Session {
    GPContext* context = gp_context_new();
    Camera* camera = nullptr;
    CameraAbilitiesList* abilities = nullptr;
    GPPortInfoList* ports = nullptr;
    ~Session() {
        if (camera) {
            gp_camera_exit(camera, context);
            gp_camera_unref(camera);
        }
        if (abilities) gp_abilities_list_free(abilities);
        if (ports) gp_port_info_list_free(ports);
        gp_context_unref(context);
        // libgphoto2's PTP/IP disconnect closes descriptor 0 (params->jpgfd, unset for every
        // camera but Fuji's): give it /dev/null again so the next file opened is not 0.
        if (fcntl(0, F_GETFD) == -1) open("/dev/null", O_RDONLY);
    }
};

std::string failed(const char* what, int rc) {
    return std::string(what) + ": " + gp_result_as_string(rc) + " (" + std::to_string(rc) + ")";
}

std::string open(Session& s, const std::string& port, const std::string& model) {
    gp_abilities_list_new(&s.abilities);
    if (int rc = gp_abilities_list_load(s.abilities, s.context); rc < GP_OK)
        return failed("load camera drivers", rc);
    gp_port_info_list_new(&s.ports);
    if (int rc = gp_port_info_list_load(s.ports); rc < GP_OK) return failed("load ports", rc);
    int mi = gp_abilities_list_lookup_model(s.abilities, model.c_str());
    if (mi < GP_OK) return failed("model lookup", mi);
    int pi = gp_port_info_list_lookup_path(s.ports, port.c_str());
    if (pi < GP_OK) return failed("port lookup", pi);
    CameraAbilities abilities;
    GPPortInfo port_info;
    gp_abilities_list_get_abilities(s.abilities, mi, &abilities);
    gp_port_info_list_get_info(s.ports, pi, &port_info);
    gp_camera_new(&s.camera);
    gp_camera_set_abilities(s.camera, abilities);
    gp_camera_set_port_info(s.camera, port_info);
    if (int rc = gp_camera_init(s.camera, s.context); rc < GP_OK) {
        gp_camera_unref(s.camera);
        s.camera = nullptr;
        return failed("connect", rc);
    }
    return {};
}

// One cycle as a careful caller writes it (trigger + a polled wait, never gp_camera_capture,
// which can wait forever on generic PTP): returns the bytes downloaded or an error.
std::string one_shot(Session& s, unsigned long* bytes) {
    if (int rc = gp_camera_trigger_capture(s.camera, s.context); rc < GP_OK)
        return failed("trigger", rc);
    CameraFilePath added{};
    bool have_file = false;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!have_file) {
        if (Clock::now() > deadline) return "no new file within 20 s";
        CameraEventType type = GP_EVENT_UNKNOWN;
        void* data = nullptr;
        int rc = gp_camera_wait_for_event(s.camera, 100, &type, &data, s.context);
        if (rc < GP_OK) {
            std::free(data);
            return failed("wait for event", rc);
        }
        if (type == GP_EVENT_FILE_ADDED && data) {
            std::memcpy(&added, data, sizeof added);
            have_file = true;
        }
        std::free(data);
    }
    CameraFile* file = nullptr;
    gp_file_new(&file);
    int rc = gp_camera_file_get(s.camera, added.folder, added.name, GP_FILE_TYPE_NORMAL, file,
                                s.context);
    if (rc >= GP_OK) {
        const char* data = nullptr;
        unsigned long size = 0;
        gp_file_get_data_and_size(file, &data, &size);
        *bytes += size;
    }
    gp_file_unref(file);
    if (rc < GP_OK) return failed("download", rc);
    if (rc = gp_camera_file_delete(s.camera, added.folder, added.name, s.context); rc < GP_OK)
        return failed("delete", rc);
    return {};
}
}  // namespace

BareLoopResult bare_gphoto_loop(const std::string& port, const std::string& model,
                                const std::string& home_dir, int shots) {
    BareLoopResult result;
    setenv("HOME", home_dir.c_str(), 1);
    Session session;
    result.error = open(session, port, model);
    if (!result.error.empty()) return result;
    const auto t0 = Clock::now();
    for (int i = 0; i < shots && result.error.empty(); ++i) {
        result.error = one_shot(session, &result.bytes);
        if (result.error.empty()) ++result.shots;
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return result;
}

}  // namespace photorig::bench
