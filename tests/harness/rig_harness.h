// An isolated photorig installation for one test: the product's broker (broker/run-broker.sh,
// with its password file and ACL) on a free port, a PTP/IP camera simulator, the real
// rig-agent and rig-uploader binaries with a generated config, and an observer client
// that records every message under the rig's base topic.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/queue.h"
#include "harness/message_recorder.h"
#include "mqtt/client.h"
#include "support/child_process.h"
#include "support/ptpip_sim_fixture.h"
#include "support/test_util.h"

namespace photorig::test {

class RigHarness;

struct HarnessOptions {
    std::string rig_id = "rig1";
    int capture_delay_ms = 0;
    int image_size = 200000;
    uint64_t bandwidth_limit = 0;  // uploader's bytes/s; 0 = unlimited
    int reoffer_after_s = 120;
    int reconcile_interval_s = 30;
    int concurrency = 2;
    std::vector<std::string> sim_args;
    // More arguments for one simulator only: [i] goes to camera i (after sim_args).
    std::vector<std::vector<std::string>> sim_args_of;
    // Which PTP/IP simulator plays the cameras; unset: PHOTORIG_TEST_SIM (sim2) or ours.
    // sim2 keeps its own capture time unless capture_delay_ms is set (> 0).
    std::optional<SimKind> sim_kind;
    std::string extra_yaml;
    std::vector<std::string> extra_subscriptions;  // observer filters beyond <base>/#
    // Several simulated cameras (serials SIM0001, SIM0002, ...): the config then uses the
    // list form of `camera:`, each item with `camera_item_yaml` (flow-style keys) added.
    int camera_count = 1;
    int capture_timeout_ms = 5000;
    std::string camera_item_yaml;
    std::string top_yaml;     // inserted before `camera:` (e.g. camera_presets)
    bool websockets = false;  // also start the broker's websockets listener (browsers, MQTT.js)
    std::string upload_target = "local";  // upload.target
    std::string upload_yaml;  // more keys inside the upload section, indented by two spaces
    std::string spool_yaml;   // more keys inside the spool section, indented by two spaces
    uint64_t min_free_bytes = 1048576;  // spool.min_free_bytes
    // The broker without photorig's socket and save tuning (run-broker.sh --stock-tuning),
    // like Debian's stock config; unset: PHOTORIG_BENCH_BROKER=stock in the environment.
    std::optional<bool> stock_broker;
    // More environment for the daemons ("NOTIFY_SOCKET=...", "WATCHDOG_USEC=...").
    std::vector<std::string> agent_env, uploader_env;
    // Several rigs on one broker, as behind a central one (rigctl fleet): this rig uses the
    // broker of `broker_of` (which must outlive it) instead of starting its own. The broker's
    // ACL lets photorig-uploader serve only the rig it was started for, so the uploader of
    // any other rig logs in as photorig-agent.
    const RigHarness* broker_of = nullptr;
    bool with_uploader = true;  // start_all starts rig-uploader
    // More arguments for broker/run-broker.sh (a fleet rig's --bridge-to ...).
    std::vector<std::string> broker_args;
    // After the observer connects, publish a probe until it comes back. Not needed:
    // connect() returns once the SUBACKs are in. And the dashboard user may not publish
    // the probe's topic, so it would wait the full 5 s every time; off unless asked for.
    bool observer_probe = false;
};

// Matches a JSON response whose "transaction" is `transaction` (for RigHarness::wait_for).
std::function<bool(const Received&)> transaction_is(const std::string& transaction);

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
    PtpipSim& sim() { return *sims_.at(0); }
    PtpipSim& sim(size_t i) { return *sims_.at(i); }
    size_t sim_count() const { return sims_.size(); }
    static std::string serial_of(size_t i);  // SIM0001 for 0

    std::string base() const { return "photorig/" + options_.rig_id; }
    const std::string& rig_id() const { return options_.rig_id; }
    bool stock_broker() const;  // started with run-broker.sh --stock-tuning
    int broker_port() const { return broker_port_; }
    int ws_port() const { return ws_port_; }                   // 0 unless options.websockets
    std::string password_file(const std::string& user) const;  // the broker's 0600 file for `user`
    std::string password(const std::string& user) const;  // photorig-agent | -uploader | -dashboard
    // Environment for mosquitto_pub/_sub as the dashboard user: the user and password come
    // from an options file (XDG_CONFIG_HOME), never from the command line.
    std::vector<std::string> dashboard_cli_env() const;
    const std::string& config_path() const { return config_path_; }
    std::string spool_dir() const { return root_.path() + "/spool"; }
    std::string upload_dir() const { return root_.path() + "/uploads"; }
    std::string root() const { return root_.path(); }

    // Publishes like a user would: mosquitto_pub, MQTT 3.1.1, as the dashboard user.
    void pub_cli(const std::string& topic, const std::string& payload);
    // Publishes through the observer's own v5 connection (response topic + correlation data).
    void pub_v5(const std::string& topic, const std::string& payload,
                const std::string& response_topic, const std::string& correlation);

    // A client of the rig's broker connected as `user` (photorig-agent publishes upload
    // jobs, as the agent does); its events go to `events`. Throws when it cannot connect.
    std::unique_ptr<mqtt::Client> connect_as(const std::string& user, const std::string& client_id,
                                             MessageQueue<mqtt::Event>& events);

    std::vector<Received> received(const std::string& topic) const;  // "" = every message
    void clear_received();
    // Waits until a message on `topic` satisfies `pred`; returns it (or empty topic on timeout).
    // Looks every `step` (a benchmark timing a response wants 1 ms, not the 20 ms default).
    Received wait_for(const std::string& topic, const std::function<bool(const Received&)>& pred,
                      std::chrono::milliseconds timeout,
                      std::chrono::milliseconds step = std::chrono::milliseconds(20));
    // Waits until `n` messages on `topic` satisfy `pred`.
    bool wait_count(const std::string& topic, size_t n,
                    const std::function<bool(const Received&)>& pred,
                    std::chrono::milliseconds timeout);

    std::vector<std::string> uploaded_files() const;  // photos in the local target (no temp files)
    std::vector<std::string> spooled_files() const;   // photos still in the spool
    std::vector<std::string> kept_files() const;      // uploaded photos kept in <spool>/.uploaded

  private:
    void write_config();
    std::string broker_dir() const;
    std::string uploader_user() const;
    void start_observer();

    HarnessOptions options_;
    TempDir root_;
    int broker_port_ = 0;
    int ws_port_ = 0;
    std::string config_path_;
    std::unique_ptr<ChildProcess> broker_, agent_, uploader_;
    std::vector<std::unique_ptr<PtpipSim>> sims_;

    MessageRecorder observer_;  // the dashboard user on the rig's broker
};

}  // namespace photorig::test
