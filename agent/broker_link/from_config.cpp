#include "broker_link/from_config.h"

#include "core/files.h"

namespace photorig::mqtt {

Expected<Options> options_from_config(const config::Config& config, const std::string& role) {
    const auto& m = config.mqtt;
    Options o;
    o.host = m.host;
    o.port = m.port;
    o.client_id = m.client_id.empty() ? "photorig-" + config.rig_id + "-" + role : m.client_id;
    o.username = m.username;
    if (!m.password_file.empty()) {
        auto pw = files::read_secret(m.password_file);
        if (!pw) return make_error("bad_config", "mqtt.password_file: " + pw.error().message);
        o.password = *pw;
    }
    o.tls.ca_file = m.tls.ca_file;
    o.tls.cert_file = m.tls.cert_file;
    o.tls.key_file = m.tls.key_file;
    o.keepalive_s = m.keepalive_s;
    return o;
}

}  // namespace photorig::mqtt
