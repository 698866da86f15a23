#include "mqtt/broker_socket.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>

namespace photorig::mqtt::broker_socket {
namespace {

int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
    return -1;
}

}  // namespace

std::vector<Tcp> connected_to(int peer_port) {
    std::vector<Tcp> out;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return out;
    while (struct dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        long n = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || n < 0 || n == ::dirfd(dir)) continue;
        const int fd = static_cast<int>(n);
        int type = 0;
        socklen_t len = sizeof type;
        if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
            continue;
        sockaddr_storage peer{}, local{};
        len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
        if (port_of(peer) != peer_port) continue;
        len = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
        out.push_back(Tcp{fd, port_of(local)});
    }
    ::closedir(dir);
    return out;
}

std::vector<Tcp> opened_between(const std::vector<Tcp>& before, const std::vector<Tcp>& after) {
    std::vector<Tcp> out;
    for (const auto& s : after) {
        if (std::find(before.begin(), before.end(), s) == before.end()) out.push_back(s);
    }
    return out;
}

void set_nodelay(int fd) {
    int on = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

bool quick_ack(int fd, bool on) {
    int v = on ? 1 : 0;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v) == 0;
}

}  // namespace photorig::mqtt::broker_socket
