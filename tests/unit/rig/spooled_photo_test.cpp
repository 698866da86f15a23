#include "rig/spooled_photo.h"

#include <gtest/gtest.h>

#include "protocol/wire.h"
#include "support/test_util.h"

using photorig::rig::commit_photo;
using photorig::rig::PhotoFacts;
using photorig::rig::spool_manifest;

TEST(SpooledPhoto, CommittingAPhotoDescribesItAndWritesItsSidecar) {
    photorig::test::TempDir dir;
    photorig::spool::Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    auto writer = spool.create_writer("b1/SIM1_0001_IMG_1.JPG");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write("abc", 3));
    PhotoFacts facts{"rig1",
                     "b1",
                     1,
                     {"Sim", "SIM1", "ptpip:1", true},
                     "b1/SIM1_0001_IMG_1.JPG",
                     1'700'000'000'000,
                     12,
                     34};
    photorig::spool::DirTicket dir_ticket;
    auto meta = commit_photo(spool, facts, **writer, dir_ticket);
    ASSERT_TRUE(meta) << meta.error().describe();
    EXPECT_EQ(dir_ticket.dir, spool.path_of("b1")) << "the photo's directory waits for its fsync";
    EXPECT_TRUE(spool.sync_renamed(dir_ticket));
    EXPECT_EQ(spool.dir_fsyncs(), 1u);
    EXPECT_EQ(meta->job_id, meta->capture_id);
    EXPECT_EQ(meta->seq, 1);
    EXPECT_EQ(meta->size, 3u);
    EXPECT_EQ(meta->file_name, "SIM1_0001_IMG_1.JPG");
    EXPECT_EQ(meta->mime, "image/jpeg");
    EXPECT_EQ(meta->trigger_ms, 12);
    EXPECT_EQ(meta->download_ms, 34);
    EXPECT_EQ(meta->captured_at_ms, 1'700'000'000'000);
    auto sidecar = spool.read_sidecar("b1/SIM1_0001_IMG_1.JPG");
    ASSERT_TRUE(sidecar);
    EXPECT_EQ(*sidecar, photorig::protocol::capture_metadata_json(*meta));
}

TEST(SpooledPhoto, AScanManifestIsSpooledOnce) {
    photorig::test::TempDir dir;
    photorig::spool::Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    photorig::protocol::ScanRecord record;
    record.scan_id = "scan-1";
    record.batch = "b1";
    record.state = "completed";
    record.finished_at_ms = 1'700'000'000'000;
    auto first = spool_manifest(spool, record, "rig1");
    ASSERT_TRUE(first);
    ASSERT_TRUE(first->has_value());
    EXPECT_EQ((*first)->file_name, "scan-1.manifest.json");
    EXPECT_EQ((*first)->mime, "application/json");
    EXPECT_TRUE(spool.read_sidecar("b1/scan-1.manifest.json"));
    auto again = spool_manifest(spool, record, "rig1");
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->has_value());
}
