// USB cameras outside libgphoto2: the gvfs check against a real holder process (a process
// named like gvfs's monitor holding a fake /dev/bus/usb node in a temp dir), the reset path,
// and the decision "failed re-opens -> USB reset -> stuck", alone and in a real worker.
#include "camera/usb_port.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "camera/camera.h"
#include "support/child_process.h"
#include "support/test_util.h"

using namespace photorig::camera;
using namespace photorig::test;
using namespace std::chrono_literals;

namespace {
using Action = StuckDetector::Action;

// A fake usb root with bus 001 device 004, and a process called `name` (a symlink to
// sleep, so /proc/<pid>/comm is the link's name) holding it open on fd 3 when `hold`.
struct FakeHolder {
    TempDir dir{"photorig-usb"};
    std::string node;
    std::unique_ptr<ChildProcess> process;

    FakeHolder(const std::string& name, bool hold) {
        ::mkdir((dir.path() + "/usb").c_str(), 0755);
        ::mkdir((dir.path() + "/usb/001").c_str(), 0755);
        node = dir.path() + "/usb/001/004";
        write_file(node, "");
        std::string link = dir.path() + "/" + name;
        EXPECT_EQ(::symlink("/bin/sleep", link.c_str()), 0);
        std::string script =
            hold ? "exec 3<'" + node + "'; exec '" + link + "' 60" : "exec '" + link + "' 60";
        process = std::make_unique<ChildProcess>(std::vector<std::string>{"bash", "-c", script},
                                                 dir.path() + "/holder.log");
        process->start();
        // Until the exec'd sleep shows its new name.
        EXPECT_TRUE(wait_until(
            [&] {
                std::ifstream in("/proc/" + std::to_string(process->pid()) + "/comm");
                std::string comm;
                std::getline(in, comm);
                return name.compare(0, comm.size(), comm) == 0 && !comm.empty();
            },
            5s));
    }
    std::string usb_root() const { return dir.path() + "/usb"; }
};
}  // namespace

TEST(UsbPort, ParsesLibgphoto2UsbPortsOnly) {
    auto p = parse_usb_port("usb:001,004");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->first, 1);
    EXPECT_EQ(p->second, 4);
    EXPECT_FALSE(parse_usb_port("usb:"));
    EXPECT_FALSE(parse_usb_port("ptpip:127.0.0.1:15740:15740"));
    EXPECT_FALSE(parse_usb_port("usb:001,004x"));
    EXPECT_EQ(usb_device_path("/dev/bus/usb", 1, 4), "/dev/bus/usb/001/004");
}

TEST(UsbPort, FindsTheGvfsMonitorHoldingTheCameraNodeAndSaysHowToStopIt) {
    FakeHolder gvfs("gvfs-gphoto2-volume-monitor", true);
    auto holders = processes_holding(gvfs.node);
    ASSERT_EQ(holders.size(), 1u);
    EXPECT_EQ(holders[0].pid, gvfs.process->pid());
    EXPECT_EQ(holders[0].name, "gvfs-gphoto2-vo");  // comm: 15 characters
    EXPECT_TRUE(is_gvfs_gphoto_name(holders[0].name));

    std::string line = check_camera_holders("usb:001,004", gvfs.usb_root());
    EXPECT_NE(line.find("is held by gvfs-gphoto2-vo (pid " + std::to_string(gvfs.process->pid())),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("systemctl --user mask --now gvfs-gphoto2-volume-monitor"),
              std::string::npos);
    EXPECT_NE(line.find("Camera in use by gvfs"), std::string::npos);
    EXPECT_EQ(line.find('\n'), std::string::npos);  // one line

    // Another camera's node is not held; gvfs still runs, so it is named as a suspect.
    std::string other = check_camera_holders("usb:001,005", gvfs.usb_root());
    EXPECT_NE(other.find("gvfs's gphoto2 monitor runs"), std::string::npos) << other;
    const std::string gone_pid = "(pid " + std::to_string(gvfs.process->pid()) + ")";
    gvfs.process->stop();
    // Once it is gone nothing holds the node and it is not named. Other gvfs-named processes
    // may run meanwhile (the next test starts one; a desktop CI host may run the real monitor),
    // so only an empty answer or the "runs" form without this pid is right.
    const bool none_before = gvfs_gphoto_processes().empty();
    std::string after = check_camera_holders("usb:001,004", gvfs.usb_root());
    const bool none_after = gvfs_gphoto_processes().empty();
    EXPECT_EQ(after.find("is held by"), std::string::npos) << after;
    EXPECT_EQ(after.find(gone_pid), std::string::npos) << after;
    if (none_before && none_after) {
        EXPECT_EQ(after, "");
    }
}

TEST(UsbPort, AnyProcessHoldingTheNodeIsNamedButOnlyGvfsIsSuspectedWithoutIt) {
    FakeHolder other("some-other-tool", true);
    auto holders = processes_holding(other.node);
    ASSERT_EQ(holders.size(), 1u);
    EXPECT_EQ(holders[0].name, "some-other-tool");
    EXPECT_NE(check_camera_holders("usb:001,004", other.usb_root()).find("some-other-tool"),
              std::string::npos);
    FakeHolder idle("gvfsd-gphoto2", false);  // runs, holds nothing
    EXPECT_TRUE(processes_holding(idle.node).empty());
    bool listed = false;
    for (const auto& p : gvfs_gphoto_processes()) listed |= p.pid == idle.process->pid();
    EXPECT_TRUE(listed);
}

TEST(UsbPort, ResetIsANoOpForPtpipAndOpensTheNodeForUsb) {
    EXPECT_EQ(reset_usb_camera("ptpip:127.0.0.1:15740:15740"), "not a USB camera");
    TempDir dir("photorig-usb");
    EXPECT_EQ(reset_usb_camera("usb:001,004", dir.path()).rfind("failed: open ", 0), 0u);
    ::mkdir((dir.path() + "/001").c_str(), 0755);
    write_file(dir.path() + "/001/004", "");
    // A plain file is not a usbfs node: the ioctl itself is refused (ENOTTY).
    std::string r = reset_usb_camera("usb:001,004", dir.path());
    EXPECT_EQ(r.rfind("failed: USBDEVFS_RESET " + dir.path() + "/001/004", 0), 0u) << r;
}

TEST(StuckDetector, ResetsAfterNFailedReinitsThenReportsStuckOnceUntilConnected) {
    StuckDetector d(3);
    EXPECT_EQ(d.on_reinit_failed(), Action::none);
    EXPECT_EQ(d.on_reinit_failed(), Action::none);
    EXPECT_EQ(d.on_reinit_failed(), Action::reset_usb);
    EXPECT_FALSE(d.stuck());
    EXPECT_EQ(d.on_reinit_failed(), Action::report_stuck);
    EXPECT_TRUE(d.stuck());
    EXPECT_EQ(d.on_reinit_failed(), Action::none);  // reported once
    EXPECT_EQ(d.failed_reinits(), 5);
    d.on_connected();
    EXPECT_EQ(d.failed_reinits(), 0);
    EXPECT_FALSE(d.stuck());
    EXPECT_EQ(d.on_reinit_failed(), Action::none);
    EXPECT_EQ(d.on_reinit_failed(), Action::none);
    EXPECT_EQ(d.on_reinit_failed(), Action::reset_usb);  // a new spell, a new reset
}

TEST(StuckDetector, ARecoveryAfterTheResetIsNotStuckAndZeroMeansNever) {
    StuckDetector d(1);
    EXPECT_EQ(d.on_reinit_failed(), Action::reset_usb);
    d.on_connected();  // the reset helped
    EXPECT_EQ(d.on_reinit_failed(), Action::reset_usb);
    StuckDetector never(0);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(never.on_reinit_failed(), Action::none);
}

// The real worker and libgphoto2 against a PTP/IP port nothing answers on: it counts its
// failed re-opens, "resets" (not a USB camera) and reports itself stuck once.
TEST(StuckDetector, AWorkerThatNeverGetsItsCameraReportsStuckAfterTheReset) {
    TempDir home("photorig-home");
    ::setenv("HOME", home.path().c_str(), 1);
    int port = free_tcp_port();
    WorkerOptions opts;
    opts.stuck_after_reinits = 2;
    opts.reconnect_backoff_max_ms = 100;
    opts.keepalive_interval_ms = 50;
    CameraWorker w(
        CameraSpec{"ptpip:127.0.0.1:" + std::to_string(port) + ":" + std::to_string(port),
                   "PTP/IP Camera", ""},
        opts);
    EXPECT_FALSE(w.start());
    ASSERT_TRUE(wait_until([&] { return w.health().stuck_reports > 0; }, 20s));
    CameraHealth h = w.health();
    EXPECT_EQ(h.stuck_reports, 1u);
    EXPECT_GE(h.failed_reinits, 3);
    EXPECT_EQ(h.usb_reset, "not a USB camera");
    EXPECT_FALSE(h.last_error.empty());
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(w.health().stuck_reports, 1u);  // once per stuck spell
    w.stop();
    EXPECT_EQ(w.busy_for_ms(), 0);
}
