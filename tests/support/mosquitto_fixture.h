// A real mosquitto broker for tests: its own process on a free 127.0.0.1 port, its own
// data dir (persistence survives stop()/start() and restart() on the same port), its log
// in a file. No gtest here: failures throw std::runtime_error with the broker's log.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/test_util.h"

namespace photorig::test {

class Mosquitto {
  public:
    struct Options {
        // With autosave_on_changes true + autosave_interval 1: a kill9() loses nothing, but
        // every change rewrites the whole database (1500 messages queued for an offline
        // client take ~3 s instead of 0.3 s). Turn it off for bulk tests that need no restart.
        bool persistence = true;
        // With persistence: save on every change (as broker/mosquitto.conf.in), or only at
        // mosquitto's default interval (30 min; Debian's stock config, Home Assistant's
        // add-on). Each save rewrites and fsyncs the database: 0.2-18 ms per message on a
        // busy disk, in the broker's only thread.
        bool autosave_on_changes = true;
        int max_queued_messages =
            100000;                 // per offline persistent client (mosquitto's default: 1000)
        std::string password_file;  // empty (and acl_file empty): allow_anonymous true
        std::string acl_file;
        std::vector<std::string> extra_lines;  // appended verbatim to the generated config
        bool websockets = false;  // adds `listener <ws_port> 127.0.0.1` + protocol websockets
        // true: `set_tcp_nodelay true`, as photorig's broker/mosquitto.conf.in. false (the
        // default): mosquitto's own default, Nagle on, as in Debian's stock config, Home
        // Assistant's Mosquitto add-on and most existing brokers (a 40 ms trap: README,
        // "Using an existing broker").
        bool tcp_nodelay = false;
    };

    Mosquitto();
    explicit Mosquitto(Options options);
    ~Mosquitto();  // stops the broker (SIGTERM) and removes its data dir
    Mosquitto(const Mosquitto&) = delete;
    Mosquitto& operator=(const Mosquitto&) = delete;

    // First call: picks free ports (retrying on a bind failure) and writes the config.
    // Later calls (after stop()/kill9()): same ports, same config, same data dir.
    // Returns once the port accepts connections; throws after 5 s.
    void start();
    void stop();     // SIGTERM (mosquitto saves its database), waits for the exit
    void kill9();    // SIGKILL: loses whatever was not autosaved yet
    void restart();  // stop() + start()
    bool running();

    int port() const { return port_; }
    int ws_port() const { return ws_port_; }  // 0 unless Options::websockets
    std::string host() const { return "127.0.0.1"; }
    std::string log_path() const { return dir_.file("mosquitto.log"); }
    std::string log() const;  // the broker's log so far
    std::string config_path() const { return dir_.file("mosquitto.conf"); }
    std::string data_dir() const { return dir_.path() + "/data"; }

  private:
    void write_config();
    bool try_start(std::string* why);

    Options options_;
    TempDir dir_;
    int port_ = 0;
    int ws_port_ = 0;
    std::unique_ptr<ChildProcess> process_;
};

}  // namespace photorig::test
