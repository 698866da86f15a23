// Starts tests/simulator/ptpip_sim.py as a real process on free loopback ports and talks
// to its control port. No gtest dependency.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace photorig::test {

class PtpipSim {
public:
    PtpipSim(std::string path, std::vector<std::string> args);
    ~PtpipSim();
    PtpipSim(const PtpipSim&) = delete;
    PtpipSim& operator=(const PtpipSim&) = delete;

    void start();    // picks free ports the first time; restart() reuses them
    void stop();     // SIGTERM, then SIGKILL
    void kill9();
    void restart();  // same ports, fresh camera state
    int port() const { return port_; }
    int control_port() const { return control_port_; }
    std::string port_string() const;  // "ptpip:127.0.0.1:P:P"
    std::string control(const std::string& command);  // one line in, one line out

private:
    std::string path_;
    std::vector<std::string> args_;
    pid_t pid_ = -1;
    int port_ = 0;
    int control_port_ = 0;
};

}  // namespace photorig::test
