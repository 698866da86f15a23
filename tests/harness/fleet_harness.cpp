#include "harness/fleet_harness.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace photorig::test {
namespace {
using namespace std::chrono_literals;

std::string source(const std::string& rel) {
    return std::string(PHOTORIG_SOURCE_DIR) + "/" + rel;
}

bool readable(const std::string& path) {
    return ::access(path.c_str(), R_OK) == 0;
}
}  // namespace

long cpu_ms(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) start past the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    long utime = 0, stime = 0;
    for (int i = 3; fields >> f; ++i) {  // field 3 is the state
        if (i == 14) utime = std::atol(f.c_str());
        if (i == 15) {
            stime = std::atol(f.c_str());
            return (utime + stime) * 1000 / ::sysconf(_SC_CLK_TCK);
        }
    }
    return -1;
}

FleetHarness::FleetHarness(FleetOptions options)
    : options_(std::move(options)), root_("photorig-fleet") {}

FleetHarness::~FleetHarness() {
    rigs_.clear();  // each rig stops its agent, uploader, simulators and broker
    observer_.stop();
    if (central_) central_->stop();
}

std::string FleetHarness::rig_id_of(size_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "rig%02zu", i + 1);
    return buf;
}

void FleetHarness::make_certs(const std::vector<std::string>& rig_ids) {
    std::vector<std::string> argv{source("deploy/fleet-certs.sh"), cert_dir()};
    argv.insert(argv.end(), rig_ids.begin(), rig_ids.end());
    auto r = run_command(argv, 60s);
    if (r.exit_code != 0) throw std::runtime_error("fleet certificates: " + r.output);
}

void FleetHarness::start_central() {
    if (!central_) {
        make_certs({});
        central_port_ = free_tcp_port();
        central_tls_port_ = free_tcp_port();
        const std::string certs = cert_dir();
        central_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{source("broker/run-broker.sh"), "--central", "--port",
                                     std::to_string(central_port_), "--data-dir", central_dir(),
                                     "--tls-port", std::to_string(central_tls_port_), "--ca",
                                     certs + "/ca.crt", "--cert", certs + "/central.crt", "--key",
                                     certs + "/central.key"},
            root_.path() + "/central.log");
    }
    central_->start();
    const std::string pw_file = central_dir() + "/secrets/photorig-dashboard.password";
    bool up = wait_until(
        [&] {
            if (!readable(pw_file)) return false;
            std::string pw = read_file(pw_file);
            return pw.size() > 1 && pw.back() == '\n' && loopback_port_accepts(central_port_) &&
                   loopback_port_accepts(central_tls_port_);
        },
        10s, 50ms);
    if (!up) throw std::runtime_error("central broker did not start: " + central_->log());
    if (!observer_.started()) start_observer();
}

void FleetHarness::kill9_central() {
    central_->kill9();
}

void FleetHarness::restart_central() {
    start_central();
}

void FleetHarness::start_observer() {
    mqtt::Options o;
    o.host = "127.0.0.1";
    o.port = central_port_;
    o.client_id = "photorig-fleet-observer-" + std::to_string(::getpid());
    o.username = "photorig-dashboard";
    std::string pw = read_file(central_dir() + "/secrets/photorig-dashboard.password");
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    o.password = pw;
    // A persistent session: what the bridges deliver while the observer reconnects after a
    // central restart waits for it in the central broker's (persisted) session.
    o.clean_start = false;
    o.session_expiry_s = 3600;
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 300;
    observer_.start(o, {{"photorig/#", 1}}, "central observer");
}

void FleetHarness::add_rigs(size_t n) {
    std::vector<std::string> ids;
    for (size_t i = rigs_.size(); i < rigs_.size() + n; ++i) ids.push_back(rig_id_of(i));
    make_certs(ids);
    const std::string certs = cert_dir();
    for (const auto& id : ids) {
        HarnessOptions o = options_.rig;
        o.rig_id = id;
        o.broker_args = {"--bridge-to",   "127.0.0.1:" + std::to_string(central_tls_port_),
                         "--bridge-ca",   certs + "/ca.crt",
                         "--bridge-cert", certs + "/" + id + ".crt",
                         "--bridge-key",  certs + "/" + id + ".key"};
        o.extra_yaml += "groups: [" + options_.group + "]\n";
        o.with_uploader = options_.uploaders;
        o.observer_probe = false;
        rigs_.push_back(std::make_unique<RigHarness>(o));
        rigs_.back()->start_all();
        wait_rig_ready(id);
    }
}

void FleetHarness::wait_rig_ready(const std::string& rig_id) {
    // A status request through the central broker and its answer back: both directions
    // of the bridge are up (the bridge subscribes its topics on the central broker at once).
    const std::string base = "photorig/" + rig_id;
    const std::string txn = "fleet-ready-" + rig_id;
    bool ready = wait_until(
        [&] {
            publish_central(base + "/request/status", "{\"transaction\":\"" + txn + "\"}");
            return wait_count(
                base + "/response/status", 1,
                [&](const CentralMessage& m) { return m.payload.find(txn) != std::string::npos; },
                1s);
        },
        20s, 0ms);
    if (!ready) throw std::runtime_error(rig_id + " did not answer through the central broker");
}

void FleetHarness::publish_central(const std::string& topic, const std::string& payload) {
    auto st =
        observer_.client().publish(mqtt::Message{topic, payload, 1, false, "", ""}, false, 10s);
    if (!st) throw std::runtime_error("central publish: " + st.error().describe());
}

std::vector<CentralMessage> FleetHarness::received(const std::string& topic) const {
    return observer_.received(topic);
}

void FleetHarness::clear_received() {
    observer_.clear();
}

bool FleetHarness::wait_count(const std::string& topic, size_t n,
                              const std::function<bool(const CentralMessage&)>& pred,
                              std::chrono::milliseconds timeout) {
    return observer_.wait_count(topic, n, pred, timeout);
}

}  // namespace photorig::test
