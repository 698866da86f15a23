#include "apps/daemon_main.h"
#include "core/log.h"
#include "rig/rig_service.h"

int main(int argc, char** argv) {
    photorig::apps::DaemonSpec spec{
        "rig-agent", "Keeps the rig's cameras open and answers MQTT commands.", false};
    return photorig::apps::daemon_main(argc, argv, spec, [](const auto& config, const auto& stop) {
        photorig::rig::RigService service(config);
        if (auto st = service.start(); !st) {
            LOG_ERROR("rig-agent", "cannot start: " << st.error().describe());
            return 1;
        }
        service.run(stop);
        return 0;
    });
}
