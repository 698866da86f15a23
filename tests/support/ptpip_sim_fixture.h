// The PTP/IP camera simulator (tests/ptpip-sim) as a child process for tests: started on a
// free 127.0.0.1 port with a control port, restartable on the same ports, stopped with
// SIGTERM (or SIGKILL on purpose). No gtest here: failures throw std::runtime_error.
//
//   photorig::test::PtpipSim sim(PHOTORIG_PTPIP_SIM_PATH, {"--serial", "CAM1"});
//   sim.start();
//   camera port: sim.port_string()  ->  "ptpip:127.0.0.1:P:P" (model "PTP/IP Camera")
//   sim.control("busy 1");          // next InitiateCapture answers DeviceBusy
//   sim.restart();                  // same ports, fresh camera state
//
// A second, independently written simulator (tests/ptpip-sim2, Python) can stand in:
//   photorig::test::PtpipSim sim2(photorig::test::SimKind::sim2, {"--serial", "CAM1"});
// It understands the common flags (--serial, --image-size, --capture-delay-ms, --model) and
// the control commands ping, stats, busy, error, noevent, delay, size, reset, clear and
// disconnect; see tests/ptpip-sim2/README.md for how it differs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace photorig::test {

enum class SimKind {
    ours,  // tests/ptpip-sim (C++, target ptpip-sim)
    sim2,  // tests/ptpip-sim2/ptpip_sim2.py
};

// The kind PHOTORIG_TEST_SIM names ("sim2" -> sim2); unset or anything else -> ours. Only
// callers that ask for it read the variable (RigHarness does when its options leave the kind
// open); a PtpipSim built from a path always runs that path.
SimKind sim_kind_from_env();
// The simulator's path for `kind` (sim2: the .py script, run with python3).
std::string sim_binary(SimKind kind);
const char* sim_kind_name(SimKind kind);  // "ours" | "sim2"

class PtpipSim {
  public:
    // `binary`: path of ptpip-sim (a path ending in ".py" runs with python3).
    // `extra_args`: more simulator flags (see tests/ptpip-sim/README.md); the fixture adds
    // --port and --control-port after them (the simulator takes the last value of a flag).
    // `log_path`: the simulator's stderr is appended there (empty: inherited).
    explicit PtpipSim(std::string binary, std::vector<std::string> extra_args = {},
                      std::string log_path = "");
    // The simulator of `kind` (sim_binary(kind)).
    explicit PtpipSim(SimKind kind, std::vector<std::string> extra_args = {},
                      std::string log_path = "");
    ~PtpipSim();  // stop()
    PtpipSim(const PtpipSim&) = delete;
    PtpipSim& operator=(const PtpipSim&) = delete;

    // Spawns the simulator in its own process group and waits (5 s at most) for its
    // "LISTENING <port>" and "CONTROL <port>" lines. The first start picks free ports
    // (--port 0 --control-port 0); later starts reuse them. On Linux the simulator gets
    // SIGTERM when the calling thread exits, so call start() from a thread that outlives
    // the fixture (the test's own thread).
    void start();
    // SIGTERM, wait up to `grace`, then SIGKILL to the group. Returns the exit code
    // (-signal when killed; 0 when it was not running).
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
    // SIGKILL to the process group, then reaps it.
    void kill9();
    // stop() + start() on the same ports (fresh camera state: empty card, counters at 0).
    void restart();
    bool running();

    int port() const { return port_; }
    int control_port() const { return control_port_; }
    std::string port_string() const;  // "ptpip:127.0.0.1:P:P"
    pid_t pid() const { return pid_; }
    const std::string& binary() const { return binary_; }

    // One round trip on the control port: sends `cmd` + "\n", returns the answer line
    // without its newline ("OK", "ERR ...", or the JSON of "stats"). Throws on failure.
    std::string control(const std::string& cmd);

    // Extra flags used by the next start() (e.g. to restart with other failure settings).
    void set_extra_args(std::vector<std::string> extra_args) {
        extra_args_ = std::move(extra_args);
    }

  private:
    int reap(bool block);

    std::string binary_;
    std::vector<std::string> extra_args_;
    std::string log_path_;
    pid_t pid_ = -1;
    int exit_code_ = 0;
    int port_ = 0;
    int control_port_ = 0;
};

}  // namespace photorig::test
