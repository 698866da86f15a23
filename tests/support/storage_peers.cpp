#include "support/storage_peers.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "support/http_peers.h"
#include "support/test_util.h"
#include "targets/http.h"

namespace photorig::test {
namespace http = photorig::targets::http;

namespace {
// The JSON a fake's control endpoint answers; null unless 200.
nlohmann::json get_json(const std::string& url) {
    http::Request r;
    r.url = url;
    auto resp = http::perform(r);
    if (!resp || resp->status != 200) return nlohmann::json();
    return nlohmann::json::parse(resp->body, nullptr, false);
}

// POSTs JSON to a fake's control endpoint; "" or why it failed.
std::string post_json(const std::string& url, const nlohmann::json& body) {
    http::Request r;
    r.method = "POST";
    r.url = url;
    r.body = body.dump();
    r.headers = {"Content-Type: application/json"};
    auto resp = http::perform(r);
    if (!resp) return resp.error().describe();
    if (resp->status != 200) return "HTTP " + std::to_string(resp->status) + ": " + resp->body;
    return "";
}
}  // namespace

RcloneWebdavPeer::RcloneWebdavPeer(std::string root, std::string log_path, std::string user,
                                   std::string password)
    : root_(std::move(root)),
      log_(std::move(log_path)),
      user_(std::move(user)),
      password_(std::move(password)) {}

std::string RcloneWebdavPeer::start() {
    ::mkdir(root_.c_str(), 0755);
    ::mkdir((root_ + "/photos").c_str(), 0755);
    std::string rclone = find_program("rclone");
    if (rclone.empty()) return missing_program_message("rclone", "Debian package rclone");
    // rclone cannot bind port 0: pick a free port, retry if someone took it meanwhile.
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_tcp_port();
        proc_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{rclone, "serve", "webdav", root_, "--addr",
                                     "127.0.0.1:" + std::to_string(port_), "--user", user_,
                                     "--pass", password_},
            log_, std::vector<std::string>{"RCLONE_CONFIG=" + root_ + "/../rclone.conf"});
        proc_->start();
        if (wait_tcp_port(port_, std::chrono::seconds(15)) && proc_->running()) return "";
        proc_->stop();
    }
    return "rclone serve webdav did not start: " + read_file(log_);
}

std::string RcloneWebdavPeer::url(const std::string& collection) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + collection;
}

ThrottledWebdavPeer::ThrottledWebdavPeer(std::string root, std::string log_path, uint64_t rate)
    : root_(std::move(root)), log_(std::move(log_path)), rate_(rate) {}

ThrottledWebdavPeer::~ThrottledWebdavPeer() {
    stop();
}

std::string ThrottledWebdavPeer::start() {
    std::string python = python3_program();
    if (python.empty()) return missing_program_message("python3", "Debian package python3");
    ::mkdir(root_.c_str(), 0755);
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            python, std::string(PHOTORIG_SOURCE_DIR) + "/tests/fakes/throttled_webdav.py", "--port",
            "0", "--root", root_, "--rate", std::to_string(rate_), "--log-requests"},
        log_);
    proc_->start();
    port_ = wait_port_line(log_, std::chrono::seconds(15));
    if (port_ <= 0) return "throttled_webdav.py did not start: " + read_file(log_);
    return "";
}

void ThrottledWebdavPeer::stop() {
    if (proc_) proc_->stop(std::chrono::seconds(3));
    proc_.reset();
}

std::string ThrottledWebdavPeer::url(const std::string& collection) const {
    if (!collection.empty()) ::mkdir((root_ + "/" + collection).c_str(), 0755);
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + collection;
}

nlohmann::json ThrottledWebdavPeer::stats() const {
    return get_json(url() + "_stats");
}

std::string ThrottledWebdavPeer::answer_mkcols_locked(int count) const {
    return post_json(url() + "_faults", {{"locked_mkcols", count}});
}

S3rverPeer::S3rverPeer(std::string data_dir, std::string log_path, std::string bucket)
    : dir_(std::move(data_dir)), log_(std::move(log_path)), bucket_(std::move(bucket)) {}

std::string S3rverPeer::start() {
    std::string node = find_program("node");
    if (node.empty()) return missing_program_message("node", "Debian package nodejs");
    std::string s3rver = node_tool("s3rver");
    if (s3rver.empty())
        return missing_program_message("tests/node_modules/.bin/s3rver", "npm s3rver");
    ::mkdir(dir_.c_str(), 0755);
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{node, s3rver, "--directory", dir_, "--address", "127.0.0.1",
                                 "--port", "0", "--service-endpoint", "localhost",
                                 "--configure-bucket", bucket_},
        log_);
    proc_->start();
    // s3rver binds port 0 and says where: "listening on 127.0.0.1:<port>".
    const std::string marker = "listening on 127.0.0.1:";
    wait_until(
        [&] {
            std::string text = read_file(log_);
            auto p = text.find(marker);
            if (p != std::string::npos) port_ = std::atoi(text.c_str() + p + marker.size());
            return port_ > 0;
        },
        std::chrono::seconds(30));
    if (port_ <= 0) return "s3rver did not start: " + read_file(log_);
    return "";
}

std::string S3rverPeer::object_file(const std::string& key) const {
    return dir_ + "/" + bucket_ + "/" + key + "._S3rver_object";
}

GdriveFakePeer::GdriveFakePeer(std::string state_dir, std::string log_path, std::string client_id,
                               std::string client_secret, std::string refresh_token)
    : state_dir_(std::move(state_dir)),
      log_(std::move(log_path)),
      client_id_(std::move(client_id)),
      client_secret_(std::move(client_secret)),
      refresh_token_(std::move(refresh_token)) {}

GdriveFakePeer::~GdriveFakePeer() {
    stop();
}

std::string GdriveFakePeer::start() {
    std::string python = python3_program();
    if (python.empty()) return missing_program_message("python3", "Debian package python3");
    ::mkdir(state_dir_.c_str(), 0755);
    proc_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            python, std::string(PHOTORIG_SOURCE_DIR) + "/tests/fakes/gdrive_fake.py", "--port", "0",
            "--state-dir", state_dir_, "--client-id", client_id_, "--client-secret", client_secret_,
            "--refresh-token", refresh_token_},
        log_);
    proc_->start();
    port_ = wait_port_line(log_, std::chrono::seconds(15));
    if (port_ <= 0) return "gdrive_fake.py did not start: " + read_file(log_);
    return "";
}

void GdriveFakePeer::stop() {
    if (proc_) proc_->stop(std::chrono::seconds(3));
    proc_.reset();
}

std::string GdriveFakePeer::log() const {
    return read_file(log_);
}

nlohmann::json GdriveFakePeer::get(const std::string& path) const {
    return get_json(base_url() + path);
}

std::string GdriveFakePeer::post(const std::string& path, const nlohmann::json& body) const {
    return post_json(base_url() + path, body);
}

std::string GdriveFakePeer::upload_yaml(const TempDir& secrets, uint64_t chunk_size_bytes) const {
    std::string yaml = "  gdrive:\n    client_id: " + client_id_ + "\n    client_secret_file: " +
                       secret_file(secrets, "gdrive-client-secret", client_secret_) +
                       "\n    refresh_token_file: " +
                       secret_file(secrets, "gdrive-refresh-token", refresh_token_) +
                       "\n    folder: photorig\n    token_url: " + base_url() +
                       "/token\n    api_url: " + base_url() + "\n";
    if (chunk_size_bytes > 0)
        yaml += "    chunk_size_bytes: " + std::to_string(chunk_size_bytes) + "\n";
    return yaml;
}

uint64_t GdriveFakePeer::bytes_received_for(const std::string& job_id) const {
    uint64_t n = 0;
    const nlohmann::json all = stats();
    if (!all.is_object() || !all.contains("sessions")) return 0;
    for (const auto& [id, s] : all["sessions"].items())
        if (s.value("job_id", "") == job_id) n += s.value("bytes_received", uint64_t{0});
    return n;
}

}  // namespace photorig::test
