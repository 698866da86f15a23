#include <gphoto2/gphoto2.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "camera/gphoto_impl.h"
#include "camera/gphoto_session.h"

namespace photorig::camera::detail {

Status GphotoSession::trigger() {
    return impl_->call("trigger",
                       [&] { return gp_camera_trigger_capture(impl_->camera, impl_->context); });
}

Expected<Event> GphotoSession::wait_event(int timeout_ms) {
    CameraEventType type = GP_EVENT_UNKNOWN;
    void* data = nullptr;
    const unsigned long truncated_before = gphoto_truncated_copies();
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
            ev.name_truncated = gphoto_truncated_copies() != truncated_before;
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
    uint64_t max_bytes = 0;
    std::optional<Error> sink_error;
};

// Called by libgphoto2 once per PTP data packet (or 1 MiB GetPartialObject piece).
int stream_write(void* priv, unsigned char* data, uint64_t* len) {
    auto* s = static_cast<StreamState*>(priv);
    if (s->sink_error) return GP_OK;  // keep reading so the PTP session stays in step
    if (*len > s->max_bytes - s->written) {
        // A camera that sends more than it announced (or than the cap) could fill the disk
        // or never end: stop reading now.
        s->sink_error =
            Error(codes::file_too_large, "the camera sent more than " +
                                             std::to_string(s->max_bytes) + " bytes for one file");
        return GP_ERROR_IO_WRITE;
    }
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
                                           DownloadSink& sink, uint64_t max_bytes) {
    StreamState state;
    state.sink = &sink;
    state.max_bytes = max_bytes;
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

}  // namespace photorig::camera::detail
