#include "apps/daemon_main.h"
#include "core/log.h"
#include "uploader/uploader_service.h"

int main(int argc, char** argv) {
    photorig::apps::DaemonSpec spec{"rig-uploader",
                                    "Uploads spooled photos to the configured target.", true};
    return photorig::apps::daemon_main(argc, argv, spec, [](const auto& config, const auto& stop) {
        photorig::uploader::UploaderService service(config);
        if (auto st = service.start(); !st) {
            LOG_ERROR("rig-uploader", "cannot start: " << st.error().describe());
            return 1;
        }
        service.run(stop);
        return 0;
    });
}
