// The daemons under systemd's Type=notify protocol, without systemd: the test binds the
// AF_UNIX datagram socket NOTIFY_SOCKET names and reads what rig-agent and rig-uploader
// send (READY=1, STATUS=, WATCHDOG=1), with the real broker, simulator and daemons. Also
// the journald priority prefixes (JOURNAL_STREAM) and the camera_stuck event.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/clock.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using photorig::clock::monotonic_ms;
using namespace std::chrono_literals;

namespace {

// What systemd would read: every datagram, with the time it arrived.
class NotifySocket {
  public:
    struct Datagram {
        int64_t at_ms;
        std::string text;
    };

    NotifySocket() : dir_("photorig-notify") {
        path_ = dir_.path() + "/notify.sock";
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("cannot bind " + path_);
        reader_ = std::thread([this] { read_loop(); });
    }
    ~NotifySocket() {
        stop_ = true;
        reader_.join();
        ::close(fd_);
    }
    std::string env() const { return "NOTIFY_SOCKET=" + path_; }

    std::vector<Datagram> since(int64_t from_ms) const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<Datagram> out;
        for (const auto& d : received_)
            if (d.at_ms >= from_ms) out.push_back(d);
        return out;
    }
    // Datagrams since `from_ms` holding the line `line` (or a line starting with it).
    std::vector<Datagram> with_line(const std::string& line, int64_t from_ms = 0) const {
        std::vector<Datagram> out;
        for (const auto& d : since(from_ms)) {
            size_t start = 0;
            while (start <= d.text.size()) {
                size_t end = d.text.find('\n', start);
                if (end == std::string::npos) end = d.text.size();
                if (d.text.compare(start, line.size(), line) == 0) {
                    out.push_back(d);
                    break;
                }
                start = end + 1;
            }
        }
        return out;
    }
    bool wait_line(const std::string& line, std::chrono::milliseconds timeout, int64_t from_ms = 0,
                   const std::string& containing = "") const {
        return wait_until(
            [&] {
                for (const auto& d : with_line(line, from_ms))
                    if (d.text.find(containing) != std::string::npos) return true;
                return false;
            },
            timeout);
    }
    // Largest time between two pets (or window edge and a pet) in [from, to].
    int64_t longest_pet_gap(int64_t from_ms, int64_t to_ms) const {
        int64_t last = from_ms, longest = 0;
        for (const auto& d : with_line("WATCHDOG=1", from_ms)) {
            if (d.at_ms > to_ms) break;
            longest = std::max(longest, d.at_ms - last);
            last = d.at_ms;
        }
        return std::max(longest, to_ms - last);
    }
    size_t pets(int64_t from_ms, int64_t to_ms) const {
        size_t n = 0;
        for (const auto& d : with_line("WATCHDOG=1", from_ms)) n += d.at_ms <= to_ms ? 1 : 0;
        return n;
    }

  private:
    void read_loop() {
        char buf[4096];
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::lock_guard<std::mutex> lock(mutex_);
            received_.push_back({monotonic_ms(), std::string(buf, static_cast<size_t>(n))});
        }
    }

    TempDir dir_;
    std::string path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread reader_;
    mutable std::mutex mutex_;
    std::vector<Datagram> received_;
};

void capture(RigHarness& h, const std::string& txn) {
    h.pub_cli(h.base() + "/request/capture", json{{"camera", "all"}, {"transaction", txn}}.dump());
}

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

// SIGSTOP: the camera stops answering (its sockets stay open, nothing replies); SIGCONT
// before the harness stops it.
struct FrozenSim {
    explicit FrozenSim(PtpipSim& s) : sim(s) { ::kill(sim.pid(), SIGSTOP); }
    ~FrozenSim() { thaw(); }
    void thaw() { ::kill(sim.pid(), SIGCONT); }
    PtpipSim& sim;
};
}  // namespace

TEST(Systemd, ReadyAfterConnectWatchdogAtHalfTheIntervalAndStatusFollowsACapture) {
    NotifySocket agent_socket, uploader_socket;
    HarnessOptions o;
    o.agent_env = {agent_socket.env(), "WATCHDOG_USEC=400000"};
    o.uploader_env = {uploader_socket.env(), "WATCHDOG_USEC=400000"};
    RigHarness h(o);
    h.start_all();  // returns once both are online
    ASSERT_TRUE(agent_socket.wait_line("READY=1", 10s)) << h.agent().log();
    ASSERT_TRUE(uploader_socket.wait_line("READY=1", 10s)) << h.uploader().log();
    auto ready = agent_socket.with_line("READY=1");
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_NE(ready[0].text.find("STATUS=cameras 1/1 online"), std::string::npos) << ready[0].text;
    EXPECT_NE(uploader_socket.with_line("READY=1")[0].text.find("STATUS=queued 0"),
              std::string::npos);

    // WATCHDOG_USEC=400000: a pet every 200 ms from each daemon.
    const int64_t t0 = monotonic_ms();
    std::this_thread::sleep_for(2s);
    const int64_t t1 = monotonic_ms();
    size_t agent_pets = agent_socket.pets(t0, t1), uploader_pets = uploader_socket.pets(t0, t1);
    EXPECT_GE(agent_pets, 8u);
    EXPECT_LE(agent_pets, 12u);
    EXPECT_GE(uploader_pets, 8u);
    EXPECT_LE(uploader_pets, 12u);
    EXPECT_LT(agent_socket.longest_pet_gap(t0, t1), 400);
    EXPECT_LT(uploader_socket.longest_pet_gap(t0, t1), 400);
    std::printf("pets in 2 s: agent %zu, uploader %zu; longest gap %lld / %lld ms\n", agent_pets,
                uploader_pets, static_cast<long long>(agent_socket.longest_pet_gap(t0, t1)),
                static_cast<long long>(uploader_socket.longest_pet_gap(t0, t1)));

    const int64_t before_capture = monotonic_ms();
    capture(h, "sd-1");
    EXPECT_TRUE(agent_socket.wait_line("STATUS=", 10s, before_capture, "photos today 1"));
    EXPECT_TRUE(uploader_socket.wait_line("STATUS=", 15s, before_capture, "done 1,"));
    // Rate limit: at most about one STATUS= a second.
    EXPECT_LE(agent_socket.with_line("STATUS=", t0).size(),
              static_cast<size_t>((monotonic_ms() - t0) / 1000 + 2));

    const int64_t before_stop = monotonic_ms();
    h.agent().stop();
    EXPECT_TRUE(agent_socket.wait_line("STOPPING=1", 5s, before_stop));
}

TEST(Systemd, NoReadyWhileTheBrokerIsUnreachableThenReadyOnceItIsUp) {
    NotifySocket agent_socket;
    HarnessOptions o;
    o.agent_env = {agent_socket.env()};
    RigHarness h(o);
    h.start_all();
    ASSERT_TRUE(agent_socket.wait_line("READY=1", 10s));
    h.agent().stop();
    h.stop_broker();

    const int64_t restart = monotonic_ms();
    h.start_agent(/*wait_online=*/false);
    // It says why it is not ready, and is not.
    EXPECT_TRUE(
        agent_socket.wait_line("STATUS=broker unreachable; cameras 1/1 online", 10s, restart))
        << h.agent().log();
    std::this_thread::sleep_for(3s);
    EXPECT_TRUE(agent_socket.with_line("READY=1", restart).empty());
    ASSERT_TRUE(h.agent().running());

    const int64_t broker_up = monotonic_ms();
    h.start_broker();
    ASSERT_TRUE(agent_socket.wait_line("READY=1", 30s, restart)) << h.agent().log();
    auto ready = agent_socket.with_line("READY=1", restart);
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_GE(ready[0].at_ms, broker_up);
    EXPECT_EQ(ready[0].text.find("broker unreachable"), std::string::npos) << ready[0].text;
}

TEST(Systemd, WatchdogPetsStopWhileACameraThreadHangsAndResumeAfter) {
    NotifySocket agent_socket;
    HarnessOptions o;
    o.agent_env = {agent_socket.env(), "WATCHDOG_USEC=1000000"};
    o.camera_item_yaml = "keepalive_ms: 200, reconnect_max_ms: 300, stuck_after_reinits: 0";
    RigHarness h(o);
    h.start_all();
    ASSERT_TRUE(agent_socket.wait_line("READY=1", 10s));
    int64_t t0 = monotonic_ms();
    std::this_thread::sleep_for(2s);
    EXPECT_LT(agent_socket.longest_pet_gap(t0, monotonic_ms()), 800);

    {
        FrozenSim frozen(h.sim());
        const int64_t stalled = monotonic_ms();
        capture(h, "sd-hang");  // the camera thread now waits on a camera that never answers
        std::this_thread::sleep_for(6s);
        int64_t gap = agent_socket.longest_pet_gap(stalled, monotonic_ms());
        std::printf("longest gap between pets while the camera hangs: %lld ms\n",
                    static_cast<long long>(gap));
        EXPECT_GT(gap, 1000);  // systemd (WatchdogSec=1s) would have restarted it
        EXPECT_NE(h.agent().log().find("not petting the watchdog: camera ptpip:"),
                  std::string::npos)
            << h.agent().log();
    }
    // The camera answers again: pets resume at their rate.
    bool steady = wait_until(
        [&] {
            int64_t from = monotonic_ms();
            std::this_thread::sleep_for(2s);
            return agent_socket.longest_pet_gap(from, monotonic_ms()) < 800;
        },
        30s);
    EXPECT_TRUE(steady) << h.agent().log();
}

TEST(Systemd, ACameraThatStopsAnsweringEndsWithACameraStuckEvent) {
    HarnessOptions o;
    o.camera_item_yaml = "keepalive_ms: 200, reconnect_max_ms: 300, stuck_after_reinits: 2";
    RigHarness h(o);
    h.start_all();
    Received stuck;
    {
        FrozenSim frozen(h.sim());
        capture(h, "sd-stuck");
        stuck = h.wait_for(
            h.base() + "/event",
            [](const Received& m) { return parse(m.payload).value("type", "") == "camera_stuck"; },
            90s);
    }
    ASSERT_FALSE(stuck.topic.empty()) << h.agent().log();
    json j = parse(stuck.payload);
    EXPECT_EQ(j["camera"]["serial"], "SIM0001");
    EXPECT_EQ(j["camera"]["port"], h.sim().port_string());
    EXPECT_GE(j["attempts"].get<int>(), 3);
    EXPECT_EQ(j["usb_reset"], "not a USB camera");  // PTP/IP: no USB device to reset
    EXPECT_FALSE(j.value("message", "").empty());
    EXPECT_TRUE(j.contains("ts"));
    EXPECT_FALSE(stuck.retained);
    EXPECT_NE(h.agent().log().find("re-opens failed; USB reset: not a USB camera"),
              std::string::npos);
    // Once per stuck spell, and the camera comes back once it answers again.
    EXPECT_TRUE(h.wait_count(
        h.base() + "/camera/SIM0001/availability", 1,
        [](const Received& m) { return m.payload == "online" && !m.retained; }, 60s))
        << h.agent().log();
    size_t stuck_events = 0;
    for (const auto& m : h.received(h.base() + "/event"))
        stuck_events += parse(m.payload).value("type", "") == "camera_stuck" ? 1 : 0;
    EXPECT_EQ(stuck_events, 1u);
}

TEST(Systemd, UnderJournaldLinesCarryPriorityPrefixesAndNoTimestamp) {
    HarnessOptions o;
    RigHarness h(o);
    h.start_all();
    h.agent().stop();
    h.sim().stop();  // the camera's connect fails: a warning

    const std::string log_path = h.root() + "/journal-stream.log";
    write_file(log_path, "");
    struct stat st {};
    ASSERT_EQ(::stat(log_path.c_str(), &st), 0);
    const std::string stream =
        "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    std::vector<std::string> env{
        "HOME=" + h.root() + "/home", "PHOTORIG_MQTT_USERNAME=photorig-agent",
        "PHOTORIG_MQTT_PASSWORD_FILE=" + h.root() + "/secrets/agent.pw", stream,
        // The sanitizer build's runtime would add its suppression summary to the stream at
        // exit: those lines are LeakSanitizer's, not the daemon's.
        "LSAN_OPTIONS=print_suppressions=0"};
    const std::string agent_bin = std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rig-agent";
    {
        ChildProcess agent({agent_bin, "--config", h.config_path()}, log_path, env);
        agent.start();
        ASSERT_TRUE(wait_until(
            [&] { return agent.log().find("<4>warn [camera]") != std::string::npos; }, 15s))
            << agent.log();
        agent.stop();
        std::string log = agent.log();
        EXPECT_EQ(log.rfind("<6>info [rig-agent] starting rig-agent", 0), 0u) << log;
        // Every line has its priority, none a timestamp of ours (journald stamps them).
        size_t start = 0;
        while (start < log.size()) {
            size_t end = log.find('\n', start);
            std::string line = log.substr(start, end - start);
            EXPECT_TRUE(line.size() > 3 && line[0] == '<' && line[2] == '>') << line;
            start = end == std::string::npos ? log.size() : end + 1;
        }
    }
    // JOURNAL_STREAM naming another file (inherited, stderr redirected): plain lines.
    const std::string other = h.root() + "/plain.log";
    env.back() = "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ChildProcess agent({agent_bin, "--config", h.config_path()}, other, env);
    agent.start();
    ASSERT_TRUE(
        wait_until([&] { return agent.log().find("warn [camera]") != std::string::npos; }, 15s));
    agent.stop();
    EXPECT_EQ(agent.log().find("<6>"), std::string::npos);
    EXPECT_EQ(agent.log().rfind("20", 0), 0u) << agent.log();  // a timestamp first
}

// The start-up check of the real rig-agent: a process named like gvfs's monitor runs (a
// symlink to sleep), a USB camera is configured: one error line with the fix.
TEST(GvfsCheck, AgentSaysAtStartUpThatGvfsMayHoldItsUsbCamera) {
    TempDir dir("photorig-gvfs");
    const std::string link = dir.path() + "/gvfs-gphoto2-volume-monitor";
    ASSERT_EQ(::symlink("/bin/sleep", link.c_str()), 0);
    ChildProcess gvfs({link, "60"}, dir.path() + "/gvfs.log");
    gvfs.start();
    write_file(dir.path() + "/rig.yaml",
               "rig_id: rig1\nmqtt: {host: 127.0.0.1, port: " + std::to_string(free_tcp_port()) +
                   "}\ncamera: {port: \"usb:001,004\"}\nspool: {dir: " + dir.path() + "/spool}\n");
    ChildProcess agent({std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/rig-agent", "--config",
                        dir.path() + "/rig.yaml"},
                       dir.path() + "/agent.log", {"HOME=" + dir.path()});
    agent.start();
    // (Another test's fake monitor may be listed too.)
    const std::string pid = "gvfs-gphoto2-vo (pid " + std::to_string(gvfs.pid()) + ")";
    EXPECT_TRUE(wait_until(
        [&] {
            std::string log = agent.log();
            size_t line = log.find("error [rig] gvfs's gphoto2 monitor runs (");
            return line != std::string::npos && log.find(pid, line) < log.find('\n', line);
        },
        10s))
        << agent.log();
    EXPECT_NE(agent.log().find("systemctl --user mask --now gvfs-gphoto2-volume-monitor"),
              std::string::npos);
    agent.stop();
}
