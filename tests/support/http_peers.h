// Peers for the HTTP upload-target tests: finding server programs (a missing one is a
// test FAILURE that names deploy/install-deps.sh --with-tests, never a silent skip),
// waiting for a child's port, and a fault-injecting TCP proxy that can cut a connection
// after N request bytes, refuse connections, or stall (a network outage on loopback).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace photorig::test {

// Absolute path of `program` found on PATH (or an absolute path that is executable), else "".
std::string find_program(const std::string& program);
// The message a test fails with when a peer program is missing.
std::string missing_program_message(const std::string& program, const std::string& package);
// Path of tests/node_modules/.bin/<tool> in the source tree, "" when absent.
std::string node_tool(const std::string& tool);

// True once 127.0.0.1:port accepts a TCP connection.
bool wait_tcp_port(int port, std::chrono::milliseconds timeout);
// Waits for a "PORT=<n>" line in a log file (as tests/support/http_peers.py and
// tests/fakes/sigv4_proxy.py print it); -1 on timeout.
int wait_port_line(const std::string& log_path, std::chrono::milliseconds timeout);
// The tests/support/http_peers.py script and the python3 to run it with.
std::string http_peers_script();
std::string python3_program();

class TcpProxy {
  public:
    explicit TcpProxy(int upstream_port);
    ~TcpProxy();
    TcpProxy(const TcpProxy&) = delete;
    TcpProxy& operator=(const TcpProxy&) = delete;

    int port() const { return port_; }
    // Every connection is dropped (both sides closed) once it has forwarded this many
    // client->server bytes; 0 = never. Applies to connections opened afterwards.
    void set_cut_after(uint64_t bytes) { cut_after_.store(bytes); }
    // New connections are accepted and closed at once (a peer that is down).
    void set_refuse(bool refuse) { refuse_.store(refuse); }
    // Nothing is forwarded while stalled (a black hole: bytes wait in the buffers).
    void set_stall(bool stall) { stall_.store(stall); }
    uint64_t connections() const { return connections_.load(); }
    uint64_t bytes_up() const { return bytes_up_.load(); }  // client->server, all connections

  private:
    void accept_loop();
    void pump(int client, int upstream);

    int upstream_port_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> cut_after_{0};
    std::atomic<bool> refuse_{false};
    std::atomic<bool> stall_{false};
    std::atomic<uint64_t> connections_{0};
    std::atomic<uint64_t> bytes_up_{0};
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<std::thread> pumps_;
};

}  // namespace photorig::test
