// Peak RSS of the real rig-uploader uploading one big file through each HTTP target, each
// against its real server process: webdav (rclone serve webdav), s3 (s3rver: multipart) and
// gdrive (tests/fakes/gdrive_fake.py: resumable, in chunks). The file is a spooled photo
// whose job is published on <base>/upload/jobs exactly as the agent publishes it. VmHWM is
// read from /proc once the `done` event has arrived, while the uploader still runs.
// Goal: < 40 MB for every target, whatever the file size (memory must not grow with it).
// --quick: 256 MiB (CI); --full: 1 GiB. Exit 3 when missed.
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_files.h"
#include "harness/rig_harness.h"
#include "protocol/wire.h"
#include "support/storage_peers.h"

using namespace photorig::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* kClientId = "1234-bench.apps.googleusercontent.com";
const char* kClientSecret = "GOCSPX-bench-client-secret";
const char* kRefreshToken = "1//bench-refresh-token";
const char* kS3Secret = "bench-s3-secret";

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

struct Outcome {
    long idle_kb = -1, peak_kb = -1;
    double seconds = 0;
};

// One upload of `size` bytes through the target `upload_yaml` configures.
Outcome measure(const std::string& target, const std::string& upload_yaml, uint64_t size) {
    HarnessOptions o;
    o.upload_target = target;
    o.upload_yaml = upload_yaml;
    RigHarness h(o);
    h.start_all();
    h.agent()
        .kill9();  // the job comes from here, see below (SIGKILL: its orderly stop takes seconds)

    // The big file lives in the spool (the uploader only takes files from there) and goes
    // with the harness's temp dir, if the uploader has not deleted it after the upload.
    const std::string spool = real_path(h.spool_dir()) + "/big";
    ::mkdir(spool.c_str(), 0755);
    photorig::protocol::UploadJob job;
    job.remote_name = "BIG_0001.NEF";
    job.path = spool + "/" + job.remote_name;
    job.sha256 = photorig::bench::write_random_file(job.path, size, 7);
    job.size = size;
    job.job_id = "rss-" + target;
    job.capture_id = "0b16f11e000040008000000000000001";
    job.rig_id = "rig1";
    job.batch = "rss";
    job.mime = "image/x-nikon-nef";
    job.captured_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();

    Outcome out;
    out.idle_kb = photorig::bench::vm_hwm_kb(h.uploader().pid());
    photorig::MessageQueue<photorig::mqtt::Event> events;
    auto publisher_client = h.connect_as("photorig-agent", "bench-rss-publisher", events);
    photorig::mqtt::Client& publisher = *publisher_client;
    auto t0 = Clock::now();
    auto st = publisher.publish(
        {h.base() + "/upload/jobs", photorig::protocol::upload_job_json(job), 1, false, "", ""},
        false, 5s);
    if (!st) throw std::runtime_error("publish: " + st.error().describe());
    auto done = h.wait_for(
        h.base() + "/upload/events",
        [&](const Received& r) {
            json e = json::parse(r.payload, nullptr, false);
            return e.is_object() && e.value("type", "") == "done" &&
                   e.value("job_id", "") == job.job_id;
        },
        900s);
    if (done.topic.empty())
        throw std::runtime_error(target + ": the upload did not finish:\n" + h.uploader().log());
    out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    out.peak_kb = photorig::bench::vm_hwm_kb(h.uploader().pid());
    publisher.disconnect(1s);
    h.uploader().stop();
    ::unlink(job.path.c_str());
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = !(argc > 1 && std::strcmp(argv[1], "--full") == 0);
    const uint64_t size = quick ? 256ull << 20 : 1ull << 30;
    bool pass = true;
    try {
        auto report = [&](const char* target, const Outcome& r) {
            std::printf(
                "rss: %-7s %5.0f MiB in %6.1f s: rig-uploader peak RSS %.1f MB (idle %.1f MB)\n",
                target, size / 1048576.0, r.seconds, r.peak_kb / 1024.0, r.idle_kb / 1024.0);
            pass = pass && r.peak_kb > 0 && r.peak_kb < 40 * 1024;
            std::fflush(stdout);
        };
        {
            TempDir dir("photorig-bench-rss-dav");
            RcloneWebdavPeer dav(dir.file("dav"), dir.file("rclone.log"), "rig",
                                 "bench-dav-password");
            if (auto why = dav.start(); !why.empty()) throw std::runtime_error(why);
            report("webdav",
                   measure("webdav",
                           "  webdav:\n    url: " + dav.url() +
                               "\n    username: rig\n    password_file: " +
                               secret_file(dir, "dav-password", "bench-dav-password") + "\n",
                           size));
        }
        {
            TempDir dir("photorig-bench-rss-s3");
            S3rverPeer s3(dir.file("s3"), dir.file("s3rver.log"), "photos");
            if (auto why = s3.start(); !why.empty()) throw std::runtime_error(why);
            report("s3",
                   measure("s3",
                           "  s3:\n    endpoint: " + s3.endpoint() +
                               "\n    region: us-east-1\n    bucket: photos\n    path_style: true\n"
                               "    access_key_id_file: " +
                               secret_file(dir, "s3-key-id", S3rverPeer::kAccessKeyId) +
                               "\n    secret_access_key_file: " +
                               secret_file(dir, "s3-secret", kS3Secret) + "\n",
                           size));
        }
        {
            TempDir dir("photorig-bench-rss-gdrive");
            GdriveFakePeer fake(dir.file("drive"), dir.file("fake.log"), kClientId, kClientSecret,
                                kRefreshToken);
            if (auto why = fake.start(); !why.empty()) throw std::runtime_error(why);
            // The product's default chunk size (8 MiB): the bench measures what users run.
            report("gdrive", measure("gdrive", fake.upload_yaml(dir), size));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "benchmark failed: %s\n", e.what());
        return 1;
    }
    std::printf("RESULT upload peak RSS (%s, %.0f MiB file): %s (goal < 40 MB per target)\n",
                quick ? "quick" : "full", size / 1048576.0, pass ? "met" : "MISSED");
    return pass ? 0 : 3;
}
