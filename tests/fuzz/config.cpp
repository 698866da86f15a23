// The YAML configuration with PHOTORIG_* overrides, as config::load reads them (the file's
// text, then the environment). Input: the YAML text, a NUL byte, then "NAME=value" lines;
// a name without the PHOTORIG_ prefix gets it (load() passes on only PHOTORIG_* variables).
// A config that parses must give the same config again from the same text.
#include "config/config.h"

#include <cstdint>
#include <map>
#include <string>

#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace photorig;
    fuzz::Input in(data, size);
    const std::string yaml = in.until_nul();
    std::map<std::string, std::string> env;
    while (!in.done()) {
        std::string kv = in.line();
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string name = kv.substr(0, eq);
        if (name.rfind("PHOTORIG_", 0) != 0) name = "PHOTORIG_" + name;
        env[name] = kv.substr(eq + 1);
    }
    auto c = config::parse(yaml, env);
    if (!c) {
        PHOTORIG_FUZZ_CHECK(c.error().code == "bad_config");
        return 0;
    }
    auto again = config::parse(yaml, env);
    PHOTORIG_FUZZ_CHECK(again.has_value() && again->rig_id == c->rig_id &&
                        again->mqtt.port == c->mqtt.port && again->spool.dir == c->spool.dir);
    PHOTORIG_FUZZ_CHECK(c->mqtt.port >= 1 && c->mqtt.port <= 65535);
    return 0;
}
