// The agent service: wires the rig's parts together and runs the service loop.
//
//   RequestRouter    requests -> handlers; refusals answered with errors
//   CapturePipeline  capture orders: cameras -> spool -> metadata and upload jobs
//   CameraRequests   config/get, config/set, preview
//   ScanRunner       turntable scans (through the pipeline)
//   SpoolReconciler  re-offers spooled files the uploader has not finished
//   StatePublisher   state, availability, camera availability, telemetry, HA discovery
//
// Threads: Paho's callback thread only pushes onto `events_`; the service thread (run())
// owns all state and answers requests; one capture thread runs capture orders in turn;
// each camera has its own worker thread (camera::CameraWorker).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/clock_sync.h"
#include "core/expected.h"
#include "core/queue.h"
#include "mqtt/client.h"
#include "protocol/scan.h"
#include "protocol/topics.h"
#include "protocol/wire.h"
#include "rig/camera_set.h"
#include "rig/rig_stats.h"
#include "service/systemd_notify.h"

namespace photorig::spool {
class Spool;
}

namespace photorig::rig {

class CameraRequests;
class CapturePipeline;
class JobPublisher;
class MqttPublisher;
class RequestGate;
class RequestRouter;
class Responder;
class ScanRunner;
class SpoolReconciler;
class StatePublisher;

class RigService {
  public:
    explicit RigService(config::Config config);
    ~RigService();

    // Opens the spool and cameras and connects to the broker (retrying in the background).
    Status start();
    // Serves until `stop` becomes true; then publishes `offline` and disconnects.
    void run(const std::atomic<bool>& stop);

  private:
    void connect_parts();
    void route_requests();
    void start_scans();
    void handle_event(const mqtt::Event& event);
    void handle_message(const mqtt::Event& event);
    // A retained request or scan/ready would act again on every reconnect: it is taken
    // back (an empty retained message on its topic) and the echo of that is ignored.
    bool clear_retained(const mqtt::Message& message);
    bool is_echo_of_clear(const mqtt::Message& message);
    // A request read before the client is back online (a persistent session delivers what
    // waited at the broker right after CONNACK) waits here for the `connected` Event, so
    // its answer is not dropped by publish_nowait().
    void defer_until_connected(const mqtt::Event& event);
    void on_bridge_state(const mqtt::Message& message);
    Expected<std::optional<std::string>> handle_capture(const mqtt::Message& message,
                                                        const std::string& verb,
                                                        const std::string& txn);
    Expected<std::optional<std::string>> handle_scan(const mqtt::Message& message,
                                                     const std::string& txn);
    Status deliver_manifest(const protocol::ScanRecord& record);
    void stop_capturing();
    // systemd: STATUS= (when something changed, at most once a second, and every 10 s) and
    // watchdog pets while every camera thread comes back from its calls in time.
    void notify_systemd(int64_t now);
    std::string status_line() const;

    config::Config config_;
    service::SystemdNotifier notifier_;
    bool status_dirty_ = true;
    int64_t next_status_ms_ = 0, status_refresh_ms_ = 0;
    protocol::RigTopics topics_;
    protocol::Limits limits_;
    RigStats stats_;
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> mqtt_;
    std::unique_ptr<MqttPublisher> publisher_;
    std::unique_ptr<spool::Spool> spool_;
    CameraSet cameras_;
    std::unique_ptr<Responder> responder_;
    std::unique_ptr<JobPublisher> jobs_;
    std::unique_ptr<SpoolReconciler> reconciler_;
    std::unique_ptr<StatePublisher> state_;
    std::unique_ptr<CapturePipeline> pipeline_;
    std::unique_ptr<RequestGate> gate_;
    std::unique_ptr<RequestRouter> router_;
    std::set<std::string> clearing_;  // topics whose retained message we just took back
    std::vector<mqtt::Event> deferred_;
    clock::SyncSource clock_source_ = clock::read_sync_status;
    std::optional<protocol::AgentState::Bridge> bridge_;  // from base/bridge/state
    std::unique_ptr<ScanRunner> scan_;
    // Declared last: destroyed (and drained) first, while the workers still answer.
    std::unique_ptr<CameraRequests> camera_requests_;
};

}  // namespace photorig::rig
