// rig-uploader with upload.target gdrive, webdav and s3, each against a real server process
// (tests/fakes/gdrive_fake.py, rclone serve webdav, s3rver), driven end to end: a capture
// request over MQTT, the agent's job, the uploader's events, the bytes on the server. Plus
// a SIGKILL of the uploader in the middle of a large Drive upload: the restarted uploader
// must carry on from the session the journal kept, not start over.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/sha256.h"
#include "harness/rig_harness.h"
#include "support/storage_peers.h"
#include "targets/http.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;
namespace http = photorig::targets::http;

namespace {

const char* kClientId = "1234-e2e.apps.googleusercontent.com";
const char* kClientSecret = "GOCSPX-e2e-client-secret";
const char* kRefreshToken = "1//e2e-refresh-token";
const char* kS3Secret = "e2e-s3-secret";
const char* kDavPassword = "e2e-dav-password";
constexpr uint64_t kMiB = 1024 * 1024;

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

std::function<bool(const Received&)> event_is(const std::string& type) {
    return [type](const Received& r) { return parse(r.payload).value("type", "") == type; };
}

// Captures one photo into `batch`; returns its base/capture metadata.
json capture(RigHarness& h, const std::string& batch) {
    h.pub_cli(h.base() + "/request/capture",
              R"({"transaction":"t-)" + batch + R"(","batch":")" + batch + "\"}");
    auto resp = h.wait_for(
        h.base() + "/response/capture",
        [&](const Received& r) {
            return parse(r.payload).value("transaction", "") == "t-" + batch;
        },
        30s);
    EXPECT_FALSE(resp.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(resp.payload).value("status", ""), "ok") << resp.payload;
    auto cap = h.wait_for(
        h.base() + "/capture",
        [&](const Received& r) { return parse(r.payload).value("batch", "") == batch; }, 10s);
    EXPECT_FALSE(cap.topic.empty());
    return parse(cap.payload);
}

// The done event of the upload of `capture_id`, or null after the timeout.
json wait_done(RigHarness& h, const std::string& capture_id, std::chrono::milliseconds timeout) {
    auto done = h.wait_for(
        h.base() + "/upload/events",
        [&](const Received& r) {
            json e = parse(r.payload);
            return e.value("type", "") == "done" && e.value("capture_id", "") == capture_id;
        },
        timeout);
    return done.topic.empty() ? json() : parse(done.payload);
}

// SIGTERM ends the uploader cleanly, and (in the sanitizer build) without a report.
void expect_clean_stop(RigHarness& h) {
    EXPECT_EQ(h.uploader().stop(), 0) << h.uploader().log();
    const std::string log = h.uploader().log();
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log;
    EXPECT_EQ(log.find("runtime error:"), std::string::npos) << log;
}

// Drive fake's stored (non-folder, not trashed) files.
std::vector<json> drive_files(const GdriveFakePeer& fake) {
    std::vector<json> out;
    for (const auto& f : fake.files())
        if (f.value("mimeType", "") != "application/vnd.google-apps.folder" &&
            !f.value("trashed", false))
            out.push_back(f);
    return out;
}

// The upload.s3 section for s3rver, with 0600 key files in `secrets`.
std::string s3_yaml(const TempDir& secrets, const S3rverPeer& s3, const std::string& key_template) {
    return "  s3:\n    endpoint: " + s3.endpoint() +
           "\n    region: us-east-1\n    bucket: photos\n    path_style: true\n    "
           "access_key_id_file: " +
           secret_file(secrets, "s3-key-id", S3rverPeer::kAccessKeyId) +
           "\n    secret_access_key_file: " + secret_file(secrets, "s3-secret", kS3Secret) +
           "\n    key_template: " + key_template + "\n";
}

http::SigV4 s3_key() {
    return http::SigV4{"us-east-1", "s3", S3rverPeer::kAccessKeyId, kS3Secret};
}

// The object at `key` is the photo described by `file` (the capture event's "file").
void expect_s3_object(const S3rverPeer& s3, const std::string& key, const json& file) {
    http::Request get;
    get.url = s3.endpoint() + "/photos/" + key;
    get.sigv4 = s3_key();
    get.max_response_body = 1ull << 30;  // a whole photo, not an API answer
    auto object = http::perform(get);
    ASSERT_TRUE(object) << object.error().describe();
    ASSERT_EQ(object->status, 200) << key << ": " << object->body;
    EXPECT_EQ(object->body.size(), file["size"].get<uint64_t>());
    EXPECT_EQ(photorig::Sha256::of(object->body), file["sha256"]);
}

}  // namespace

TEST(UploaderTargets, GdriveCaptureLandsByteIdentical) {
    TempDir dir("photorig-it-gdrive");
    GdriveFakePeer fake(dir.file("drive"), dir.file("fake.log"), kClientId, kClientSecret,
                        kRefreshToken);
    ASSERT_EQ(fake.start(), "");
    HarnessOptions o;
    o.upload_target = "gdrive";
    o.upload_yaml = fake.upload_yaml(dir, 256 * 1024);
    RigHarness h(o);
    h.start_all();

    json cap = capture(h, "g1");
    json done = wait_done(h, cap.value("capture_id", ""), 30s);
    ASSERT_TRUE(done.is_object()) << h.uploader().log();
    auto files = drive_files(fake);
    ASSERT_EQ(files.size(), 1u) << fake.files().dump(1);
    EXPECT_EQ(files[0]["path"], "photorig/rig1/g1");
    EXPECT_EQ(files[0]["name"], cap["file"]["name"]);
    EXPECT_EQ(files[0]["disk_sha256"], cap["file"]["sha256"]) << "bytes on the fake's disk differ";
    EXPECT_EQ(files[0]["appProperties"]["job_id"], done["job_id"]);
    EXPECT_EQ(done["remote"], files[0]["id"]) << "the done event names the Drive file";
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    // Secrets never reach the log.
    for (const char* secret : {kClientSecret, kRefreshToken})
        EXPECT_EQ(h.uploader().log().find(secret), std::string::npos) << secret;
    EXPECT_EQ(fake.log().find("Traceback"), std::string::npos) << fake.log();
    expect_clean_stop(h);
}

TEST(UploaderTargets, WebdavCaptureLandsByteIdentical) {
    TempDir dir("photorig-it-webdav");
    RcloneWebdavPeer dav(dir.file("dav"), dir.file("rclone.log"), "rig", kDavPassword);
    ASSERT_EQ(dav.start(), "");
    HarnessOptions o;
    o.upload_target = "webdav";
    o.upload_yaml = "  webdav:\n    url: " + dav.url() +
                    "\n    username: rig\n    password_file: " +
                    secret_file(dir, "dav-password", kDavPassword) + "\n";
    RigHarness h(o);
    h.start_all();

    json cap = capture(h, "w1");
    json done = wait_done(h, cap.value("capture_id", ""), 30s);
    ASSERT_TRUE(done.is_object()) << h.uploader().log();
    const std::string stored =
        dav.root() + "/photos/rig1/w1/" + cap["file"]["name"].get<std::string>();
    auto sha = photorig::Sha256::of_file(stored);
    ASSERT_TRUE(sha) << stored;
    EXPECT_EQ(*sha, cap["file"]["sha256"]);
    EXPECT_EQ(list_files(dav.root() + "/photos").size(), 1u) << "no temporary or duplicate files";
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    EXPECT_EQ(h.uploader().log().find(kDavPassword), std::string::npos);
    expect_clean_stop(h);
}

namespace {
// Two photos at once on a link that is the bottleneck (tests/fakes/throttled_webdav.py: PUT
// bodies read at 1 MB/s over all connections), concurrency 2. From the server's request log:
// the PUT bodies (start, end) in start order; and the observer's steady-clock time of the
// first `done` (the fake logs CLOCK_MONOTONIC too).
struct TwoOnALink {
    std::vector<std::pair<double, double>> puts;
    double first_done = 0, requested = 0;
};

double monotonic_now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

TwoOnALink two_photos_on_a_capped_link(bool parallel_bodies) {
    TempDir dir("photorig-it-gate");
    ThrottledWebdavPeer dav(dir.file("dav"), dir.file("dav.log"), 1000 * 1000);
    EXPECT_EQ(dav.start(), "");
    HarnessOptions o;
    o.upload_target = "webdav";
    o.image_size = 1000 * 1000;  // one body: 1 s on this link
    o.concurrency = 2;
    o.upload_yaml = "  parallel_bodies: " + std::string(parallel_bodies ? "true" : "false") +
                    "\n  webdav:\n    url: " + dav.url("photos") + "\n";
    RigHarness h(o);
    h.start_all();
    TwoOnALink out;
    auto dones = [&] {
        size_t n = 0;
        for (const auto& m : h.received(h.base() + "/upload/events"))
            n += parse(m.payload).value("type", "") == "done" ? 1 : 0;
        return n;
    };
    out.requested = monotonic_now_s();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"two","count":2})");
    EXPECT_TRUE(wait_until([&] { return dones() >= 1; }, 30s, 2ms)) << h.uploader().log();
    out.first_done = monotonic_now_s();
    EXPECT_TRUE(wait_until([&] { return dones() >= 2; }, 30s, 2ms)) << h.uploader().log();
    std::istringstream log(read_file(dir.file("dav.log")));
    std::string line;
    while (std::getline(log, line)) {
        std::istringstream l(line);
        double start = 0, end = 0;
        std::string method, path;
        uint64_t bytes = 0;
        if (l >> start >> end >> method >> path >> bytes && method == "PUT" && bytes > 0)
            out.puts.emplace_back(start, end);
    }
    std::sort(out.puts.begin(), out.puts.end());
    expect_clean_stop(h);
    return out;
}
}  // namespace

// upload.parallel_bodies: false (the default): the second photo's body waits until the
// first one's has ended, so the first photo is safe after one upload's time, not two.
TEST(UploaderTargets, SecondBodyWaitsForTheFirstOnABottleneckLink) {
    auto run = two_photos_on_a_capped_link(false);
    ASSERT_EQ(run.puts.size(), 2u);
    // The fake stamps a response's end just after sending it: a few ms of slack.
    EXPECT_GE(run.puts[1].first, run.puts[0].second - 0.02)
        << "the second body started before the first one ended";
    EXPECT_LT(run.first_done, run.puts[1].second)
        << "the first photo must be done before the second body has ended";
    std::printf(
        "one body at a time: first done %.2f s after the request; bodies %.2f-%.2f s "
        "and %.2f-%.2f s\n",
        run.first_done - run.requested, run.puts[0].first - run.requested,
        run.puts[0].second - run.requested, run.puts[1].first - run.requested,
        run.puts[1].second - run.requested);
}

// upload.parallel_bodies: true: both bodies share the link at once (the old behaviour, for
// links where one stream cannot fill the pipe).
TEST(UploaderTargets, ParallelBodiesShareTheLinkWhenConfigured) {
    auto run = two_photos_on_a_capped_link(true);
    ASSERT_EQ(run.puts.size(), 2u);
    EXPECT_LT(run.puts[1].first, run.puts[0].second - 0.2) << "the bodies did not overlap";
    std::printf("parallel bodies: first done %.2f s after the request\n",
                run.first_done - run.requested);
}

TEST(UploaderTargets, S3CaptureLandsByteIdentical) {
    TempDir dir("photorig-it-s3");
    S3rverPeer s3(dir.file("s3"), dir.file("s3rver.log"), "photos");
    ASSERT_EQ(s3.start(), "");
    HarnessOptions o;
    o.upload_target = "s3";
    o.upload_yaml = s3_yaml(dir, s3, "\"{rig_id}/{date}/{batch}/{name}\"");
    RigHarness h(o);
    h.start_all();

    json cap = capture(h, "s1");
    json done = wait_done(h, cap.value("capture_id", ""), 30s);
    ASSERT_TRUE(done.is_object()) << h.uploader().log();
    const std::string key = "rig1/" + cap["captured_at"].get<std::string>().substr(0, 10) + "/s1/" +
                            cap["file"]["name"].get<std::string>();
    expect_s3_object(s3, key, cap["file"]);
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    EXPECT_EQ(h.uploader().log().find(kS3Secret), std::string::npos);
    expect_clean_stop(h);
}

namespace {

// The uploader dies (SIGKILL) in the middle of a `size`-byte photo, once `kill_after` bytes
// reached the fake (which reads chunk bodies at `rate` bytes/s until then, so the kill lands
// inside a chunk; `partial_keep` says what the fake keeps of the cut chunk). Its journal holds the
// Drive session; after the restart the upload continues from the byte the fake confirmed: one
// session in all, and fewer than 2 chunks' worth of bytes arrive twice.
void kill_mid_upload_and_resume(const std::string& name, uint64_t size, uint64_t chunk,
                                uint64_t rate, uint64_t kill_after,
                                const std::string& partial_keep) {
    TempDir dir("photorig-it-gdrive-kill");
    GdriveFakePeer fake(dir.file("drive"), dir.file("fake.log"), kClientId, kClientSecret,
                        kRefreshToken);
    ASSERT_EQ(fake.start(), "");
    ASSERT_EQ(fake.post("/_fake/config", {{"max_send_rate", rate}}), "");
    ASSERT_EQ(fake.post("/_fake/faults", {{"partial_keep", partial_keep}}), "");
    HarnessOptions o;
    o.image_size = static_cast<int>(size);
    o.upload_target = "gdrive";
    o.upload_yaml = fake.upload_yaml(dir, chunk);
    RigHarness h(o);
    h.start_all();

    json cap = capture(h, name);
    ASSERT_EQ(cap["file"]["size"].get<uint64_t>(), size);
    auto started = h.wait_for(h.base() + "/upload/events", event_is("started"), 20s);
    ASSERT_FALSE(started.topic.empty()) << h.uploader().log();
    const std::string job_id = parse(started.payload)["job_id"];
    ASSERT_TRUE(wait_until([&] { return fake.bytes_received_for(job_id) >= kill_after; }, 60s, 5ms))
        << fake.stats().dump(1) << h.uploader().log();
    h.uploader().kill9();
    const uint64_t before_restart = fake.bytes_received_for(job_id);
    ASSERT_LT(before_restart, size) << "the upload finished before the kill";
    EXPECT_TRUE(drive_files(fake).empty());

    ASSERT_EQ(fake.post("/_fake/config", {{"max_send_rate", 0}}), "");
    h.start_uploader();
    json done = wait_done(h, cap.value("capture_id", ""), 60s);
    ASSERT_TRUE(done.is_object()) << h.uploader().log();

    auto files = drive_files(fake);
    ASSERT_EQ(files.size(), 1u) << "exactly one copy: " << fake.files().dump(1);
    EXPECT_EQ(files[0]["disk_sha256"], cap["file"]["sha256"]);
    const json stats = fake.stats();
    EXPECT_EQ(stats["sessions_created"], 1)
        << "the journaled session was not resumed: " << stats.dump(1);
    const uint64_t received = fake.bytes_received_for(job_id);
    EXPECT_LT(received - size, 2 * chunk) << "bytes sent twice";
    std::printf(
        "killed after %llu of %llu bytes; the fake read %llu bytes twice in all (chunk %llu)\n",
        static_cast<unsigned long long>(before_restart), static_cast<unsigned long long>(size),
        static_cast<unsigned long long>(received - size), static_cast<unsigned long long>(chunk));
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    EXPECT_EQ(fake.log().find("Traceback"), std::string::npos) << fake.log();
    expect_clean_stop(h);
}

}  // namespace

// 12 MiB in 1 MiB chunks, killed a third of the way; the fake keeps every byte it read.
TEST(UploaderTargets, GdriveUploaderKilledMidUploadResumesTheSession) {
    kill_mid_upload_and_resume("big", 12 * kMiB, 1 * kMiB, 2 * 1000 * 1000, 4 * kMiB, "exact");
}

// 100 MB (not a multiple of 256 KiB) in the default 8 MiB chunks, killed a third of the way
// inside a chunk. Should the chunk in flight be cut, the fake keeps nothing of it (the worst
// a server may do: all of it goes again, still under 2 chunks). On loopback it often is not
// cut at all: the kernel still delivers what the dead process had written into its socket
// buffers, several MB, so the fake may read the chunk to its end.
TEST(UploaderTargets, GdriveUploaderKilledMidUploadOf100MBResumesTheSession) {
    kill_mid_upload_and_resume("huge", 100 * 1000 * 1000, 8 * kMiB, 40 * 1000 * 1000,
                               35 * 1000 * 1000, "none");
}

// The uploader dies (SIGKILL) in the middle of an S3 multipart upload, after its first part
// went through. The journal holds the upload id and the finished parts; the restarted
// uploader completes that same multipart upload (ListParts) without sending the finished
// part again, and the object is whole, byte-identical and alone under its key.
TEST(UploaderTargets, S3UploaderKilledMidMultipartResumesTheUpload) {
    constexpr uint64_t part = 5 * kMiB;  // S3's smallest part
    TempDir dir("photorig-it-s3-kill");
    S3rverPeer s3(dir.file("s3"), dir.file("s3rver.log"), "photos");
    ASSERT_EQ(s3.start(), "");
    HarnessOptions o;
    o.image_size = 12 * 1024 * 1024;      // three parts: 5 + 5 + 2 MiB
    o.bandwidth_limit = 3 * 1000 * 1000;  // ~4 s in all: time to kill it after the first part
    o.upload_target = "s3";
    o.upload_yaml = s3_yaml(dir, s3, "\"{batch}/{name}\"") +
                    "    multipart_threshold_bytes: " + std::to_string(part) +
                    "\n    part_size_bytes: " + std::to_string(part) + "\n";
    RigHarness h(o);
    h.start_all();

    json cap = capture(h, "big");
    const uint64_t size = cap["file"]["size"].get<uint64_t>();
    ASSERT_GT(size, 2 * part);
    // Progress events (at most one a second) say when the first part is through.
    auto midway = h.wait_for(
        h.base() + "/upload/events",
        [&](const Received& r) {
            json e = parse(r.payload);
            return e.value("type", "") == "progress" &&
                   e.value("bytes_done", uint64_t{0}) > part + part / 5;
        },
        30s);
    ASSERT_FALSE(midway.topic.empty()) << h.uploader().log();
    h.uploader().kill9();
    EXPECT_TRUE(h.received(h.base() + "/upload/events").size() > 0);
    for (const auto& e : h.received(h.base() + "/upload/events"))
        ASSERT_NE(parse(e.payload).value("type", ""), "done")
            << "the upload finished before the kill";

    h.start_uploader();
    json done = wait_done(h, cap.value("capture_id", ""), 60s);
    ASSERT_TRUE(done.is_object()) << h.uploader().log();
    EXPECT_GT(done.value("bytes_sent", uint64_t{0}), 0u) << done.dump();
    EXPECT_LE(done.value("bytes_sent", uint64_t{0}), size - part)
        << "the finished first part was sent again";

    const std::string key = "big/" + cap["file"]["name"].get<std::string>();
    expect_s3_object(s3, key, cap["file"]);
    // Exactly one object: no second copy under a suffixed key.
    http::Request list;
    list.url = s3.endpoint() + "/photos?list-type=2";
    list.sigv4 = s3_key();
    auto listing = http::perform(list);
    ASSERT_TRUE(listing);
    size_t keys = 0;
    for (size_t at = listing->body.find("<Key>"); at != std::string::npos;
         at = listing->body.find("<Key>", at + 1))
        ++keys;
    EXPECT_EQ(keys, 1u) << listing->body;
    EXPECT_TRUE(wait_until([&] { return h.spooled_files().empty(); }, 5s))
        << "spool file removed after done";
    expect_clean_stop(h);
}
