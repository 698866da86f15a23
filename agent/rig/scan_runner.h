// Turntable scans: for each of N positions, ask the turntable to move (base/scan/move),
// wait for its `ready` (base/scan/ready) under a timeout, let the rig settle, capture on
// the chosen cameras, and record the step durably. A scan can be paused, resumed and
// aborted; it survives an agent restart (continuing after the last completed step); when
// it ends its manifest (every capture's metadata) is uploaded with the photos.
//
// Threads: the service thread calls handle() and on_ready(), which only change flags
// under the lock; the scan's own thread does the waiting and asks the capture thread
// (through Hooks::capture) for each step's photos.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/expected.h"
#include "protocol/scan.h"
#include "protocol/topics.h"

namespace photorig::rig {

class ScanRunner {
  public:
    struct CaptureOutcome {
        std::vector<protocol::CaptureMetadata> photos;
        std::vector<Error> errors;
    };
    struct Hooks {
        // Runs a capture order on the capture thread and waits for it. Empty when the agent
        // stops first. Photos get seq = seq_offset + shot.
        std::function<std::optional<CaptureOutcome>(const protocol::CaptureRequest&,
                                                    int seq_offset)>
            capture;
        // Publishes on a full topic (one of the rig's RigTopics).
        std::function<void(const std::string& topic, const std::string& payload, bool retain)>
            publish;
        // Puts the manifest in the spool and offers it to the uploader (idempotent per scan).
        std::function<Status(const protocol::ScanRecord&)> deliver_manifest;
    };

    ScanRunner(std::string record_path, protocol::RigTopics topics, Hooks hooks);
    ~ScanRunner();
    ScanRunner(const ScanRunner&) = delete;
    ScanRunner& operator=(const ScanRunner&) = delete;

    // Loads the durable record: a running scan continues, a paused one waits for resume.
    void start();
    // Stops the thread; the record keeps the last completed step for the next start().
    void stop();

    // start | pause | resume | abort | status. Returns the scan's progress JSON.
    Expected<std::string> handle(const protocol::ScanRequest& request,
                                 const std::string& batch_if_none);
    // A message on base/scan/ready.
    void on_ready(const std::string& payload);

  private:
    enum class Wake { ready, pause, abort, stop, timeout };
    void loop();
    // Waits (lock held) until `deadline_ms` (monotonic), or until ready (when `for_ready`),
    // pause, abort or stop.
    Wake wait_locked(std::unique_lock<std::mutex>& lock, int64_t deadline_ms, bool for_ready);
    // One position: move, settle, capture, record, then the interval. Any wait may end it
    // early (stop, pause, abort); a step not recorded is done again.
    void run_step_locked(std::unique_lock<std::mutex>& lock);
    // A wait's end other than ready or timeout ends the step: stop leaves the record as it
    // is, abort finishes the scan, pause pauses it. True when the step ended.
    bool interrupted_locked(Wake w);
    // Asks the turntable to move to `step` and waits for its ready; false when the step ended
    // there (interrupted, or paused on timeout).
    bool turntable_ready_locked(std::unique_lock<std::mutex>& lock, int step, int64_t step_start);
    // Runs the step's capture through Hooks::capture with the lock released meanwhile.
    std::optional<CaptureOutcome> capture_step_locked(std::unique_lock<std::mutex>& lock, int step);
    // Adds the step's photos to the record and persists it; with no photo at all, pauses the
    // scan instead and returns false.
    bool record_step_locked(int step, int64_t step_start, CaptureOutcome outcome);
    void pause_locked(const std::string& code, const std::string& message);
    void finish_locked(const std::string& state);
    void persist_locked();
    void progress_locked(const std::string& event);
    int64_t eta_s_locked() const;

    const std::string record_path_;
    const protocol::RigTopics topics_;
    Hooks hooks_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::optional<protocol::ScanRecord> record_;
    bool pause_requested_ = false, abort_requested_ = false, stopping_ = false;
    bool ready_ = false;
    int ready_step_ = 0;
    std::thread thread_;
};

}  // namespace photorig::rig
