#include "uploader/job_intake.h"

#include <gtest/gtest.h>

#include "core/files.h"
#include "protocol/wire.h"
#include "support/test_util.h"

using photorig::test::TempDir;
using photorig::upload::Journal;
using photorig::uploader::JobIntake;
using Kind = JobIntake::Action::Kind;

namespace {
struct UploaderJobIntake : ::testing::Test {
    TempDir dir;
    std::string spool = dir.file("spool");
    std::unique_ptr<Journal> journal;

    void SetUp() override {
        ASSERT_TRUE(photorig::files::make_dirs(spool + "/b1"));
        auto j = Journal::open(dir.file("journal.db"));
        ASSERT_TRUE(j) << j.error().describe();
        journal = std::move(*j);
    }

    photorig::protocol::UploadJob wire(const std::string& id, const std::string& path) {
        photorig::protocol::UploadJob w;
        w.job_id = id;
        w.capture_id = "cap-" + id;
        w.rig_id = "rig1";
        w.batch = "b1";
        w.path = path;
        w.remote_name = id + ".jpg";
        w.mime = "image/jpeg";
        w.sha256 = std::string(64, 'a');
        w.size = 42;
        w.captured_at_ms = 1764043815123;
        return w;
    }
    std::string payload(const std::string& id, const std::string& path) {
        return photorig::protocol::upload_job_json(wire(id, path));
    }
};
}  // namespace

TEST_F(UploaderJobIntake, MapsEveryFieldOfTheWireJob) {
    auto w = wire("j1", "/spool/b1/j1.jpg");
    auto j = photorig::uploader::to_upload_job(w);
    EXPECT_EQ(j.job_id, w.job_id);
    EXPECT_EQ(j.capture_id, w.capture_id);
    EXPECT_EQ(j.rig_id, w.rig_id);
    EXPECT_EQ(j.batch, w.batch);
    EXPECT_EQ(j.path, w.path);
    EXPECT_EQ(j.remote_name, w.remote_name);
    EXPECT_EQ(j.mime, w.mime);
    EXPECT_EQ(j.sha256, w.sha256);
    EXPECT_EQ(j.size, w.size);
    EXPECT_EQ(j.captured_at_ms, w.captured_at_ms);
}

TEST_F(UploaderJobIntake, ANewJobIsJournaledAndScheduled) {
    JobIntake intake(*journal, spool);
    auto actions = intake.accept({payload("j1", spool + "/b1/j1.jpg")});
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(actions[0].kind, Kind::schedule);
    EXPECT_EQ(actions[0].job.job_id, "j1");
    EXPECT_EQ(actions[0].attempts, 0);
    auto rec = journal->get("j1");
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->state, photorig::upload::JobState::queued);
}

TEST_F(UploaderJobIntake, APathOutsideTheSpoolIsRefusedAndNotJournaled) {
    JobIntake intake(*journal, spool);
    auto actions =
        intake.accept({payload("out", "/etc/passwd"), payload("sibling", spool + "-other/b1/x.jpg"),
                       payload("ok", spool + "/b1/ok.jpg")});
    ASSERT_EQ(actions.size(), 3u);
    EXPECT_EQ(actions[0].kind, Kind::refuse);
    EXPECT_EQ(actions[0].event.type, "failed");
    EXPECT_EQ(actions[0].event.error_code, "bad_request");
    EXPECT_EQ(actions[0].event.error_message, "path is outside spool.dir");
    EXPECT_EQ(actions[1].kind, Kind::refuse);
    EXPECT_EQ(actions[2].kind, Kind::schedule);
    EXPECT_FALSE(journal->get("out"));
    EXPECT_FALSE(journal->get("sibling"));
}

TEST_F(UploaderJobIntake, MalformedPayloadsAreDropped) {
    JobIntake intake(*journal, spool);
    auto actions = intake.accept({"not json", "{}"});
    EXPECT_TRUE(actions.empty());
}

TEST_F(UploaderJobIntake, ARepeatOfAJobWaitingKeepsItsAttempts) {
    JobIntake intake(*journal, spool);
    intake.accept({payload("j1", spool + "/b1/j1.jpg")});
    ASSERT_TRUE(journal->mark_uploading("j1"));
    ASSERT_TRUE(journal->mark_failed("j1", "down", false, 0));
    auto actions = intake.accept({payload("j1", spool + "/b1/j1.jpg")});
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(actions[0].kind, Kind::schedule);
    EXPECT_EQ(actions[0].attempts, 1);
}

TEST_F(UploaderJobIntake, ADoneJobWhoseFileIsStillThereRepeatsItsDoneEvent) {
    JobIntake intake(*journal, spool);
    const std::string path = spool + "/b1/j1.jpg";
    photorig::test::write_file(path, "photo");
    intake.accept({payload("j1", path)});
    ASSERT_TRUE(journal->mark_done("j1", "remote/j1.jpg"));
    auto actions = intake.accept({payload("j1", path)});
    ASSERT_EQ(actions.size(), 1u);
    EXPECT_EQ(actions[0].kind, Kind::repeat_done);
    EXPECT_EQ(actions[0].event.type, "done");
    EXPECT_EQ(actions[0].event.bytes_done, 42u);
    EXPECT_EQ(actions[0].event.bytes_total, 42u);
    EXPECT_EQ(actions[0].event.remote_ref, "remote/j1.jpg");
    EXPECT_EQ(actions[0].event.attempt, 0);
}

TEST_F(UploaderJobIntake, DoneJobsWithoutTheirFileAndPermanentFailuresNeedNothing) {
    JobIntake intake(*journal, spool);
    intake.accept({payload("gone", spool + "/b1/gone.jpg"), payload("bad", spool + "/b1/bad.jpg")});
    ASSERT_TRUE(journal->mark_done("gone", "remote/gone.jpg"));
    ASSERT_TRUE(journal->mark_failed("bad", "checksum_mismatch", true, 0));
    auto actions = intake.accept(
        {payload("gone", spool + "/b1/gone.jpg"), payload("bad", spool + "/b1/bad.jpg")});
    EXPECT_TRUE(actions.empty());
}
