#include "upload/local_target.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "core/bandwidth_limiter.h"
#include "core/sha256.h"
#include "support/test_util.h"
#include "upload/target.h"

using photorig::Sha256;
using photorig::test::list_files;
using photorig::test::pseudo_random_bytes;
using photorig::test::read_file;
using photorig::test::TempDir;
using photorig::test::write_file;
using photorig::upload::expand_template;
using photorig::upload::Job;
using photorig::upload::LocalTarget;
using photorig::upload::validate_template;
using namespace std::chrono_literals;

namespace {
struct Fixture {
    TempDir tmp;
    std::string spool = tmp.file("spool");
    std::string target = tmp.file("target");
    Fixture() {
        ::mkdir(spool.c_str(), 0755);
        ::mkdir(target.c_str(), 0755);
    }
    Job spooled(const std::string& name, const std::string& data, const std::string& capture_id) {
        Job j;
        j.job_id = capture_id;
        j.capture_id = capture_id;
        j.rig_id = "rig1";
        j.batch = "batch1";
        j.path = spool + "/" + capture_id + "-" + name;
        j.remote_name = name;
        j.mime = "image/jpeg";
        write_file(j.path, data);
        j.sha256 = Sha256::of(data);
        j.size = data.size();
        j.captured_at_ms = 1764043815123;  // 2025-11-25 UTC
        return j;
    }
    std::vector<std::string> target_files() const { return list_files(target); }
};

// Compares file contents by hash so a failure does not dump megabytes of bytes.
std::string digest_of(const std::string& path) {
    return Sha256::of(read_file(path));
}

bool has_temp(const std::vector<std::string>& files) {
    return std::any_of(files.begin(), files.end(),
                       [](const std::string& f) { return f.find(".part-") != std::string::npos; });
}
}  // namespace

TEST(LocalTarget, CopiesByteIdenticallyWithProgress) {
    Fixture f;
    std::string data = pseudo_random_bytes(3 * 1024 * 1024 + 123, 1);
    auto job = f.spooled("IMG_0001.JPG", data, "0190abcdef01aaaabbbbcccc");
    LocalTarget t(f.target, {});
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    auto r = t.upload(job, [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
    ASSERT_TRUE(r) << r.error().describe();
    std::string dest = f.target + "/rig1/batch1/IMG_0001.JPG";
    EXPECT_EQ(r->remote_ref, dest);
    EXPECT_EQ(r->bytes_sent, data.size());
    EXPECT_EQ(r->verified_sha256, job.sha256);
    EXPECT_TRUE(read_file(dest) == data) << "byte-identical copy";
    EXPECT_EQ(f.target_files(), std::vector<std::string>{dest});
    ASSERT_GE(calls.size(), 12u) << "one callback per 256 KiB chunk";
    for (size_t i = 1; i < calls.size(); ++i) EXPECT_GT(calls[i].first, calls[i - 1].first);
    EXPECT_EQ(calls.back().first, data.size());
    EXPECT_EQ(calls.back().second, data.size());
    EXPECT_EQ(t.name(), "local");
    EXPECT_EQ(digest_of(job.path), Sha256::of(data)) << "the spool file is untouched";
}

TEST(LocalTarget, RefusesAChecksumMismatch) {
    Fixture f;
    auto job = f.spooled("IMG_0002.JPG", pseudo_random_bytes(600000, 2), "c2");
    job.sha256 = Sha256::of("something else");
    LocalTarget t(f.target, {});
    auto r = t.upload(job, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "checksum_mismatch");
    EXPECT_TRUE(f.target_files().empty()) << "the temp is removed, nothing lands";

    // The file changed size since the job was made.
    auto job2 = f.spooled("IMG_0003.JPG", pseudo_random_bytes(1000, 3), "c3");
    write_file(job2.path, pseudo_random_bytes(1001, 3));
    auto r2 = t.upload(job2, nullptr);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code, "checksum_mismatch");
    EXPECT_TRUE(f.target_files().empty());

    auto job3 = f.spooled("IMG_0004.JPG", "x", "c4");
    job3.sha256 = "";
    EXPECT_EQ(t.upload(job3, nullptr).error().code, "bad_request");
}

TEST(LocalTarget, IdempotentOnReupload) {
    Fixture f;
    std::string data = pseudo_random_bytes(700000, 4);
    auto job = f.spooled("IMG_0005.JPG", data, "c5");
    LocalTarget t(f.target, {});
    auto first = t.upload(job, nullptr);
    ASSERT_TRUE(first);
    struct stat before {};
    ASSERT_EQ(::stat(first->remote_ref.c_str(), &before), 0);

    auto second = t.upload(job, nullptr);
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_EQ(second->remote_ref, first->remote_ref);
    EXPECT_EQ(second->bytes_sent, 0u) << "nothing copied the second time";
    struct stat after {};
    ASSERT_EQ(::stat(first->remote_ref.c_str(), &after), 0);
    EXPECT_EQ(before.st_ino, after.st_ino) << "the first copy was not replaced";
    EXPECT_EQ(f.target_files().size(), 1u);

    // Re-delivered after a crash that happened after the copy: the spool file may be gone.
    ASSERT_EQ(::unlink(job.path.c_str()), 0);
    auto third = t.upload(job, nullptr);
    ASSERT_TRUE(third) << third.error().describe();
    EXPECT_EQ(third->remote_ref, first->remote_ref);
}

TEST(LocalTarget, NeverOverwritesADifferentPhoto) {
    Fixture f;
    std::string dest = f.target + "/rig1/batch1/IMG_0006.JPG";
    ASSERT_EQ(::mkdir((f.target + "/rig1").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((f.target + "/rig1/batch1").c_str(), 0755), 0);
    std::string other = pseudo_random_bytes(5000, 99);
    write_file(dest, other);

    std::string data = pseudo_random_bytes(5000, 6);  // same size, other bytes
    auto job = f.spooled("IMG_0006.JPG", data, "0190abcdef01aaaabbbb1234");
    LocalTarget t(f.target, {});
    auto r = t.upload(job, nullptr);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->remote_ref, f.target + "/rig1/batch1/IMG_0006-bbbb1234.JPG");
    EXPECT_EQ(digest_of(dest), Sha256::of(other)) << "the other photo is intact";
    EXPECT_EQ(digest_of(r->remote_ref), Sha256::of(data));

    // The same job again finds its suffixed copy.
    auto again = t.upload(job, nullptr);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->remote_ref, r->remote_ref);
    EXPECT_EQ(again->bytes_sent, 0u);

    // A third photo with the same name and the same id tail still gets its own file.
    std::string third = pseudo_random_bytes(5000, 7);
    auto job3 = f.spooled("IMG_0006.JPG", third, "0190abcdef02ccccbbbb1234");
    auto r3 = t.upload(job3, nullptr);
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->remote_ref, f.target + "/rig1/batch1/IMG_0006-bbbb1234-2.JPG");
    EXPECT_EQ(digest_of(r3->remote_ref), Sha256::of(third));
    EXPECT_EQ(digest_of(dest), Sha256::of(other));
    EXPECT_EQ(digest_of(r->remote_ref), Sha256::of(data));
    EXPECT_FALSE(has_temp(f.target_files()));
}

TEST(LocalTarget, ConcurrentSameNameUploadsKeepBoth) {
    Fixture f;
    LocalTarget t(f.target, {});
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) {
        jobs.push_back(f.spooled("IMG_0007.JPG", pseudo_random_bytes(300000, 10 + i),
                                 "cap0000000" + std::to_string(i)));
    }
    std::vector<std::string> refs(jobs.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < jobs.size(); ++i) {
        threads.emplace_back([&, i] {
            auto r = t.upload(jobs[i], nullptr);
            ASSERT_TRUE(r) << r.error().describe();
            refs[i] = r->remote_ref;
        });
    }
    for (auto& th : threads) th.join();
    for (size_t i = 0; i < jobs.size(); ++i)
        EXPECT_EQ(digest_of(refs[i]), digest_of(jobs[i].path)) << i;
    std::sort(refs.begin(), refs.end());
    EXPECT_EQ(std::unique(refs.begin(), refs.end()), refs.end()) << "six photos, six files";
    EXPECT_EQ(f.target_files().size(), jobs.size());
}

TEST(LocalTarget, SourceMissingAndTargetUnavailable) {
    Fixture f;
    auto job = f.spooled("IMG_0008.JPG", "abc", "c8");
    ASSERT_EQ(::unlink(job.path.c_str()), 0);
    LocalTarget t(f.target, {});
    auto r = t.upload(job, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "source_missing");

    auto job2 = f.spooled("IMG_0009.JPG", "abc", "c9");
    LocalTarget gone(f.tmp.file("not-mounted"), {});
    auto r2 = gone.upload(job2, nullptr);
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code, "target_unavailable");
    EXPECT_NE(::access(f.tmp.file("not-mounted").c_str(), F_OK), 0)
        << "the missing root is not created";
}

TEST(LocalTarget, BandwidthLimitPacesTheCopy) {
    Fixture f;
    std::string data = pseudo_random_bytes(2000000, 11);
    LocalTarget::Options o;
    o.bandwidth_limit_bytes_per_s = 4000000;
    LocalTarget t(f.target, o);
    // 2 MB at 4 MB/s takes 0.5 s. Pacing can never make it faster; a loaded machine can
    // make one run slower, so the upper bound takes the best of three runs.
    double best = 1e9;
    for (int run = 0; run < 3 && best > 0.5 * 1.2; ++run) {
        auto job = f.spooled("IMG_0010.JPG", data, "c10-" + std::to_string(run));
        job.batch = "run" + std::to_string(run);
        auto start = std::chrono::steady_clock::now();
        auto r = t.upload(job, nullptr);
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(digest_of(r->remote_ref), Sha256::of(data));
        EXPECT_GE(secs, 0.5 * 0.8) << "run " << run;
        best = std::min(best, secs);
    }
    EXPECT_LE(best, 0.5 * 1.2);
    std::printf("2 MB at 4 MB/s: %.3f s\n", best);

    // Unlimited, the same copy is much faster.
    auto job2 = f.spooled("IMG_0011.JPG", data, "c11");
    LocalTarget fast(f.target, {});
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(fast.upload(job2, nullptr));
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.4);
}

TEST(LocalTarget, BandwidthLimitIsSharedByConcurrentUploads) {
    // One simulated link: two 1 MB uploads at once through a 4 MB/s target take 0.5 s.
    Fixture f;
    LocalTarget::Options o;
    o.bandwidth_limit_bytes_per_s = 4000000;
    LocalTarget t(f.target, o);
    auto a = f.spooled("A.JPG", pseudo_random_bytes(1000000, 21), "ca");
    auto b = f.spooled("B.JPG", pseudo_random_bytes(1000000, 22), "cb");
    auto start = std::chrono::steady_clock::now();
    std::thread ta([&] { EXPECT_TRUE(t.upload(a, nullptr)); });
    std::thread tb([&] { EXPECT_TRUE(t.upload(b, nullptr)); });
    ta.join();
    tb.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(secs, 0.5 * 0.8);
}

// With the link's gate (upload.parallel_bodies: false) two uploads at once copy one after
// the other: the first is complete before the second's first byte, so it is safe after one
// upload's time, not two. Without the gate their copies would interleave.
TEST(LocalTarget, GateLetsOneCopyOnTheLinkAtATime) {
    Fixture f;
    LocalTarget::Options o;
    o.bandwidth_limit_bytes_per_s = 2000000;  // 0.25 s per file
    o.gate = std::make_shared<photorig::LinkGate>();
    LocalTarget t(f.target, o);
    auto a = f.spooled("A.JPG", pseudo_random_bytes(500000, 31), "ga");
    auto b = f.spooled("B.JPG", pseudo_random_bytes(500000, 32), "gb");
    using Clock = std::chrono::steady_clock;
    std::atomic<bool> a_started{false};
    Clock::time_point a_last_byte{}, b_first_byte{};
    std::thread ta([&] {
        auto r = t.upload(a, [&](uint64_t done, uint64_t total) {
            a_started = true;
            if (done == total) a_last_byte = Clock::now();
        });
        EXPECT_TRUE(r) << r.error().describe();
    });
    // B arrives while A is copying.
    for (int i = 0; i < 5000 && !a_started; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(a_started.load());
    auto rb = t.upload(b, [&](uint64_t done, uint64_t) {
        if (done > 0 && b_first_byte == Clock::time_point{}) b_first_byte = Clock::now();
    });
    ta.join();
    ASSERT_TRUE(rb) << rb.error().describe();
    EXPECT_GE(b_first_byte, a_last_byte) << "the second copy started before the first ended";
    EXPECT_EQ(digest_of(rb->remote_ref), b.sha256);
    EXPECT_FALSE(o.gate->busy());
}

TEST(LocalTarget, CancelWhileWaitingForTheGateEndsPromptlyAndLeavesNothing) {
    Fixture f;
    LocalTarget::Options o;
    o.gate = std::make_shared<photorig::LinkGate>();
    std::atomic<bool> cancel{false};
    o.cancel = &cancel;
    LocalTarget t(f.target, o);
    photorig::LinkGate::Turn other(o.gate.get());  // another transfer holds the link
    ASSERT_TRUE(other.hold(nullptr));
    auto job = f.spooled("C.JPG", pseudo_random_bytes(100000, 33), "gc");
    std::thread canceller([&] {
        for (int i = 0; i < 5000 && o.gate->waiting() == 0; ++i) std::this_thread::sleep_for(1ms);
        cancel = true;
    });
    auto start = std::chrono::steady_clock::now();
    auto r = t.upload(job, nullptr);
    canceller.join();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "cancelled");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    EXPECT_FALSE(has_temp(f.target_files())) << "the temp is removed";
    EXPECT_EQ(o.gate->waiting(), 0u);
}

TEST(LocalTarget, PathTemplateFieldsAndRefusals) {
    Fixture f;
    auto job = f.spooled("IMG_0012.JPG", "data", "0190abcdef01aaaabbbbcccc");
    auto e = expand_template("{date}/{rig_id}/{batch}/{capture_id}_{name}", job);
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_EQ(*e, "2025-11-25/rig1/batch1/0190abcdef01aaaabbbbcccc_IMG_0012.JPG");

    EXPECT_EQ(expand_template("{rig_id}/{nope}/{name}", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("{rig_id}/{name", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("{rig_id}}/{name}", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("/abs/{name}", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("../{name}", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("{rig_id}//{name}", job).error().code, "bad_template");
    EXPECT_EQ(expand_template("", job).error().code, "bad_template");
    EXPECT_TRUE(validate_template("{rig_id}/{batch}/{name}"));
    EXPECT_FALSE(validate_template("{rig}/{name}"));

    Job evil = job;
    evil.batch = "..";
    EXPECT_EQ(expand_template("{rig_id}/{batch}/{name}", evil).error().code, "invalid_name");
    evil.batch = "../../etc";
    EXPECT_EQ(expand_template("{rig_id}/{batch}/{name}", evil).error().code, "invalid_name");
    evil.batch = "batch1";
    evil.remote_name = "";
    EXPECT_EQ(expand_template("{rig_id}/{batch}/{name}", evil).error().code, "invalid_name");

    // The target refuses them too, writing nothing anywhere.
    LocalTarget bad(f.target, {0, "{rig_id}/../../{name}", nullptr, nullptr, nullptr});
    EXPECT_EQ(bad.upload(job, nullptr).error().code, "bad_template");
    Job hostile = job;
    hostile.batch = "../../escape";
    LocalTarget t(f.target, {});
    EXPECT_EQ(t.upload(hostile, nullptr).error().code, "invalid_name");
    EXPECT_TRUE(f.target_files().empty());
    EXPECT_NE(::access(f.tmp.file("escape").c_str(), F_OK), 0);

    LocalTarget dated(f.target, {0, "{date}/{name}", nullptr, nullptr, nullptr});
    auto r = dated.upload(job, nullptr);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->remote_ref, f.target + "/2025-11-25/IMG_0012.JPG");
}
