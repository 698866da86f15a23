// The camera module against the real libgphoto2 (ptp2 camlib over PTP/IP) talking to the
// ptpip-sim camera simulator on loopback. Each test is its own process under ctest, with
// its own HOME (libgphoto2 keeps the PTP/IP GUID in $HOME/.gphoto).
#include "camera/camera.h"

#include <fcntl.h>
#include <gphoto2/gphoto2.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "camera/gphoto_session.h"
#include "core/clock.h"
#include "core/trigger_window.h"
#include "support/ptpip_sim_fixture.h"
#include "support/test_util.h"

namespace photorig::camera {
namespace {
using namespace std::chrono_literals;
using test::PtpipSim;
using test::TempDir;
using test::wait_until;

constexpr const char* kSerial = "PRSIM-4711";

// Process-wide set-up: libgphoto2 writes to sockets without MSG_NOSIGNAL, and stores its
// PTP/IP GUID under $HOME.
class ProcessEnv : public ::testing::Environment {
  public:
    void SetUp() override {
        std::signal(SIGPIPE, SIG_IGN);
        home_ = std::make_unique<TempDir>("photorig-camera-home");
        ::setenv("HOME", home_->path().c_str(), 1);
    }
    void TearDown() override { home_.reset(); }

  private:
    std::unique_ptr<TempDir> home_;
};
const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new ProcessEnv);

// Keeps every byte and the size of each write() call.
struct Received {
    std::mutex mutex;
    std::vector<std::string> files;
    std::vector<std::vector<size_t>> chunks;
    std::vector<size_t> complete_at;  // a file's size when its sink heard complete()
};

class MemorySink : public DownloadSink {
  public:
    MemorySink(std::shared_ptr<Received> r, size_t index) : r_(std::move(r)), index_(index) {}
    Status write(const char* data, size_t len) override {
        std::lock_guard<std::mutex> lock(r_->mutex);
        r_->files[index_].append(data, len);
        r_->chunks[index_].push_back(len);
        return ok();
    }
    void complete() override {
        std::lock_guard<std::mutex> lock(r_->mutex);
        r_->complete_at.push_back(r_->files[index_].size());
    }

  private:
    std::shared_ptr<Received> r_;
    size_t index_;
};

SinkFactory memory_sinks(std::shared_ptr<Received> r) {
    return [r](const FileHeader&) -> Expected<std::unique_ptr<DownloadSink>> {
        std::lock_guard<std::mutex> lock(r->mutex);
        r->files.emplace_back();
        r->chunks.emplace_back();
        return std::unique_ptr<DownloadSink>(new MemorySink(r, r->files.size() - 1));
    };
}

// `n` captures queued at once (a burst), each into memory sinks that record into `r`.
std::vector<std::future<Expected<std::vector<CapturedFile>>>> queue_captures(
    CameraWorker& worker, const std::shared_ptr<Received>& r, int n) {
    std::vector<std::future<Expected<std::vector<CapturedFile>>>> queued;
    for (int i = 0; i < n; ++i) queued.push_back(worker.capture(memory_sinks(r)));
    return queued;
}

Expected<std::vector<CapturedFile>> capture_into(CameraWorker& worker, std::shared_ptr<Received> r,
                                                 std::chrono::seconds limit = 60s) {
    auto fut = worker.capture(memory_sinks(std::move(r)));
    if (fut.wait_for(limit) != std::future_status::ready) {
        return Error("test_timeout",
                     "capture future not ready after " + std::to_string(limit.count()) + " s");
    }
    return fut.get();
}

// A counter from the simulator's `stats` answer ({"captures": 3, "deletes": 3, ...}).
long sim_stat(PtpipSim& sim, const std::string& key) {
    std::string stats = sim.control("stats");
    auto pos = stats.find("\"" + key + "\":");
    if (pos == std::string::npos) return -1;
    return std::strtol(stats.c_str() + pos + key.size() + 3, nullptr, 10);
}

bool is_jpeg(const std::string& data) {
    return data.size() >= 4 && static_cast<unsigned char>(data[0]) == 0xFF &&
           static_cast<unsigned char>(data[1]) == 0xD8;
}

class CameraWorkerTest : public ::testing::Test {
  protected:
    void start_sim(std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"--serial", kSerial, "--image-size", "300000"};
        args.insert(args.end(), extra.begin(), extra.end());
        sim_ = std::make_unique<PtpipSim>(PHOTORIG_PTPIP_SIM_PATH, args);
        sim_->start();
    }

    std::unique_ptr<CameraWorker> make_worker(WorkerOptions opts = fast_options()) {
        return std::make_unique<CameraWorker>(CameraSpec{sim_->port_string(), "", ""}, opts);
    }

    static WorkerOptions fast_options() {
        WorkerOptions o;
        o.capture_timeout_ms = 5000;
        o.busy_retries = 3;
        o.busy_backoff_ms = 20;
        o.keepalive_interval_ms = 200;
        o.reconnect_backoff_max_ms = 1000;
        return o;
    }

    // One capture that must succeed with exactly one JPEG whose bytes match its header.
    void expect_one_good_capture(CameraWorker& worker, const char* when) {
        auto r = std::make_shared<Received>();
        auto result = capture_into(worker, r);
        ASSERT_TRUE(result) << when << ": " << result.error().describe();
        ASSERT_EQ(result->size(), 1u) << when;
        ASSERT_EQ(r->files.size(), 1u) << when;
        EXPECT_EQ(r->files[0].size(), (*result)[0].header.size) << when;
        EXPECT_TRUE(is_jpeg(r->files[0])) << when;
    }

    std::unique_ptr<PtpipSim> sim_;
};

TEST_F(CameraWorkerTest, CapturesOneJpegWithExactSize) {
    start_sim();
    auto worker = make_worker();
    auto st = worker->start();
    ASSERT_TRUE(st) << st.error().describe();
    ASSERT_TRUE(worker->connected());

    auto r = std::make_shared<Received>();
    int64_t before = clock::now_ms();
    auto result = capture_into(*worker, r);
    ASSERT_TRUE(result) << result.error().describe();
    ASSERT_EQ(result->size(), 1u);
    const CapturedFile& f = (*result)[0];
    ASSERT_EQ(r->files.size(), 1u);
    EXPECT_EQ(f.header.size, 300000u);
    EXPECT_EQ(r->files[0].size(), f.header.size);
    EXPECT_TRUE(is_jpeg(r->files[0]));
    EXPECT_EQ(static_cast<unsigned char>(r->files[0][r->files[0].size() - 2]), 0xFF);  // EOI
    EXPECT_EQ(static_cast<unsigned char>(r->files[0][r->files[0].size() - 1]), 0xD9);
    EXPECT_EQ(f.header.mime, "image/jpeg");
    EXPECT_FALSE(f.header.camera_name.empty());
    EXPECT_FALSE(f.header.camera_folder.empty());
    EXPECT_GE(f.triggered_at_ms, before);
    EXPECT_GE(f.trigger_ms, 0);
    EXPECT_GE(f.download_ms, 0);
}

TEST_F(CameraWorkerTest, ReportsSerialModelAndPort) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    CameraInfo info = worker->info();
    EXPECT_EQ(info.serial, kSerial);
    EXPECT_FALSE(info.model.empty());
    EXPECT_FALSE(info.manufacturer.empty());
    EXPECT_EQ(info.port, sim_->port_string());
}

TEST_F(CameraWorkerTest, DownloadStreamsInPiecesWithoutWholeFileBuffer) {
    start_sim({"--image-size", "3000000"});  // later flag wins
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    auto r = std::make_shared<Received>();
    auto result = capture_into(*worker, r);
    ASSERT_TRUE(result) << result.error().describe();
    ASSERT_EQ(r->files.size(), 1u);
    EXPECT_EQ(r->files[0].size(), (*result)[0].header.size);
    EXPECT_EQ(r->files[0].size(), 3000000u);
    EXPECT_TRUE(is_jpeg(r->files[0]));
    // Streamed: many writes, none holding the whole file.
    size_t largest = 0;
    for (size_t c : r->chunks[0]) largest = std::max(largest, c);
    std::cout << "download of 3000000 bytes arrived in " << r->chunks[0].size()
              << " writes, largest " << largest << " bytes\n";
    EXPECT_GT(r->chunks[0].size(), 1u);
    EXPECT_LE(largest, 1024u * 1024u);
}

TEST_F(CameraWorkerTest, TwentyCapturesInARow) {
    start_sim({"--image-size", "100000"});
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    std::vector<std::string> names;
    int64_t t0 = clock::monotonic_ms();
    int64_t trigger_total = 0, download_total = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = std::make_shared<Received>();
        auto result = capture_into(*worker, r);
        ASSERT_TRUE(result) << "capture " << i << ": " << result.error().describe();
        ASSERT_EQ(result->size(), 1u) << "capture " << i;
        EXPECT_EQ(r->files[0].size(), 100000u) << "capture " << i;
        EXPECT_TRUE(is_jpeg(r->files[0])) << "capture " << i;
        names.push_back((*result)[0].header.camera_folder + "/" + (*result)[0].header.camera_name);
        trigger_total += (*result)[0].trigger_ms;
        download_total += (*result)[0].download_ms;
    }
    int64_t total = clock::monotonic_ms() - t0;
    std::cout << "20 captures in " << total << " ms, " << (total / 20.0)
              << " ms per capture cycle (trigger->file " << (trigger_total / 20.0)
              << " ms, download " << (download_total / 20.0) << " ms)\n";
    EXPECT_EQ(sim_stat(*sim_, "captures"), 20);
    EXPECT_EQ(sim_stat(*sim_, "deletes"), 20) << "every downloaded file is deleted from the camera";
    RecordProperty("ms_per_capture", std::to_string(total / 20.0));
    std::sort(names.begin(), names.end());
    EXPECT_EQ(std::unique(names.begin(), names.end()), names.end())
        << "a file was downloaded twice";
}

TEST_F(CameraWorkerTest, BusyWithinRetriesSucceeds) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    sim_->control("busy 2");
    int64_t t0 = clock::monotonic_ms();
    expect_one_good_capture(*worker, "after 2 busy answers");
    // Backoff 20 ms then 40 ms.
    EXPECT_GE(clock::monotonic_ms() - t0, 60);
}

TEST_F(CameraWorkerTest, BusyBeyondRetriesGivesCameraBusy) {
    start_sim();
    WorkerOptions o = fast_options();
    o.busy_retries = 3;
    auto worker = make_worker(o);
    ASSERT_TRUE(worker->start());
    sim_->control("busy 4");  // one first attempt + 3 retries, all busy
    auto r = std::make_shared<Received>();
    auto result = capture_into(*worker, r);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_busy) << result.error().describe();
    EXPECT_TRUE(r->files.empty());
    EXPECT_TRUE(worker->connected()) << "busy must not drop the session";
    expect_one_good_capture(*worker, "once the camera is no longer busy");
}

TEST_F(CameraWorkerTest, NoEventTimesOutThenCapturesAgain) {
    start_sim();
    WorkerOptions o = fast_options();
    o.capture_timeout_ms = 1500;
    auto worker = make_worker(o);
    ASSERT_TRUE(worker->start());
    sim_->control("noevent 1");
    int64_t t0 = clock::monotonic_ms();
    auto r = std::make_shared<Received>();
    auto result = capture_into(*worker, r);
    int64_t took = clock::monotonic_ms() - t0;
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::timeout) << result.error().describe();
    EXPECT_GE(took, 1500);
    EXPECT_LT(took, 1500 + 1000);
    expect_one_good_capture(*worker, "after the timeout");
}

TEST_F(CameraWorkerTest, StorageFullIsReported) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    sim_->control("storagefull on");
    auto r = std::make_shared<Received>();
    auto result = capture_into(*worker, r);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_storage_full) << result.error().describe();
    sim_->control("storagefull off");
    expect_one_good_capture(*worker, "after storage was freed");
}

TEST_F(CameraWorkerTest, StorageFullEventDuringCapture) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    sim_->control("evstorefull 1");  // the capture is accepted, then StoreFull arrives as an event
    auto result = capture_into(*worker, std::make_shared<Received>());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_storage_full) << result.error().describe();
    expect_one_good_capture(*worker, "after the storage-full event");
}

TEST_F(CameraWorkerTest, KeepsFilesOnCameraWhenAsked) {
    start_sim();
    WorkerOptions o = fast_options();
    o.delete_after_download = false;
    auto worker = make_worker(o);
    ASSERT_TRUE(worker->start());
    expect_one_good_capture(*worker, "first");
    expect_one_good_capture(*worker, "second");
    EXPECT_EQ(sim_stat(*sim_, "deletes"), 0);
    EXPECT_EQ(sim_stat(*sim_, "downloads"), 2);
}

TEST_F(CameraWorkerTest, StorageFullFromTheStart) {
    start_sim({"--storage-full"});
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    auto result = capture_into(*worker, std::make_shared<Received>());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_storage_full) << result.error().describe();
}

TEST_F(CameraWorkerTest, CameraErrorCarriesGphotoText) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    sim_->control("error 1");
    auto result = capture_into(*worker, std::make_shared<Received>());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_error) << result.error().describe();
    EXPECT_NE(result.error().message.find("trigger"), std::string::npos) << result.error().message;
    expect_one_good_capture(*worker, "after a camera error");
}

TEST_F(CameraWorkerTest, CameraSlowerThanReadTimeoutGivesTimeoutThenRecovers) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    sim_->control("slow 3000");  // above libgphoto2's fixed 2.5 s PTP/IP read timeout
    int64_t t0 = clock::monotonic_ms();
    auto result = capture_into(*worker, std::make_shared<Received>());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::timeout) << result.error().describe();
    EXPECT_LT(clock::monotonic_ms() - t0, 10000);
    sim_->control("slow 0");
    // The session was out of step: the worker re-opened it before this order.
    expect_one_good_capture(*worker, "after the camera answered in time again");
}

TEST_F(CameraWorkerTest, KilledAndRestartedSimulatorRecovers) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    expect_one_good_capture(*worker, "before the kill");

    sim_->kill9();
    // The idle keepalive notices without any order.
    EXPECT_TRUE(wait_until([&] { return !worker->connected(); }, 5s));
    auto result = capture_into(*worker, std::make_shared<Received>());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_disconnected) << result.error().describe();
    EXPECT_FALSE(worker->connected());

    sim_->restart();
    EXPECT_TRUE(wait_until([&] { return worker->connected(); }, 10s))
        << "no reconnect in the background";
    expect_one_good_capture(*worker, "after the restart");
    EXPECT_EQ(worker->info().serial, kSerial);
}

// libgphoto2 closes descriptor 0 whenever a PTP/IP session ends (see keep_fd0_occupied() in
// gphoto_session.cpp). It must stay taken: otherwise the next file opened anywhere in the
// process gets 0, and the next session's end closes that file under its owner's feet (a
// spool file, in the failure CI saw).
TEST_F(CameraWorkerTest, EndingASessionClosesNoDescriptorItDoesNotOwn) {
    start_sim();
    {
        auto worker = make_worker();
        ASSERT_TRUE(worker->start());
    }
    EXPECT_NE(::fcntl(0, F_GETFD), -1) << "the session's end left descriptor 0 closed";

    TempDir dir("photorig-fd");
    int fd = ::open(dir.file("photo.part").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    struct stat before {};
    ASSERT_EQ(::fstat(fd, &before), 0);
    {
        auto worker = make_worker();
        ASSERT_TRUE(worker->start());
    }
    struct stat after {};
    ASSERT_EQ(::fstat(fd, &after), 0) << "the session's end closed descriptor " << fd;
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(::write(fd, "x", 1), 1);
    EXPECT_EQ(::fsync(fd), 0);
    ::close(fd);
}

TEST_F(CameraWorkerTest, DroppedConnectionIsNoticedAndReopened) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    long connections = sim_stat(*sim_, "connections");
    sim_->control("disconnect");  // the camera closes its sockets but keeps running
    EXPECT_TRUE(wait_until(
        [&] { return sim_stat(*sim_, "connections") > connections && worker->connected(); }, 10s))
        << "the keepalive should notice the drop and re-open";
    expect_one_good_capture(*worker, "after the drop");
}

TEST_F(CameraWorkerTest, RestartedWhileIdleIsTransparentToTheNextOrder) {
    start_sim();
    WorkerOptions o = fast_options();
    o.keepalive_interval_ms = 60000;  // no keepalive: the order itself must notice and re-open
    auto worker = make_worker(o);
    ASSERT_TRUE(worker->start());
    sim_->kill9();
    sim_->restart();
    // Nothing was triggered on the dead session, so the worker re-opens and captures.
    expect_one_good_capture(*worker, "first order after the restart");
    EXPECT_TRUE(worker->connected());
}

TEST_F(CameraWorkerTest, StartWithoutCameraFailsThenConnectsWhenItAppears) {
    start_sim();
    auto worker = make_worker();
    sim_->kill9();
    auto st = worker->start();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, codes::camera_disconnected) << st.error().describe();
    EXPECT_FALSE(worker->connected());
    sim_->restart();
    EXPECT_TRUE(wait_until([&] { return worker->connected(); }, 10s));
    expect_one_good_capture(*worker, "after the camera appeared");
}

TEST_F(CameraWorkerTest, SinkErrorPassesThroughAndSessionStaysUsable) {
    start_sim();
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    struct FailingSink : DownloadSink {
        Status write(const char*, size_t) override {
            return Error("disk_full", "no space in spool");
        }
    };
    auto result = worker
                      ->capture([](const FileHeader&) -> Expected<std::unique_ptr<DownloadSink>> {
                          return std::unique_ptr<DownloadSink>(new FailingSink);
                      })
                      .get();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, "disk_full");
    EXPECT_TRUE(worker->connected());
    auto refused = worker
                       ->capture([](const FileHeader&) -> Expected<std::unique_ptr<DownloadSink>> {
                           return Error("disk_full", "spool refused");
                       })
                       .get();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "disk_full");
    expect_one_good_capture(*worker, "after sink errors");
}

TEST_F(CameraWorkerTest, StopAnswersQueuedOrders) {
    start_sim({"--capture-delay-ms", "300"});
    auto worker = make_worker();
    ASSERT_TRUE(worker->start());
    std::vector<std::future<Expected<std::vector<CapturedFile>>>> futures;
    for (int i = 0; i < 5; ++i)
        futures.push_back(worker->capture(memory_sinks(std::make_shared<Received>())));
    worker->stop();
    for (auto& f : futures) {
        ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
        (void)f.get();  // each got an answer, success or camera_disconnected
    }
    auto after = worker->capture(memory_sinks(std::make_shared<Received>()));
    ASSERT_EQ(after.wait_for(0s), std::future_status::ready);
    auto r = after.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, codes::camera_disconnected);
    EXPECT_FALSE(worker->connected());
}

TEST_F(CameraWorkerTest, TwoWorkersCaptureInParallel) {
    start_sim();
    auto second = std::make_unique<PtpipSim>(PHOTORIG_PTPIP_SIM_PATH,
                                             std::vector<std::string>{"--serial", "PRSIM-0002"});
    second->start();
    auto a = make_worker();
    CameraWorker b(CameraSpec{second->port_string(), "", ""}, fast_options());
    ASSERT_TRUE(a->start());
    ASSERT_TRUE(b.start());
    EXPECT_EQ(a->info().serial, kSerial);
    EXPECT_EQ(b.info().serial, "PRSIM-0002");
    for (int i = 0; i < 5; ++i) {
        auto ra = std::make_shared<Received>();
        auto rb = std::make_shared<Received>();
        auto fa = a->capture(memory_sinks(ra));
        auto fb = b.capture(memory_sinks(rb));
        auto xa = fa.get();
        auto xb = fb.get();
        ASSERT_TRUE(xa) << xa.error().describe();
        ASSERT_TRUE(xb) << xb.error().describe();
        EXPECT_TRUE(is_jpeg(ra->files.at(0)));
        EXPECT_TRUE(is_jpeg(rb->files.at(0)));
    }
}

// --- settings, preview, RAW+JPEG, identity, timed trigger ------------------------------

const Setting* find_setting(const Setting& s, const std::string& name) {
    if (s.name == name) return &s;
    for (const auto& c : s.children) {
        if (auto* f = find_setting(c, name)) return f;
    }
    return nullptr;
}

template <typename T>
T ready(std::future<T> f) {
    if (f.wait_for(30s) != std::future_status::ready)
        throw std::runtime_error("camera order not answered in 30 s");
    return f.get();
}

TEST_F(CameraWorkerTest, SettingsTreeShowsTheSimulatorsPropertiesWithChoicesRangesAndReadOnly) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto tree = ready(w->settings());
    ASSERT_TRUE(tree) << tree.error().describe();
    EXPECT_EQ(tree->type, "window");
    const Setting* iso = find_setting(*tree, "iso");
    ASSERT_NE(iso, nullptr);
    EXPECT_EQ(iso->type, "radio");
    EXPECT_EQ(iso->value, "100");
    EXPECT_FALSE(iso->read_only);
    EXPECT_EQ(iso->choices, (std::vector<std::string>{"100", "200", "400", "800", "1600"}));
    const Setting* focal = find_setting(*tree, "focallength");
    ASSERT_NE(focal, nullptr);
    EXPECT_EQ(focal->type, "range");
    EXPECT_EQ(focal->min, 24);
    EXPECT_EQ(focal->max, 85);
    const Setting* serial = find_setting(*tree, "serialnumber");
    ASSERT_NE(serial, nullptr);
    EXPECT_TRUE(serial->read_only);
    EXPECT_EQ(serial->value, kSerial);
    auto sub = ready(w->settings("f-number"));
    ASSERT_TRUE(sub) << sub.error().describe();
    EXPECT_EQ(sub->value, "f/5.6");
}

TEST_F(CameraWorkerTest, SetSettingValidatesAndAnswersWithTheValueTheCameraReportsBack) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto set = ready(w->set_setting("iso", "400"));
    ASSERT_TRUE(set) << set.error().describe();
    EXPECT_EQ(*set, "400");
    auto f = ready(w->set_setting("f-number", "f/8"));
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(*f, "f/8");
    auto focal = ready(w->set_setting("focallength", "35"));
    ASSERT_TRUE(focal) << focal.error().describe();
    EXPECT_EQ(*focal, "35");

    auto unknown = ready(w->set_setting("nosuchsetting", "1"));
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, codes::unknown_setting);
    auto bad_choice = ready(w->set_setting("iso", "300"));
    ASSERT_FALSE(bad_choice);
    EXPECT_EQ(bad_choice.error().code, codes::bad_setting_value);
    EXPECT_NE(bad_choice.error().message.find("1600"), std::string::npos)
        << bad_choice.error().message;
    auto out_of_range = ready(w->set_setting("focallength", "200"));
    ASSERT_FALSE(out_of_range);
    EXPECT_EQ(out_of_range.error().code, codes::bad_setting_value);
    auto read_only = ready(w->set_setting("serialnumber", "X"));
    ASSERT_FALSE(read_only);
    EXPECT_EQ(read_only.error().code, codes::setting_read_only);

    // The new ISO is in the next photo's Exif, and the camera stayed usable after refusals.
    auto r = std::make_shared<Received>();
    auto shot = capture_into(*w, r);
    ASSERT_TRUE(shot) << shot.error().describe();
    auto tree = ready(w->settings("iso"));
    ASSERT_TRUE(tree);
    EXPECT_EQ(tree->value, "400");
}

TEST_F(CameraWorkerTest, PresetsAreAppliedAtEveryConnect) {
    start_sim();
    WorkerOptions o = fast_options();
    o.settings = {{"iso", "800"}, {"f-number", "f/11"}, {"nosuchsetting", "1"}};
    auto w = make_worker(o);
    ASSERT_TRUE(w->start());
    EXPECT_EQ(ready(w->settings("iso"))->value, "800");
    sim_->restart();  // a power-cycled camera has forgotten them
    ASSERT_TRUE(wait_until([&] { return !w->connected(); }, 5s));
    ASSERT_TRUE(wait_until([&] { return w->connected(); }, 10s));
    EXPECT_EQ(ready(w->settings("iso"))->value, "800");
    EXPECT_EQ(ready(w->settings("f-number"))->value, "f/11");
}

TEST_F(CameraWorkerTest, RawPlusJpegGivesBothFiles) {
    start_sim({"--raw-pair", "--raw-size", "123456"});
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    auto result = capture_into(*w, r);
    ASSERT_TRUE(result) << result.error().describe();
    ASSERT_EQ(result->size(), 2u);
    EXPECT_EQ((*result)[0].header.camera_name, "IMG_0001.DNG");
    EXPECT_EQ((*result)[0].header.size, 123456u);
    EXPECT_EQ(r->files.at(0).size(), 123456u);
    EXPECT_EQ((*result)[1].header.camera_name, "IMG_0001.JPG");
    EXPECT_TRUE(is_jpeg(r->files.at(1)));
    EXPECT_TRUE(wait_until([&] { return sim_stat(*sim_, "objects") == 0; }, 5s))
        << "both deleted from the card";
}

// Issue 12: files are downloaded as soon as they are announced, and the events read on to
// CaptureComplete afterwards. In a back-to-back burst of a RAW+JPEG camera every shot still
// gets its own pair (the JPEG is never credited to the next shot), and each sink hears
// complete() once, with every byte in.
TEST_F(CameraWorkerTest, RawPlusJpegBurstKeepsEachPairWithItsShot) {
    start_sim({"--raw-pair", "--raw-size", "123456"});
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    auto burst = queue_captures(*w, r, 4);
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(burst[i].wait_for(60s), std::future_status::ready);
        auto result = burst[i].get();
        ASSERT_TRUE(result) << result.error().describe();
        ASSERT_EQ(result->size(), 2u) << "shot " << i;
        const std::string stem = "IMG_000" + std::to_string(i + 1);
        EXPECT_EQ((*result)[0].header.camera_name, stem + ".DNG");
        EXPECT_EQ((*result)[1].header.camera_name, stem + ".JPG");
    }
    std::lock_guard<std::mutex> lock(r->mutex);
    ASSERT_EQ(r->complete_at.size(), 8u);
    for (size_t i = 0; i < 8; ++i) EXPECT_EQ(r->complete_at[i], i % 2 == 0 ? 123456u : 300000u);
}

// Issue 12, handing on: in a queued burst each shot is answered once the next one has been
// triggered (its CaptureComplete read with the next shot's events), every shot in order with
// its own file, and each file deleted from the card once it is in its sink.
TEST_F(CameraWorkerTest, AQueuedBurstHandsShotsOnAndAnswersEachInOrder) {
    start_sim({"--image-size", "100000"});
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    auto burst = queue_captures(*w, r, 12);
    size_t handed_on = 0;
    for (int i = 0; i < 12; ++i) {
        ASSERT_EQ(burst[i].wait_for(60s), std::future_status::ready) << "shot " << i;
        auto result = burst[i].get();
        ASSERT_TRUE(result) << "shot " << i << ": " << result.error().describe();
        ASSERT_EQ(result->size(), 1u) << "shot " << i;
        EXPECT_EQ((*result)[0].header.camera_name,
                  "IMG_" + std::string(i + 1 < 10 ? "000" : "00") + std::to_string(i + 1) + ".JPG");
        if ((*result)[0].handed_on) ++handed_on;
    }
    EXPECT_GE(handed_on, 5u)
        << "a burst's shots after the first are handed on (the last is not: nothing follows)";
    EXPECT_LE(handed_on, 11u);
    EXPECT_EQ(sim_stat(*sim_, "deletes"), 12);
    EXPECT_EQ(sim_stat(*sim_, "objects"), 0) << "nothing left on the card";
    // Alone, a capture waits for its CaptureComplete: nothing is handed on.
    for (int i = 0; i < 3; ++i) {
        auto got = std::make_shared<Received>();
        auto alone = capture_into(*w, got);
        ASSERT_TRUE(alone) << alone.error().describe();
        ASSERT_EQ(alone->size(), 1u);
        ASSERT_EQ(got->files.size(), 1u);
        EXPECT_EQ(got->files[0].size(), (*alone)[0].header.size);
        EXPECT_TRUE(is_jpeg(got->files[0]));
        EXPECT_FALSE((*alone)[0].handed_on) << "alone " << i;
    }
}

// A camera still busy with the shot handed on answers the next trigger DeviceBusy: the
// worker reads that shot's events to its CaptureComplete and triggers again at once, without
// spending one of the busy retries (none are allowed here).
TEST_F(CameraWorkerTest, ABusyAnswerWhileAShotIsHandedOnFinishesItAndTriesAgainAtOnce) {
    start_sim({"--image-size", "100000"});
    WorkerOptions o = fast_options();
    o.busy_retries = 0;
    auto w = make_worker(o);
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    auto burst = queue_captures(*w, r, 10);
    ASSERT_EQ(burst[2].wait_for(60s), std::future_status::ready);
    // Shot 3 is answered once shot 4 was triggered; a shot after that meets the busy answer
    // while the one before it is handed on.
    ASSERT_EQ(sim_->control("busy 1"), "OK");
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(burst[i].wait_for(60s), std::future_status::ready) << "shot " << i;
        auto result = burst[i].get();
        ASSERT_TRUE(result) << "shot " << i << ": " << result.error().describe();
        ASSERT_EQ(result->size(), 1u);
    }
    EXPECT_EQ(sim_stat(*sim_, "captures"), 10);
    EXPECT_EQ(sim_stat(*sim_, "objects"), 0);
}

// A body switched to RAW+JPEG in the middle of a burst: the shot handed on after its first
// file (one file per shot so far) gets its second file when the next shot's events announce
// it, before it is answered. Every shot keeps its own pair, nothing stays on the card, and
// switched off again the shots go back to one file.
TEST_F(CameraWorkerTest, ABodySwitchedToRawPlusJpegMidBurstKeepsEachPairWithItsShot) {
    start_sim({"--image-size", "100000", "--raw-size", "54321"});
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    auto burst = queue_captures(*w, r, 24);
    size_t pairs = 0, singles_after_pair = 0, files = 0;
    bool switched_on = false, switched_off = false;
    for (int i = 0; i < 24; ++i) {
        ASSERT_EQ(burst[i].wait_for(60s), std::future_status::ready) << "shot " << i;
        auto result = burst[i].get();
        ASSERT_TRUE(result) << "shot " << i << ": " << result.error().describe();
        ASSERT_GE(result->size(), 1u);
        ASSERT_LE(result->size(), 2u);
        files += result->size();
        const std::string stem = (*result).back().header.camera_name.substr(0, 8);
        EXPECT_EQ((*result).back().header.camera_name, stem + ".JPG") << "shot " << i;
        if (result->size() == 2) {
            ++pairs;
            EXPECT_EQ((*result)[0].header.camera_name, stem + ".DNG") << "shot " << i;
            EXPECT_EQ((*result)[0].header.size, 54321u);
        } else if (pairs > 0) {
            ++singles_after_pair;
        }
        if (i == 3 && !switched_on) {
            ASSERT_EQ(sim_->control("rawpair on"), "OK");
            switched_on = true;
        }
        if (i == 13 && !switched_off) {
            ASSERT_EQ(sim_->control("rawpair off"), "OK");
            switched_off = true;
        }
    }
    EXPECT_GE(pairs, 4u) << "the shots between the switches are pairs";
    EXPECT_GE(singles_after_pair, 4u) << "and single files again once switched off";
    EXPECT_TRUE(wait_until([&] { return sim_stat(*sim_, "objects") == 0; }, 5s))
        << "every file of every shot was fetched and deleted";
    EXPECT_EQ(sim_stat(*sim_, "deletes"), static_cast<long>(files));
    std::lock_guard<std::mutex> lock(r->mutex);
    EXPECT_EQ(r->complete_at.size(), files) << "each sink heard complete() once";
}

TEST_F(CameraWorkerTest, PreviewFallsBackToTheLastPhotosThumbnail) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto none = ready(w->preview());
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, codes::preview_unavailable);
    auto r = std::make_shared<Received>();
    ASSERT_TRUE(capture_into(*w, r));
    auto p = ready(w->preview());
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->source, "last_photo");
    EXPECT_TRUE(is_jpeg(p->jpeg));
    EXPECT_LT(p->jpeg.size(), 64u * 1024);
}

TEST_F(CameraWorkerTest, ABurstStillKeepsTheLastPhotosThumbnail) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    // Three captures queued at once: the first two skip GetThumb (a capture is waiting),
    // the last fetches it.
    auto r = std::make_shared<Received>();
    auto burst = queue_captures(*w, r, 3);
    for (auto& f : burst) {
        ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
        auto result = f.get();
        ASSERT_TRUE(result) << result.error().describe();
    }
    auto p = ready(w->preview());
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->source, "last_photo");
    EXPECT_TRUE(is_jpeg(p->jpeg));
}

// libgphoto2 2.5.30 formats a hex dump of every data packet even with no log function
// listening; the camera module's gp_log_data takes the library's place and skips them.
struct HexDumpCount {
    std::mutex mutex;
    int dumps = 0;
};
void count_hexdumps(GPLogLevel level, const char*, const char* str, void* data) {
    auto* count = static_cast<HexDumpCount*>(data);
    if (level != GP_LOG_DATA || !str || !std::strstr(str, "hexdump")) return;
    std::lock_guard<std::mutex> lock(count->mutex);
    ++count->dumps;
}

TEST_F(CameraWorkerTest, LibraryHexDumpsAreSkippedUnlessAsked) {
    ASSERT_TRUE(gphoto_hexdumps_interposed());
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    HexDumpCount count;
    int hook = gp_log_add_func(GP_LOG_DATA, count_hexdumps, &count);
    ASSERT_GE(hook, 0);
    auto r = std::make_shared<Received>();
    ASSERT_TRUE(capture_into(*w, r));
    {
        std::lock_guard<std::mutex> lock(count.mutex);
        EXPECT_EQ(count.dumps, 0);
    }
    set_gphoto_hexdumps(true);  // the stock library's behaviour: every packet dumped
    ASSERT_TRUE(capture_into(*w, r));
    set_gphoto_hexdumps(false);
    gp_log_remove_func(hook);
    std::lock_guard<std::mutex> lock(count.mutex);
    EXPECT_GT(count.dumps, 0);
}

TEST_F(CameraWorkerTest, ADifferentCameraOnTheSamePortIsRefused) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    EXPECT_EQ(w->info().serial, kSerial);
    // Another camera of the same model now answers on that port.
    sim_->set_extra_args({"--serial", "PRSIM-OTHER"});
    sim_->restart();
    ASSERT_TRUE(wait_until([&] { return !w->connected(); }, 5s));
    auto r = std::make_shared<Received>();
    auto result = capture_into(*w, r);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, codes::camera_disconnected);
    EXPECT_NE(result.error().message.find("PRSIM-OTHER"), std::string::npos)
        << result.error().message;
    EXPECT_EQ(sim_stat(*sim_, "captures"), 0);
    // The right camera returns: the worker takes it back.
    sim_->set_extra_args({"--serial", kSerial});
    sim_->restart();
    ASSERT_TRUE(wait_until([&] { return w->connected(); }, 10s));
    expect_one_good_capture(*w, "after the right camera returned");
}

TEST_F(CameraWorkerTest, TriggerWaitsForTheRequestedInstant) {
    start_sim();
    auto w = make_worker();
    ASSERT_TRUE(w->start());
    auto r = std::make_shared<Received>();
    CaptureOptions co;
    co.trigger_at_us = clock::now_us() + 300000;
    auto result = w->capture(memory_sinks(r), co).get();
    ASSERT_TRUE(result) << result.error().describe();
    int64_t late_us = (*result)[0].triggered_at_us - co.trigger_at_us;
    EXPECT_GE(late_us, 0);
    EXPECT_LT(late_us, 5000);
}

namespace {
// Threads of this process running SCHED_FIFO (policy: field 41 of /proc/self/task/<tid>/stat).
int fifo_threads() {
    int n = 0;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        size_t paren = stat.rfind(')');
        if (paren == std::string::npos) continue;
        std::istringstream fields(stat.substr(paren + 2));  // field 3 onwards
        std::string field;
        for (int i = 3; i <= 41 && fields >> field; ++i) {
            if (i == 41 && field == std::to_string(SCHED_FIFO)) ++n;
        }
    }
    return n;
}
}  // namespace

// The camera thread runs SCHED_FIFO from its final wait until the trigger command has left
// (here the simulator answers it 300 ms late, so the window is seen open), never before or
// after. Where this process may not ask for it, no thread ever runs FIFO.
TEST_F(CameraWorkerTest, ATimedTriggerRunsSchedFifoOnlyUntilTheCommandHasLeft) {
    start_sim();
    bool permitted = false;
    std::thread([&] { permitted = trigger_window::Window(3).raised(); }).join();
    WorkerOptions o = fast_options();
    o.trigger_priority = 3;
    auto w = make_worker(o);
    ASSERT_TRUE(w->start());
    expect_one_good_capture(*w, "warm-up");
    EXPECT_EQ(fifo_threads(), 0);
    sim_->control("slow 300");
    auto r = std::make_shared<Received>();
    CaptureOptions co;
    co.trigger_at_us = clock::now_us() + 800000;
    auto future = w->capture(memory_sinks(r), co);
    int most_fifo = 0;
    int64_t fifo_seen_at_us = 0;
    while (future.wait_for(1ms) != std::future_status::ready) {
        int n = fifo_threads();
        if (n > 0 && !fifo_seen_at_us) fifo_seen_at_us = clock::now_us();
        most_fifo = std::max(most_fifo, n);
    }
    auto result = future.get();
    sim_->control("slow 0");
    ASSERT_TRUE(result) << result.error().describe();
    EXPECT_EQ(fifo_threads(), 0);  // closed again
    if (permitted) {
        EXPECT_EQ(most_fifo, 1);
        // Not before the final few ms of the wait.
        EXPECT_GE(fifo_seen_at_us, co.trigger_at_us - 5000);
    } else {
        EXPECT_EQ(most_fifo, 0);
    }
}

// Error mapping, without a camera.
TEST(CameraErrors, MapsGphotoResultsToStableCodes) {
    using detail::classify_gphoto_error;
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_CAMERA_BUSY, "", "trigger").code, codes::camera_busy);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_IO, "", "trigger").code, codes::camera_disconnected);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_IO_READ, "", "x").code, codes::camera_disconnected);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_IO_USB_FIND, "", "x").code,
              codes::camera_disconnected);
    auto claim = classify_gphoto_error(GP_ERROR_IO_USB_CLAIM, "", "connect usb:001,004");
    EXPECT_EQ(claim.code, codes::camera_disconnected);
    EXPECT_NE(claim.message.find("another process"), std::string::npos);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_TIMEOUT, "", "x").code, codes::timeout);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR_NO_SPACE, "", "x").code, codes::camera_storage_full);
    EXPECT_EQ(classify_gphoto_error(GP_ERROR, "PTP Store Full", "trigger").code,
              codes::camera_storage_full);
    auto other = classify_gphoto_error(GP_ERROR, "PTP General Error", "trigger");
    EXPECT_EQ(other.code, codes::camera_error);
    EXPECT_NE(other.message.find("PTP General Error"), std::string::npos);
    EXPECT_NE(other.message.find("trigger"), std::string::npos);
    EXPECT_TRUE(detail::error_breaks_session(classify_gphoto_error(GP_ERROR_IO, "", "x")));
    EXPECT_TRUE(detail::error_breaks_session(classify_gphoto_error(GP_ERROR_TIMEOUT, "", "x")));
    EXPECT_FALSE(
        detail::error_breaks_session(classify_gphoto_error(GP_ERROR_CAMERA_BUSY, "", "x")));
    EXPECT_FALSE(detail::error_breaks_session(Error("disk_full", "sink")));
}

TEST(CameraErrors, UnreachablePortGivesDisconnected) {
    int port = test::free_tcp_port();
    std::string p = "ptpip:127.0.0.1:" + std::to_string(port) + ":" + std::to_string(port);
    CameraWorker w(CameraSpec{p, "", ""}, WorkerOptions{});
    auto st = w.start();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, codes::camera_disconnected) << st.error().describe();
    EXPECT_FALSE(w.connected());
    EXPECT_EQ(w.info().port, p);
    auto r = w.capture(memory_sinks(std::make_shared<Received>())).get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, codes::camera_disconnected);
}

TEST(CameraErrors, UnknownModelIsCameraError) {
    CameraWorker w(CameraSpec{"ptpip:127.0.0.1:1:1", "No Such Camera 9000", ""}, WorkerOptions{});
    auto st = w.start();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, codes::camera_error);
    EXPECT_NE(st.error().message.find("No Such Camera 9000"), std::string::npos);
}

TEST(CameraDetect, DetectsOnlyUsbCameras) {
    auto found = detect_cameras();
    ASSERT_TRUE(found) << found.error().describe();
    for (const auto& spec : *found) EXPECT_EQ(spec.port.rfind("usb:", 0), 0u) << spec.port;
}

}  // namespace
}  // namespace photorig::camera
