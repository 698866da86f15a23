// Command-line options of ptpip-sim (see README.md and --help).
#pragma once

#include <cstdint>
#include <string>

namespace ptpsim {

struct Options {
    std::string bind = "127.0.0.1";
    int port = 15740;       // 0: pick a free port
    int control_port = -1;  // -1: no control channel; 0: pick a free port
    std::string serial = "SIM0001";
    std::string model = "PTP/IP Camera";
    std::string manufacturer = "photorig";
    int capture_delay_ms = 0;
    uint64_t image_size = 200000;
    uint32_t image_width = 640;
    uint32_t image_height = 480;
    int fail_busy = 0;
    int fail_error = 0;
    int no_event = 0;
    int disconnect_after = 0;  // 0: never
    int slow_ms = 0;
    bool storage_full = false;
    std::string event_log;
    bool keep_on_card = false;  // accepted; objects stay until DeleteObject either way
    int max_objects = 1000;
    bool raw_pair = false;  // each capture also stores IMG_nnnn.DNG, announced first
    uint64_t raw_size = 300000;
    bool verbose = false;
    // --hostile MODE (README.md "Hostile modes"): a camera that lies or misbehaves.
    std::string hostile;
};

}  // namespace ptpsim
