// Capture orders, one at a time on the capture thread: trigger the chosen cameras, let
// each camera's worker download into spool writers (named by spool::PhotoWriters), then
// two ordered stages off the capture thread: the finisher commits and describes each photo
// (fsyncs, EXIF, sidecar) while the cameras take the next shot, and the publisher sends
// its metadata and upload job (waiting for the PUBACK) while the next photo is finished.
// A request's response follows its last upload job on the wire (published once the MQTT
// client has that job, without waiting for its PUBACK); a scan step's outcome goes to the
// scan instead.
//
// The queue: one per rig, in arrival order. Every order (a specific serial or "all") waits
// in the same queue and the capture thread runs them in turn, so each camera captures in
// the order requests arrived and an "all" shot fires every camera together. Requests are
// bounded by capture.queue_max (memory, not speed: a waiting order is a few hundred
// bytes); past it submit() answers queue_full. Scan steps are never refused (a running
// scan waits for each step before it asks for the next), but they count in the depth.
//
// Interleaving (issue 15): a multi-shot order with an interval does not hold the capture
// thread between its shots. The thread keeps up to kMaxActiveOrders orders started and
// always takes the shot that is due first; while every started order waits for its next
// shot, the next queued order starts. So `{"count":1000,"interval_ms":3600000}` lets
// other requests run between its shots (orders with no interval still run back to back,
// in arrival order). Every wait is on the order queue, so cancel() and stop() end it at once.
// A lone camera's burst (one camera, no interval, the only started order with shots left)
// gets its next shot posted before the last one is collected, so it shoots back to back.
//
// Cancelling: cancel() marks accepted orders (queued or started) by transaction and/or
// batch; a marked order takes no further shot and is answered `cancelled`, naming the
// shots taken (its photos so far are kept, published and uploaded as usual).
//
// Threads: enqueue()/capture_for_scan()/cancel() from any thread; one capture thread; the
// finisher stage, shared by every started order (an order's last shot is committed on the
// capture thread); the publisher stage.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/expected.h"
#include "core/queue.h"
#include "core/serial_executor.h"
#include "protocol/types.h"
#include "protocol/wire.h"
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
    // Sent with an ok response ("warnings"), e.g. clock_unsynced for a capture_at.
    std::vector<Error> warnings;
    int seq_offset = 0;  // photos get seq = seq_offset + shot (a scan numbers across steps)
    uint64_t id = 0;     // set by the pipeline (cancel())
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

    // Marks the matching capture requests (not scan steps) to stop; returns how many.
    int cancel(const protocol::CaptureCancel& which);

    bool busy() const { return capture_busy_; }
    // Orders accepted and not yet answered, the running one included: the queue's depth.
    int pending_orders() const { return pending_orders_; }
    int queue_max() const { return queue_max_; }

    static constexpr size_t kMaxActiveOrders = 16;

  private:
    class Run;
    struct Accepted {
        std::string transaction_json, batch;
        bool scan_step = false, cancelled = false;
    };
    void push(CaptureOrder order);
    void capture_loop();
    bool cancelled(uint64_t id) const;
    void forget(uint64_t id);
    void shoot_guarded(Run& run, bool alone);
    void finish_guarded(Run& run);

    Parts parts_;
    const std::string rig_id_;
    const uint64_t min_free_bytes_;
    const int queue_max_;
    std::unique_ptr<SerialExecutor> publisher_;
    // Commits and describes photos in shot order while the cameras take the next.
    std::unique_ptr<SerialExecutor> finisher_;
    std::atomic<int> jobs_waiting_{0};  // photos queued on the publisher, not yet started
    MessageQueue<CaptureOrder> orders_;
    std::thread thread_;
    std::atomic<bool> capture_busy_{false};
    std::atomic<int> pending_orders_{0};
    std::atomic<bool> stopping_{false};
    mutable std::mutex accepted_mutex_;
    std::map<uint64_t, Accepted> accepted_;  // by CaptureOrder::id, until answered
    uint64_t next_id_ = 0;
};

}  // namespace photorig::rig
