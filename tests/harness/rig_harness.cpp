#include "harness/rig_harness.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace photorig::test {
namespace {
std::string bin(const std::string& name) {
    return std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/" + name;
}

bool is_photo(const std::string& path) {
    auto slash = path.find_last_of('/');
    std::string name = path.substr(slash + 1);
    if (name.empty() || name[0] == '.') return false;  // temp files are hidden
    if (name.size() > 10 && name.compare(name.size() - 10, 10, ".meta.json") == 0) return false;
    return name.find(".tmp-") == std::string::npos && name.find(".part") == std::string::npos;
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

namespace {
std::vector<std::string> with_env(std::vector<std::string> env,
                                  const std::vector<std::string>& more) {
    env.insert(env.end(), more.begin(), more.end());
    return env;
}
}  // namespace

RigHarness::RigHarness(HarnessOptions options)
    : options_(std::move(options)), root_("photorig-e2e") {
    config_path_ = root_.path() + "/photorig.yaml";
    ::mkdir((root_.path() + "/home").c_str(), 0700);
}

RigHarness::~RigHarness() {
    observer_.stop();
    if (agent_) agent_->stop();
    if (uploader_) uploader_->stop();
    for (auto& sim : sims_) sim->stop();
    if (broker_) broker_->stop();
}

void RigHarness::start_all() {
    if (options_.broker_of) {
        broker_port_ = options_.broker_of->broker_port();
    } else {
        start_broker();
    }
    start_sim();
    write_config();
    start_observer();
    if (options_.with_uploader) start_uploader();
    start_agent();
}

std::string RigHarness::broker_dir() const {
    return (options_.broker_of ? options_.broker_of->root() : root_.path()) + "/broker";
}

std::string RigHarness::uploader_user() const {
    const bool foreign = options_.broker_of && options_.broker_of->rig_id() != options_.rig_id;
    return foreign ? "photorig-agent" : "photorig-uploader";
}

bool RigHarness::stock_broker() const {
    if (options_.stock_broker) return *options_.stock_broker;
    const char* env = std::getenv("PHOTORIG_BENCH_BROKER");
    return env && std::string(env) == "stock";
}

void RigHarness::start_broker() {
    if (broker_port_ == 0) broker_port_ = free_tcp_port();
    std::vector<std::string> argv{std::string(PHOTORIG_SOURCE_DIR) + "/broker/run-broker.sh",
                                  "--port",
                                  std::to_string(broker_port_),
                                  "--data-dir",
                                  root_.path() + "/broker",
                                  "--rig-id",
                                  options_.rig_id};
    if (stock_broker()) argv.push_back("--stock-tuning");
    argv.insert(argv.end(), options_.broker_args.begin(), options_.broker_args.end());
    if (options_.websockets) {
        if (ws_port_ == 0) ws_port_ = free_tcp_port();
        argv.insert(argv.end(), {"--ws-port", std::to_string(ws_port_)});
    }
    broker_ = std::make_unique<ChildProcess>(argv, root_.path() + "/broker.log");
    broker_->start();
    bool up = wait_until(
        [&] {
            // run-broker.sh writes the password, then its newline: wait for the whole line.
            if (!file_exists(password_file("photorig-dashboard"))) return false;
            std::string pw = read_file(password_file("photorig-dashboard"));
            if (pw.size() < 2 || pw.back() != '\n') return false;
            auto r = run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p",
                                  std::to_string(broker_port_), "-t", "photorig/_probe", "-n"},
                                 std::chrono::seconds(2), dashboard_cli_env());
            return r.exit_code == 0;
        },
        std::chrono::seconds(10), std::chrono::milliseconds(50));
    if (!up) throw std::runtime_error("broker did not start: " + broker_->log());
    // mosquitto opens its listeners together, but wait for the websockets one explicitly so a
    // browser test never races it.
    if (ws_port_ != 0 &&
        !wait_until([&] { return loopback_port_accepts(ws_port_); }, std::chrono::seconds(10)))
        throw std::runtime_error("broker's websockets listener did not open: " + broker_->log());
}

void RigHarness::stop_broker() {
    broker_->stop();
}
void RigHarness::kill9_broker() {
    broker_->kill9();
}

std::string RigHarness::password_file(const std::string& user) const {
    return broker_dir() + "/secrets/" + user + ".password";
}

std::string RigHarness::password(const std::string& user) const {
    std::string pw = read_file(password_file(user));
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    return pw;
}

std::vector<std::string> RigHarness::dashboard_cli_env() const {
    // mosquitto_pub/_sub read default options from $XDG_CONFIG_HOME/mosquitto_pub|_sub: the
    // password goes there (0600), never on a command line where `ps` shows it.
    const std::string dir = root_.path() + "/mqtt-cli";
    ::mkdir(dir.c_str(), 0700);
    for (const char* tool : {"mosquitto_pub", "mosquitto_sub"}) {
        const std::string path = dir + "/" + tool;
        if (file_exists(path)) continue;
        const std::string text =
            "-u photorig-dashboard\n-P " + password("photorig-dashboard") + "\n";
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            throw std::runtime_error("cannot write " + path);
        ::close(fd);
    }
    return {"XDG_CONFIG_HOME=" + dir};
}

std::string RigHarness::serial_of(size_t i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "SIM%04zu", i + 1);
    return buf;
}

void RigHarness::start_sim() {
    SimKind kind = options_.sim_kind ? *options_.sim_kind : sim_kind_from_env();
    for (int i = 0; i < std::max(options_.camera_count, 1); ++i) {
        std::vector<std::string> args{"--image-size", std::to_string(options_.image_size),
                                      "--serial", serial_of(static_cast<size_t>(i))};
        if (kind == SimKind::ours || options_.capture_delay_ms > 0)
            args.insert(args.end(),
                        {"--capture-delay-ms", std::to_string(options_.capture_delay_ms)});
        args.insert(args.end(), options_.sim_args.begin(), options_.sim_args.end());
        if (static_cast<size_t>(i) < options_.sim_args_of.size()) {
            const auto& more = options_.sim_args_of[static_cast<size_t>(i)];
            args.insert(args.end(), more.begin(), more.end());
        }
        if (kind == SimKind::ours) {
            sims_.push_back(std::make_unique<PtpipSim>(PHOTORIG_PTPIP_SIM_PATH, args));
        } else {
            sims_.push_back(std::make_unique<PtpipSim>(
                kind, args, root_.path() + "/sim" + std::to_string(i + 1) + ".log"));
        }
        sims_.back()->start();
    }
}

void RigHarness::write_config() {
    // Passwords go in files the way a user would set them up: 0600, named from the YAML.
    std::string secrets = root_.path() + "/secrets";
    ::mkdir(secrets.c_str(), 0700);
    write_file(secrets + "/agent.pw", password("photorig-agent") + "\n", 0600);
    write_file(secrets + "/uploader.pw", password(uploader_user()) + "\n", 0600);
    std::ofstream y(config_path_);
    y << "rig_id: " << options_.rig_id << "\n"
      << "topic_prefix: photorig\n"
      << "log_level: info\n"
      << "mqtt:\n  host: 127.0.0.1\n  port: " << broker_port_ << "\n  keepalive_s: 5\n"
      << options_.top_yaml;
    if (sims_.size() == 1 && options_.camera_item_yaml.empty()) {
        y << "camera:\n  port: " << sims_[0]->port_string()
          << "\n  model: \"PTP/IP Camera\"\n  capture_timeout_ms: " << options_.capture_timeout_ms
          << "\n";
    } else {
        y << "camera:\n";
        for (const auto& sim : sims_) {
            y << "  - {port: \"" << sim->port_string()
              << "\", model: \"PTP/IP Camera\", capture_timeout_ms: " << options_.capture_timeout_ms
              << (options_.camera_item_yaml.empty() ? "" : ", " + options_.camera_item_yaml)
              << "}\n";
        }
    }
    y << "spool:\n  dir: " << spool_dir() << "\n  reoffer_after_s: " << options_.reoffer_after_s
      << "\n  reconcile_interval_s: " << options_.reconcile_interval_s
      << "\n  min_free_bytes: " << options_.min_free_bytes << "\n"
      << options_.spool_yaml << "upload:\n  target: " << options_.upload_target
      << "\n  journal: " << root_.path() << "/journal/uploader.sqlite\n"
      << "  concurrency: " << options_.concurrency << "\n"
      << "  bandwidth_limit_bytes_per_s: " << options_.bandwidth_limit << "\n"
      << "  retry_max_backoff_s: 2\n"
      << "  local:\n    dir: " << upload_dir() << "\n"
      << options_.upload_yaml << options_.extra_yaml;
}

void RigHarness::start_agent(bool wait_online) {
    if (!agent_) {
        agent_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{bin("rig-agent"), "--config", config_path_},
            root_.path() + "/agent.log",
            with_env({"HOME=" + root_.path() + "/home", "PHOTORIG_MQTT_USERNAME=photorig-agent",
                      "PHOTORIG_MQTT_PASSWORD_FILE=" + root_.path() + "/secrets/agent.pw"},
                     options_.agent_env));
    }
    size_t before = received(base() + "/availability").size();
    agent_->start();
    if (wait_online) {
        bool ok = wait_until(
            [&] {
                auto msgs = received(base() + "/availability");
                return msgs.size() > before && msgs.back().payload == "online";
            },
            std::chrono::seconds(15));
        if (!ok) throw std::runtime_error("rig-agent did not come online:\n" + agent_->log());
    }
}

void RigHarness::start_uploader(bool wait_online) {
    if (!uploader_) {
        uploader_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{bin("rig-uploader"), "--config", config_path_},
            root_.path() + "/uploader.log",
            with_env({"PHOTORIG_MQTT_USERNAME=" + uploader_user(),
                      "PHOTORIG_MQTT_PASSWORD_FILE=" + root_.path() + "/secrets/uploader.pw"},
                     options_.uploader_env));
    }
    size_t before = received(base() + "/uploader/availability").size();
    uploader_->start();
    if (wait_online) {
        bool ok = wait_until(
            [&] {
                auto msgs = received(base() + "/uploader/availability");
                return msgs.size() > before && msgs.back().payload == "online";
            },
            std::chrono::seconds(15));
        if (!ok) throw std::runtime_error("rig-uploader did not come online:\n" + uploader_->log());
    }
}

void RigHarness::start_observer() {
    mqtt::Options o;
    o.host = "127.0.0.1";
    o.port = broker_port_;
    o.client_id = "photorig-test-observer-" + std::to_string(::getpid()) + "-" + options_.rig_id;
    o.username = "photorig-dashboard";
    o.password = password("photorig-dashboard");
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 500;
    std::vector<mqtt::Subscription> subs{{base() + "/#", 1}};
    for (const auto& f : options_.extra_subscriptions) subs.push_back({f, 1});
    observer_.start(o, subs, "observer");
    // The subscription is in place once our own probe comes back.
    if (!options_.observer_probe) return;
    std::string probe = base() + "/_observer_probe";
    wait_until(
        [&] {
            observer_.client().publish_nowait(mqtt::Message{probe, "x", 0, false, "", ""}, false);
            return !received(probe).empty();
        },
        std::chrono::seconds(5), std::chrono::milliseconds(100));
}

std::unique_ptr<mqtt::Client> RigHarness::connect_as(const std::string& user,
                                                     const std::string& client_id,
                                                     MessageQueue<mqtt::Event>& events) {
    mqtt::Options mo;
    mo.port = broker_port_;
    mo.client_id = client_id;
    mo.username = user;
    mo.password = password(user);
    auto client = std::make_unique<mqtt::Client>(mo, events);
    if (auto st = client->connect(std::chrono::seconds(5)); !st)
        throw std::runtime_error(client_id + ": " + st.error().describe());
    return client;
}

void RigHarness::pub_cli(const std::string& topic, const std::string& payload) {
    std::vector<std::string> argv{"mosquitto_pub",
                                  "-V",
                                  "mqttv311",
                                  "-h",
                                  "127.0.0.1",
                                  "-p",
                                  std::to_string(broker_port_),
                                  "-q",
                                  "1",
                                  "-t",
                                  topic};
    if (payload.empty()) {
        argv.push_back("-n");
    } else {
        argv.push_back("-m");
        argv.push_back(payload);
    }
    auto r = run_command(argv, std::chrono::seconds(10), dashboard_cli_env());
    if (r.exit_code != 0) throw std::runtime_error("mosquitto_pub failed: " + r.output);
}

void RigHarness::pub_v5(const std::string& topic, const std::string& payload,
                        const std::string& response_topic, const std::string& correlation) {
    mqtt::Message m{topic, payload, 1, false, response_topic, correlation};
    auto st = observer_.client().publish(m, false, std::chrono::seconds(5));
    if (!st) throw std::runtime_error("publish failed: " + st.error().describe());
}

std::vector<Received> RigHarness::received(const std::string& topic) const {
    return observer_.received(topic);
}

void RigHarness::clear_received() {
    observer_.clear();
}

Received RigHarness::wait_for(const std::string& topic,
                              const std::function<bool(const Received&)>& pred,
                              std::chrono::milliseconds timeout, std::chrono::milliseconds step) {
    Received found;
    wait_until(
        [&] {
            for (const auto& r : received(topic)) {
                if (pred(r)) {
                    found = r;
                    return true;
                }
            }
            return false;
        },
        timeout, step);
    return found;
}

bool RigHarness::wait_count(const std::string& topic, size_t n,
                            const std::function<bool(const Received&)>& pred,
                            std::chrono::milliseconds timeout) {
    return observer_.wait_count(topic, n, pred, timeout);
}

std::vector<std::string> RigHarness::uploaded_files() const {
    std::vector<std::string> out;
    for (const auto& f : list_files(upload_dir())) {
        if (is_photo(f)) out.push_back(f);
    }
    return out;
}

std::vector<std::string> RigHarness::spooled_files() const {
    std::vector<std::string> out;
    for (const auto& f : list_files(spool_dir())) {
        if (is_photo(f) && f.find("/.uploaded/") == std::string::npos) out.push_back(f);
    }
    return out;
}

std::vector<std::string> RigHarness::kept_files() const {
    std::vector<std::string> out;
    for (const auto& f : list_files(spool_dir() + "/.uploaded")) {
        if (is_photo(f)) out.push_back(f);
    }
    return out;
}

std::function<bool(const Received&)> transaction_is(const std::string& transaction) {
    return [transaction](const Received& r) {
        auto j = nlohmann::json::parse(r.payload, nullptr, false);
        return j.is_object() && j.contains("transaction") && j["transaction"] == transaction;
    };
}

}  // namespace photorig::test
