// The PTP/IP camera simulator (tests/ptpip-sim) as a child process for tests: started on a
// free 127.0.0.1 port with a control port, restartable on the same ports, stopped with
// SIGTERM (or SIGKILL on purpose). No gtest here: failures throw std::runtime_error.
//
//   photorig::test::PtpipSim sim(PHOTORIG_PTPIP_SIM_PATH, {"--serial", "CAM1"});
//   sim.start();
//   camera port: sim.port_string()  ->  "ptpip:127.0.0.1:P:P" (model "PTP/IP Camera")
//   sim.control("busy 1");          // next InitiateCapture answers DeviceBusy
//   sim.restart();                  // same ports, fresh camera state
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace photorig::test {

class PtpipSim {
  public:
    // `binary`: path of ptpip-sim (a path ending in ".py" runs with python3).
    // `extra_args`: more simulator flags (see tests/ptpip-sim/README.md); the fixture adds
    // --port and --control-port after them (the simulator takes the last value of a flag).
    // `log_path`: the simulator's stderr is appended there (empty: inherited).
    explicit PtpipSim(std::string binary, std::vector<std::string> extra_args = {},
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
