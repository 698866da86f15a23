#include "upload/journal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "support/test_util.h"

using photorig::test::TempDir;
using photorig::upload::Job;
using photorig::upload::JobState;
using photorig::upload::Journal;

namespace {
Job job(const std::string& id) {
    Job j;
    j.job_id = id;
    j.capture_id = "cap-" + id;
    j.rig_id = "rig1";
    j.batch = "batch1";
    j.path = "/spool/batch1/" + id + ".jpg";
    j.remote_name = id + ".jpg";
    j.mime = "image/jpeg";
    j.sha256 = std::string(64, 'a');
    j.size = 4000000;
    j.captured_at_ms = 1764043815123;
    return j;
}

std::unique_ptr<Journal> open_journal(const std::string& path) {
    auto j = Journal::open(path);
    EXPECT_TRUE(j) << (j ? "" : j.error().describe());
    return j ? std::move(*j) : nullptr;
}
}  // namespace

TEST(Journal, RecordSurvivesCloseAndReopenWithEveryField) {
    TempDir tmp;
    std::string path = tmp.file("journal.sqlite");
    {
        auto j = open_journal(path);
        ASSERT_TRUE(j);
        auto r = j->record(job("a"));
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_TRUE(r->inserted);
        EXPECT_EQ(r->state, JobState::queued);
        EXPECT_EQ(r->attempts, 0);
        ASSERT_TRUE(j->record(job("b")));
        ASSERT_TRUE(j->mark_uploading("b"));
        ASSERT_TRUE(j->mark_done("b", "/uploads/rig1/batch1/b.jpg"));
    }
    auto j = open_journal(path);
    ASSERT_TRUE(j);
    auto a = j->get("a");
    ASSERT_TRUE(a);
    Job want = job("a");
    EXPECT_EQ(a->job.job_id, want.job_id);
    EXPECT_EQ(a->job.capture_id, want.capture_id);
    EXPECT_EQ(a->job.rig_id, want.rig_id);
    EXPECT_EQ(a->job.batch, want.batch);
    EXPECT_EQ(a->job.path, want.path);
    EXPECT_EQ(a->job.remote_name, want.remote_name);
    EXPECT_EQ(a->job.mime, want.mime);
    EXPECT_EQ(a->job.sha256, want.sha256);
    EXPECT_EQ(a->job.size, want.size);
    EXPECT_EQ(a->job.captured_at_ms, want.captured_at_ms);
    EXPECT_EQ(a->state, JobState::queued);
    EXPECT_GT(a->created_ms, 0);
    auto b = j->get("b");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->state, JobState::done);
    EXPECT_EQ(b->remote_ref, "/uploads/rig1/batch1/b.jpg");
    EXPECT_EQ(b->attempts, 1);
    EXPECT_GT(b->done_ms, 0);
    auto missing = j->get("zzz");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, "not_found");
    EXPECT_EQ(j->mark_done("zzz", "x").error().code, "not_found");
}

TEST(Journal, RecordIsDurableWhenTheProcessIsKilledRightAfter) {
    TempDir tmp;
    std::string path = tmp.file("journal.sqlite");
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // Child: no gtest here. Record, then die at once with no chance to clean up.
        auto j = Journal::open(path);
        if (!j) ::_exit(2);
        for (int i = 0; i < 20; ++i) {
            if (!(*j)->record(job("early-" + std::to_string(i)))) ::_exit(3);
        }
        if (!(*j)->mark_uploading("early-3")) ::_exit(4);
        if (!(*j)->mark_done("early-3", "ref")) ::_exit(4);
        if (!(*j)->record(job("last"))) ::_exit(5);
        ::kill(::getpid(), SIGKILL);
        ::_exit(6);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ASSERT_EQ(WTERMSIG(status), SIGKILL);

    auto j = open_journal(path);
    ASSERT_TRUE(j);
    auto last = j->get("last");
    ASSERT_TRUE(last) << last.error().describe();
    EXPECT_EQ(last->state, JobState::queued);
    EXPECT_EQ(last->job.sha256, std::string(64, 'a'));
    auto done = j->get("early-3");
    ASSERT_TRUE(done);
    EXPECT_EQ(done->state, JobState::done);
    auto counts = j->counts();
    ASSERT_TRUE(counts);
    EXPECT_EQ(counts->queued, 20u);
    EXPECT_EQ(counts->done, 1u);
}

TEST(Journal, RepeatedJobIdIsRecognisedAndLeftUnchanged) {
    TempDir tmp;
    auto j = open_journal(tmp.file("j.sqlite"));
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->record(job("x")));
    ASSERT_TRUE(j->mark_uploading("x"));
    ASSERT_TRUE(j->mark_done("x", "remote/x"));
    Job again = job("x");
    again.path = "/elsewhere/x.jpg";
    auto r = j->record(again);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->inserted);
    EXPECT_EQ(r->state, JobState::done);
    EXPECT_EQ(r->remote_ref, "remote/x");
    EXPECT_EQ(r->job.path, "/spool/batch1/x.jpg") << "the first record wins";
    EXPECT_EQ(r->attempts, 1);
    auto c = j->counts();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->done, 1u);
    EXPECT_EQ(c->queued, 0u);
    EXPECT_FALSE(j->record(job("")));
}

TEST(Journal, PendingInInsertionOrderWithoutDoneOrPermanentFailures) {
    TempDir tmp;
    auto j = open_journal(tmp.file("j.sqlite"));
    ASSERT_TRUE(j);
    for (const char* id : {"m", "c", "z", "a", "k"}) ASSERT_TRUE(j->record(job(id)));
    ASSERT_TRUE(j->mark_uploading("c"));
    ASSERT_TRUE(j->mark_done("c", "r"));
    ASSERT_TRUE(j->mark_uploading("z"));
    ASSERT_TRUE(j->mark_failed("z", "checksum_mismatch: ...", true, 0));
    ASSERT_TRUE(j->mark_uploading("a"));
    ASSERT_TRUE(j->mark_failed("a", "target_unavailable: down", false, 123456));
    ASSERT_TRUE(j->mark_uploading("k"));

    auto p = j->pending();
    ASSERT_TRUE(p);
    std::vector<std::string> ids;
    for (const auto& r : *p) ids.push_back(r.job.job_id);
    EXPECT_EQ(ids, (std::vector<std::string>{"m", "a", "k"}));
    EXPECT_EQ((*p)[1].state, JobState::queued);
    EXPECT_EQ((*p)[1].attempts, 1);
    EXPECT_EQ((*p)[1].next_attempt_ms, 123456);
    EXPECT_EQ((*p)[1].last_error, "target_unavailable: down");
    EXPECT_EQ((*p)[2].state, JobState::uploading);

    auto c = j->counts();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->queued, 2u);
    EXPECT_EQ(c->uploading, 1u);
    EXPECT_EQ(c->done, 1u);
    EXPECT_EQ(c->failed_permanent, 1u);
    auto z = j->get("z");
    ASSERT_TRUE(z);
    EXPECT_EQ(z->state, JobState::failed_permanent);
    EXPECT_EQ(z->last_error, "checksum_mismatch: ...");
}

TEST(Journal, UploadingJobsAreQueuedAgainAfterRestart) {
    TempDir tmp;
    std::string path = tmp.file("j.sqlite");
    {
        auto j = open_journal(path);
        ASSERT_TRUE(j);
        ASSERT_TRUE(j->record(job("u")));
        ASSERT_TRUE(j->mark_uploading("u"));
        ASSERT_TRUE(j->mark_failed("u", "io_error", false, 0));
        ASSERT_TRUE(j->mark_uploading("u"));
    }
    auto j = open_journal(path);
    ASSERT_TRUE(j);
    auto u = j->get("u");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->state, JobState::queued);
    EXPECT_EQ(u->attempts, 2);
    auto p = j->pending();
    ASSERT_TRUE(p);
    ASSERT_EQ(p->size(), 1u);
}

TEST(Journal, ResumeStateAndHousekeeping) {
    TempDir tmp;
    auto j = open_journal(tmp.file("j.sqlite"));
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->record(job("r")));
    auto empty = j->resume_state("r");
    ASSERT_TRUE(empty);
    EXPECT_EQ(*empty, "");
    ASSERT_TRUE(j->set_resume_state("r", "https://upload.example/session?id=1"));
    auto s = j->resume_state("r");
    ASSERT_TRUE(s);
    EXPECT_EQ(*s, "https://upload.example/session?id=1");
    EXPECT_EQ(j->resume_state("nope").error().code, "not_found");
    ASSERT_TRUE(j->mark_done("r", "ref"));
    EXPECT_EQ(*j->resume_state("r"), "") << "done clears the resume state";

    ASSERT_TRUE(j->record(job("q")));
    auto kept = j->forget_done_older_than(3600 * 1000);
    ASSERT_TRUE(kept);
    EXPECT_EQ(*kept, 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto forgot = j->forget_done_older_than(5);
    ASSERT_TRUE(forgot);
    EXPECT_EQ(*forgot, 1u);
    EXPECT_FALSE(j->get("r"));
    EXPECT_TRUE(j->get("q")) << "only done jobs are forgotten";
}

TEST(Journal, ConcurrentUseFromManyThreads) {
    TempDir tmp;
    auto j = open_journal(tmp.file("j.sqlite"));
    ASSERT_TRUE(j);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                std::string id = std::to_string(t) + "-" + std::to_string(i);
                EXPECT_TRUE(j->record(job(id)));
                EXPECT_TRUE(j->record(job(id)));  // a repeat
                EXPECT_TRUE(j->mark_uploading(id));
                if (i % 2) {
                    EXPECT_TRUE(j->mark_done(id, "r"));
                }
                EXPECT_TRUE(j->counts());
            }
        });
    }
    for (auto& t : threads) t.join();
    auto c = j->counts();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->done, 48u);
    EXPECT_EQ(c->uploading, 52u);
}

TEST(Journal, OpenFailsCleanlyOnABadPath) {
    TempDir tmp;
    auto j = Journal::open(tmp.file("no/such/dir/j.sqlite"));
    ASSERT_FALSE(j);
    EXPECT_EQ(j.error().code, "journal_error");
}

// The journal holds Drive session URIs (credentials): the file and SQLite's -wal and -shm
// beside it are owner-only whatever the umask, and an old 0644 file is tightened.
TEST(Journal, FileAndItsWalAndShmAreOwnerOnly) {
    TempDir tmp;
    const std::string path = tmp.file("j.sqlite");
    mode_t old_umask = ::umask(0022);
    {
        auto j = open_journal(path);
        ASSERT_TRUE(j);
        ASSERT_TRUE(j->record(job("a")));
        ASSERT_TRUE(j->set_resume_state("a", "https://upload.example/session?id=1"));
        for (const char* suffix : {"", "-wal", "-shm"}) {
            struct stat st {};
            ASSERT_EQ(::stat((path + suffix).c_str(), &st), 0) << suffix;
            EXPECT_EQ(st.st_mode & 0777, 0600u) << path << suffix;
        }
    }
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    {
        auto j = open_journal(path);
        ASSERT_TRUE(j);
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u) << "an existing 0644 journal is tightened";
    }
    ::umask(old_umask);
}

// Pruning keeps what dedupe needs: a done job offered again inside the retention is still
// recognised as done (not queued for a second upload); only older done rows go.
TEST(Journal, PruningForgetsOldDoneRowsAndARecentDoneJobStaysDeduplicated) {
    TempDir tmp;
    auto j = open_journal(tmp.file("j.sqlite"));
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->record(job("old")));
    ASSERT_TRUE(j->mark_done("old", "ref-old"));
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    ASSERT_TRUE(j->record(job("recent")));
    ASSERT_TRUE(j->mark_done("recent", "ref-recent"));
    auto forgot = j->forget_done_older_than(30);  // "old" is >= 60 ms old, "recent" is not
    ASSERT_TRUE(forgot);
    EXPECT_EQ(*forgot, 1u);
    EXPECT_FALSE(j->get("old"));
    auto again = j->record(job("recent"));  // re-offered after it finished
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->inserted);
    EXPECT_EQ(again->state, JobState::done);
    auto pending = j->pending();
    ASSERT_TRUE(pending);
    EXPECT_TRUE(pending->empty()) << "a re-offered done job is not uploaded again";
}
