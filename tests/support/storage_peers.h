// Storage servers the upload tests run against, each a real process on a free loopback port
// with its files under a directory the test owns: `rclone serve webdav`, s3rver (npm) and
// tests/fakes/gdrive_fake.py. Shared by the target unit tests and the uploader integration
// tests. start() returns "" or why the server could not start; a missing program is a test
// failure that names its package (never a silent skip).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/child_process.h"
#include "support/test_util.h"

namespace photorig::test {

class RcloneWebdavPeer {
  public:
    // Serves `root` (created if missing) with basic auth user/password.
    RcloneWebdavPeer(std::string root, std::string log_path, std::string user = "rig",
                     std::string password = "dav-secret");
    std::string start();
    int port() const { return port_; }
    // The URL of a collection (a directory under root, created by start()).
    std::string url(const std::string& collection = "photos") const;
    const std::string& root() const { return root_; }

  private:
    std::string root_, log_, user_, password_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> proc_;
};

// tests/fakes/throttled_webdav.py: a WebDAV server whose PUT bodies are read at no more than
// `rate` bytes/s over all connections together (0 = no cap); see the top of the script. No
// auth. stats() is its /_stats: per top-level folder, the first request's start and the
// last response's end (server clock, seconds) and the PUT bytes read.
class ThrottledWebdavPeer {
  public:
    ThrottledWebdavPeer(std::string root, std::string log_path, uint64_t rate);
    ~ThrottledWebdavPeer();
    std::string start();
    void stop();
    int port() const { return port_; }
    // The URL of a collection under root; a non-empty one is created if missing.
    std::string url(const std::string& collection = "") const;
    const std::string& root() const { return root_; }
    nlohmann::json stats() const;
    // The next `count` MKCOLs are answered 423 Locked; "" or why the fake refused.
    std::string answer_mkcols_locked(int count) const;

  private:
    std::string root_, log_;
    uint64_t rate_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> proc_;
};

// s3rver accepts any signature and only the access key id "S3RVER".
class S3rverPeer {
  public:
    static constexpr const char* kAccessKeyId = "S3RVER";
    S3rverPeer(std::string data_dir, std::string log_path, std::string bucket = "photos");
    std::string start();
    int port() const { return port_; }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    const std::string& bucket() const { return bucket_; }
    // Where s3rver keeps an object's bytes (its filesystem store).
    std::string object_file(const std::string& key) const;

  private:
    std::string dir_, log_, bucket_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> proc_;
};

// The Drive API v3 fake; see the top of tests/fakes/gdrive_fake.py for what it implements
// and its /_fake/* test controls.
class GdriveFakePeer {
  public:
    GdriveFakePeer(std::string state_dir, std::string log_path, std::string client_id,
                   std::string client_secret, std::string refresh_token);
    ~GdriveFakePeer();
    std::string start();
    void stop();
    int port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string log() const;

    nlohmann::json get(const std::string& path) const;  // null when not 200
    // POSTs JSON to a /_fake/* control; "" or why it failed.
    std::string post(const std::string& path, const nlohmann::json& body) const;
    nlohmann::json files() const { return get("/_fake/files")["files"]; }
    nlohmann::json stats() const { return get("/_fake/stats"); }
    // Body bytes the fake read for this job over all its upload sessions (a byte sent twice
    // counts twice).
    uint64_t bytes_received_for(const std::string& job_id) const;
    // The upload.gdrive section of a config that signs in to this fake with its credentials,
    // the client secret and refresh token written to 0600 files in `secrets`.
    // chunk_size_bytes 0 leaves the product's default.
    std::string upload_yaml(const TempDir& secrets, uint64_t chunk_size_bytes = 0) const;

  private:
    std::string state_dir_, log_, client_id_, client_secret_, refresh_token_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> proc_;
};

}  // namespace photorig::test
