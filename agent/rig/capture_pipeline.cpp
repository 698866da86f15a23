#include "rig/capture_pipeline.h"

#include <chrono>
#include <deque>
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

  private:
    std::shared_ptr<spool::SpoolWriter> writer_;
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
    void shoot_next() {
        if (shoot(next_shot_, capture_at_us_)) {
            ++shots_taken_;
        } else {
            ended_ = true;
        }
        ++next_shot_;
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
    bool shoot(int shot, int64_t capture_at_us);
    std::vector<Pending> trigger(const std::vector<camera::CameraWorker*>& chosen, int seq,
                                 int64_t trigger_at_us);
    void collect(Pending& pending, int seq);
    void finish_photo(PhotoFacts facts, std::shared_ptr<spool::SpoolWriter> writer);
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
    // Committing and describing photos, in shot order, while the cameras take the next.
    SerialExecutor finisher_;
    std::deque<std::future<Expected<protocol::CaptureMetadata>>> unfinished_;
};

// Triggers every chosen camera at once and hands the photos to the finisher; false
// when the order cannot go on (disk full, no camera).
bool CapturePipeline::Run::shoot(int shot, int64_t capture_at_us) {
    if (auto st = check_disk(parts_.spool, pipeline_.min_free_bytes_); !st) {
        errors_.push_back(st.error());
        return false;
    }
    Error choose_error;
    auto chosen = parts_.cameras.choose(req_.camera, &choose_error);
    if (chosen.empty()) {
        errors_.push_back(choose_error);
        return false;
    }
    int64_t trigger_at_us = 0;
    if (shot == 1 && capture_at_us) {
        trigger_at_us = capture_at_us;
    } else if (chosen.size() > 1) {
        trigger_at_us = clock::now_us() + kTriggerLeadUs;
    }
    const int seq = order_.seq_offset + shot;
    auto pending = trigger(chosen, seq, trigger_at_us);
    for (auto& p : pending) collect(p, seq);
    return true;
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

void CapturePipeline::Run::collect(Pending& p, int seq) {
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
    }
    for (size_t i = 0; i < result->size() && i < writers.size(); ++i) {
        const auto& file = (*result)[i];
        PhotoFacts facts{
            pipeline_.rig_id_, req_.batch,      seq, p.ref, writers[i].first, file.triggered_at_ms,
            file.trigger_ms,   file.download_ms};
        finish_photo(std::move(facts), writers[i].second);
    }
}

void CapturePipeline::Run::finish_photo(PhotoFacts facts,
                                        std::shared_ptr<spool::SpoolWriter> writer) {
    while (unfinished_.size() >= kMaxUnfinishedPhotos) collect_oldest();
    CapturePipeline* pipeline = &pipeline_;
    unfinished_.push_back(finisher_.submit([pipeline, facts = std::move(facts), writer] {
        Parts& parts = pipeline->parts_;
        CommitCosts costs;
        auto meta = commit_photo(parts.spool, facts, *writer, &costs);
        if (!meta) return meta;
        auto& stage_us = parts.stats.stage_us;
        stage_us.hash += costs.hash_us;
        stage_us.commit += costs.commit_us;
        stage_us.exif += costs.exif_us;
        stage_us.sidecar += costs.sidecar_us;
        ++parts.stats.photos_total;
        parts.stats.count_photo(meta->captured_at_ms);
        parts.stats.state_dirty = true;
        // Publishing is a second stage, so the broker round trip overlaps the next fsyncs.
        pipeline->publisher_->submit([&jobs = parts.jobs, &stats = parts.stats, m = *meta] {
            const int64_t t0 = clock::monotonic_us();
            jobs.publish_photo(m);
            stats.stage_us.publish += clock::monotonic_us() - t0;
        });
        return meta;
    }));
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
    while (!unfinished_.empty()) collect_oldest();
    // A response follows the last upload job's PUBACK (or its timeout). A scan step does
    // not wait: its photos are safe in the spool, and the next step's turntable move
    // overlaps the publishing (which stays in order).
    if (order_.done) {
        order_.done->set_value(ScanRunner::CaptureOutcome{std::move(photos_), std::move(errors_)});
        return;
    }
    pipeline_.publisher_->submit([] {}).wait();
    std::string payload;
    if (cancelled_) {
        payload = protocol::response_error(order_.transaction_json, cancelled_error());
    } else if (photos_.empty() && !errors_.empty()) {
        payload = protocol::response_error(order_.transaction_json, errors_.front());
    } else {
        payload = protocol::response_ok(
            order_.transaction_json,
            protocol::capture_result_json(req_.batch, photos_, errors_, triggers_));
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
    thread_ = std::thread([this] { capture_loop(); });
}

void CapturePipeline::stop() {
    stopping_ = true;
    orders_.close();
    if (thread_.joinable()) thread_.join();
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
            shoot_guarded(*next);
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
void CapturePipeline::shoot_guarded(Run& run) {
    try {
        run.shoot_next();
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
