// S3Target against s3rver (npm, installed by `npm ci --prefix tests`) behind
// tests/fakes/sigv4_proxy.py, which recomputes every request's SigV4 signature from the
// known secret (s3rver itself checks none) and was itself checked against AWS's published
// example signatures (SigV4Verifier.MatchesAwsPublishedExamples). Missing node, s3rver or
// python3 fail the tests, never skip them.
#include "targets/s3_target.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "core/sha256.h"
#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/storage_peers.h"
#include "support/test_util.h"
#include "targets/http.h"
#include "targets/s3_wire.h"

using namespace photorig;
using namespace photorig::test;
using photorig::targets::S3Target;
namespace http = photorig::targets::http;

namespace {

const char* kAccess = S3rverPeer::kAccessKeyId;
const char* kSecret = "proxy-checked-secret/+=";

std::string fakes_dir() {
    return std::string(PHOTORIG_SOURCE_DIR) + "/tests/fakes";
}

class S3Test : public ::testing::Test {
  protected:
    void SetUp() override {
        python_ = python3_program();
        ASSERT_FALSE(python_.empty())
            << missing_program_message("python3", "Debian package python3");
        ::mkdir(dir_.file("spool").c_str(), 0755);
        ASSERT_EQ(s3rver_.start(), "");
        s3_port_ = s3rver_.port();
        proxy_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{python_, fakes_dir() + "/sigv4_proxy.py", "--listen", "0",
                                     "--upstream", "127.0.0.1:" + std::to_string(s3_port_), "--key",
                                     std::string(kAccess) + ":" + kSecret, "--log-file",
                                     dir_.file("verified.log")},
            dir_.file("proxy.log"));
        proxy_->start();
        proxy_port_ = wait_port_line(dir_.file("proxy.log"), std::chrono::seconds(15));
        ASSERT_GT(proxy_port_, 0) << "sigv4_proxy.py did not start: "
                                  << read_file(dir_.file("proxy.log"));
    }

    // Through the verifying proxy unless told otherwise.
    S3Target::Options options(bool direct = false) const {
        S3Target::Options o;
        o.endpoint = "http://127.0.0.1:" + std::to_string(direct ? s3_port_ : proxy_port_);
        o.region = "us-east-1";
        o.bucket = "photos";
        o.path_style = true;
        o.access_key = kAccess;
        o.secret_key = kSecret;
        o.low_speed_time_s = 10;
        return o;
    }

    upload::Job job(const std::string& name, const std::string& content,
                    const std::string& id = "") {
        upload::Job j;
        j.job_id = id.empty() ? "job-" + name : id;
        j.capture_id = "c0ffee12-3456-" + name;
        j.rig_id = "rig1";
        j.batch = "b1";
        j.path = dir_.file("spool/" + name);
        j.remote_name = name;
        j.mime = "image/jpeg";
        write_file(j.path, content);
        j.sha256 = Sha256::of(content);
        j.size = content.size();
        j.captured_at_ms = 1764044215123;  // 2025-11-25
        return j;
    }

    // The object's bytes, read back from s3rver directly (signed; s3rver ignores it).
    std::string fetch(const std::string& key) const {
        S3Target t(options(true));
        http::Request r;
        r.url = t.object_url(key);
        r.sigv4 = http::SigV4{"us-east-1", "s3", kAccess, kSecret};
        r.max_response_body = 1ull << 30;  // a whole photo, not an API answer
        auto resp = http::perform(r);
        if (!resp || resp->status != 200) return "<missing>";
        return resp->body;
    }

    std::string verified_log() const { return read_file(dir_.file("verified.log")); }
    int refused_count() const {
        std::string log = verified_log();
        int n = 0;
        for (size_t p = log.find("REFUSED"); p != std::string::npos; p = log.find("REFUSED", p + 1))
            ++n;
        return n;
    }

    TempDir dir_{"photorig-s3"};
    std::string python_;
    S3rverPeer s3rver_{dir_.file("s3"), dir_.file("s3rver.log")};
    std::unique_ptr<ChildProcess> proxy_;
    int s3_port_ = 0, proxy_port_ = 0;
};

}  // namespace

// The journal's resume record, damaged: numbers of the wrong kind or range (a float size of
// 2e22 was a float-to-integer conversion out of range, found by the s3 fuzz target) mean
// starting afresh, never undefined behaviour or a resume from wrong parts.
TEST(S3Resume, ADamagedRecordStartsAfreshAndAGoodOneRoundTrips) {
    upload::Job job;
    job.job_id = "j1";
    job.size = 20u << 20;
    job.sha256 = "ab";
    const uint64_t part = 8u << 20;
    auto good =
        targets::s3::encode_resume("rig1/b/IMG.JPG", "u1", job, part, {{1, "e1"}, {2, "e2"}});
    auto back = targets::s3::decode_resume(good, job, part);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->key, "rig1/b/IMG.JPG");
    EXPECT_EQ(back->parts.size(), 2u);
    const std::string head =
        R"({"v":1,"kind":"s3-multipart","key":"k","upload_id":"u","sha256":"ab",)";
    for (const std::string tail :
         {R"("size":2.0971520888888888e22,"part_size":8388608,"parts":[]})",
          R"("size":20971520.0,"part_size":8388608,"parts":[]})",
          R"("size":-1,"part_size":8388608,"parts":[]})",
          R"("size":20971520,"part_size":1e300,"parts":[]})",
          R"("size":20971520,"part_size":8388608,"parts":[[1e30,"e"]]})",
          R"("size":20971520,"part_size":8388608,"parts":[[0,"e"]]})",
          R"("size":20971520,"part_size":8388608,"parts":[[10001,"e"]]})",
          R"("size":20971520,"part_size":8388608,"parts":[[-3,"e"]]})"}) {
        EXPECT_FALSE(targets::s3::decode_resume(head + tail, job, part)) << tail;
    }
    EXPECT_TRUE(targets::s3::decode_resume(
        head + R"("size":20971520,"part_size":8388608,"parts":[[10000,"e"]]})", job, part));
    EXPECT_FALSE(targets::s3::decode_resume(R"({"v":1.5e300})", job, part));
    EXPECT_FALSE(targets::s3::decode_resume("[1,2]", job, part));
}

TEST(SigV4Verifier, MatchesAwsPublishedExamples) {
    std::string py = python3_program();
    ASSERT_FALSE(py.empty()) << missing_program_message("python3", "Debian package python3");
    auto r = run_command({py, fakes_dir() + "/sigv4_proxy.py", "--self-test"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("self-test: 0 failure(s)"), std::string::npos) << r.output;
}

TEST_F(S3Test, SinglePutRoundTripIsSignedCorrectly) {
    S3Target target(options());
    const std::string data = pseudo_random_bytes(1200 * 1000);
    auto j = job("IMG_0001.JPG", data);
    uint64_t last = 0;
    auto r = target.upload(j, [&](uint64_t done, uint64_t) { last = done; });
    ASSERT_TRUE(r) << r.error().describe() << "\n" << verified_log();
    EXPECT_EQ(r->bytes_sent, data.size());
    EXPECT_EQ(r->verified_sha256, j.sha256);
    EXPECT_EQ(r->remote_ref,
              "http://127.0.0.1:" + std::to_string(proxy_port_) + "/photos/rig1/b1/IMG_0001.JPG");
    EXPECT_EQ(last, data.size());
    EXPECT_EQ(fetch("rig1/b1/IMG_0001.JPG"), data);
    EXPECT_EQ(refused_count(), 0) << verified_log();
    EXPECT_NE(verified_log().find("OK PUT /photos/rig1/b1/IMG_0001.JPG"), std::string::npos)
        << verified_log();
    EXPECT_EQ(target.name(), "s3");
}

TEST_F(S3Test, WrongSecretIsRefusedAsTargetAuth) {
    auto o = options();
    o.secret_key = "not-the-secret-42";
    S3Target target(o);
    auto r = target.upload(job("a.jpg", "abc"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_auth") << r.error().describe();
    EXPECT_EQ(r.error().message.find("not-the-secret-42"), std::string::npos);
    EXPECT_GT(refused_count(), 0);
    EXPECT_EQ(fetch("rig1/b1/a.jpg"), "<missing>");
    // Unknown access key id: refused too.
    auto k = options();
    k.access_key = "AKIDUNKNOWN";
    S3Target unknown(k);
    auto u = unknown.upload(job("b.jpg", "abc"), nullptr);
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code, "target_auth");
}

TEST_F(S3Test, MultipartRoundTripThroughTheVerifier) {
    auto o = options();
    o.multipart_threshold = 4 * 1000 * 1000;
    o.part_size = 2 * 1024 * 1024;
    std::vector<std::string> states;
    o.save_resume = [&](const std::string& id, const std::string& s) {
        EXPECT_EQ(id, "job-multi.raw");
        states.push_back(s);
    };
    o.load_resume = [](const std::string&) { return std::string(); };
    S3Target target(o);
    const std::string data = pseudo_random_bytes(11 * 1000 * 1000 + 3, 3);
    auto j = job("multi.raw", data);
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe() << "\n" << verified_log();
    EXPECT_EQ(r->verified_sha256, j.sha256);
    EXPECT_EQ(r->bytes_sent, data.size());
    EXPECT_EQ(fetch("rig1/b1/multi.raw"), data);
    EXPECT_EQ(refused_count(), 0) << verified_log();
    std::string log = verified_log();
    EXPECT_NE(log.find("?uploads"), std::string::npos);
    EXPECT_NE(log.find("?partNumber=6&uploadId="), std::string::npos);
    ASSERT_GE(states.size(), 7u);  // created + 6 parts + cleared
    EXPECT_NE(states[0].find("\"upload_id\""), std::string::npos);
    EXPECT_EQ(states.back(), "");
}

TEST_F(S3Test, MultipartResumesAfterACrash) {
    auto o = options();
    o.multipart_threshold = 4 * 1000 * 1000;
    o.part_size = 2 * 1024 * 1024;
    std::atomic<bool> crash{false};
    o.cancel = &crash;
    std::string saved;
    auto first_opts = o;
    first_opts.save_resume = [&](const std::string&, const std::string& s) { saved = s; };
    const std::string data = pseudo_random_bytes(9 * 1024 * 1024, 4);
    auto j = job("resume.raw", data);
    {
        S3Target target(first_opts);
        auto r = target.upload(j, [&](uint64_t done, uint64_t) {
            if (done > 5 * 1024 * 1024) crash.store(true);  // the process dies mid part 3
        });
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, "cancelled");
    }
    ASSERT_NE(saved, "");
    EXPECT_NE(saved.find("\"parts\":[[1,"), std::string::npos) << saved;
    crash.store(false);
    S3Target restarted(o);
    std::string after;
    auto r = restarted.upload(j, nullptr, saved, [&](const std::string& s) { after = s; });
    ASSERT_TRUE(r) << r.error().describe() << "\n" << verified_log();
    EXPECT_LE(r->bytes_sent, data.size() - 2 * 2 * 1024 * 1024) << "parts 1 and 2 were sent again";
    EXPECT_EQ(r->verified_sha256, j.sha256);
    EXPECT_EQ(after, "");
    EXPECT_EQ(fetch("rig1/b1/resume.raw"), data);
    EXPECT_EQ(refused_count(), 0) << verified_log();
}

TEST_F(S3Test, StaleResumeStateStartsOver) {
    auto o = options();
    o.multipart_threshold = 1000;
    o.part_size = 5000;
    S3Target target(o);
    auto j = job("stale.raw", pseudo_random_bytes(12000, 5));
    std::string bogus =
        R"({"v":1,"kind":"s3-multipart","key":"rig1/b1/stale.raw","upload_id":"nonexistent",)"
        R"("size":12000,"sha256":")" +
        j.sha256 + R"(","part_size":5000,"parts":[]})";
    auto r = target.upload(j, nullptr, bogus, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(fetch("rig1/b1/stale.raw"), pseudo_random_bytes(12000, 5));
    EXPECT_NE(verified_log().find("NOSUCHUPLOAD"), std::string::npos) << verified_log();
    // Garbage state is ignored.
    auto k = job("garbage.raw", pseudo_random_bytes(12000, 6));
    auto g = target.upload(k, nullptr, "{not json", nullptr);
    ASSERT_TRUE(g) << g.error().describe();
}

TEST_F(S3Test, SourceGoneMidMultipartAbortsTheUpload) {
    auto o = options();
    o.multipart_threshold = 1000 * 1000;
    o.part_size = 1024 * 1024;
    std::string saved = "unset";
    o.save_resume = [&](const std::string&, const std::string& s) { saved = s; };
    S3Target target(o);
    auto j = job("vanish.raw", pseudo_random_bytes(3 * 1024 * 1024, 12));
    bool removed = false;
    auto r = target.upload(j, [&](uint64_t done, uint64_t) {
        if (!removed && done >= 1024 * 1024) {  // after part 1: the spool file is replaced
            removed = true;
            write_file(j.path, pseudo_random_bytes(3 * 1024 * 1024, 13));
        }
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "checksum_mismatch") << r.error().describe();
    EXPECT_EQ(saved, "");
    EXPECT_NE(verified_log().find("OK DELETE /photos/rig1/b1/vanish.raw?uploadId="),
              std::string::npos)
        << verified_log();
    EXPECT_EQ(fetch("rig1/b1/vanish.raw"), "<missing>");
}

TEST_F(S3Test, RepeatIsANoOpAndOtherContentGetsASuffix) {
    auto j = job("IMG_0002.JPG", pseudo_random_bytes(5000, 7), "job-a");
    {
        S3Target target(options());
        ASSERT_TRUE(target.upload(j, nullptr));
    }
    S3Target target(options());  // a restarted uploader
    auto again = target.upload(j, nullptr);
    ASSERT_TRUE(again) << again.error().describe();
    EXPECT_EQ(again->bytes_sent, 0u);
    EXPECT_EQ(again->verified_sha256, j.sha256);

    auto other = job("IMG_0002.JPG", pseudo_random_bytes(5000, 8), "job-b");
    other.capture_id = "deadbeef-77";
    auto r = target.upload(other, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_NE(r->remote_ref.find("/rig1/b1/IMG_0002-deadbeef.JPG"), std::string::npos)
        << r->remote_ref;
    EXPECT_EQ(fetch("rig1/b1/IMG_0002.JPG"), pseudo_random_bytes(5000, 7));
    EXPECT_EQ(fetch("rig1/b1/IMG_0002-deadbeef.JPG"), pseudo_random_bytes(5000, 8));
    auto repeat = target.upload(other, nullptr);
    ASSERT_TRUE(repeat);
    EXPECT_EQ(repeat->bytes_sent, 0u);
    EXPECT_EQ(repeat->remote_ref, r->remote_ref);
}

TEST_F(S3Test, KeyTemplateWithSpacesAndUnicodeIsSignedCorrectly) {
    auto o = options();
    o.key_template = "shots/{date}/{rig_id}/{batch}/{capture_id}_{name}";
    S3Target target(o);
    auto j = job("my photo (1) é+&=.jpg", "hello s3");
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe() << "\n" << verified_log();
    EXPECT_EQ(fetch("shots/2025-11-25/rig1/b1/" + j.capture_id + "_my photo (1) é+&=.jpg"),
              "hello s3");
    EXPECT_EQ(refused_count(), 0) << verified_log();
}

TEST_F(S3Test, VirtualHostStyle) {
    auto o = options();
    o.path_style = false;
    o.endpoint = "http://s3.localhost:" + std::to_string(proxy_port_);  // *.localhost is loopback
    S3Target target(o);
    EXPECT_EQ(target.object_url("a/b c.jpg"),
              "http://photos.s3.localhost:" + std::to_string(proxy_port_) + "/a/b%20c.jpg");
    auto j = job("vhost.jpg", pseudo_random_bytes(3000, 9));
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe() << "\n" << verified_log();
    EXPECT_EQ(r->verified_sha256, j.sha256);
    EXPECT_EQ(fetch("rig1/b1/vhost.jpg"), pseudo_random_bytes(3000, 9));
    EXPECT_EQ(refused_count(), 0) << verified_log();
}

TEST_F(S3Test, ChangedOrMissingSourceIsPermanentAndSendsNothing) {
    S3Target target(options());
    auto j = job("changed.jpg", "original");
    write_file(j.path, "tampered");
    auto r = target.upload(j, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "checksum_mismatch");
    EXPECT_EQ(fetch("rig1/b1/changed.jpg"), "<missing>");
    auto k = job("gone.jpg", "x");
    ::unlink(k.path.c_str());
    r = target.upload(k, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "source_missing");
}

TEST_F(S3Test, OutagesAreTargetUnavailable) {
    auto o = options();
    o.endpoint = "http://127.0.0.1:" + std::to_string(free_tcp_port());
    S3Target nobody(o);
    auto r = nobody.upload(job("down.jpg", "x"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_unavailable");

    // A link cut in the middle of a part: retryable, and the retry lands the object.
    TcpProxy cut(proxy_port_);
    cut.set_cut_after(300 * 1000);  // inside the first part
    auto c = options();
    c.endpoint = "http://127.0.0.1:" + std::to_string(cut.port());
    c.multipart_threshold = 1000 * 1000;
    c.part_size = 512 * 1024;
    std::string saved;
    c.save_resume = [&](const std::string&, const std::string& s) { saved = s; };
    c.load_resume = [&](const std::string&) { return saved; };
    S3Target target(c);
    auto j = job("cut.raw", pseudo_random_bytes(2 * 1000 * 1000, 10));
    auto first = target.upload(j, nullptr);
    ASSERT_FALSE(first);
    EXPECT_EQ(first.error().code, "target_unavailable") << first.error().describe();
    cut.set_cut_after(0);
    auto second = target.upload(j, nullptr);
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_EQ(fetch("rig1/b1/cut.raw"), pseudo_random_bytes(2 * 1000 * 1000, 10));
}

TEST_F(S3Test, Throughput50MB) {
    const std::string data = pseudo_random_bytes(50 * 1000 * 1000, 11);
    auto single_opts = options(true);
    single_opts.multipart_threshold = 1ull << 30;
    S3Target single(single_opts);
    auto j = job("fifty-single.raw", data);
    auto t0 = std::chrono::steady_clock::now();
    auto r = single.upload(j, nullptr);
    double s1 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(r) << r.error().describe();
    S3Target multi(options(true));  // 16 MiB threshold, 8 MiB parts
    auto k = job("fifty-multi.raw", data);
    t0 = std::chrono::steady_clock::now();
    auto m = multi.upload(k, nullptr);
    double s2 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(m) << m.error().describe();
    std::printf(
        "s3rver 50 MB: single PUT %.2f s (%.1f MB/s), multipart 8 MiB parts %.2f s (%.1f MB/s), "
        "hashing included\n",
        s1, 50.0 / s1, s2, 50.0 / s2);
    EXPECT_EQ(m->verified_sha256, k.sha256);
}
