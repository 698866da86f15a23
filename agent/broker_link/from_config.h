// The daemons' broker settings come from the shared YAML: one place turns them into
// client options (reading the password file), so the agent and uploader cannot drift.
// It lives in its own library, apart from `mqtt`, so the MQTT client itself knows nothing
// of the YAML (rigctl links the client without the config module).
#pragma once

#include <string>

#include "config/config.h"
#include "core/expected.h"
#include "mqtt/client.h"

namespace photorig::mqtt {

// `role` names the default client id: photorig-<rig_id>-<role>. Errors name the key.
Expected<Options> options_from_config(const config::Config& config, const std::string& role);

}  // namespace photorig::mqtt
