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
// In a burst, a job's publish waits for its PUBACK only every this many jobs (and for the
// last): at 2 messages a photo that stays well inside the client's max_inflight (64).
constexpr int kJobsPerAckWait = 16;

// Bridges a camera download into a spool writer. The writer is shared so the capture
// thread can commit it once the worker reports the download complete.
class SpoolSink : public camera::DownloadSink {
  public:
    explicit SpoolSink(std::shared_ptr<spool::SpoolWriter> writer) : writer_(std::move(writer)) {}
    Status write(const char* data, size_t len) override { return writer_->write(data, len); }

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

// One capture order on the capture thread: its shots, its photos and their outcome.
class CapturePipeline::Run {
  public:
    Run(CapturePipeline& pipeline, const CaptureOrder& order)
        : pipeline_(pipeline), parts_(pipeline.parts_), order_(order), req_(order.request) {}

    void shoot_all();
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
    std::optional<Shot> post_shot(int shot, int64_t capture_at_us);
    void collect_shot(Shot& shot);
    std::vector<Pending> trigger(const std::vector<camera::CameraWorker*>& chosen, int seq,
                                 int64_t trigger_at_us);
    void collect(Pending& pending, int seq, bool last_shot);
    void finish_photo(PhotoFacts facts, std::shared_ptr<spool::SpoolWriter> writer, bool last_shot);
    Expected<protocol::CaptureMetadata> commit_and_publish(
        const PhotoFacts& facts, spool::SpoolWriter& writer,
        const std::shared_ptr<JobTaken>& job_taken);
    void collect_oldest();

    CapturePipeline& pipeline_;
    Parts& parts_;
    const CaptureOrder& order_;
    const protocol::CaptureRequest& req_;
    std::vector<protocol::CaptureMetadata> photos_;
    std::vector<Error> errors_;
    std::vector<protocol::TriggerTime> triggers_;
    std::deque<std::future<Expected<protocol::CaptureMetadata>>> unfinished_;
    // The last photo's upload job is with the MQTT client: the response may follow it.
    std::shared_ptr<JobTaken> last_job_taken_;
};

// A lone camera shooting without an interval gets its next shot posted before the last one
// is collected, so it triggers again as soon as it has deleted the last photo instead of
// idling while this thread wakes up, hands the photos on and posts the next order.
void CapturePipeline::Run::shoot_all() {
    const int64_t capture_at_us = first_trigger_us(req_);
    const int64_t sequence_start = clock::monotonic_ms();
    std::optional<Shot> in_flight;
    for (int shot = 1; shot <= req_.count && !pipeline_.stopping_; ++shot) {
        if (shot > 1 && req_.interval_ms > 0) {
            int64_t due = sequence_start + static_cast<int64_t>(shot - 1) * req_.interval_ms;
            int64_t wait = due - clock::monotonic_ms();
            if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        }
        auto posted = post_shot(shot, capture_at_us);
        if (in_flight) collect_shot(*in_flight);
        in_flight.reset();
        if (!posted) break;
        if (posted->may_overlap) {
            in_flight = std::move(posted);
        } else {
            collect_shot(*posted);
        }
    }
    if (in_flight) collect_shot(*in_flight);
    while (!unfinished_.empty()) collect_oldest();
}

// Triggers every chosen camera at once; nullopt when the order cannot go on (disk full,
// no camera).
std::optional<CapturePipeline::Run::Shot> CapturePipeline::Run::post_shot(int shot,
                                                                          int64_t capture_at_us) {
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
    if (shot == 1 && capture_at_us) {
        trigger_at_us = capture_at_us;
    } else if (chosen.size() > 1) {
        trigger_at_us = clock::now_us() + kTriggerLeadUs;
    }
    Shot posted;
    posted.seq = order_.seq_offset + shot;
    // Several cameras fire at one instant computed when they are posted; an interval is
    // counted from the previous shot: both need the shot posted when it is due.
    posted.may_overlap = chosen.size() == 1 && req_.interval_ms <= 0;
    posted.last = shot == req_.count;
    posted.pending = trigger(chosen, posted.seq, trigger_at_us);
    return posted;
}

void CapturePipeline::Run::collect_shot(Shot& shot) {
    for (auto& p : shot.pending) collect(p, shot.seq, shot.last);
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
        done.set_value(commit_and_publish(facts, *writer, job_taken));
        unfinished_.push_back(done.get_future());
        return;
    }
    while (unfinished_.size() >= kMaxUnfinishedPhotos) collect_oldest();
    unfinished_.push_back(
        pipeline_.finisher_->submit([this, facts = std::move(facts), writer, job_taken] {
            return commit_and_publish(facts, *writer, job_taken);
        }));
}

// Commits and describes one photo, then queues its metadata and upload job on the publisher.
Expected<protocol::CaptureMetadata> CapturePipeline::Run::commit_and_publish(
    const PhotoFacts& facts, spool::SpoolWriter& writer,
    const std::shared_ptr<JobTaken>& job_taken) {
    CommitCosts costs;
    auto meta = commit_photo(parts_.spool, facts, writer, &costs);
    if (!meta) {
        job_taken->open();  // no job will follow
        return meta;
    }
    auto& stage_us = parts_.stats.stage_us;
    stage_us.hash += costs.hash_us;
    stage_us.commit += costs.commit_us;
    stage_us.exif += costs.exif_us;
    stage_us.sidecar += costs.sidecar_us;
    ++parts_.stats.photos_total;
    parts_.stats.count_photo(meta->captured_at_ms);
    parts_.stats.state_dirty = true;
    // Publishing is a second stage, so the broker round trip overlaps the next fsyncs. In a
    // burst only the last job waiting waits for its PUBACK, which vouches for those before
    // it on the connection: one round trip per burst, not per photo.
    ++pipeline_.jobs_waiting_;
    pipeline_.publisher_->submit([&jobs = parts_.jobs, &stats = parts_.stats, m = *meta, job_taken,
                                  &waiting = pipeline_.jobs_waiting_,
                                  &since_ack = pipeline_.jobs_since_ack_wait_] {
        const bool another_behind = --waiting > 0;
        // Still one PUBACK wait per kJobsPerAckWait jobs, so a slow broker's window of
        // unacknowledged messages (the client's max_inflight) never fills up.
        const bool wait_for_ack = !another_behind || ++since_ack >= kJobsPerAckWait;
        if (wait_for_ack) since_ack = 0;
        const int64_t t0 = clock::monotonic_us();
        jobs.publish_photo(
            m, [&] { job_taken->open(); }, wait_for_ack);
        stats.stage_us.publish += clock::monotonic_us() - t0;
        job_taken->open();  // the job failed to reach the client: answer anyway
    });
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

void CapturePipeline::Run::finish() {
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
    if (photos_.empty() && !errors_.empty()) {
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
    finisher_ = std::make_unique<SerialExecutor>();
    thread_ = std::thread([this] { capture_loop(); });
}

void CapturePipeline::stop() {
    stopping_ = true;
    orders_.close();
    if (thread_.joinable()) thread_.join();
    finisher_.reset();   // idle: every order waits for its photos before it ends
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

void CapturePipeline::capture_loop() {
    while (auto order = orders_.pop_for(std::chrono::hours(24))) {
        capture_busy_ = true;
        parts_.stats.state_dirty = true;
        run(*order);
        --pending_orders_;
        capture_busy_ = pending_orders_ > 0;
        parts_.stats.state_dirty = true;
    }
}

void CapturePipeline::run(const CaptureOrder& order) {
    Run run(*this, order);
    run.shoot_all();
    run.finish();
}

}  // namespace photorig::rig
