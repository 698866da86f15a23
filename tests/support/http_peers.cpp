#include "support/http_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/test_util.h"

namespace photorig::test {

std::string find_program(const std::string& program) {
    auto executable = [](const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
    };
    if (program.find('/') != std::string::npos)
        return executable(program) ? program : std::string();
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/" + program;
        if (executable(candidate)) return candidate;
    }
    return std::string();
}

std::string missing_program_message(const std::string& program, const std::string& package) {
    return program + " is missing (" + package +
           "): install the test dependencies with deploy/install-deps.sh --with-tests";
}

std::string node_tool(const std::string& tool) {
    std::string p = std::string(PHOTORIG_SOURCE_DIR) + "/tests/node_modules/.bin/" + tool;
    return ::access(p.c_str(), X_OK) == 0 ? p : std::string();
}

std::string http_peers_script() {
    return std::string(PHOTORIG_SOURCE_DIR) + "/tests/support/http_peers.py";
}

std::string python3_program() {
    // Debian's python3 first: the tests use only its standard library.
    if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
    return find_program("python3");
}

bool wait_tcp_port(int port, std::chrono::milliseconds timeout) {
    return wait_until([&] { return loopback_port_accepts(port); }, timeout,
                      std::chrono::milliseconds(25));
}

int wait_port_line(const std::string& log_path, std::chrono::milliseconds timeout) {
    int port = -1;
    wait_until(
        [&] {
            std::ifstream in(log_path);
            std::string line;
            while (std::getline(in, line)) {
                if (line.rfind("PORT=", 0) == 0) {
                    port = std::atoi(line.c_str() + 5);
                    return port > 0;
                }
            }
            return false;
        },
        timeout, std::chrono::milliseconds(20));
    return port;
}

TcpProxy::TcpProxy(int upstream_port) : upstream_port_(upstream_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0)
        throw std::runtime_error("TcpProxy: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

TcpProxy::~TcpProxy() {
    stop_.store(true);
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& t : pumps_) t.join();
}

void TcpProxy::accept_loop() {
    while (!stop_.load()) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        connections_.fetch_add(1);
        if (refuse_.load()) {
            ::close(client);
            continue;
        }
        int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
        if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(upstream);
            ::close(client);
            continue;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        pumps_.emplace_back([this, client, upstream] { pump(client, upstream); });
    }
}

void TcpProxy::pump(int client, int upstream) {
    const uint64_t cut = cut_after_.load();
    uint64_t up = 0;
    std::vector<char> buf(256 * 1024);
    bool open = true;
    while (open && !stop_.load()) {
        if (stall_.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
        int n = ::poll(fds, 2, 100);
        if (n <= 0) continue;
        for (int i = 0; i < 2 && open; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int from = fds[i].fd, to = i == 0 ? upstream : client;
            size_t want = buf.size();
            if (i == 0 && cut > 0) want = static_cast<size_t>(std::min<uint64_t>(want, cut - up));
            ssize_t r = ::recv(from, buf.data(), want, 0);
            if (r <= 0) {
                open = false;
                break;
            }
            size_t off = 0;
            while (off < static_cast<size_t>(r)) {
                ssize_t w =
                    ::send(to, buf.data() + off, static_cast<size_t>(r) - off, MSG_NOSIGNAL);
                if (w <= 0) {
                    open = false;
                    break;
                }
                off += static_cast<size_t>(w);
            }
            if (i == 0) {
                up += static_cast<uint64_t>(r);
                bytes_up_.fetch_add(static_cast<uint64_t>(r));
                if (cut > 0 && up >= cut) open = false;  // the network goes away mid-request
            }
        }
    }
    // An abortive close on the client side (RST), as a dropped link looks to the sender.
    linger lg{1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(client);
    ::close(upstream);
}

}  // namespace photorig::test
