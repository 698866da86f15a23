// The agent service: routes MQTT requests to camera workers, writes photos to the spool,
// publishes their metadata and upload jobs, keeps `state` and `availability` current and
// re-offers spooled files the uploader has not finished.
//
// Threads: Paho's callback thread only pushes onto `events_`; the service thread (run())
// owns all state and answers requests; one capture thread runs capture orders in turn;
// each camera has its own worker thread (camera::CameraWorker).
#pragma once

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/expected.h"
#include "core/queue.h"
#include "core/serial_executor.h"
#include "mqtt/client.h"
#include "protocol/types.h"
#include "protocol/wire.h"
#include "rig/scan_runner.h"

namespace photorig::camera {
class CameraWorker;
}
namespace photorig::spool {
class Spool;
class SpoolWriter;
}  // namespace photorig::spool

namespace photorig::rig {

class RigService {
  public:
    explicit RigService(config::Config config);
    ~RigService();

    // Opens the spool and cameras and connects to the broker (retrying in the background).
    Status start();
    // Serves until `stop` becomes true; then publishes `offline` and disconnects.
    void run(const std::atomic<bool>& stop);

  private:
    struct CaptureOrder {
        protocol::CaptureRequest request;
        std::string transaction_json;
        std::string verb;
        std::string response_topic, correlation_data;
        int seq_offset = 0;  // photos get seq = seq_offset + shot (a scan numbers across steps)
        // Set for a scan's capture: the outcome goes here instead of a response.
        std::shared_ptr<std::promise<ScanRunner::CaptureOutcome>> done;
    };

    void handle_event(const mqtt::Event& event);
    void handle_request(const mqtt::Message& message, const std::string& verb);
    void respond(const std::string& verb, const mqtt::Message& request, const std::string& payload);
    void respond_to(const std::string& verb, const std::string& response_topic,
                    const std::string& correlation_data, const std::string& payload);
    void capture_loop();
    void run_capture(const CaptureOrder& order);
    // Commits a downloaded photo to the spool and writes its sidecar; then publish_photo()
    // sends its metadata and upload job.
    Expected<protocol::CaptureMetadata> spool_photo(const std::string& batch, int seq,
                                                    const protocol::CameraRef& camera,
                                                    const std::string& relative_path,
                                                    int64_t triggered_at_ms, int64_t trigger_ms,
                                                    int64_t download_ms,
                                                    spool::SpoolWriter* writer);
    void publish_photo(const protocol::CaptureMetadata& meta);
    void publish_job(const protocol::CaptureMetadata& meta, bool wait_for_ack = true);
    std::optional<ScanRunner::CaptureOutcome> capture_for_scan(
        const protocol::CaptureRequest& request, int seq_offset);
    Status deliver_manifest(const protocol::ScanRecord& record);
    void handle_scan(const mqtt::Message& message, const std::string& transaction_json);
    void reconcile_spool(bool at_startup);
    protocol::AgentState current_state();
    void publish_state();
    void publish_telemetry();
    void publish_availability(bool online);
    void publish_discovery();  // Home Assistant device discovery (service thread)
    void count_photo(int64_t captured_at_ms);
    static int local_day(int64_t epoch_ms);  // YYYYMMDD in the rig's local time
    std::vector<camera::CameraWorker*> choose_cameras(const std::string& selector, Error* error);
    // config/get, config/set, preview: one camera ("" = the only one).
    camera::CameraWorker* choose_one_camera(const std::string& serial, Error* error);
    void handle_camera_request(const mqtt::Message& message, const std::string& verb,
                               const std::string& txn);
    // Publishes base/camera/<serial>/availability (retained) and a base/event when a camera
    // comes or goes. Polled by the service thread: workers never call into the service.
    void watch_cameras();
    void add_workers_for(const config::CameraConfig& entry);
    std::vector<protocol::CameraRef> camera_refs() const;
    Status check_disk();

    config::Config config_;
    std::string base_;
    protocol::Limits limits_;
    MessageQueue<mqtt::Event> events_;
    std::unique_ptr<mqtt::Client> mqtt_;
    std::unique_ptr<spool::Spool> spool_;
    std::vector<std::unique_ptr<camera::CameraWorker>> cameras_;
    std::map<const camera::CameraWorker*, bool> announced_connected_;  // service thread only
    std::map<const camera::CameraWorker*, std::string> announced_serial_;

    std::unique_ptr<ScanRunner> scan_;
    // Publishes photos' metadata and upload jobs in capture order (capture thread feeds it).
    std::unique_ptr<SerialExecutor> photo_publisher_;
    MessageQueue<CaptureOrder> capture_orders_;
    std::thread capture_thread_;
    std::atomic<bool> capture_busy_{false};
    std::atomic<int> pending_orders_{0};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> state_dirty_{true};

    // Re-offer bookkeeping (service thread only): job id -> next time it may be offered.
    std::map<std::string, int64_t> next_offer_ms_;
    std::map<std::string, int64_t> offer_backoff_ms_;

    // Counters for telemetry (written by the capture thread).
    std::atomic<uint64_t> photos_total_{0}, capture_errors_total_{0}, jobs_published_{0},
        jobs_reoffered_{0}, requests_total_{0}, request_errors_total_{0};
    int64_t started_ms_ = 0;
    std::mutex photo_day_mutex_;
    int photo_day_ = 0;
    uint64_t photos_today_ = 0;
    int64_t last_capture_at_ms_ = 0;
    std::vector<std::string> discovered_serials_;  // service thread
    bool discovery_cleared_ = false;
    // Waits for camera answers to config/get, config/set and preview off the service thread.
    // Declared last: destroyed (and drained) first, while the workers still answer.
    std::unique_ptr<SerialExecutor> camera_requests_;
    mutable std::mutex last_error_mutex_;
    std::string last_error_;
};

}  // namespace photorig::rig
