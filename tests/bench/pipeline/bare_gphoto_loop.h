// The physical limit of a capture on a given camera: libgphoto2 driven in-process with nothing
// around it (no spool, no hash, no MQTT): trigger, wait for the new file, download it into
// memory, delete it from the card. The agent's captures/s divided by this loop's is the share
// of the library's speed the agent keeps.
#pragma once

#include <string>

namespace photorig::bench {

struct BareLoopResult {
    int shots = 0;            // completed trigger+download+delete cycles
    double seconds = 0;       // for those cycles, after the session was open
    unsigned long bytes = 0;  // downloaded in total
    std::string error;        // empty when every shot completed
};

// port: "ptpip:127.0.0.1:P:P"; model: libgphoto2's model name ("PTP/IP Camera"). Sets HOME
// to home_dir for libgphoto2's settings file (the initiator GUID) before opening the camera.
BareLoopResult bare_gphoto_loop(const std::string& port, const std::string& model,
                                const std::string& home_dir, int shots);

}  // namespace photorig::bench
