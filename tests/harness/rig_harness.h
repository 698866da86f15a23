// An isolated photorig installation for one test: the product's broker (broker/run-broker.sh,
// with its password file and ACL) on a free port, a PTP/IP camera simulator, the real
// rig-agent and rig-uploader binaries with a generated config, and an observer client
// that records every message under the rig's base topic.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/queue.h"
#include "mqtt/client.h"
#include "support/child_process.h"
#include "support/ptpip_sim_fixture.h"
#include "support/test_util.h"

namespace photorig::test {

struct HarnessOptions {
    std::string rig_id = "rig1";
    int capture_delay_ms = 0;
    int image_size = 200000;
    uint64_t bandwidth_limit = 0;  // uploader's bytes/s; 0 = unlimited
    int reoffer_after_s = 120;
    int reconcile_interval_s = 30;
    int concurrency = 2;
    std::vector<std::string> sim_args;
    std::string extra_yaml;
    std::string upload_target = "local";  // upload.target
    std::string upload_yaml;  // more keys inside the upload section, indented by two spaces
};

struct Received {
    std::string topic, payload, correlation_data;
    bool retained = false;
};

class RigHarness {
public:
    explicit RigHarness(HarnessOptions options = {});
    ~RigHarness();

    void start_all();  // broker, simulator, observer, uploader, agent; waits for availability
    void start_broker();
    void stop_broker();
    void kill9_broker();
    void start_sim();
    void start_agent(bool wait_online = true);
    void start_uploader(bool wait_online = true);
    ChildProcess& agent() { return *agent_; }
    ChildProcess& uploader() { return *uploader_; }
    PtpipSim& sim() { return *sim_; }

    std::string base() const { return "photorig/" + options_.rig_id; }
    int broker_port() const { return broker_port_; }
    std::string password(const std::string& user) const;  // photorig-agent | -uploader | -dashboard
    const std::string& config_path() const { return config_path_; }
    std::string spool_dir() const { return root_.path() + "/spool"; }
    std::string upload_dir() const { return root_.path() + "/uploads"; }
    std::string root() const { return root_.path(); }

    // Publishes like a user would: mosquitto_pub, MQTT 3.1.1, as the dashboard user.
    void pub_cli(const std::string& topic, const std::string& payload);
    // Publishes through the observer's own v5 connection (response topic + correlation data).
    void pub_v5(const std::string& topic, const std::string& payload, const std::string& response_topic,
                const std::string& correlation);

    std::vector<Received> received(const std::string& topic) const;
    void clear_received();
    // Waits until a message on `topic` satisfies `pred`; returns it (or empty topic on timeout).
    Received wait_for(const std::string& topic, const std::function<bool(const Received&)>& pred,
                      std::chrono::milliseconds timeout);
    // Waits until `n` messages on `topic` satisfy `pred`.
    bool wait_count(const std::string& topic, size_t n, const std::function<bool(const Received&)>& pred,
                    std::chrono::milliseconds timeout);

    std::vector<std::string> uploaded_files() const;  // photos in the local target (no temp files)
    std::vector<std::string> spooled_files() const;   // photos still in the spool

private:
    void write_config();
    void start_observer();

    HarnessOptions options_;
    TempDir root_;
    int broker_port_ = 0;
    std::string config_path_;
    std::unique_ptr<ChildProcess> broker_, agent_, uploader_;
    std::unique_ptr<PtpipSim> sim_;

    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> observer_;
    std::thread observer_thread_;
    std::atomic<bool> observer_stop_{false};
    mutable std::mutex mutex_;
    std::vector<Received> received_;
};

}  // namespace photorig::test
