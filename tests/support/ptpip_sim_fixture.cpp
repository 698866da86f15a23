#include "support/ptpip_sim_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace photorig::test {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Finds "KEY <number>" at the start of a line in `text`; 0 when absent.
int find_port(const std::string& text, const std::string& key) {
    size_t pos = 0;
    while ((pos = text.find(key + " ", pos)) != std::string::npos) {
        if (pos == 0 || text[pos - 1] == '\n') {
            size_t end = text.find('\n', pos);
            if (end == std::string::npos) return 0;  // line not complete yet
            return std::atoi(text.c_str() + pos + key.size() + 1);
        }
        pos += key.size();
    }
    return 0;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

SimKind sim_kind_from_env() {
    const char* v = std::getenv("PHOTORIG_TEST_SIM");
    return v && std::string(v) == "sim2" ? SimKind::sim2 : SimKind::ours;
}

const char* sim_kind_name(SimKind kind) {
    return kind == SimKind::sim2 ? "sim2" : "ours";
}

std::string sim_binary(SimKind kind) {
    if (kind == SimKind::sim2) {
#ifdef PHOTORIG_PTPIP_SIM2_PATH
        return PHOTORIG_PTPIP_SIM2_PATH;
#else
        throw std::logic_error("PHOTORIG_PTPIP_SIM2_PATH is not defined in this build");
#endif
    }
#ifdef PHOTORIG_PTPIP_SIM_PATH
    return PHOTORIG_PTPIP_SIM_PATH;
#else
    throw std::logic_error("PHOTORIG_PTPIP_SIM_PATH is not defined in this build");
#endif
}

PtpipSim::PtpipSim(std::string binary, std::vector<std::string> extra_args, std::string log_path)
    : binary_(std::move(binary)),
      extra_args_(std::move(extra_args)),
      log_path_(std::move(log_path)) {}

PtpipSim::PtpipSim(SimKind kind, std::vector<std::string> extra_args, std::string log_path)
    : PtpipSim(sim_binary(kind), std::move(extra_args), std::move(log_path)) {}

PtpipSim::~PtpipSim() {
    try {
        stop();
    } catch (...) {
    }
}

std::string PtpipSim::port_string() const {
    return "ptpip:127.0.0.1:" + std::to_string(port_) + ":" + std::to_string(port_);
}

void PtpipSim::start() {
    if (pid_ > 0) throw std::logic_error("ptpip-sim already running");
    std::vector<std::string> args{binary_};
    if (ends_with(binary_, ".py")) {
        // -S: no site-packages scan, the script needs the standard library only.
#ifdef PHOTORIG_PYTHON3
        args = {PHOTORIG_PYTHON3, "-S", binary_};
#else
        args = {"python3", "-S", binary_};
#endif
    }
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    // The simulator takes the last value of a repeated flag, so these win.
    args.insert(args.end(),
                {"--port", std::to_string(port_), "--control-port", std::to_string(control_port_)});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    ::fcntl(out[0], F_SETFD, FD_CLOEXEC);
    ::fcntl(out[1], F_SETFD, FD_CLOEXEC);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::setpgid(0, 0);
#ifdef __linux__
        // A test process that dies without running destructors must not leave the
        // simulator behind (holding ctest's output pipe open): SIGTERM it when the thread
        // that started it exits.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(127);
#else
        (void)parent;
#endif
        ::dup2(out[1], 1);
        if (!log_path_.empty()) {
            int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) ::dup2(fd, 2);
        }
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::execvp(argv[0], argv.data());
        const char msg[] = "ptpip-sim fixture: exec failed\n";
        ssize_t w = ::write(2, msg, sizeof msg - 1);
        (void)w;
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also from the parent, so kill(-pid) works at once
    ::close(out[1]);
    pid_ = pid;

    std::string text;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    int port = 0, control = 0;
    bool eof = false;
    while (!(port && control) && !eof && remaining_ms(deadline) > 0) {
        pollfd pfd{out[0], POLLIN, 0};
        int r = ::poll(&pfd, 1, remaining_ms(deadline));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        char buf[256];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof = true;
            break;
        }
        text.append(buf, static_cast<size_t>(n));
        port = find_port(text, "LISTENING");
        control = find_port(text, "CONTROL");
    }
    ::close(out[0]);
    if (!(port && control)) {
        int code = stop(std::chrono::milliseconds(500));
        throw std::runtime_error(
            "ptpip-sim did not start (" + binary_ + ", exit " + std::to_string(code) +
            (log_path_.empty() ? "" : ", log " + log_path_) + "), output: " + text);
    }
    port_ = port;
    control_port_ = control;
}

int PtpipSim::reap(bool block) {
    if (pid_ <= 0) return exit_code_;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        pid_ = -1;
    } else if (r < 0) {  // not our child any more (reaped elsewhere)
        pid_ = -1;
        exit_code_ = -1;
    }
    return exit_code_;
}

bool PtpipSim::running() {
    reap(false);
    return pid_ > 0;
}

int PtpipSim::stop(std::chrono::milliseconds grace) {
    if (!running()) return 0;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + grace;
    while (running() && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        reap(true);
    }
    return exit_code_;
}

void PtpipSim::kill9() {
    if (!running()) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
}

void PtpipSim::restart() {
    stop();
    // The simulator binds with SO_REUSEADDR, so the same ports are free at once; retry a
    // little anyway in case something else grabbed one in between.
    for (int attempt = 0;; ++attempt) {
        try {
            start();
            return;
        } catch (const std::runtime_error&) {
            if (attempt >= 10) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
}

std::string PtpipSim::control(const std::string& cmd) {
    if (control_port_ <= 0) throw std::runtime_error("ptpip-sim: no control port (not started)");
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(control_port_));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int e = errno;
        ::close(fd);
        throw std::runtime_error("ptpip-sim control connect: " + std::string(std::strerror(e)));
    }
    std::string line = cmd + "\n";
    size_t sent = 0;
    while (sent < line.size()) {
        ssize_t w = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            ::close(fd);
            throw std::runtime_error("ptpip-sim control send failed");
        }
        sent += static_cast<size_t>(w);
    }
    std::string answer;
    char buf[512];
    while (answer.find('\n') == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("ptpip-sim control: no answer to '" + cmd + "'");
        }
        answer.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    answer.erase(answer.find('\n'));
    if (!answer.empty() && answer.back() == '\r') answer.pop_back();
    return answer;
}

}  // namespace photorig::test
