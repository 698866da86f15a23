// Capture orders, one at a time on the capture thread: trigger the chosen cameras, let
// each camera's worker download into spool writers (named by spool::PhotoWriters), then
// two ordered stages off the capture thread: the finisher commits and describes each photo
// (fsyncs, EXIF, sidecar) while the cameras take the next shot, and the publisher sends
// its metadata and upload job (waiting for the PUBACK) while the next photo is finished.
// A lone camera's next shot is posted before the last one is collected (it shoots back to
// back). A request's response follows its last upload job on the wire (published once the
// MQTT client has that job, without waiting for its PUBACK); a scan step's outcome goes to
// the scan instead.
//
// The queue: one per rig, in arrival order. Every order (a specific serial or "all") waits
// in the same queue and the capture thread runs them in turn, so each camera captures in
// the order requests arrived and an "all" shot fires every camera together. Requests are
// bounded by capture.queue_max (memory, not speed: a waiting order is a few hundred
// bytes); past it submit() answers queue_full. Scan steps are never refused (a running
// scan waits for each step before it asks for the next), but they count in the depth.
//
// Threads: enqueue()/capture_for_scan() from any thread; one capture thread; the finisher
// stage (the last shot of an order is committed on the capture thread); the publisher stage.
#pragma once

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/expected.h"
#include "core/queue.h"
#include "core/serial_executor.h"
#include "protocol/types.h"
#include "rig/camera_set.h"
#include "rig/job_publisher.h"
#include "rig/responder.h"
#include "rig/rig_stats.h"
#include "rig/scan_runner.h"
#include "spool/spool.h"

namespace photorig::rig {

struct CaptureOrder {
    protocol::CaptureRequest request;
    std::string transaction_json;
    std::string verb;
    std::string response_topic, correlation_data;
    int seq_offset = 0;  // photos get seq = seq_offset + shot (a scan numbers across steps)
    // Set for a scan's capture: the outcome goes here instead of a response.
    std::shared_ptr<std::promise<ScanRunner::CaptureOutcome>> done;
};

// "20261125-041015-3fa2": the UTC time of `now_ms` and a random tag.
std::string new_batch_id(int64_t now_ms);

// disk_full while the spool's disk has less than `min_free_bytes` free.
Status check_disk(const spool::Spool& spool, uint64_t min_free_bytes);

class CapturePipeline {
  public:
    struct Parts {
        const CameraSet& cameras;
        spool::Spool& spool;
        JobPublisher& jobs;
        Responder& responder;
        RigStats& stats;
    };
    // `queue_max`: capture.queue_max, the requests accepted and not yet answered.
    CapturePipeline(Parts parts, std::string rig_id, uint64_t min_free_bytes, int queue_max);
    ~CapturePipeline();
    CapturePipeline(const CapturePipeline&) = delete;
    CapturePipeline& operator=(const CapturePipeline&) = delete;

    void start();
    // No new shots from now on, and a scan's wait for its capture ends (stop() follows).
    void request_stop() { stopping_ = true; }
    // Finishes the running order (no new shots), then publishes what is queued and joins.
    void stop();

    // True when queue_max orders are accepted and not yet answered (the running one
    // included): submit() then answers queue_full.
    bool full() const { return pending_orders_ >= queue_max_; }
    // A request's order, at the back of the queue; queue_full (naming the depth) when full.
    Status submit(CaptureOrder order);
    // At the back of the queue whatever its depth (a scan step; tests).
    void enqueue(CaptureOrder order);
    // Runs a scan step's capture and waits for it; nullopt when the pipeline stops first.
    std::optional<ScanRunner::CaptureOutcome> capture_for_scan(
        const protocol::CaptureRequest& request, int seq_offset);

    bool busy() const { return capture_busy_; }
    // Orders accepted and not yet answered, the running one included: the queue's depth.
    int pending_orders() const { return pending_orders_; }
    int queue_max() const { return queue_max_; }

  private:
    class Run;
    void push(CaptureOrder order);
    void capture_loop();
    void run(const CaptureOrder& order);

    Parts parts_;
    const std::string rig_id_;
    const uint64_t min_free_bytes_;
    const int queue_max_;
    std::unique_ptr<SerialExecutor> publisher_;
    // Commits and describes photos in shot order while the cameras take the next.
    std::unique_ptr<SerialExecutor> finisher_;
    std::atomic<int> jobs_waiting_{0};  // photos queued on the publisher, not yet started
    int jobs_since_ack_wait_ = 0;       // publisher thread only
    MessageQueue<CaptureOrder> orders_;
    std::thread thread_;
    std::atomic<bool> capture_busy_{false};
    std::atomic<int> pending_orders_{0};
    std::atomic<bool> stopping_{false};
};

}  // namespace photorig::rig
