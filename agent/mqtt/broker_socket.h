// The TCP socket Paho C opened to the broker, found and tuned from outside (Linux).
//
// Why: Paho C 1.3.11 sets neither TCP_NODELAY nor anything else on its socket and offers no
// handle on it (no socket callback in MQTTAsync.h nor in Paho C++ 1.2). Two kernel timers
// then sit between a dashboard's request and the camera when the broker keeps Nagle on
// (mosquitto without `set_tcp_nodelay true`: Debian's stock config, Home Assistant's add-on):
//
//   - the broker's Nagle: it holds a small packet for us while an earlier small one (say the
//     PUBACK of our last response) is not yet acknowledged;
//   - our delayed ACK: in its interactive ("pingpong") mode Linux holds the ACK of a packet
//     received right after we sent one for up to 40 ms, hoping to piggyback it on our next
//     packet. After a response nothing else goes out, so the next request waits ~40 ms.
//
// Measured on loopback (docs/latency.md): request -> InitiateCapture p50 44 ms without
// set_tcp_nodelay, 0.4 ms with it. The cure on our side is to never leave the broker's
// packets unacknowledged: TCP_QUICKACK sends a pending delayed ACK at once and leaves
// pingpong mode. It is not sticky (the kernel re-enters pingpong mode as soon as we answer
// within the ACK timeout), so the client re-arms it each time the broker has sent us
// something we can see: a message, a PUBACK/PUBCOMP, a SUBACK (mqtt/client.cpp).
#pragma once

#include <string>
#include <vector>

namespace photorig::mqtt::broker_socket {

// A connected TCP socket of this process: its descriptor and its local port (a descriptor
// number alone is reused after a close; the pair identifies one connection).
struct Tcp {
    int fd = -1;
    int local_port = 0;
    bool operator==(const Tcp& o) const { return fd == o.fd && local_port == o.local_port; }
};

// This process's connected TCP sockets whose peer port is `peer_port` (any address: the
// host name was resolved by Paho). Scans /proc/self/fd; empty where there is none.
std::vector<Tcp> connected_to(int peer_port);

// Those of `after` not in `before`: the connection(s) opened in between.
std::vector<Tcp> opened_between(const std::vector<Tcp>& before, const std::vector<Tcp>& after);

// Nagle off: our small packets (responses, jobs, PUBACKs) leave at once.
void set_nodelay(int fd);

// Sends a pending delayed ACK now and leaves pingpong mode (TCP_QUICKACK 1), or enters it
// (false: ACKs delayed again, as the kernel does for interactive traffic). Returns false
// when the descriptor is no longer a TCP socket (closed and perhaps reused): harmless.
bool quick_ack(int fd, bool on = true);

}  // namespace photorig::mqtt::broker_socket
