// The spool's group commit of directory entries: a ticket is durable after a directory fsync
// that began after its rename; renames made while one runs share the next; a failure is the
// caller's to see and the next caller tries again.
#include "spool/dir_syncer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "support/test_util.h"

using photorig::Error;
using photorig::ok;
using photorig::Status;
using photorig::spool::DirSyncer;
using photorig::spool::DirTicket;

namespace {
// A directory fsync that records its calls and, while held, blocks inside until released.
struct FakeFsync {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::string> calls;
    bool hold = false, inside = false;
    int fail_next = 0;

    Status operator()(const std::string& dir) {
        std::unique_lock<std::mutex> lock(mutex);
        calls.push_back(dir);
        inside = true;
        cv.notify_all();
        cv.wait(lock, [&] { return !hold; });
        inside = false;
        if (fail_next > 0) {
            --fail_next;
            return Error("io_error", "fsync " + dir + ": Input/output error");
        }
        return ok();
    }
    void wait_inside() {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return inside; });
    }
    void release() {
        std::lock_guard<std::mutex> lock(mutex);
        hold = false;
        cv.notify_all();
    }
    size_t count() {
        std::lock_guard<std::mutex> lock(mutex);
        return calls.size();
    }
};

DirSyncer make(FakeFsync& fake) {
    return DirSyncer([&fake](const std::string& dir) { return fake(dir); });
}

// A first rename's sync, running and held inside its fsync: whatever is renamed into `dir`
// from now on was renamed after that fsync began, so it cannot be covered by it.
std::future<Status> first_sync_held_inside(DirSyncer& syncer, FakeFsync& fake,
                                           const std::string& dir) {
    {
        std::lock_guard<std::mutex> lock(fake.mutex);
        fake.hold = true;
    }
    DirTicket first = syncer.renamed(dir);
    auto running = std::async(std::launch::async, [&syncer, first] { return syncer.sync(first); });
    fake.wait_inside();
    return running;
}
}  // namespace

TEST(DirSyncer, ARenameIsSyncedOnceAndASecondAskCostsNothing) {
    FakeFsync fake;
    auto syncer = make(fake);
    DirTicket t = syncer.renamed("/spool/b1");
    ASSERT_TRUE(syncer.sync(t));
    EXPECT_EQ(fake.count(), 1u);
    ASSERT_TRUE(syncer.sync(t));
    EXPECT_EQ(fake.count(), 1u) << "already durable";
    EXPECT_TRUE(syncer.sync(DirTicket{}));
    EXPECT_EQ(syncer.fsyncs(), 1u);
}

TEST(DirSyncer, RenamesMadeWhileAFsyncRunsShareTheNextOne) {
    FakeFsync fake;
    auto syncer = make(fake);
    auto a = first_sync_held_inside(syncer, fake, "/spool/b1");
    std::vector<DirTicket> later;
    for (int i = 0; i < 5; ++i) later.push_back(syncer.renamed("/spool/b1"));
    std::vector<std::future<Status>> waiting;
    for (const auto& t : later)
        waiting.push_back(std::async(std::launch::async, [&syncer, t] { return syncer.sync(t); }));
    fake.release();
    ASSERT_TRUE(a.get());
    for (auto& w : waiting) ASSERT_TRUE(w.get());
    EXPECT_EQ(fake.count(), 2u) << "six renames, two directory fsyncs: the one running and one "
                                   "for the five made meanwhile";
}

TEST(DirSyncer, AFsyncNeverCoversARenameMadeAfterItBegan) {
    FakeFsync fake;
    auto syncer = make(fake);
    auto a = first_sync_held_inside(syncer, fake, "/spool/b1");
    DirTicket second = syncer.renamed("/spool/b1");
    fake.release();
    ASSERT_TRUE(a.get());
    EXPECT_EQ(fake.count(), 1u);
    ASSERT_TRUE(syncer.sync(second));
    EXPECT_EQ(fake.count(), 2u) << "the second rename needed a fsync of its own";
}

TEST(DirSyncer, DirectoriesAreSyncedEachForItself) {
    FakeFsync fake;
    auto syncer = make(fake);
    DirTicket a = syncer.renamed("/spool/b1");
    DirTicket b = syncer.renamed("/spool/b2");
    ASSERT_TRUE(syncer.sync(b));
    ASSERT_TRUE(syncer.sync(a));
    ASSERT_EQ(fake.count(), 2u);
    EXPECT_EQ(fake.calls[0], "/spool/b2");
    EXPECT_EQ(fake.calls[1], "/spool/b1");
}

TEST(DirSyncer, AFailedFsyncIsReportedAndTheNextAskTriesAgain) {
    FakeFsync fake;
    fake.fail_next = 1;
    auto syncer = make(fake);
    DirTicket t = syncer.renamed("/spool/b1");
    Status st = syncer.sync(t);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, "io_error");
    ASSERT_TRUE(syncer.sync(t)) << "not durable yet: tried again";
    EXPECT_EQ(fake.count(), 2u);
}

TEST(DirSyncer, TheRealFsyncSyncsADirectoryAndReportsAMissingOne) {
    photorig::test::TempDir dir;
    DirSyncer syncer;
    EXPECT_TRUE(syncer.sync(syncer.renamed(dir.path())));
    EXPECT_FALSE(syncer.sync(syncer.renamed(dir.path() + "/missing")));
    EXPECT_EQ(syncer.fsyncs(), 2u);
}
