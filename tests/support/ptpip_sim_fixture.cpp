#include "support/ptpip_sim_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace photorig::test {

PtpipSim::PtpipSim(std::string path, std::vector<std::string> args) : path_(std::move(path)), args_(std::move(args)) {}

PtpipSim::~PtpipSim() { stop(); }

std::string PtpipSim::port_string() const {
    return "ptpip:127.0.0.1:" + std::to_string(port_) + ":" + std::to_string(port_);
}

void PtpipSim::start() {
    if (pid_ > 0) return;
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(fds[1], 1);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<std::string> argv{"python3", path_, "--port", std::to_string(port_), "--control-port",
                                      std::to_string(control_port_)};
        argv.insert(argv.end(), args_.begin(), args_.end());
        std::vector<char*> v;
        for (auto& s : argv) v.push_back(s.data());
        v.push_back(nullptr);
        ::execvp(v[0], v.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    // Read "LISTENING p\nCONTROL c\n" with a deadline.
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (out.find("CONTROL") == std::string::npos || out.find('\n', out.find("CONTROL")) == std::string::npos) {
        pollfd p{fds[0], POLLIN, 0};
        int left = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
        if (left <= 0 || ::poll(&p, 1, left) <= 0) break;
        char buf[256];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    int p = 0, c = 0;
    if (std::sscanf(out.c_str(), "LISTENING %d\nCONTROL %d", &p, &c) != 2) {
        stop();
        throw std::runtime_error("ptpip simulator did not start (" + path_ + "): " + out);
    }
    port_ = p;
    control_port_ = c;
}

void PtpipSim::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill9();
}

void PtpipSim::kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void PtpipSim::restart() {
    kill9();
    // The port may linger briefly; the simulator sets SO_REUSEADDR, retry a few times.
    for (int attempt = 0;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::exception&) {
            if (attempt >= 20) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

std::string PtpipSim::control(const std::string& command) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(control_port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot reach the simulator's control port");
    }
    std::string line = command + "\n";
    if (::write(fd, line.data(), line.size()) < 0) {
        ::close(fd);
        return "";
    }
    std::string reply;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        reply.append(buf, static_cast<size_t>(n));
        if (reply.find('\n') != std::string::npos) break;
    }
    ::close(fd);
    while (!reply.empty() && reply.back() == '\n') reply.pop_back();
    return reply;
}

}  // namespace photorig::test
