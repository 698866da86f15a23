// Hostile upload servers (issue 15) against the real targets and HTTP client: a redirect or a
// Drive session URI that points to another host never receives a credential (basic auth,
// SigV4 signature, bearer token), an endless or huge body is cut off, a server trickling one
// byte at a time is timed out, and a certificate no trusted CA signed is refused. The peers
// are tests/support/hostile_http.py processes (one on 127.0.0.2: another host for curl) and
// tests/fakes/gdrive_fake.py; each records every request it gets.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/storage_peers.h"
#include "support/test_util.h"
#include "targets/gdrive_target.h"
#include "targets/http.h"
#include "targets/s3_target.h"
#include "targets/webdav_target.h"
#include "upload/journal.h"
#include "uploader/target_from_config.h"

using namespace photorig;
using namespace photorig::test;
namespace http = photorig::targets::http;
using json = nlohmann::json;

namespace {

const char* kBasicPassword = "dav-password-never-elsewhere";
const char* kS3Secret = "s3-secret-key-never-elsewhere";
const char* kBearer = "ya29.bearer-never-elsewhere";

// A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem); "" or why not.
std::string make_certificate(const TempDir& dir) {
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout " +
        dir.file("key.pem") + " -out " + dir.file("cert.pem") + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0 ? "" : "openssl (Debian package openssl) failed";
}

std::string hostile_script() {
    return std::string(PHOTORIG_SOURCE_DIR) + "/tests/support/hostile_http.py";
}

// One hostile_http.py process; requests() is what reached it.
class HostilePeer {
  public:
    HostilePeer(const TempDir& dir, const std::string& name, std::vector<std::string> extra)
        : log_(dir.file(name + ".requests")) {
        std::vector<std::string> argv = {python3_program(), hostile_script(), "--log", log_};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc_ = std::make_unique<ChildProcess>(argv, dir.file(name + ".log"));
        proc_->start();
        port_ = wait_port_line(dir.file(name + ".log"), std::chrono::seconds(15));
    }
    int port() const { return port_; }
    std::string log() const { return proc_->log(); }
    std::vector<json> requests() const {
        std::vector<json> out;
        std::istringstream in(read_file(log_));
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) out.push_back(json::parse(line));
        return out;
    }

  private:
    std::string log_;
    std::unique_ptr<ChildProcess> proc_;
    int port_ = -1;
};

class HostileServers : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(python3_program().empty())
            << missing_program_message("python3", "Debian package python3");
        // The place a hostile server sends the client to: another host (127.0.0.2).
        elsewhere_ = std::make_unique<HostilePeer>(dir_, "elsewhere",
                                                   std::vector<std::string>{"--host", "127.0.0.2"});
        ASSERT_GT(elsewhere_->port(), 0) << elsewhere_->log();
        elsewhere_url_ = "http://127.0.0.2:" + std::to_string(elsewhere_->port());
        redirector_ = std::make_unique<HostilePeer>(
            dir_, "redirector", std::vector<std::string>{"--redirect-to", elsewhere_url_});
        ASSERT_GT(redirector_->port(), 0) << redirector_->log();
        ::mkdir(dir_.file("spool").c_str(), 0755);
    }
    std::string redirector_url() const {
        return "http://127.0.0.1:" + std::to_string(redirector_->port());
    }
    upload::Job job(const std::string& name, const std::string& content) const {
        upload::Job j;
        j.job_id = "job-" + name;
        j.capture_id = "c0ffee12-" + name;
        j.rig_id = "rig1";
        j.batch = "b1";
        j.path = dir_.file("spool/" + name);
        j.remote_name = name;
        j.mime = "image/jpeg";
        write_file(j.path, content);
        j.sha256 = Sha256::of(content);
        j.size = content.size();
        return j;
    }
    // Nothing reached the other host, and the redirector saw the credential (so the test did
    // send one).
    void expect_nothing_elsewhere() const {
        EXPECT_TRUE(elsewhere_->requests().empty()) << read_file(dir_.file("elsewhere.requests"));
    }

    TempDir dir_{"photorig-hostile-http"};
    std::unique_ptr<HostilePeer> elsewhere_, redirector_;
    std::string elsewhere_url_;
};

}  // namespace

TEST_F(HostileServers, RedirectIsAnsweredNotFollowedWithAnyCredential) {
    std::vector<http::Request> requests(3);
    for (auto& r : requests) r.url = redirector_url() + "/photos/a.jpg";
    requests[0].basic_user = "rig";
    requests[0].basic_password = kBasicPassword;
    requests[1].sigv4 = http::SigV4{"us-east-1", "s3", "AKIDEXAMPLE", kS3Secret};
    requests[2].headers = {std::string("Authorization: Bearer ") + kBearer};
    for (auto& r : requests) {
        r.method = "PUT";
        r.body = "photo bytes";
        auto resp = http::perform(r);
        ASSERT_TRUE(resp) << resp.error().describe();
        EXPECT_EQ(resp->status, 307);
        EXPECT_EQ(resp->header("location"), elsewhere_url_ + "/photos/a.jpg");
    }
    auto seen = redirector_->requests();
    ASSERT_EQ(seen.size(), 3u);
    for (const auto& r : seen) EXPECT_TRUE(r["headers"].contains("authorization")) << r.dump();
    expect_nothing_elsewhere();
}

TEST_F(HostileServers, S3RedirectToAnotherHostGetsNoSignature) {
    targets::S3Target::Options o;
    o.endpoint = redirector_url();
    o.bucket = "photos";
    o.path_style = true;
    o.access_key = "AKIDEXAMPLE";
    o.secret_key = kS3Secret;
    o.low_speed_time_s = 5;
    targets::S3Target target(o);
    auto r = target.upload(job("a.jpg", "jpeg bytes"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.find(kS3Secret), std::string::npos);
    EXPECT_FALSE(redirector_->requests().empty());
    expect_nothing_elsewhere();
}

TEST_F(HostileServers, WebdavRedirectToAnotherHostGetsNoPassword) {
    targets::WebdavTarget::Options o;
    o.url = redirector_url() + "/dav/photos";
    o.username = "rig";
    o.password = kBasicPassword;
    o.low_speed_time_s = 5;
    targets::WebdavTarget target(o);
    auto r = target.upload(job("a.jpg", "jpeg bytes"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message.find(kBasicPassword), std::string::npos);
    EXPECT_FALSE(redirector_->requests().empty());
    expect_nothing_elsewhere();
}

TEST_F(HostileServers, DriveSessionUriOnAnotherHostIsRefused) {
    GdriveFakePeer drive(dir_.file("drive"), dir_.file("drive.log"), "client-id", "client-secret",
                         "refresh-token");
    ASSERT_EQ(drive.start(), "");
    ASSERT_EQ(drive.post("/_fake/config", {{"session_origin", elsewhere_url_}}), "");
    targets::GdriveTarget::Options o;
    o.client_id = "client-id";
    o.client_secret = "client-secret";
    o.refresh_token = "refresh-token";
    o.token_url = drive.base_url() + "/token";
    o.api_url = drive.base_url();
    o.backoff_initial_ms = 20;
    o.backoff_max_ms = 100;
    o.low_speed_time_s = 5;
    std::string saved = "unset";
    o.save_resume = [&](const std::string&, const std::string& state) { saved = state; };
    targets::GdriveTarget target(o);
    auto r = target.upload(job("a.jpg", "jpeg bytes"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_unavailable");
    EXPECT_NE(r.error().message.find("another origin"), std::string::npos) << r.error().describe();
    EXPECT_EQ(saved, "unset");  // the hostile session URI was not journaled either
    expect_nothing_elsewhere();

    // A journaled session URI on another host (an old or tampered journal) is not asked
    // either: the upload starts afresh (and is refused the same way here).
    o.load_resume = [&](const std::string&) {
        return json{{"v", 1},
                    {"session", elsewhere_url_ + "/upload/drive/v3/files?upload_id=x"},
                    {"size", 10},
                    {"sha256", Sha256::of("jpeg bytes")}}
            .dump();
    };
    targets::GdriveTarget resumed(o);
    EXPECT_FALSE(resumed.upload(job("a.jpg", "jpeg bytes"), nullptr));
    expect_nothing_elsewhere();
    drive.stop();
}

TEST_F(HostileServers, EndlessAndHugeBodiesAreCutOff) {
    HostilePeer peer(dir_, "bodies", {});
    ASSERT_GT(peer.port(), 0) << peer.log();
    const std::string base = "http://127.0.0.1:" + std::to_string(peer.port());
    for (const std::string path : {"/endless", "/huge/1000000000"}) {
        http::Request r;
        r.url = base + path;
        auto t0 = std::chrono::steady_clock::now();
        auto resp = http::perform(r);
        auto took = std::chrono::steady_clock::now() - t0;
        ASSERT_FALSE(resp) << path;
        EXPECT_EQ(resp.error().code, "io_error");
        EXPECT_NE(resp.error().message.find("cut off at 4194304 bytes"), std::string::npos)
            << resp.error().describe();
        EXPECT_LT(took, std::chrono::seconds(10)) << path;
    }
}

TEST_F(HostileServers, WebdavReadBackThatNeverEndsIsCutAtTheFileSize) {
    // The server says every name holds a file of our size with no checksum, so the target
    // reads each back to hash it, and the body never ends: each read stops past the file's
    // size (other bytes: try the next free name) and the upload ends with an error ("no free
    // name") within seconds instead of hashing forever.
    const std::string content = "jpeg bytes of a photo";
    HostilePeer dav(dir_, "dav", {"--webdav-size", std::to_string(content.size())});
    ASSERT_GT(dav.port(), 0) << dav.log();
    targets::WebdavTarget::Options o;
    o.url = "http://127.0.0.1:" + std::to_string(dav.port()) + "/dav/photos";
    o.username = "rig";
    o.password = kBasicPassword;
    o.low_speed_time_s = 5;
    targets::WebdavTarget target(o);
    auto t0 = std::chrono::steady_clock::now();
    auto r = target.upload(job("a.jpg", content), nullptr);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("no free name"), std::string::npos) << r.error().describe();
    EXPECT_LT(took, std::chrono::seconds(10));
    int gets = 0;
    for (const auto& req : dav.requests()) gets += req["method"] == "GET";
    EXPECT_GE(gets, 1) << "the read-back was not tried";
}

TEST_F(HostileServers, TricklingServerIsTimedOutByTheLowSpeedLimit) {
    HostilePeer peer(dir_, "trickle", {});
    ASSERT_GT(peer.port(), 0) << peer.log();
    http::Request r;
    r.url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/trickle/3";  // 1 byte / 3 s
    r.low_speed_time_s = 2;
    auto t0 = std::chrono::steady_clock::now();
    auto resp = http::perform(r);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "target_unavailable") << resp.error().describe();
    EXPECT_LT(took, std::chrono::seconds(8));
}

TEST_F(HostileServers, CertificateNoTrustedCaSignedIsRefused) {
    const std::string cert = dir_.file("cert.pem"), key = dir_.file("key.pem");
    ASSERT_EQ(make_certificate(dir_), "");
    HostilePeer peer(dir_, "tls", {"--tls", cert, key});
    ASSERT_GT(peer.port(), 0) << peer.log();
    http::Request r;
    r.url = "https://127.0.0.1:" + std::to_string(peer.port()) + "/x";
    r.headers = {std::string("Authorization: Bearer ") + kBearer};
    auto refused = http::perform(r);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "target_unavailable");
    EXPECT_TRUE(peer.requests().empty());  // the bearer token never left

    r.ca_file = cert;  // the same server with its CA configured: verified and used
    auto trusted = http::perform(r);
    ASSERT_TRUE(trusted) << trusted.error().describe();
    EXPECT_EQ(trusted->status, 200);
    EXPECT_EQ(peer.requests().size(), 1u);
}

namespace {

// The uploader's remote target as rig-uploader builds it from YAML (upload.* keys).
Expected<std::unique_ptr<upload::Target>> target_from_yaml(const TempDir& dir,
                                                           const std::string& upload_keys,
                                                           std::unique_ptr<upload::Journal>* j) {
    const std::string yaml =
        "rig_id: rig1\nmqtt:\n  host: 127.0.0.1\ncamera:\n  port: \"ptpip:"
        "127.0.0.1:1:1\"\nspool:\n  dir: " +
        dir.file("spool") + "\nupload:\n  journal: " + dir.file("journal.sqlite") + "\n" +
        upload_keys;
    auto config = config::parse(yaml, {});
    if (!config) return config.error();
    if (!*j) {
        auto journal = upload::Journal::open(config->upload.journal);
        if (!journal) return journal.error();
        *j = std::move(*journal);
    }
    return uploader::target_from_config(*config, **j, nullptr);
}

}  // namespace

TEST_F(HostileServers, ConfiguredStallTimeoutAndCaFileReachTheTargets) {
    // upload.stall_timeout_s: a WebDAV server trickling every answer is left after 2 s, not
    // after the default 60 s.
    HostilePeer trickle(dir_, "trickle-all", {"--trickle-all", "3"});
    ASSERT_GT(trickle.port(), 0) << trickle.log();
    std::unique_ptr<upload::Journal> journal;
    auto target = target_from_yaml(dir_,
                                   "  target: webdav\n  stall_timeout_s: 2\n  webdav:\n    url: "
                                   "http://127.0.0.1:" +
                                       std::to_string(trickle.port()) + "/dav\n",
                                   &journal);
    ASSERT_TRUE(target) << target.error().describe();
    auto t0 = std::chrono::steady_clock::now();
    auto r = (*target)->upload(job("a.jpg", "jpeg bytes"), nullptr);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_unavailable") << r.error().describe();
    // A few requests (folders, then the file) each left after ~2 s; one alone would take 60
    // s with the default.
    EXPECT_LT(took, std::chrono::seconds(30));

    // upload.ca_file: a server whose certificate only that CA signed is reached with it, and
    // not without it; an unreadable CA file stops the start.
    ASSERT_EQ(make_certificate(dir_), "");
    HostilePeer tls(dir_, "tls-dav", {"--tls", dir_.file("cert.pem"), dir_.file("key.pem")});
    ASSERT_GT(tls.port(), 0) << tls.log();
    const std::string webdav =
        "  target: webdav\n  webdav:\n    url: https://127.0.0.1:" + std::to_string(tls.port()) +
        "/dav\n";
    auto untrusting = target_from_yaml(dir_, webdav, &journal);
    ASSERT_TRUE(untrusting) << untrusting.error().describe();
    EXPECT_FALSE((*untrusting)->upload(job("b.jpg", "jpeg bytes"), nullptr));
    EXPECT_TRUE(tls.requests().empty());
    auto trusting =
        target_from_yaml(dir_, webdav + "  ca_file: " + dir_.file("cert.pem") + "\n", &journal);
    ASSERT_TRUE(trusting) << trusting.error().describe();
    (void)(*trusting)->upload(job("c.jpg", "jpeg bytes"), nullptr);
    EXPECT_FALSE(tls.requests().empty());
    auto missing =
        target_from_yaml(dir_, webdav + "  ca_file: " + dir_.file("nope.pem") + "\n", &journal);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, "bad_config");
    EXPECT_NE(missing.error().message.find("upload.ca_file"), std::string::npos);
}
