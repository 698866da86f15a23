#include "rig/capture_pipeline.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include "camera/camera.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "protocol/wire.h"
#include "rig/spooled_photo.h"
#include "spool/photo_names.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
// Every chosen camera fires at one wall-clock instant: capture_at for the first shot
// (several rigs with synchronised clocks fire together), else, with several cameras, a
// few ms from now, which leaves time to hand the order to every worker thread first.
// A single camera without capture_at fires at once (bursts stay as fast as before).
constexpr int64_t kTriggerLeadUs = 4000;
// At most this many photos wait for the finisher, so a slow disk or broker slows capture
// down instead of piling up open temp files.
constexpr size_t kMaxUnfinishedPhotos = 8;

// Bridges a camera download into a spool writer. The writer is shared so the capture
// thread can commit it once the worker reports the download complete.
class SpoolSink : public camera::DownloadSink {
  public:
    explicit SpoolSink(std::shared_ptr<spool::SpoolWriter> writer) : writer_(std::move(writer)) {}
    Status write(const char* data, size_t len) override { return writer_->write(data, len); }
    // Writeback runs while the camera's worker reads on to its CaptureComplete (~1 ms).
    void complete() override { writer_->sync_ahead(); }

  private:
    std::shared_ptr<spool::SpoolWriter> writer_;
};

// Opened once a photo's upload job is with the MQTT client (or will never be): a response
// published after that follows the job on the wire, so it need not wait for the job's PUBACK.
class JobTaken {
  public:
    void open() {
        if (!opened_.exchange(true)) promise_.set_value();
    }
    void wait() const { opened_future_.wait(); }

  private:
    std::atomic<bool> opened_{false};
    std::promise<void> promise_;
    std::shared_future<void> opened_future_ = promise_.get_future().share();
};

// Opens a JobTaken however the scope is left (an exception included), so no answer waits
// for a job that will never be published.
class OpenJobTakenOnExit {
  public:
    explicit OpenJobTakenOnExit(std::shared_ptr<JobTaken> taken) : taken_(std::move(taken)) {}
    ~OpenJobTakenOnExit() {
        if (taken_) taken_->open();
    }
    void release() { taken_.reset(); }
    OpenJobTakenOnExit(const OpenJobTakenOnExit&) = delete;
    OpenJobTakenOnExit& operator=(const OpenJobTakenOnExit&) = delete;

  private:
    std::shared_ptr<JobTaken> taken_;
};

// The wall-clock instant (epoch us) a request's first shot fires at; 0 = at once.
int64_t first_trigger_us(const protocol::CaptureRequest& req) {
    if (!req.capture_at_ms) return 0;
    int64_t at_us = *req.capture_at_ms * 1000;
    int64_t ahead = at_us - clock::now_us();
    return ahead > 0 && ahead < 60'000'000 ? at_us : 0;
}
}  // namespace

std::string new_batch_id(int64_t now_ms) {
    std::string stamp = clock::rfc3339_utc_ms(now_ms);  // 2026-11-25T04:10:15.123Z
    std::string compact;
    for (char c : stamp.substr(0, 19)) {
        if (c != '-' && c != ':') compact.push_back(c == 'T' ? '-' : c);
    }
    return compact + "-" + ids::random_hex(4);  // 20261125-041015-3fa2
}

Status check_disk(const spool::Spool& spool, uint64_t min_free_bytes) {
    auto free_bytes = spool.disk_free_bytes();
    if (free_bytes && *free_bytes < min_free_bytes) {
        return make_error(
            protocol::codes::disk_full,
            "spool disk has " + std::to_string(*free_bytes / (1024 * 1024)) +
                " MiB free, below spool.min_free_bytes; captures pause until uploads free space");
    }
    return ok();
}

// One capture order on the capture thread: its shots, its photos and their outcome. The
// capture thread takes one shot at a time (shoot_next) when it is due, so several orders'
// shots interleave.
class CapturePipeline::Run {
  public:
    Run(CapturePipeline& pipeline, CaptureOrder order)
        : pipeline_(pipeline),
          parts_(pipeline.parts_),
          order_(std::move(order)),
          req_(order_.request),
          capture_at_us_(first_trigger_us(req_)),
          sequence_start_ms_(clock::monotonic_ms()) {}

    // Shots left to take (none once stopped, cancelled or unable to go on).
    bool more() const { return !ended_ && next_shot_ <= req_.count; }
    // Monotonic ms the next shot is due at (0: at once).
    int64_t due_ms() const {
        if (next_shot_ <= 1 || req_.interval_ms <= 0) return 0;
        return sequence_start_ms_ + static_cast<int64_t>(next_shot_ - 1) * req_.interval_ms;
    }
    // Takes the next shot. `alone`: no other started order has a shot due, so a lone
    // camera's burst without an interval may leave this shot in flight and have its next
    // one posted before collecting it (the camera triggers again as soon as it has deleted
    // the last photo instead of idling while this thread hands the photos on).
    void shoot_next(bool alone) {
        auto posted = post_shot(next_shot_, alone);
        ++next_shot_;
        collect_in_flight();
        if (!posted) {
            ended_ = true;
            return;
        }
        ++shots_taken_;
        if (posted->may_overlap) {
            in_flight_ = std::move(posted);
        } else {
            collect_shot(*posted);
        }
    }
    void end(bool cancelled) {
        ended_ = true;
        cancelled_ = cancelled_ || cancelled;
    }
    // Ends the order with this error (answered by finish()).
    void fail(Error error) {
        errors_.push_back(std::move(error));
        ended_ = true;
    }
    uint64_t id() const { return order_.id; }
    const CaptureOrder& order() const { return order_; }
    void finish();

  private:
    struct Pending {
        protocol::CameraRef ref;
        std::shared_ptr<spool::PhotoWriters> writers;
        std::future<Expected<std::vector<camera::CapturedFile>>> result;
    };
    // One shot's captures, posted to the cameras' workers and not yet collected.
    struct Shot {
        int seq = 0;
        bool may_overlap = false;  // the next shot may be posted before this one is collected
        bool last = false;         // the order's last shot
        std::vector<Pending> pending;
    };
    std::optional<Shot> post_shot(int shot, bool alone);
    void collect_shot(Shot& shot);
    void collect_in_flight();
    std::vector<Pending> trigger(const std::vector<camera::CameraWorker*>& chosen, int seq,
                                 int64_t trigger_at_us);
    void collect(Pending& pending, int seq, bool last_shot);
    void finish_photo(PhotoFacts facts, std::shared_ptr<spool::SpoolWriter> writer, bool last_shot);
    // Static: it runs on the shared finisher, which may outlive this Run.
    static Expected<protocol::CaptureMetadata> commit_and_publish(
        CapturePipeline& pipeline, const PhotoFacts& facts, spool::SpoolWriter& writer,
        const std::shared_ptr<JobTaken>& job_taken, bool last_shot);
    void collect_oldest();
    Error cancelled_error() const;

    CapturePipeline& pipeline_;
    Parts& parts_;
    const CaptureOrder order_;
    const protocol::CaptureRequest& req_;
    const int64_t capture_at_us_, sequence_start_ms_;
    int next_shot_ = 1, shots_taken_ = 0;
    bool ended_ = false, cancelled_ = false;
    std::vector<protocol::CaptureMetadata> photos_;
    std::vector<Error> errors_;
    std::vector<protocol::TriggerTime> triggers_;
    // This order's photos on the pipeline's finisher, in shot order.
    std::deque<std::future<Expected<protocol::CaptureMetadata>>> unfinished_;
    std::optional<Shot> in_flight_;  // a lone camera's shot posted and not yet collected
    // The last photo's upload job is with the MQTT client: the response may follow it.
    std::shared_ptr<JobTaken> last_job_taken_;
};

// Triggers every chosen camera at once; nullopt when the order cannot go on (disk full,
// no camera).
std::optional<CapturePipeline::Run::Shot> CapturePipeline::Run::post_shot(int shot, bool alone) {
    if (auto st = check_disk(parts_.spool, pipeline_.min_free_bytes_); !st) {
        errors_.push_back(st.error());
        return std::nullopt;
    }
    Error choose_error;
    auto chosen = parts_.cameras.choose(req_.camera, &choose_error);
    if (chosen.empty()) {
        errors_.push_back(choose_error);
        return std::nullopt;
    }
    int64_t trigger_at_us = 0;
    if (shot == 1 && capture_at_us_) {
        trigger_at_us = capture_at_us_;
    } else if (chosen.size() > 1) {
        trigger_at_us = clock::now_us() + kTriggerLeadUs;
    }
    Shot posted;
    posted.seq = order_.seq_offset + shot;
    // Several cameras fire at one instant computed when they are posted; an interval is
    // counted from the previous shot; another order's shot may be due: all of them need
    // this shot collected before the capture thread goes on.
    posted.may_overlap = alone && chosen.size() == 1 && req_.interval_ms <= 0;
    posted.last = shot == req_.count;
    posted.pending = trigger(chosen, posted.seq, trigger_at_us);
    return posted;
}

void CapturePipeline::Run::collect_shot(Shot& shot) {
    for (auto& p : shot.pending) collect(p, shot.seq, shot.last);
}

// Taken out first: a collect that throws leaves no half-collected shot behind.
void CapturePipeline::Run::collect_in_flight() {
    if (!in_flight_) return;
    Shot shot = std::move(*in_flight_);
    in_flight_.reset();
    collect_shot(shot);
}

std::vector<CapturePipeline::Run::Pending> CapturePipeline::Run::trigger(
    const std::vector<camera::CameraWorker*>& chosen, int seq, int64_t trigger_at_us) {
    std::vector<Pending> pending;
    for (auto* cam : chosen) {
        auto info = cam->info();
        Pending p;
        p.ref = protocol::CameraRef{info.model, info.serial, info.port, true};
        // Each worker downloads into its own writers, named by the spool on its thread.
        p.writers =
            std::make_shared<spool::PhotoWriters>(parts_.spool, req_.batch, seq, info.serial);
        camera::SinkFactory factory = [writers = p.writers](const camera::FileHeader& header)
            -> Expected<std::unique_ptr<camera::DownloadSink>> {
            auto writer = writers->open(header.camera_name);
            if (!writer) return writer.error();
            return std::unique_ptr<camera::DownloadSink>(new SpoolSink(*writer));
        };
        camera::CaptureOptions co;
        co.trigger_at_us = trigger_at_us;
        p.result = cam->capture(factory, co);
        pending.push_back(std::move(p));
    }
    return pending;
}

void CapturePipeline::Run::collect(Pending& p, int seq, bool last_shot) {
    auto result = p.result.get();
    if (!result) {
        ++parts_.stats.capture_errors_total;
        Error e = result.error().with_context("camera " + p.ref.serial);
        parts_.stats.set_last_error(e.describe());
        LOG_WARN(kLog, "capture failed: " << e.describe());
        errors_.push_back(e);
        return;  // the writers abort themselves when released
    }
    if (!result->empty())
        triggers_.push_back(
            protocol::TriggerTime{p.ref.serial, seq, result->front().triggered_at_us});
    // Files and writers arrive in the same order: the worker asks for one sink per file.
    auto writers = p.writers->writers();
    auto& stage_us = parts_.stats.stage_us;
    for (const auto& file : *result) {
        stage_us.trigger += file.trigger_call_us;
        stage_us.event_wait += file.event_wait_us;
        stage_us.download += file.download_us;
        stage_us.camera_delete += file.delete_us;
        if (file.handed_on) ++parts_.stats.shots_handed_on_total;
    }
    for (size_t i = 0; i < result->size() && i < writers.size(); ++i) {
        const auto& file = (*result)[i];
        PhotoFacts facts{
            pipeline_.rig_id_, req_.batch,      seq, p.ref, writers[i].first, file.triggered_at_ms,
            file.trigger_ms,   file.download_ms};
        finish_photo(std::move(facts), writers[i].second, last_shot);
    }
}

// The finisher commits photos in shot order while the cameras take the next. The last
// shot's photos are committed on this thread instead, once the ones before are (this thread
// waits for them before answering anyway): two thread hand-offs fewer for a count=1 request.
void CapturePipeline::Run::finish_photo(PhotoFacts facts,
                                        std::shared_ptr<spool::SpoolWriter> writer,
                                        bool last_shot) {
    auto job_taken = std::make_shared<JobTaken>();
    last_job_taken_ = job_taken;
    if (last_shot) {
        while (!unfinished_.empty()) collect_oldest();
        std::promise<Expected<protocol::CaptureMetadata>> done;
        done.set_value(commit_and_publish(pipeline_, facts, *writer, job_taken, true));
        unfinished_.push_back(done.get_future());
        return;
    }
    while (unfinished_.size() >= kMaxUnfinishedPhotos) collect_oldest();
    CapturePipeline* pipeline = &pipeline_;
    unfinished_.push_back(
        pipeline_.finisher_->submit([pipeline, facts = std::move(facts), writer, job_taken] {
            return commit_and_publish(*pipeline, facts, *writer, job_taken, false);
        }));
}

// Commits and describes one photo, then queues its metadata and upload job on the publisher.
Expected<protocol::CaptureMetadata> CapturePipeline::Run::commit_and_publish(
    CapturePipeline& pipeline, const PhotoFacts& facts, spool::SpoolWriter& writer,
    const std::shared_ptr<JobTaken>& job_taken, bool last_shot) {
    OpenJobTakenOnExit no_job(job_taken);  // released once the publisher has the job
    Parts& parts = pipeline.parts_;
    CommitCosts costs;
    spool::DirTicket dir_ticket;
    auto meta = commit_photo(parts.spool, facts, writer, dir_ticket, &costs);
    if (!meta) return meta;
    auto& stage_us = parts.stats.stage_us;
    stage_us.hash += costs.hash_us;
    stage_us.commit += costs.commit_us;
    stage_us.exif += costs.exif_us;
    stage_us.sidecar += costs.sidecar_us;
    ++parts.stats.photos_total;
    parts.stats.count_photo(meta->captured_at_ms);
    parts.stats.state_dirty = true;
    // Publishing is a second stage, so the broker round trip overlaps the next fsyncs. Only a
    // job of an order's last shot with nothing queued behind it waits for its PUBACK, which
    // vouches for those before it on the connection: one round trip per request, not per
    // photo. Every other job is only handed to the client: its window of unacknowledged
    // messages (max_inflight) bounds them, and a full window or buffer is waited out (the
    // job is never dropped). The publisher outpaces the camera, so "nothing queued behind"
    // alone held almost every job of a burst to its PUBACK; on a broker with Nagle on such a
    // wait now and then took ~40 ms (its PUBACK held behind the metadata's).
    ++pipeline.jobs_waiting_;
    pipeline.publisher_->submit([&jobs = parts.jobs, &stats = parts.stats, &spool = parts.spool,
                                 m = *meta, job_taken, dir_ticket,
                                 &waiting = pipeline.jobs_waiting_, last_shot] {
        // Opened once the client has the job, or here when it never got there (an
        // exception included): the response is published anyway.
        OpenJobTakenOnExit answer_anyway(job_taken);
        // The photo's and its sidecar's renames are made durable before its job leaves. Here
        // rather than on the finisher: the finisher commits the next photos meanwhile, and one
        // directory fsync covers every rename made before it began (a burst onto slow storage
        // pays one per group, not per photo).
        const int64_t s0 = clock::monotonic_us();
        if (auto st = spool.sync_renamed(dir_ticket); !st) {
            // The photo is complete under its final name; only its directory entry's
            // durability is in doubt (as SpoolWriter::commit reports it too).
            LOG_WARN(kLog,
                     "fsync of the directory of " << m.file_path << ": " << st.error().describe());
        }
        stats.stage_us.dir_sync += clock::monotonic_us() - s0;
        const bool nothing_behind = --waiting == 0;
        const bool wait_for_ack = last_shot && nothing_behind;
        const int64_t t0 = clock::monotonic_us();
        jobs.publish_photo(
            m, [&] { job_taken->open(); }, wait_for_ack);
        stats.stage_us.publish += clock::monotonic_us() - t0;
    });
    no_job.release();
    return meta;
}

void CapturePipeline::Run::collect_oldest() {
    auto meta = unfinished_.front().get();
    unfinished_.pop_front();
    if (meta) {
        photos_.push_back(std::move(*meta));
    } else {
        ++parts_.stats.capture_errors_total;
        errors_.push_back(meta.error());
    }
}

Error CapturePipeline::Run::cancelled_error() const {
    return make_error(protocol::codes::cancelled,
                      "cancelled by capture/cancel after " + std::to_string(shots_taken_) + " of " +
                          std::to_string(req_.count) + " shots (" + std::to_string(photos_.size()) +
                          " photos kept, batch " + req_.batch + ")");
}

void CapturePipeline::Run::finish() {
    collect_in_flight();
    while (!unfinished_.empty()) collect_oldest();
    // A response follows the last upload job on the wire: it is published once the MQTT
    // client has that job (the publisher stage then waits for its PUBACK), or once the job
    // failed to get there. Every photo is durable in the spool before its job is published.
    // A scan step does not wait: its photos are safe in the spool, and the next step's
    // turntable move overlaps the publishing (which stays in order).
    if (order_.done) {
        order_.done->set_value(ScanRunner::CaptureOutcome{std::move(photos_), std::move(errors_)});
        return;
    }
    if (last_job_taken_) last_job_taken_->wait();
    std::string payload;
    if (cancelled_) {
        payload = protocol::response_error(order_.transaction_json, cancelled_error());
    } else if (photos_.empty() && !errors_.empty()) {
        payload = protocol::response_error(order_.transaction_json, errors_.front());
    } else {
        payload = protocol::response_ok(
            order_.transaction_json,
            protocol::capture_result_json(req_.batch, photos_, errors_, triggers_),
            order_.warnings);
    }
    parts_.responder.respond(order_.verb, order_.response_topic, order_.correlation_data, payload);
}

CapturePipeline::CapturePipeline(Parts parts, std::string rig_id, uint64_t min_free_bytes,
                                 int queue_max)
    : parts_(parts),
      rig_id_(std::move(rig_id)),
      min_free_bytes_(min_free_bytes),
      queue_max_(queue_max > 0 ? queue_max : 1) {}

CapturePipeline::~CapturePipeline() {
    stop();
}

void CapturePipeline::start() {
    publisher_ = std::make_unique<SerialExecutor>();
    finisher_ = std::make_unique<SerialExecutor>();
    thread_ = std::thread([this] { capture_loop(); });
}

void CapturePipeline::stop() {
    stopping_ = true;
    orders_.close();
    if (thread_.joinable()) thread_.join();
    finisher_.reset();   // runs what is left (an order that failed may leave photos queued)
    publisher_.reset();  // runs what is queued: the last photos' jobs go out
}

Status CapturePipeline::submit(CaptureOrder order) {
    // Check and count in one step: a scan step may be enqueued from its own thread meanwhile.
    int depth = pending_orders_;
    do {
        if (depth >= queue_max_) {
            return make_error(protocol::codes::queue_full,
                              "capture queue is full: " + std::to_string(depth) +
                                  " capture requests waiting or running (capture.queue_max " +
                                  std::to_string(queue_max_) +
                                  "); try again when some are answered");
        }
    } while (!pending_orders_.compare_exchange_weak(depth, depth + 1));
    push(std::move(order));
    return ok();
}

void CapturePipeline::enqueue(CaptureOrder order) {
    ++pending_orders_;
    push(std::move(order));
}

void CapturePipeline::push(CaptureOrder order) {
    {
        std::lock_guard<std::mutex> lock(accepted_mutex_);
        order.id = ++next_id_;
        accepted_[order.id] =
            Accepted{order.transaction_json, order.request.batch, order.done != nullptr, false};
    }
    // Only marks `state` dirty: the service thread publishes it at most every 250 ms, so a
    // burst of thousands of requests gives a few state messages, not one per request, and
    // the depth still shows while the burst drains (each finished order marks it again).
    parts_.stats.state_dirty = true;
    orders_.push(std::move(order));
}

std::optional<ScanRunner::CaptureOutcome> CapturePipeline::capture_for_scan(
    const protocol::CaptureRequest& request, int seq_offset) {
    CaptureOrder order;
    order.request = request;
    order.transaction_json = "null";
    order.verb = "scan";
    order.seq_offset = seq_offset;
    order.done = std::make_shared<std::promise<ScanRunner::CaptureOutcome>>();
    auto outcome = order.done->get_future();
    enqueue(std::move(order));
    // The capture thread may be gone when the agent stops: never wait past that.
    while (outcome.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (stopping_) return std::nullopt;
    }
    return outcome.get();
}

int CapturePipeline::cancel(const protocol::CaptureCancel& which) {
    int marked = 0;
    {
        std::lock_guard<std::mutex> lock(accepted_mutex_);
        for (auto& [id, a] : accepted_) {
            if (a.scan_step || a.cancelled) continue;  // a scan is stopped with scan abort
            if (!which.capture_transaction_json.empty() &&
                which.capture_transaction_json != a.transaction_json)
                continue;
            if (!which.batch.empty() && which.batch != a.batch) continue;
            a.cancelled = true;
            ++marked;
        }
    }
    if (marked > 0) orders_.push(CaptureOrder{});  // id 0: wakes the capture thread
    return marked;
}

bool CapturePipeline::cancelled(uint64_t id) const {
    std::lock_guard<std::mutex> lock(accepted_mutex_);
    auto it = accepted_.find(id);
    return it != accepted_.end() && it->second.cancelled;
}

void CapturePipeline::forget(uint64_t id) {
    std::lock_guard<std::mutex> lock(accepted_mutex_);
    accepted_.erase(id);
}

void CapturePipeline::capture_loop() {
    std::vector<std::unique_ptr<Run>> started;  // in start order: ties go to the earlier
    std::deque<CaptureOrder> held;              // arrived while kMaxActiveOrders were started
    for (;;) {
        // Orders that are done (or cancelled, or stopped) are answered first.
        for (auto it = started.begin(); it != started.end();) {
            Run& run = **it;
            if (cancelled(run.id())) run.end(/*cancelled=*/true);
            if (stopping_) run.end(false);
            if (run.more()) {
                ++it;
                continue;
            }
            finish_guarded(run);
            forget(run.id());
            it = started.erase(it);
            --pending_orders_;
            capture_busy_ = pending_orders_ > 0;
            parts_.stats.state_dirty = true;
        }
        while (started.size() < kMaxActiveOrders && !held.empty()) {
            started.push_back(std::make_unique<Run>(*this, std::move(held.front())));
            held.pop_front();
            capture_busy_ = true;
            parts_.stats.state_dirty = true;
        }
        Run* next = nullptr;
        for (auto& run : started) {
            if (run->more() && (!next || run->due_ms() < next->due_ms())) next = run.get();
        }
        const int64_t now = clock::monotonic_ms();
        if (next && next->due_ms() <= now) {
            bool alone = held.empty();
            for (auto& run : started) {
                if (run.get() != next && run->more() && run->due_ms() <= now) alone = false;
            }
            shoot_guarded(*next, alone);
            continue;
        }
        if (started.empty() && held.empty() && orders_.closed() && orders_.size() == 0) return;
        // Nothing due: wait for the next shot, a new order, a cancel or stop.
        const int64_t wait_ms = next ? next->due_ms() - now : 24LL * 3600 * 1000;
        auto order = orders_.pop_for(std::chrono::milliseconds(wait_ms));
        if (order && order->id != 0) held.push_back(std::move(*order));
    }
}

// No exception ends the capture thread: a shot that throws ends its order with
// internal_error (its requester hears it when the order is answered) and the others go on.
void CapturePipeline::shoot_guarded(Run& run, bool alone) {
    try {
        run.shoot_next(alone);
        return;
    } catch (const std::exception& e) {
        LOG_ERROR(kLog, "capture failed with an exception: " << e.what());
    } catch (...) {
        LOG_ERROR(kLog, "capture failed with an unknown exception");
    }
    run.fail(make_error(protocol::codes::internal_error, "capture failed: internal error"));
}

// An order whose answer itself throws is answered internal_error instead.
void CapturePipeline::finish_guarded(Run& run) {
    try {
        run.finish();
        return;
    } catch (const std::exception& e) {
        LOG_ERROR(kLog, "capture failed with an exception: " << e.what());
    } catch (...) {
        LOG_ERROR(kLog, "capture failed with an unknown exception");
    }
    const CaptureOrder& order = run.order();
    Error error = make_error(protocol::codes::internal_error, "capture failed: internal error");
    try {
        if (order.done) {
            order.done->set_value(ScanRunner::CaptureOutcome{{}, {error}});
        } else {
            parts_.responder.respond(order.verb, order.response_topic, order.correlation_data,
                                     protocol::response_error(order.transaction_json, error));
        }
    } catch (const std::exception& e) {  // e.g. the scan's promise was answered already
        LOG_WARN(kLog, "could not report the failed capture: " << e.what());
    }
}

}  // namespace photorig::rig
