// A fleet of photorig installations for one test or benchmark: a central broker
// (broker/run-broker.sh --central: TLS listener with client certificates from
// deploy/fleet-certs.sh, password listener for the dashboard user) and N rigs, each a
// RigHarness whose own broker bridges to the central one (run-broker.sh --bridge-to), in
// group `all`. An observer on the central broker (the dashboard user, with a persistent
// session so a central restart loses nothing it was sent) records every message under
// `photorig/#` with its arrival time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "harness/rig_harness.h"
#include "support/child_process.h"
#include "support/test_util.h"

namespace photorig::test {

struct FleetOptions {
    std::string group = "all";
    bool uploaders = true;  // start each rig's rig-uploader (benchmarks may leave them out)
    HarnessOptions rig;     // template for every rig (rig_id, broker and groups are set here)
};

// What the central broker's observer received (`at`: when it got the message).
using CentralMessage = Received;

class FleetHarness {
  public:
    explicit FleetHarness(FleetOptions options = {});
    ~FleetHarness();

    void start_central();  // certificates (first time), central broker, observer
    void kill9_central();
    void restart_central();  // same ports, data dir and persistence after a kill9
    // Starts `n` more rigs bridged to the central broker; returns once each one answers a
    // `status` request sent on the central broker (bridge up in both directions).
    void add_rigs(size_t n);

    size_t rig_count() const { return rigs_.size(); }
    RigHarness& rig(size_t i) { return *rigs_.at(i); }
    static std::string rig_id_of(size_t i);  // rig01 for 0
    ChildProcess& central() { return *central_; }
    int central_port() const { return central_port_; }
    int central_tls_port() const { return central_tls_port_; }
    std::string cert_dir() const { return root_.path() + "/certs"; }
    std::string central_dir() const { return root_.path() + "/central"; }
    // Publishes on the central broker as the dashboard user (QoS 1, waits for PUBACK).
    void publish_central(const std::string& topic, const std::string& payload);
    std::vector<CentralMessage> received(const std::string& topic) const;  // "" = all
    void clear_received();
    bool wait_count(const std::string& topic, size_t n,
                    const std::function<bool(const CentralMessage&)>& pred,
                    std::chrono::milliseconds timeout);

  private:
    void make_certs(const std::vector<std::string>& rig_ids);
    void start_observer();
    void wait_rig_ready(const std::string& rig_id);

    FleetOptions options_;
    TempDir root_;
    int central_port_ = 0, central_tls_port_ = 0;
    std::unique_ptr<ChildProcess> central_;
    std::vector<std::unique_ptr<RigHarness>> rigs_;

    MessageRecorder observer_;  // the dashboard user on the central broker
};

// CPU time (utime + stime, ms) a process has used, from /proc/<pid>/stat; -1 when gone.
long cpu_ms(pid_t pid);

}  // namespace photorig::test
