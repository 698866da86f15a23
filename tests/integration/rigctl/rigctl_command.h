// Runs the real rigctl binary as an operator would: against a harness's broker, as the
// dashboard user, its password in a 0600 file.
#pragma once

#include <string>
#include <vector>

#include "harness/rig_harness.h"

namespace photorig::test {

// The dashboard user's password in a 0600 file, for --password-file.
inline std::string dashboard_password_file(RigHarness& h) {
    std::string pw = h.root() + "/secrets/dashboard.pw";
    write_file(pw, h.password("photorig-dashboard") + "\n", 0600);
    return pw;
}

inline CommandResult rigctl(RigHarness& h, std::vector<std::string> args,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    const std::string pw = dashboard_password_file(h);
    std::vector<std::string> argv{std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rigctl",
                                  "--port",
                                  std::to_string(h.broker_port()),
                                  "--username",
                                  "photorig-dashboard",
                                  "--password-file",
                                  pw};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

}  // namespace photorig::test
