// The worker thread: owns one GphotoSession, runs capture orders in turn, polls events
// when idle and re-opens the session after errors (rpicam-apps style: one owner thread,
// callers only post messages).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "camera/camera.h"
#include "camera/gphoto_session.h"
#include "camera/usb_port.h"
#include "core/backoff.h"
#include "core/clock.h"
#include "core/liveness.h"
#include "core/log.h"
#include "core/queue.h"
#include "core/trigger_window.h"

namespace photorig::camera {
namespace {
constexpr const char* kLog = "camera";
constexpr int kPollMs = 100;         // one gp_camera_wait_for_event (PTP/IP returns after ~1 ms)
constexpr int kDrainMaxEvents = 16;  // stale events read before a trigger
constexpr int kIdleMaxEvents = 32;   // events read per keepalive tick
constexpr int kReconnectInitialMs = 250;
constexpr int64_t kSettledForMs =
    1000;  // how long a clean capture end lets the next skip the drain

using CaptureResult = Expected<std::vector<CapturedFile>>;
using CaptureAnswer = std::shared_ptr<std::promise<CaptureResult>>;

// One unit of work for the worker thread: run() answers its promise; cancel() answers it
// with "stopped" when the worker ends first.
struct Order {
    std::function<void()> run;
    std::function<void()> cancel;
};

bool is_jpeg(const FileHeader& h) {
    if (h.mime == "image/jpeg") return true;
    auto dot = h.camera_name.rfind('.');
    if (dot == std::string::npos) return false;
    std::string ext = h.camera_name.substr(dot + 1);
    return ext == "JPG" || ext == "jpg" || ext == "JPEG" || ext == "jpeg";
}

struct AddedFile {
    std::string folder, name;
    int64_t announced_ms;  // monotonic
};

// A burst's shot handed on before its CaptureComplete was read (capture_on_session): its
// files are in their sinks and off the card, and the next shot's event reads finish it.
struct HandedOnShot {
    CaptureAnswer answer;  // set by the capture order once it has the shot's files
    SinkFactory factory;
    std::vector<CapturedFile> files;
    std::vector<AddedFile> added;  // every file announced for it, the late ones included
    std::vector<AddedFile> late;   // announced after it was handed on: fetched when it ends
    int64_t triggered_at_us = 0, t0 = 0;
    int64_t grace_until_ms = 0;  // monotonic: a file announced later is the next shot's
    bool closed = false;         // no more files of it can come
    bool complete = false;       // closed by its CaptureComplete
};
}  // namespace

struct CameraWorker::Impl {
    CameraSpec spec;
    WorkerOptions opts;

    MessageQueue<Order> orders;
    std::thread thread;
    std::atomic<bool> stopping{false};
    std::atomic<bool> is_connected{false};
    bool started = false;  // guarded by lifecycle_mutex
    std::mutex lifecycle_mutex;
    std::mutex post_mutex;  // capture() posts and stop() closes under it: no order is lost

    mutable std::mutex info_mutex;
    CameraInfo info_value;
    CameraHealth health_value;  // guarded by info_mutex
    Liveness liveness;          // written by the worker thread, read by the service

    // Owned by the worker thread only.
    std::unique_ptr<detail::GphotoSession> session;
    int64_t next_tick_ms = 0;
    // When the last capture on this session ended on the camera's CaptureComplete, no late
    // event of it can still arrive; a capture soon after (a burst) then skips the drain,
    // which costs a full event-poll timeout. 0 = drain.
    int64_t settled_at_ms = 0;
    // Handing on (capture_on_session): the shot before, still waiting for its
    // CaptureComplete, and the one just taken, until its order attaches its answer.
    std::optional<HandedOnShot> handed_on, handing_on;
    // Files per shot of the last shot whose CaptureComplete followed its files; 0 until one
    // did (then no shot is handed on: a camera that sends none, or sends it first).
    size_t files_per_shot_seen = 0;
    // Open from a timed trigger's final wait until its command has left (wait_until_us).
    std::optional<trigger_window::Window> trigger_moment;
    // Doubling from kReconnectInitialMs up to opts.reconnect_backoff_max_ms, no jitter.
    Backoff reconnect_backoff{BackoffPolicy{}};
    std::string last_connect_error;
    StuckDetector stuck{3};
    bool holders_reported = false;  // the gvfs line, once per failing streak
    Preview last_thumbnail;         // of the last JPEG captured, for preview() without live view

    Impl(CameraSpec s, WorkerOptions o) : spec(std::move(s)), opts(o) {
        info_value.port = spec.port;
        if (opts.keepalive_interval_ms < 10) opts.keepalive_interval_ms = 10;
        if (opts.busy_retries < 0) opts.busy_retries = 0;
        if (opts.capture_timeout_ms < 1) opts.capture_timeout_ms = 1;
        if (opts.busy_backoff_ms < 0) opts.busy_backoff_ms = 0;
        if (opts.file_grace_ms < 0) opts.file_grace_ms = 0;
        reconnect_backoff =
            Backoff(BackoffPolicy{kReconnectInitialMs, std::max(opts.reconnect_backoff_max_ms, 1),
                                  BackoffPolicy::Jitter::none});
        stuck = StuckDetector(opts.stuck_after_reinits);
    }

    // Answered by the thread, or by stop()'s drain; at once ("stopped") once stopping.
    void push_order(Order order) {
        std::lock_guard<std::mutex> post_lock(post_mutex);
        if (stopping) {
            order.cancel();
            return;
        }
        orders.push(std::move(order));
    }

    std::string where() const {
        std::string w = "camera " + (spec.port.empty() ? std::string("auto") : spec.port);
        return spec.serial.empty() ? w : w + " (" + spec.serial + ")";
    }

    // --- session ---------------------------------------------------------------

    Status connect() {
        auto opened = detail::GphotoSession::open(spec);
        if (!opened) {
            is_connected = false;
            if (opened.error().message != last_connect_error) {
                LOG_WARN(kLog, where() << ": connect failed: " << opened.error().describe());
                last_connect_error = opened.error().message;
            }
            return opened.error();
        }
        session = std::move(*opened);
        files_per_shot_seen = 0;
        last_connect_error.clear();
        reconnect_backoff.reset();
        stuck.on_connected();
        holders_reported = false;
        {
            std::lock_guard<std::mutex> lock(info_mutex);
            health_value.failed_reinits = 0;
        }
        // From now on this worker is this camera: another one on the same port is refused.
        if (spec.serial.empty()) spec.serial = session->info().serial;
        if (!session->info().port.empty()) spec.port = session->info().port;
        {
            std::lock_guard<std::mutex> lock(info_mutex);
            info_value = session->info();
        }
        LOG_INFO(kLog, where() << ": connected, model='" << session->info().model << "' serial='"
                               << session->info().serial << "'");
        apply_configured_settings();
        is_connected = true;
        return ok();
    }

    // Presets and the capture target, after every connect: a camera that was replugged or
    // power-cycled has forgotten them. Failures are logged; the camera stays usable.
    void apply_configured_settings() {
        if (!opts.capture_target.empty()) {
            auto target = session->settings("capturetarget");
            if (!target) {
                LOG_INFO(
                    kLog,
                    where() << ": camera.capture_target=" << opts.capture_target
                            << ": this camera has no capturetarget setting; it stores on its card");
            } else {
                const char* want = opts.capture_target == "ram" ? "RAM" : "card";
                std::string choice;
                for (const auto& c : target->choices) {
                    if (c.find(want) != std::string::npos) choice = c;
                }
                auto st = choice.empty()
                              ? Expected<std::string>(Error(codes::bad_setting_value,
                                                            "no choice like " + std::string(want)))
                              : session->set_setting("capturetarget", choice);
                if (!st) LOG_WARN(kLog, where() << ": capturetarget: " << st.error().describe());
            }
        }
        for (const auto& [name, value] : opts.settings) {
            auto st = session->set_setting(name, value);
            if (!st) {
                LOG_WARN(kLog, where() << ": preset " << name << "=" << value << ": "
                                       << st.error().describe());
            } else {
                LOG_DEBUG(kLog, where() << ": preset " << name << " = " << *st);
            }
        }
    }

    void disconnect(const Error& why) {
        if (!session) return;
        LOG_WARN(kLog, where() << ": closing session after " << why.describe());
        is_connected = false;
        session.reset();  // gp_camera_exit
        // Their files are in their sinks; any announced late stay on the card.
        handing_on.reset();
        if (handed_on) answer_handed_on();
    }

    // --- idle ------------------------------------------------------------------

    // Idle: re-open a closed session (with backoff), or poll the open one's events, which
    // is also how a dropped connection is noticed without an order.
    void tick() {
        finish_handed_on();
        if (!session) {
            if (connect()) {
                next_tick_ms = clock::monotonic_ms() + opts.keepalive_interval_ms;
            } else {
                connect_failed_backoff();
            }
            return;
        }
        for (int i = 0; i < kIdleMaxEvents; ++i) {
            auto ev = session->wait_event(10);
            if (!ev) {
                if (detail::error_breaks_session(ev.error())) {
                    disconnect(ev.error());
                    next_tick_ms = clock::monotonic_ms();  // try to re-open at once, then back off
                    return;
                }
                break;
            }
            if (ev->kind == detail::EventKind::timeout) break;
            if (ev->kind == detail::EventKind::file_added) {
                LOG_INFO(kLog, where() << ": file added outside a capture, left on the camera: "
                                       << ev->folder << "/" << ev->name);
            } else if (ev->kind == detail::EventKind::storage_full) {
                LOG_WARN(kLog, where() << ": camera reports its storage is full");
            }
        }
        next_tick_ms = clock::monotonic_ms() + opts.keepalive_interval_ms;
    }

    // --- capture ---------------------------------------------------------------

    // Waiting on purpose (busy backoff) is progress, not a hang.
    bool sleep_unless_stopping(int ms) {
        for (int left = ms; left > 0; left -= 100) {
            liveness.beat();
            if (!clock::sleep_unless(&stopping, std::min(left, 100))) return false;
        }
        return !stopping;
    }

    static Error stopped_error() {
        return Error(codes::camera_disconnected, "camera worker stopped");
    }

    void connect_failed_backoff() {
        note_failed_reinit();
        int64_t delay_ms = reconnect_backoff.next_delay_ms();
        // The first retry waits kReconnectInitialMs even under a smaller cap (as it always
        // has); Backoff would hold every later one there too, so the cap is applied here.
        if (reconnect_backoff.failures() > 1)
            delay_ms = std::min<int64_t>(delay_ms, reconnect_backoff.policy().max_ms);
        next_tick_ms = clock::monotonic_ms() + delay_ms;
    }

    // A camera that cannot be claimed is held by another process (gvfs): say who, once.
    // One that keeps failing to re-open is reset, then reported stuck (usb_port.h).
    void note_failed_reinit() {
        if (last_connect_error.find("claim") != std::string::npos) {
            if (!holders_reported) {
                std::string advice = check_camera_holders(spec.port, opts.usb_root);
                if (!advice.empty()) LOG_ERROR(kLog, advice);
                holders_reported = true;
            }
            return;  // not stuck: busy elsewhere
        }
        auto action = stuck.on_reinit_failed();
        std::lock_guard<std::mutex> lock(info_mutex);
        health_value.failed_reinits = stuck.failed_reinits();
        health_value.last_error = last_connect_error;
        if (action == StuckDetector::Action::reset_usb) {
            health_value.usb_reset = reset_usb_camera(spec.port, opts.usb_root);
            LOG_WARN(kLog, where() << ": " << stuck.failed_reinits()
                                   << " re-opens failed; USB reset: " << health_value.usb_reset);
        } else if (action == StuckDetector::Action::report_stuck) {
            ++health_value.stuck_reports;
            LOG_ERROR(kLog, where() << ": stuck: " << stuck.failed_reinits()
                                    << " re-opens failed (USB reset: " << health_value.usb_reset
                                    << "); last error: " << last_connect_error);
        }
    }

    // Reads events left from before (a late CaptureComplete, a file shot by hand) so they
    // are not mistaken for this capture's.
    Status drain_events() {
        for (int i = 0; i < kDrainMaxEvents; ++i) {
            auto ev = session->wait_event(1);
            if (!ev) return ev.error();
            if (ev->kind == detail::EventKind::timeout) break;
            if (ev->kind == detail::EventKind::file_added) {
                LOG_INFO(kLog, where() << ": file added outside a capture, left on the camera: "
                                       << ev->folder << "/" << ev->name);
            }
        }
        return ok();
    }

    // Sleeps until the wall-clock instant. No spinning: with 8 cameras on a small board,
    // 8 spinning workers would starve the very threads (and, for PTP/IP, the network
    // stack) that carry the triggers. The last kFinalWaitUs are one absolute sleep inside the
    // trigger window (SCHED_FIFO when permitted, no timer slack), which stays open until
    // the trigger has been sent (trigger_with_busy_retries): every rig's and camera's thread
    // wakes at that instant, and ordinary threads must not delay them.
    bool wait_until_us(int64_t at_us) {
        constexpr int64_t kFinalWaitUs = 2000;
        for (;;) {
            if (stopping) return false;
            liveness.beat();
            int64_t left = at_us - clock::now_us();
            if (left <= kFinalWaitUs) break;
            std::this_thread::sleep_for(
                std::chrono::microseconds(std::min<int64_t>(left - kFinalWaitUs, 20000)));
        }
        trigger_moment.emplace(opts.trigger_priority);
        if (opts.trigger_priority > 0 && !trigger_moment->raised()) say_refusal_once();
        trigger_window::sleep_until_epoch_us(at_us);
        return !stopping;
    }

    void say_refusal_once() {
        static std::atomic<bool> said{false};
        if (said.exchange(true)) return;
        LOG_INFO(kLog,
                 where() << ": timed triggers run at normal priority: " << trigger_window::refusal()
                         << "; give the service LimitRTPRIO (the packaged unit does) or "
                            "set capture.trigger_priority: 0 to not ask");
    }

    // Runs `work` on an open session (opening it first), settling the session after an
    // error that leaves it out of step.
    template <typename T>
    Expected<T> on_session(const std::function<Expected<T>()>& work) {
        if (!session) {
            if (auto st = connect(); !st) {
                connect_failed_backoff();
                return st.error();
            }
        }
        auto result = work();
        if (!result) return settle_error(result.error());
        return result;
    }

    CaptureResult capture(const SinkFactory& factory, const CaptureOptions& copts) {
        handing_on.reset();
        if (!session) {
            if (auto st = connect(); !st) {
                connect_failed_backoff();
                return st.error();
            }
        }
        // A timed trigger waits for no event of the shot before.
        if (copts.trigger_at_us > 0) finish_handed_on();
        if (!session) return Error(codes::camera_disconnected, "the camera went away");
        // A shot handed on leaves no stale event: its own are read into it.
        const bool settled =
            handed_on.has_value() ||
            (settled_at_ms != 0 && clock::monotonic_ms() - settled_at_ms < kSettledForMs);
        settled_at_ms = 0;
        if (auto st = settled ? ok() : drain_events(); !st) {
            if (!detail::error_breaks_session(st.error())) return st.error();
            // The camera went away (or restarted) while idle. Nothing is triggered yet, so
            // re-open once and carry on.
            disconnect(st.error());
            if (auto c = connect(); !c) {
                connect_failed_backoff();
                return c.error();
            }
            if (auto again = drain_events(); !again) return settle_error(again.error());
        }
        // The window closes once the trigger has left; this closes it however capture ends
        // (stopped while waiting, a trigger that failed first, an exception).
        struct CloseTriggerMoment {
            std::optional<trigger_window::Window>& moment;
            ~CloseTriggerMoment() { moment.reset(); }
        } close_trigger_moment{trigger_moment};
        if (copts.trigger_at_us > 0 && !wait_until_us(copts.trigger_at_us)) return stopped_error();
        bool ended_complete = false;
        auto result = capture_on_session(factory, &ended_complete);
        // The shot before is answered before this one (its events normally came first).
        finish_handed_on();
        if (!result) return settle_error(result.error());
        if (ended_complete && session) settled_at_ms = clock::monotonic_ms();
        return result;
    }

    // Reads events until the shot handed on is closed (its CaptureComplete, or its grace
    // period over), then answers it (answer_handed_on). Nothing to do without one.
    void finish_handed_on() {
        while (handed_on && !handed_on->closed && session && !stopping) {
            liveness.beat();
            int64_t left = handed_on->grace_until_ms - clock::monotonic_ms();
            if (left <= 0) break;
            auto ev = session->wait_event(static_cast<int>(std::clamp<int64_t>(left, 1, kPollMs)));
            if (!ev) {
                LOG_WARN(kLog, where() << ": reading the events of the shot before: "
                                       << ev.error().describe());
                if (detail::error_breaks_session(ev.error())) {
                    disconnect(ev.error());  // answers it
                    next_tick_ms = clock::monotonic_ms();
                }
                break;
            }
            if (ev->kind == detail::EventKind::timeout) continue;
            if (!take_for_handed_on(*ev)) {
                LOG_INFO(kLog, where() << ": event after the shot before, not of it: ignored");
            }
        }
        if (handed_on) answer_handed_on();
    }

    // An event read while the shot before is still open is that shot's: a file announced
    // within its grace period (a RAW+JPEG camera's second file, or a body switched to
    // RAW+JPEG mid-burst), or its CaptureComplete. False: the event is not the shot
    // before's (it is closed now, by its grace period's end).
    bool take_for_handed_on(const detail::Event& ev) {
        if (!handed_on || handed_on->closed) return false;
        auto& shot = *handed_on;
        switch (ev.kind) {
            case detail::EventKind::file_added:
                if (clock::monotonic_ms() >= shot.grace_until_ms) {
                    shot.closed = true;
                    return false;
                }
                if (is_added(shot.added, ev)) return true;
                if (ev.name_truncated ||
                    static_cast<int>(shot.added.size()) >= opts.max_files_per_shot) {
                    LOG_WARN(kLog, where() << ": file left on the camera (name too long, or too "
                                              "many for one shot): "
                                           << ev.folder << "/" << ev.name);
                    return true;
                }
                shot.added.push_back(AddedFile{ev.folder, ev.name, clock::monotonic_ms()});
                shot.late.push_back(shot.added.back());
                shot.grace_until_ms = clock::monotonic_ms() + opts.file_grace_ms;
                return true;
            case detail::EventKind::capture_complete:
                shot.closed = shot.complete = true;
                return true;
            default:
                return false;
        }
    }

    // Fetches the late files of the shot handed on (when the session is open), deletes
    // them from the card, and answers its order with all its files. A late file that fails
    // stays on the card; the shot keeps the files it has.
    void answer_handed_on() {
        HandedOnShot shot = std::move(*handed_on);
        handed_on.reset();
        // What the next burst shot may expect: this one's files, if the camera closed it
        // with a CaptureComplete.
        files_per_shot_seen = shot.complete ? shot.added.size() : 0;
        std::vector<AddedFile> fetched;
        for (const auto& f : shot.late) {
            if (!session) {
                LOG_WARN(kLog, where() << ": " << f.folder << "/" << f.name
                                       << " stays on the camera: the session closed");
                continue;
            }
            auto file = download_file(f, shot.factory, shot.triggered_at_us, shot.t0);
            if (!file) {
                LOG_WARN(kLog, where() << ": " << f.folder << "/" << f.name
                                       << " stays on the camera: " << file.error().describe());
                if (detail::error_breaks_session(file.error())) {
                    disconnect(file.error());
                    next_tick_ms = clock::monotonic_ms();
                }
                continue;
            }
            shot.files.push_back(std::move(*file));
            fetched.push_back(f);
        }
        if (session && opts.delete_after_download) remove_from_camera(fetched);
        if (session && shot.complete) settled_at_ms = clock::monotonic_ms();
        if (shot.answer) shot.answer->set_value(std::move(shot.files));
    }

    // Closes the session after an error that leaves it out of step, and decides what the
    // caller is told. A dead PTP/IP connection reads as "PTP General Error" (end of stream),
    // like a camera's own GeneralError: re-opening at once tells the two apart.
    Error settle_error(const Error& e) {
        if (!detail::error_breaks_session(e)) return e;
        disconnect(e);
        if (e.code != codes::camera_error) {
            next_tick_ms = clock::monotonic_ms();  // re-open as soon as the worker is idle
            return e;
        }
        auto st = connect();
        if (st) {
            next_tick_ms = clock::monotonic_ms() + opts.keepalive_interval_ms;
            return e;
        }
        connect_failed_backoff();
        if (st.error().code == codes::camera_disconnected) {
            return Error(codes::camera_disconnected,
                         e.message + "; re-opening: " + st.error().message);
        }
        return e;
    }

    // Each file is downloaded as soon as it is announced, then the events are read on until
    // CaptureComplete (or the grace period): files announced later (RAW+JPEG) still belong
    // to this shot. libgphoto2 polls its PTP/IP event socket for ~1 ms before it hands over
    // a CaptureComplete it already holds; done after the download, that poll overlaps the
    // photo's writeback, which the sink starts on the download's completion (SpoolSink).
    //
    // Handing on: in a burst (the next capture already queued) of a camera known to send
    // its CaptureComplete after its files, a shot that has as many files as the last one
    // ends once they are downloaded and deleted, and the next shot is triggered at once:
    // the read of this one's CaptureComplete (and that ~1 ms poll) moves into the next
    // shot's wait for its files, which reads this shot's events first (a camera sends them
    // before it takes the next picture). A file of this shot announced then (the body
    // switched to RAW+JPEG) is still fetched into this shot's sinks before it is answered.
    CaptureResult capture_on_session(const SinkFactory& factory, bool* ended_complete) {
        const int64_t triggered_at_us = clock::now_us();
        const int64_t t0 = clock::monotonic_ms();
        const int64_t trigger_start_us = clock::monotonic_us();
        if (auto st = trigger_with_busy_retries(); !st) return st.error();
        const int64_t wait_start_us = clock::monotonic_us();
        std::vector<CapturedFile> files;
        int64_t downloads_us = 0;
        auto fetch = [&](const AddedFile& f) -> Status {
            const int64_t d0_us = clock::monotonic_us();
            auto file = download_file(f, factory, triggered_at_us, t0);
            downloads_us += clock::monotonic_us() - d0_us;
            if (!file) return file.error();
            files.push_back(std::move(*file));
            return ok();
        };
        bool hand_on = false;
        auto added = wait_for_added_files(t0, ended_complete, fetch, &hand_on);
        if (!added) return added.error();
        const int64_t waited_us = clock::monotonic_us() - wait_start_us - downloads_us;
        // A capture already waiting (a burst) takes the next photo, whose thumbnail would
        // replace this one: the GetThumb round trip is kept for the last of a burst.
        if (opts.keep_last_thumbnail && orders.size() == 0) remember_thumbnail(files);
        const int64_t delete_start_us = clock::monotonic_us();
        if (opts.delete_after_download) remove_from_camera(*added);
        if (!files.empty()) {
            auto& first = files.front();
            first.trigger_call_us = wait_start_us - trigger_start_us;
            first.event_wait_us = waited_us;
            first.delete_us = clock::monotonic_us() - delete_start_us;
        }
        if (hand_on && session) {
            HandedOnShot shot;
            shot.factory = factory;
            shot.added = std::move(*added);
            shot.triggered_at_us = triggered_at_us;
            shot.t0 = t0;
            shot.grace_until_ms = clock::monotonic_ms() + opts.file_grace_ms;
            handing_on = std::move(shot);
        }
        return files;
    }

    // Retries a trigger the camera answers busy, opts.busy_retries times, the wait doubling
    // from opts.busy_backoff_ms (capped at 60 s).
    Status trigger_with_busy_retries() {
        for (int attempt = 0;; ++attempt) {
            auto st = session->trigger();
            trigger_moment.reset();  // the command has left: back to ordinary scheduling
            if (st) return ok();
            if (st.error().code == codes::camera_busy && handed_on) {
                // Still busy with the shot handed on: finish it, then try again at once.
                finish_handed_on();
                if (!session) return Error(codes::camera_disconnected, "the camera went away");
                --attempt;
                continue;
            }
            if (st.error().code != codes::camera_busy || attempt >= opts.busy_retries) {
                if (st.error().code == codes::camera_busy) {
                    return Error(codes::camera_busy, st.error().message + " (after " +
                                                         std::to_string(attempt + 1) +
                                                         " attempts)");
                }
                return st.error();
            }
            int backoff = static_cast<int>(
                std::min<int64_t>(int64_t{opts.busy_backoff_ms} << std::min(attempt, 10), 60000));
            LOG_DEBUG(kLog, where() << ": camera busy, retry in " << backoff << " ms");
            if (!sleep_unless_stopping(backoff)) return stopped_error();
        }
    }

    // Collects added files until CaptureComplete (having at least one file), or a short
    // grace period after the last file when the camera sends no CaptureComplete, handing
    // each new file to `fetch` as it is announced (the grace period starts once it is
    // fetched). `*ended_complete` says which of the two ended it.
    // `*hand_on`: it ended early to hand the shot on (capture_on_session).
    Expected<std::vector<AddedFile>> wait_for_added_files(
        int64_t t0, bool* ended_complete, const std::function<Status(const AddedFile&)>& fetch,
        bool* hand_on) {
        const int64_t deadline = t0 + opts.capture_timeout_ms;
        const int64_t last_file_by =
            deadline + int64_t{opts.file_grace_ms} * std::max(opts.max_files_per_shot, 1);
        std::vector<AddedFile> added;
        bool complete = false, complete_after_files = false;
        int64_t grace_until = 0;
        for (;;) {
            if (stopping) return stopped_error();
            liveness.beat();  // each event poll came back
            int64_t now = clock::monotonic_ms();
            if (!added.empty() && (complete || now >= grace_until)) {
                *ended_complete = complete;
                files_per_shot_seen = complete_after_files ? added.size() : 0;
                return added;
            }
            if (added.empty() && now >= deadline) {
                return Error(codes::timeout,
                             "no file added within " + std::to_string(opts.capture_timeout_ms) +
                                 " ms of the trigger" +
                                 (complete ? " (the camera reported capture complete)" : ""));
            }
            int64_t limit = added.empty() ? deadline : grace_until;
            int wait = static_cast<int>(std::clamp<int64_t>(limit - now, 1, kPollMs));
            auto ev = session->wait_event(wait);
            if (!ev) return ev.error();
            const bool before = take_for_handed_on(*ev);
            // Closed with no late file, the shot before is answered at once (no I/O).
            if (handed_on && handed_on->closed && handed_on->late.empty()) answer_handed_on();
            if (before) continue;
            switch (ev->kind) {
                case detail::EventKind::file_added:
                    if (ev->name_truncated) {
                        return Error(codes::file_name_too_long,
                                     "the camera named a file (or its folder) longer than "
                                     "libgphoto2 can hold (127 bytes); the file stays on the "
                                     "camera");
                    }
                    if (is_added(added, *ev)) break;  // the same object announced twice
                    if (static_cast<int>(added.size()) >= opts.max_files_per_shot ||
                        clock::monotonic_ms() >= last_file_by) {
                        return Error(codes::too_many_files, "the camera kept adding files after " +
                                                                std::to_string(added.size()) +
                                                                " for one trigger");
                    }
                    added.push_back(AddedFile{ev->folder, ev->name, clock::monotonic_ms()});
                    if (auto st = fetch(added.back()); !st) return st.error();
                    grace_until = clock::monotonic_ms() + opts.file_grace_ms;
                    if (!complete && may_hand_on(added.size())) {
                        *ended_complete = false;
                        *hand_on = true;
                        return added;
                    }
                    break;
                case detail::EventKind::capture_complete:
                    complete_after_files = !complete && !added.empty();
                    complete = true;
                    break;
                case detail::EventKind::storage_full:
                    return Error(codes::camera_storage_full,
                                 "the camera reported its storage full during capture");
                default:
                    break;
            }
        }
    }

    // A burst's next capture is queued, the camera closed its last shot with a
    // CaptureComplete after as many files as this one has now, and no shot is still open.
    bool may_hand_on(size_t files) const {
        return files_per_shot_seen > 0 && files >= files_per_shot_seen && orders.size() > 0 &&
               (!handed_on || handed_on->closed);
    }

    static bool is_added(const std::vector<AddedFile>& added, const detail::Event& ev) {
        return std::any_of(added.begin(), added.end(), [&](const AddedFile& f) {
            return f.folder == ev.folder && f.name == ev.name;
        });
    }

    // Downloads one announced file into the sink `factory` gives for it. Nothing is deleted
    // here: nothing leaves the camera unless all of this capture's files reached their sinks.
    Expected<CapturedFile> download_file(const AddedFile& f, const SinkFactory& factory,
                                         int64_t triggered_at_us, int64_t t0) {
        liveness.beat();
        auto header = session->file_info(f.folder, f.name);
        if (!header) return header.error();
        if (header->size > opts.max_file_bytes) {
            return Error(codes::file_too_large,
                         f.folder + "/" + f.name + ": the camera announces " +
                             std::to_string(header->size) + " bytes, over the cap of " +
                             std::to_string(opts.max_file_bytes));
        }
        // Counted from the sink's creation: opening the spool file is part of the download
        // (it can wait on the filesystem's journal when the disk is busy).
        const int64_t d0_us = clock::monotonic_us();
        auto sink = factory(*header);
        if (!sink) return sink.error();
        if (!*sink)
            return Error(codes::camera_error, "sink factory returned no sink for " + f.name);
        // Never more than announced (a camera that announces nothing gets the cap).
        auto got = session->download(f.folder, f.name, **sink,
                                     header->size ? header->size : opts.max_file_bytes);
        if (!got) return got.error();
        if (header->size && *got != header->size) {
            return Error(codes::camera_error, "download " + f.folder + "/" + f.name + ": got " +
                                                  std::to_string(*got) + " of " +
                                                  std::to_string(header->size) + " bytes");
        }
        (*sink)->complete();
        sink->reset();
        CapturedFile cf;
        cf.header = *header;
        if (!header->size) cf.header.size = *got;
        cf.triggered_at_us = triggered_at_us;
        cf.triggered_at_ms = triggered_at_us / 1000;
        cf.trigger_ms = f.announced_ms - t0;
        cf.download_us = clock::monotonic_us() - d0_us;
        cf.download_ms = cf.download_us / 1000;
        return cf;
    }

    // Deletes this capture's files from the camera; called only once all reached their sinks.
    void remove_from_camera(const std::vector<AddedFile>& added) {
        for (const auto& f : added) {
            auto st = session->remove(f.folder, f.name);
            if (!st) {
                // The photos are safe in their sinks; a stale copy on the card is not a
                // failure.
                LOG_WARN(kLog, where() << ": " << st.error().describe());
                if (detail::error_breaks_session(st.error())) {
                    disconnect(st.error());
                    next_tick_ms = clock::monotonic_ms();
                }
                break;
            }
        }
    }

    // The camera's own thumbnail of the first JPEG, fetched before the file is deleted:
    // the preview of cameras without live view. Best effort.
    void remember_thumbnail(const std::vector<CapturedFile>& files) {
        for (const auto& f : files) {
            if (!is_jpeg(f.header)) continue;
            auto thumb = session->thumbnail(f.header.camera_folder, f.header.camera_name);
            if (thumb && thumb->size() > opts.max_thumbnail_bytes) {
                LOG_WARN(kLog, where()
                                   << ": camera thumbnail of " << thumb->size()
                                   << " bytes dropped (over " << opts.max_thumbnail_bytes << ")");
            } else if (thumb && !thumb->empty()) {
                last_thumbnail = Preview{std::move(*thumb), "last_photo", f.triggered_at_ms};
            } else if (!thumb) {
                LOG_DEBUG(kLog, where() << ": no thumbnail: " << thumb.error().describe());
            }
            return;
        }
    }

    Expected<Preview> preview() {
        auto frame = session->capture_preview();
        if (frame && frame->size() > opts.max_thumbnail_bytes) {
            return Error(
                codes::camera_error,
                "live-view frame of " + std::to_string(frame->size()) + " bytes is over the cap");
        }
        if (frame) return Preview{std::move(*frame), "live_view", clock::now_ms()};
        if (frame.error().code != codes::preview_unavailable) return frame.error();
        if (last_thumbnail.jpeg.empty()) {
            return Error(codes::preview_unavailable,
                         "the camera has no live view and has taken no photo yet to show instead");
        }
        return last_thumbnail;
    }

    // --- thread ----------------------------------------------------------------

    // No exception ends the worker thread: the order is answered "stopped" (cancel()) if it
    // was not answered yet, and the worker goes on with the next one.
    void run_guarded(Order& order) {
        try {
            order.run();
            return;
        } catch (const std::exception& e) {
            LOG_ERROR(kLog, where() << ": camera order failed with an exception: " << e.what());
        } catch (...) {
            LOG_ERROR(kLog, where() << ": camera order failed with an unknown exception");
        }
        try {
            order.cancel();
        } catch (...) {  // its promise was answered before the throw
        }
    }

    void tick_guarded() {
        if (!guarded("event poll", [this] { tick(); }))
            next_tick_ms = clock::monotonic_ms() + opts.keepalive_interval_ms;
    }

    // False when `work` threw (logged).
    bool guarded(const char* what, const std::function<void()>& work) {
        try {
            work();
            return true;
        } catch (const std::exception& e) {
            LOG_ERROR(kLog, where() << ": " << what << " failed with an exception: " << e.what());
        } catch (...) {
            LOG_ERROR(kLog, where() << ": " << what << " failed with an unknown exception");
        }
        return false;
    }

    void run(std::promise<Status> first_connect) {
        liveness.begin();
        Status first = connect();
        liveness.end();
        first_connect.set_value(first);
        if (first) {
            next_tick_ms = clock::monotonic_ms() + opts.keepalive_interval_ms;
        } else {
            connect_failed_backoff();
        }

        while (!stopping) {
            int64_t wait = std::clamp<int64_t>(next_tick_ms - clock::monotonic_ms(), 0,
                                               opts.keepalive_interval_ms);
            if (handed_on) wait = 0;  // it ends with the next order, else now
            auto order = orders.pop_for(std::chrono::milliseconds(wait));
            if (stopping) {
                if (order) order->cancel();
                break;
            }
            if (!order && handed_on) {
                BusyScope busy(liveness);
                guarded("finishing a shot", [this] { finish_handed_on(); });
                continue;
            }
            if (order) {
                BusyScope busy(liveness);
                run_guarded(*order);
                if (session)
                    next_tick_ms =
                        std::max(next_tick_ms, clock::monotonic_ms() + opts.keepalive_interval_ms);
                continue;
            }
            if (clock::monotonic_ms() >= next_tick_ms) {
                BusyScope busy(liveness);
                tick_guarded();
            }
        }
        guarded("finishing a shot", [this] { finish_handed_on(); });
        while (auto left = orders.pop_for(std::chrono::milliseconds(0))) left->cancel();
        is_connected = false;
        session.reset();
    }
};

CameraWorker::CameraWorker(CameraSpec spec, WorkerOptions opts)
    : impl_(std::make_unique<Impl>(std::move(spec), opts)) {}

CameraWorker::~CameraWorker() {
    stop();
}

Status CameraWorker::start() {
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
    if (impl_->started) return ok();
    impl_->started = true;
    std::promise<Status> first;
    auto done = first.get_future();
    impl_->thread = std::thread(
        [impl = impl_.get(), p = std::move(first)]() mutable { impl->run(std::move(p)); });
    return done.get();
}

void CameraWorker::stop() {
    std::lock_guard<std::mutex> lock(impl_->lifecycle_mutex);
    {
        std::lock_guard<std::mutex> post_lock(impl_->post_mutex);
        impl_->stopping = true;
        impl_->orders.close();
    }
    if (impl_->thread.joinable()) impl_->thread.join();
    // Orders posted before start() or after the thread ended.
    while (auto left = impl_->orders.pop_for(std::chrono::milliseconds(0))) left->cancel();
}

bool CameraWorker::connected() const {
    return impl_->is_connected;
}

CameraInfo CameraWorker::info() const {
    std::lock_guard<std::mutex> lock(impl_->info_mutex);
    return impl_->info_value;
}

CameraHealth CameraWorker::health() const {
    std::lock_guard<std::mutex> lock(impl_->info_mutex);
    return impl_->health_value;
}

int64_t CameraWorker::busy_for_ms() const {
    return impl_->liveness.busy_for_ms();
}

template <typename T>
std::future<Expected<T>> CameraWorker::post(const char* what, std::function<Expected<T>()> work) {
    auto promise = std::make_shared<std::promise<Expected<T>>>();
    auto future = promise->get_future();
    Impl* impl = impl_.get();
    Order order{[promise, work = std::move(work), impl, what] {
                    impl->finish_handed_on();  // a setting may change what a shot gives
                    Expected<T> r = work();
                    if (!r)
                        LOG_WARN(kLog, impl->where()
                                           << ": " << what << " failed: " << r.error().describe());
                    promise->set_value(std::move(r));
                },
                [promise] { promise->set_value(Impl::stopped_error()); }};
    impl_->push_order(std::move(order));
    return future;
}

std::future<Expected<std::vector<CapturedFile>>> CameraWorker::capture(SinkFactory sink_factory,
                                                                       CaptureOptions opts) {
    auto answer = std::make_shared<std::promise<CaptureResult>>();
    auto future = answer->get_future();
    Impl* impl = impl_.get();
    // A shot handed on is answered later, by the worker, once its events are read.
    Order order{[answer, impl, factory = std::move(sink_factory), opts] {
                    CaptureResult r = impl->capture(factory, opts);
                    if (r && impl->handing_on) {
                        impl->handing_on->answer = answer;
                        if (!r->empty()) r->front().handed_on = true;
                        impl->handing_on->files = std::move(*r);
                        impl->handed_on = std::move(impl->handing_on);
                        impl->handing_on.reset();
                        return;
                    }
                    impl->handing_on.reset();
                    if (!r)
                        LOG_WARN(kLog, impl->where()
                                           << ": capture failed: " << r.error().describe());
                    answer->set_value(std::move(r));
                },
                [answer] { answer->set_value(Impl::stopped_error()); }};
    impl_->push_order(std::move(order));
    return future;
}

std::future<Expected<Setting>> CameraWorker::settings(std::string name) {
    Impl* impl = impl_.get();
    return post<Setting>("reading settings", [impl, name = std::move(name)] {
        return impl->on_session<Setting>([impl, &name] { return impl->session->settings(name); });
    });
}

std::future<Expected<std::string>> CameraWorker::set_setting(std::string name, std::string value) {
    Impl* impl = impl_.get();
    return post<std::string>("setting", [impl, name = std::move(name), value = std::move(value)] {
        return impl->on_session<std::string>(
            [&] { return impl->session->set_setting(name, value); });
    });
}

std::future<Expected<Preview>> CameraWorker::preview() {
    Impl* impl = impl_.get();
    return post<Preview>("preview", [impl] {
        return impl->on_session<Preview>([impl] { return impl->preview(); });
    });
}

}  // namespace photorig::camera
