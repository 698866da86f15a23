// A real child process for integration tests: started with argv and extra environment,
// output appended to a log file, stopped with SIGTERM (or killed with SIGKILL on purpose).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace photorig::test {

class ChildProcess {
  public:
    ChildProcess(std::vector<std::string> argv, std::string log_path,
                 std::vector<std::string> env = {});
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    void start();
    // SIGTERM, then SIGKILL after `grace`. Returns the exit code (-signal if killed).
    int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
    void kill9();
    bool running();
    // Waits for the process to exit by itself; returns its exit code or -1000 on timeout.
    int wait_exit(std::chrono::milliseconds timeout);
    pid_t pid() const { return pid_; }
    std::string log() const;
    const std::string& log_path() const { return log_path_; }

  private:
    int reap(bool block);
    std::vector<std::string> argv_;
    std::string log_path_;
    std::vector<std::string> env_;
    pid_t pid_ = -1;
    int exit_code_ = 0;
};

}  // namespace photorig::test
