#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "support/test_util.h"

namespace photorig::test {

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_path,
                           std::vector<std::string> env)
    : argv_(std::move(argv)), log_path_(std::move(log_path)), env_(std::move(env)) {}

ChildProcess::~ChildProcess() {
    if (pid_ > 0) stop(std::chrono::seconds(5));
}

void ChildProcess::start() {
    if (pid_ > 0) throw std::logic_error("already running: " + argv_[0]);
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::setpgid(0, 0);  // its own group, so a SIGKILL reaches any children too
        int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        for (const auto& kv : env_) ::putenv(const_cast<char*>(kv.c_str()));
        std::vector<char*> args;
        for (const auto& a : argv_) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
        ::_exit(127);
    }
    pid_ = pid;
}

int ChildProcess::reap(bool block) {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        pid_ = -1;
    }
    return exit_code_;
}

bool ChildProcess::running() {
    reap(false);
    return pid_ > 0;
}

int ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (!wait_until([&] { return !running(); }, timeout, std::chrono::milliseconds(10)))
        return -1000;
    return exit_code_;
}

int ChildProcess::stop(std::chrono::milliseconds grace) {
    if (!running()) return exit_code_;
    ::kill(pid_, SIGTERM);
    if (wait_exit(grace) == -1000) {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        reap(true);
    }
    return exit_code_;
}

void ChildProcess::kill9() {
    if (!running()) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
}

std::string ChildProcess::log() const {
    return read_file(log_path_);
}

}  // namespace photorig::test
