// GdriveTarget against tests/fakes/gdrive_fake.py: a Drive API v3 + OAuth token endpoint fake
// (Python standard library only) with HTTP-injected faults. A missing python3 fails the
// tests, never skips them.
#include "targets/gdrive_target.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/files.h"
#include "core/sha256.h"
#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/storage_peers.h"
#include "support/test_util.h"
#include "targets/http.h"

using namespace photorig;
using namespace photorig::test;
using photorig::targets::GdriveTarget;
namespace http = photorig::targets::http;
using json = nlohmann::json;

namespace {

const char* kClientId = "1234-test.apps.googleusercontent.com";
const char* kClientSecret = "GOCSPX-client-secret-never-logged";
const char* kRefreshToken = "1//refresh-token-never-logged";
constexpr uint64_t kMiB = 1024 * 1024;

class GdriveTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ::mkdir(dir_.file("spool").c_str(), 0755);
        ASSERT_EQ(fake_.start(), "");
        base_ = fake_.base_url();
    }

    void TearDown() override {
        fake_.stop();
        // The fake's handler threads print tracebacks on bugs: none expected.
        EXPECT_EQ(fake_.log().find("Traceback"), std::string::npos) << fake_.log();
    }

    GdriveTarget::Options options() const {
        GdriveTarget::Options o;
        o.client_id = kClientId;
        o.client_secret = kClientSecret;
        o.refresh_token = kRefreshToken;
        o.folder = "photorig";
        o.token_url = base_ + "/token";
        o.api_url = base_;
        o.rig_id = "rig1";
        o.chunk_size = 1 * kMiB;
        o.backoff_initial_ms = 20;
        o.backoff_max_ms = 200;
        o.low_speed_time_s = 10;
        return o;
    }

    upload::Job job(const std::string& name, const std::string& content, const std::string& id = "",
                    const std::string& batch = "b1") {
        upload::Job j;
        j.job_id = id.empty() ? "job-" + name : id;
        j.capture_id = "c0ffee12-" + name;
        j.rig_id = "rig1";
        j.batch = batch;
        j.path = dir_.file("spool/" + name);
        j.remote_name = name;
        j.mime = "image/jpeg";
        write_file(j.path, content);
        j.sha256 = Sha256::of(content);
        j.size = content.size();
        j.captured_at_ms = 1764044215123;
        return j;
    }

    void fake_post(const std::string& path, const json& body) const {
        ASSERT_EQ(fake_.post(path, body), "");
    }
    json files() const { return fake_.files(); }
    json stats() const { return fake_.stats(); }

    std::vector<json> stored(bool folders) const {
        std::vector<json> out;
        const json all = files();
        for (const auto& f : all)
            if ((f["mimeType"] == "application/vnd.google-apps.folder") == folders)
                out.push_back(f);
        return out;
    }

    // The stored file carrying this job id (checks there is exactly one).
    json stored_for(const upload::Job& j) const {
        json found;
        int n = 0;
        for (const auto& f : stored(false)) {
            if (f.contains("appProperties") && f["appProperties"].value("job_id", "") == j.job_id &&
                !f.value("trashed", false)) {
                found = f;
                ++n;
            }
        }
        EXPECT_EQ(n, 1) << "files carrying job_id " << j.job_id << ": " << files().dump(1);
        return found;
    }

    uint64_t bytes_received_for(const std::string& job_id) const {
        return fake_.bytes_received_for(job_id);
    }

    void expect_stored(const upload::Job& j, const upload::UploadResult& r) const {
        json f = stored_for(j);
        ASSERT_TRUE(f.is_object());
        EXPECT_EQ(f["id"], r.remote_ref);
        EXPECT_EQ(f["name"], j.remote_name);
        EXPECT_EQ(f["path"], "photorig/rig1/" + j.batch);
        EXPECT_EQ(f["size"], j.size);
        EXPECT_EQ(f["disk_sha256"], j.sha256) << "bytes on the fake's disk differ";
        EXPECT_EQ(f["sha256Checksum"], j.sha256);
        EXPECT_EQ(f["mimeType"], "image/jpeg");
        EXPECT_EQ(f["appProperties"]["sha256"], j.sha256);
        EXPECT_EQ(f["appProperties"]["capture_id"], j.capture_id);
        EXPECT_EQ(r.verified_sha256, j.sha256);
    }

    TempDir dir_{"photorig-gdrive"};
    GdriveFakePeer fake_{dir_.file("state"), dir_.file("fake.log"), kClientId, kClientSecret,
                         kRefreshToken};
    std::string base_;
};

}  // namespace

TEST(GdriveQuery, LiteralsAreEscaped) {
    EXPECT_EQ(GdriveTarget::q_literal("plain"), "'plain'");
    EXPECT_EQ(GdriveTarget::q_literal("it's a\\b"), "'it\\'s a\\\\b'");
}

TEST_F(GdriveTest, UploadsSmallEmptyAndLargeFilesByteIdentical) {
    GdriveTarget target(options());
    EXPECT_EQ(target.name(), "gdrive");
    for (auto [name, size] :
         std::vector<std::pair<std::string, size_t>>{{"small.jpg", 1000},
                                                     {"empty.jpg", 0},
                                                     {"aligned.jpg", 512 * 1024},
                                                     {"big.jpg", 20 * 1000 * 1000}}) {
        SCOPED_TRACE(name);
        auto j = job(name, pseudo_random_bytes(size, static_cast<unsigned>(size + 3)));
        uint64_t last = 0, total = 0;
        auto r = target.upload(j, [&](uint64_t done, uint64_t t) {
            last = done;
            total = t;
        });
        ASSERT_TRUE(r) << r.error().describe() << "\n" << read_file(dir_.file("fake.log"));
        EXPECT_EQ(r->bytes_sent, j.size);
        if (size > 0) {
            EXPECT_EQ(last, j.size);
            EXPECT_EQ(total, j.size);
        }
        expect_stored(j, *r);
    }
    const json s = stats();
    EXPECT_EQ(s["token_grants"], 1) << s.dump();
    EXPECT_EQ(s["sessions_created"], 4);
    EXPECT_EQ(s["bytes_received"], 1000u + 512 * 1024 + 20 * 1000 * 1000);
    // 20 MB in 1 MiB chunks: 20 PUTs (19 full + the rest).
    for (const auto& [uid, sess] : s["sessions"].items()) {
        if (sess["total"] == 20 * 1000 * 1000) {
            EXPECT_EQ(sess["puts"], 20);
        }
    }
}

TEST_F(GdriveTest, FolderTreeIsCreatedOnceAndReusedAcrossThreadsAndRestarts) {
    {
        GdriveTarget target(options());
        for (int i = 0; i < 3; ++i) {
            auto j = job("seq" + std::to_string(i) + ".jpg", pseudo_random_bytes(3000, i));
            auto r = target.upload(j, nullptr);
            ASSERT_TRUE(r) << r.error().describe();
        }
        EXPECT_EQ(stats()["folder_creates"], 3);  // photorig, rig1, b1
        // Six uploads at once into a new batch: one folder, not six.
        std::vector<upload::Job> jobs;
        for (int i = 0; i < 6; ++i)
            jobs.push_back(job("par" + std::to_string(i) + ".jpg",
                               pseudo_random_bytes(700 * 1024, 10 + i), "", "b2"));
        std::atomic<int> ok{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 6; ++i)
            threads.emplace_back([&, i] {
                if (target.upload(jobs[i], nullptr)) ++ok;
            });
        for (auto& t : threads) t.join();
        EXPECT_EQ(ok.load(), 6);
        EXPECT_EQ(stats()["folder_creates"], 4);
        for (const auto& j : jobs) EXPECT_EQ(stored_for(j)["path"], "photorig/rig1/b2");
    }
    // A restarted uploader finds the tree with files.list instead of creating it again.
    GdriveTarget restarted(options());
    auto r = restarted.upload(job("later.jpg", "later"), nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(stats()["folder_creates"], 4);
    EXPECT_EQ(stored(true).size(), 4u);
}

TEST_F(GdriveTest, InjectedUnauthorizedRefreshesTheToken) {
    GdriveTarget target(options());
    ASSERT_TRUE(target.upload(job("warm.jpg", "warm"), nullptr));
    ASSERT_EQ(stats()["token_grants"], 1);
    fake_post("/_fake/faults", {{"401", 1}});
    auto j = job("after401.jpg", pseudo_random_bytes(3 * kMiB + 5, 2));
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);
    const json s = stats();
    EXPECT_EQ(s["faults_fired"]["401"], 1);
    EXPECT_EQ(s["token_grants"], 2) << s.dump();
    // A 401 during the chunks (the session PUTs carry the token too).
    fake_post("/_fake/faults", {{"401", 1}, {"only", "chunk"}});
    auto k = job("after401b.jpg", pseudo_random_bytes(3 * kMiB + 5, 3));
    auto r2 = target.upload(k, nullptr);
    ASSERT_TRUE(r2) << r2.error().describe();
    expect_stored(k, *r2);
    EXPECT_EQ(stats()["token_grants"], 3);
}

TEST_F(GdriveTest, TokenIsRefreshedBeforeItExpires) {
    fake_post("/_fake/config", {{"expires_in", 2}});
    GdriveTarget target(options());
    ASSERT_TRUE(target.upload(job("t1.jpg", "one"), nullptr));
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));  // the first token is dead now
    auto r = target.upload(job("t2.jpg", "two"), nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    const json s = stats();
    EXPECT_EQ(s["token_grants"], 2);
    EXPECT_EQ(s["unauthorized"], 0)
        << "the token should be refreshed before it expires, not after a 401";
}

TEST_F(GdriveTest, RateLimitsAndServerErrorsAreRetriedHonouringRetryAfter) {
    GdriveTarget target(options());
    ASSERT_TRUE(target.upload(job("warm.jpg", "warm"), nullptr));
    fake_post("/_fake/faults", {{"429", 1}, {"403_rate", 1}, {"500", 1}, {"retry_after_s", 1}});
    auto j = job("limited.jpg", pseudo_random_bytes(2 * kMiB + 77, 4));
    auto t0 = std::chrono::steady_clock::now();
    auto r = target.upload(j, nullptr);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);
    const json s = stats();
    EXPECT_EQ(s["faults_fired"]["429"], 1);
    EXPECT_EQ(s["faults_fired"]["403_rate"], 1);
    EXPECT_EQ(s["faults_fired"]["500"], 1);
    EXPECT_GE(elapsed, std::chrono::milliseconds(2900))
        << "Retry-After: 1 was not honoured three times";
    EXPECT_LT(elapsed, std::chrono::seconds(15));

    // The same on chunk PUTs: each failed chunk is followed by a status query and a resend.
    fake_post("/_fake/faults", {{"clear", true}, {"500", 2}, {"429", 1}, {"only", "chunk"}});
    auto k = job("chunkfail.jpg", pseudo_random_bytes(4 * kMiB, 5));
    auto r2 = target.upload(k, nullptr);
    ASSERT_TRUE(r2) << r2.error().describe();
    expect_stored(k, *r2);
    EXPECT_EQ(stats()["faults_fired"]["500"], 3);
}

TEST_F(GdriveTest, PersistentFailureEndsTheCallAsTargetUnavailable) {
    auto o = options();
    o.max_retries_per_call = 3;
    GdriveTarget target(o);
    ASSERT_TRUE(target.upload(job("warm.jpg", "warm"), nullptr));
    fake_post("/_fake/faults", {{"503", 100}});
    auto r = target.upload(job("down.jpg", "down"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_unavailable") << r.error().describe();
    EXPECT_EQ(stats()["faults_fired"]["503"], 4);  // first try + 3 retries
    // A Retry-After longer than we hold a job for ends the call at once.
    fake_post("/_fake/faults", {{"clear", true}, {"429", 1}, {"retry_after_s", 3600}});
    auto t0 = std::chrono::steady_clock::now();
    auto r2 = target.upload(job("later.jpg", "later"), nullptr);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code, "target_unavailable");
    EXPECT_NE(r2.error().message.find("3600 s"), std::string::npos) << r2.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    // Quota exhausted is disk_full, not retried.
    fake_post("/_fake/faults", {{"clear", true}, {"403_quota", 1}});
    auto r3 = target.upload(job("full.jpg", "full"), nullptr);
    ASSERT_FALSE(r3);
    EXPECT_EQ(r3.error().code, "disk_full") << r3.error().describe();
    EXPECT_TRUE(stored_for(job("warm.jpg", "warm")).is_object());
}

TEST_F(GdriveTest, DroppedChunkResumesFromTheConfirmedByte) {
    const uint64_t chunk = 2 * kMiB;
    auto o = options();
    o.chunk_size = chunk;
    GdriveTarget target(o);
    // Drive keeps what it read: nothing but the bytes lost in flight is sent again.
    fake_post("/_fake/faults", {{"drop_mid_chunk", 3}});
    auto j = job("dropped.jpg", pseudo_random_bytes(20 * 1000 * 1000, 6));
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);
    const json s = stats();
    EXPECT_EQ(s["faults_fired"]["drop_mid_chunk"], 3);
    EXPECT_EQ(s["sessions_created"], 1);
    const uint64_t received = bytes_received_for(j.job_id);
    EXPECT_LT(received - j.size, 2 * chunk) << "bytes the fake read twice";
    EXPECT_LT(r->bytes_sent - j.size, 2 * chunk) << "bytes curl sent beyond the file size";

    // Worst case: a cut chunk leaves nothing behind. Still under one chunk per interruption.
    fake_post("/_fake/faults", {{"drop_mid_chunk", 3}, {"partial_keep", "none"}});
    auto k = job("dropped2.jpg", pseudo_random_bytes(20 * 1000 * 1000, 7));
    auto r2 = target.upload(k, nullptr);
    ASSERT_TRUE(r2) << r2.error().describe();
    expect_stored(k, *r2);
    const uint64_t received2 = bytes_received_for(k.job_id);
    EXPECT_GT(received2, k.size);
    EXPECT_LT(received2 - k.size, 3 * chunk);
    EXPECT_LT(r2->bytes_sent - k.size, 3 * chunk + 3 * chunk / 2);
}

TEST_F(GdriveTest, KilledUploaderResumesTheSavedSession) {
    const uint64_t chunk = 1 * kMiB;
    auto j = job("crash.jpg", pseudo_random_bytes(20 * 1000 * 1000, 8));
    const std::string resume_file = dir_.file("resume.txt");
    auto o = options();
    o.chunk_size = chunk;
    o.save_resume = [&](const std::string& id, const std::string& text) {
        if (id == j.job_id) (void)files::write_atomic(resume_file, text);
    };
    o.load_resume = [&](const std::string& id) {
        return id == j.job_id ? read_file(resume_file) : std::string();
    };
    auto child_opts = o;
    child_opts.max_send_speed = 4 * 1000 * 1000;  // slow enough to be killed midway

    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // A fresh thread: nothing of the parent's per-thread HTTP connections is touched.
        int code = 1;
        std::thread t([&] {
            GdriveTarget target(child_opts);
            code = target.upload(j, nullptr) ? 0 : 2;
        });
        t.join();
        ::_exit(code);
    }
    bool midway = wait_until([&] { return bytes_received_for(j.job_id) >= 8 * kMiB; },
                             std::chrono::seconds(30));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(midway) << "the child never got to 8 MiB: " << stats().dump();
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it was killed";
    const uint64_t before = bytes_received_for(j.job_id);
    ASSERT_LT(before, j.size);
    ASSERT_NE(read_file(resume_file).find("upload_id="), std::string::npos)
        << read_file(resume_file);
    EXPECT_TRUE(stored(false).empty());

    GdriveTarget restarted(o);
    auto r = restarted.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);
    const json s = stats();
    EXPECT_EQ(s["sessions_created"], 1) << "the saved session was not resumed";
    const uint64_t received = bytes_received_for(j.job_id);
    EXPECT_LT(received - j.size, 2 * chunk) << "bytes the fake read twice";
    EXPECT_LT(r->bytes_sent, j.size - before + 2 * chunk) << "bytes sent after the restart";
    std::printf(
        "killed at %llu of %llu bytes; after the restart %llu bytes sent, the fake read %llu "
        "twice\n",
        static_cast<unsigned long long>(before), static_cast<unsigned long long>(j.size),
        static_cast<unsigned long long>(r->bytes_sent),
        static_cast<unsigned long long>(received - j.size));
}

TEST_F(GdriveTest, FinishedSessionOrExistingFileIsNotUploadedTwice) {
    std::string saved;
    auto o = options();
    o.save_resume = [&](const std::string&, const std::string& text) { saved = text; };
    o.load_resume = [&](const std::string&) { return saved; };
    auto j = job("once.jpg", pseudo_random_bytes(1500 * 1000, 9));
    std::string id;
    {
        GdriveTarget target(o);
        auto r = target.upload(j, nullptr);
        ASSERT_TRUE(r) << r.error().describe();
        id = r->remote_ref;
    }
    ASSERT_FALSE(saved.empty());
    // Crash after the last chunk, before the journal noted "done": the saved session answers
    // the status query with the file.
    {
        GdriveTarget target(o);
        auto r = target.upload(j, nullptr);
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->remote_ref, id);
        EXPECT_EQ(r->bytes_sent, 0u);
        EXPECT_EQ(r->verified_sha256, j.sha256);
    }
    // The session expired meanwhile (404): the appProperties lookup finds the file.
    fake_post("/_fake/faults", {{"expire_sessions", true}});
    {
        GdriveTarget target(o);
        auto r = target.upload(j, nullptr);
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->remote_ref, id);
        EXPECT_EQ(r->bytes_sent, 0u);
        EXPECT_EQ(saved, "") << "an expired session must be forgotten";
    }
    // No resume state at all (journal row forgotten): the lookup again.
    {
        GdriveTarget target(options());
        auto r = target.upload(j, nullptr);
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->remote_ref, id);
        EXPECT_EQ(r->bytes_sent, 0u);
    }
    EXPECT_EQ(stats()["sessions_created"], 1);
    EXPECT_EQ(stats()["file_creates"], 1);
    expect_stored(j, upload::UploadResult{id, 0, j.sha256});
}

TEST_F(GdriveTest, ExpiredSessionMidUploadStartsANewOne) {
    std::string saved;
    auto o = options();
    o.save_resume = [&](const std::string&, const std::string& text) { saved = text; };
    o.load_resume = [&](const std::string&) { return saved; };
    std::atomic<bool> stop{false};
    o.cancel = &stop;
    auto j = job("expire.jpg", pseudo_random_bytes(6 * kMiB, 10));
    {
        GdriveTarget target(o);
        auto r = target.upload(j, [&](uint64_t done, uint64_t) {
            if (done >= 3 * kMiB) stop = true;
        });
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, "cancelled");
    }
    ASSERT_FALSE(saved.empty());
    fake_post("/_fake/faults", {{"expire_sessions", true}});
    stop = false;
    GdriveTarget target(o);
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);
    EXPECT_EQ(stats()["sessions_created"], 2);
    EXPECT_EQ(r->bytes_sent, j.size);
}

TEST_F(GdriveTest, DamagedCopyIsTrashedAndRetried) {
    std::string saved;
    auto o = options();
    o.save_resume = [&](const std::string&, const std::string& text) { saved = text; };
    o.load_resume = [&](const std::string&) { return saved; };
    GdriveTarget target(o);
    fake_post("/_fake/faults", {{"corrupt", 1}});
    auto j = job("damaged.jpg", pseudo_random_bytes(1200 * 1000, 12));
    auto r = target.upload(j, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_unavailable") << r.error().describe();
    EXPECT_NE(r.error().message.find("trashed"), std::string::npos) << r.error().message;
    EXPECT_EQ(saved, "");
    int trashed = 0;
    for (const auto& f : stored(false)) trashed += f.value("trashed", false) ? 1 : 0;
    EXPECT_EQ(trashed, 1);
    auto again = target.upload(j, nullptr);  // the uploader's retry
    ASSERT_TRUE(again) << again.error().describe();
    expect_stored(j, *again);
    // The spool file itself changed since the job was made: permanent.
    auto k = job("changed.jpg", pseudo_random_bytes(1200 * 1000, 13));
    write_file(k.path, pseudo_random_bytes(1200 * 1000, 14));
    auto c = target.upload(k, nullptr);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, "checksum_mismatch");
}

TEST_F(GdriveTest, InvalidGrantIsTargetAuthWithTheSevenDayHint) {
    fake_post("/_fake/config", {{"refresh_token", "a-newer-token"}});  // ours is revoked
    GdriveTarget target(options());
    auto r = target.upload(job("auth.jpg", "auth"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_auth") << r.error().describe();
    const std::string& m = r.error().message;
    EXPECT_NE(m.find("invalid_grant"), std::string::npos) << m;
    EXPECT_NE(m.find("expired or been revoked"), std::string::npos) << m;
    EXPECT_NE(m.find("Testing"), std::string::npos) << m;
    EXPECT_NE(m.find("7 days"), std::string::npos) << m;
    EXPECT_NE(m.find("new refresh token"), std::string::npos) << m;
    EXPECT_EQ(m.find(kRefreshToken), std::string::npos) << m;
    EXPECT_EQ(m.find(kClientSecret), std::string::npos) << m;
    EXPECT_EQ(stats()["sessions_created"], 0);
    EXPECT_EQ(stats()["token_failures"], 1)
        << "invalid_grant is not worth retrying within the call";

    // A wrong client secret: target_auth naming the client settings, not the secret.
    auto o = options();
    o.client_secret = "wrong-secret-value";
    GdriveTarget wrong(o);
    auto w = wrong.upload(job("auth2.jpg", "auth"), nullptr);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, "target_auth");
    EXPECT_NE(w.error().message.find("client_secret_file"), std::string::npos) << w.error().message;
    EXPECT_EQ(w.error().message.find("wrong-secret-value"), std::string::npos);
}

TEST_F(GdriveTest, ReplacedRefreshTokenFileIsReadAgain) {
    const std::string token_file = dir_.file("refresh_token");
    const std::string secret_file = dir_.file("client_secret");
    write_file(token_file, "stale-token\n", 0600);
    write_file(secret_file, std::string(kClientSecret) + "\n", 0600);
    auto o = options();
    o.refresh_token.clear();
    o.client_secret.clear();
    o.refresh_token_file = token_file;
    o.client_secret_file = secret_file;
    GdriveTarget target(o);
    auto r = target.upload(job("f.jpg", "file"), nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "target_auth");
    EXPECT_NE(r.error().message.find(token_file), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("stale-token"), std::string::npos);
    write_file(token_file, std::string(kRefreshToken) + "\n", 0600);  // the operator's fix
    auto again = target.upload(job("f.jpg", "file"), nullptr);
    ASSERT_TRUE(again) << again.error().describe();
}

TEST_F(GdriveTest, SpoolProblemsArePermanentAndSendNothing) {
    GdriveTarget target(options());
    auto j = job("bad.jpg", "content");
    j.sha256 = Sha256::of("other content");
    auto r = target.upload(j, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "checksum_mismatch");
    auto k = job("gone.jpg", "content");
    ::unlink(k.path.c_str());
    auto g = target.upload(k, nullptr);
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().code, "source_missing");
    auto n = job("nosum.jpg", "content");
    n.sha256.clear();
    auto b = target.upload(n, nullptr);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, "bad_request");
    EXPECT_EQ(stats()["sessions_created"], 0);
}

TEST_F(GdriveTest, FolderGivenByIdAndDeletedFolderIsRecreated) {
    std::string root_id;
    {
        GdriveTarget maker(options());
        auto id = maker.folder_id("", "");
        ASSERT_TRUE(id) << id.error().describe();
        root_id = *id;
    }
    auto o = options();
    o.folder = "id:" + root_id;
    GdriveTarget target(o);
    auto j = job("byid.jpg", "by id");
    auto r = target.upload(j, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    expect_stored(j, *r);

    // Someone deletes the cached batch folder: the next upload notices and makes it again.
    auto batch = target.folder_id("rig1", "b1");
    ASSERT_TRUE(batch);
    auto tok = target.access_token();
    ASSERT_TRUE(tok);
    http::Request del;
    del.method = "DELETE";
    del.url = base_ + "/drive/v3/files/" + *batch;
    del.headers = {"Authorization: Bearer " + *tok};
    auto d = http::perform(del);
    ASSERT_TRUE(d);
    ASSERT_EQ(d->status, 204);
    auto k = job("after-delete.jpg", "again");
    auto r2 = target.upload(k, nullptr);
    ASSERT_TRUE(r2) << r2.error().describe();
    expect_stored(k, *r2);

    auto missing = o;
    missing.folder = "id:1NoSuchFolder";
    GdriveTarget bad(missing);
    auto m = bad.upload(job("nofolder.jpg", "x"), nullptr);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, "bad_config") << m.error().describe();
}

// Measures what an interruption costs on a 100 MB upload (run by hand:
// --gtest_also_run_disabled_tests --gtest_filter='*Measure*').
TEST_F(GdriveTest, DISABLED_Measure100MbInterruptions) {
    const uint64_t size = 100 * 1000 * 1000;
    for (std::string keep : {"exact", "aligned", "none"}) {
        auto o = options();
        o.chunk_size = 8 * kMiB;
        GdriveTarget target(o);
        fake_post("/_fake/faults",
                  {{"clear", true}, {"drop_mid_chunk", 5}, {"partial_keep", keep}});
        auto j = job("m-" + keep + ".raw", pseudo_random_bytes(size, 11));
        auto t0 = std::chrono::steady_clock::now();
        auto r = target.upload(j, nullptr);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ASSERT_TRUE(r) << r.error().describe();
        expect_stored(j, *r);
        const uint64_t received = bytes_received_for(j.job_id);
        const json s = stats();
        EXPECT_EQ(s["faults_pending"]["drop_mid_chunk"], 0);
        std::printf(
            "partial_keep=%s: 5 drops, server read %llu extra bytes (%.0f per drop, %llu "
            "discarded), "
            "client sent %llu extra (%.0f per drop), %.1f s\n",
            keep.c_str(), static_cast<unsigned long long>(received - size), (received - size) / 5.0,
            static_cast<unsigned long long>(s.value("bytes_discarded", uint64_t{0})),
            static_cast<unsigned long long>(r->bytes_sent - size), (r->bytes_sent - size) / 5.0,
            secs);
        fake_post("/_fake/reset_stats", json::object());
        ::unlink(j.path.c_str());
    }
}
