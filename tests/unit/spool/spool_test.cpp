#include "spool/spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "core/sha256.h"
#include "spool/photo_names.h"
#include "support/test_util.h"

using photorig::Sha256;
using photorig::spool::Spool;
using photorig::spool::SpoolWriter;
using photorig::spool::validate_relative_path;
using photorig::test::list_files;
using photorig::test::pseudo_random_bytes;
using photorig::test::read_file;
using photorig::test::TempDir;
using photorig::test::write_file;

namespace {
void set_mtime(const std::string& path, time_t secs_ago) {
    struct timeval tv[2];
    tv[0].tv_sec = tv[1].tv_sec = time(nullptr) - secs_ago;
    tv[0].tv_usec = tv[1].tv_usec = 0;
    ASSERT_EQ(::utimes(path.c_str(), tv), 0);
}

bool exists(const std::string& p) {
    return ::access(p.c_str(), F_OK) == 0;
}
}  // namespace

TEST(Spool, CommittedFileHasTheBytesAndSha256) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    auto w = spool.create_writer("batch1/SIM0001_0001_IMG_0001.JPG");
    ASSERT_TRUE(w) << w.error().describe();
    std::string data = pseudo_random_bytes(3 * 1024 * 1024 + 17, 1);
    // Hidden temp while writing; nothing under the final name, nothing listed.
    for (size_t off = 0; off < data.size(); off += 100000) {
        ASSERT_TRUE((*w)->write(data.data() + off, std::min<size_t>(100000, data.size() - off)));
    }
    EXPECT_FALSE(exists(spool.dir() + "/batch1/SIM0001_0001_IMG_0001.JPG"));
    auto temps = list_files(tmp.path());
    ASSERT_EQ(temps.size(), 1u);
    EXPECT_NE(temps[0].find("/.SIM0001_0001_IMG_0001.JPG.part-"), std::string::npos) << temps[0];
    EXPECT_EQ(spool.file_count(), 0u);

    auto f = (*w)->commit();
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->relative_path, "batch1/SIM0001_0001_IMG_0001.JPG");
    EXPECT_EQ(f->name, "SIM0001_0001_IMG_0001.JPG");
    EXPECT_EQ(f->path, spool.dir() + "/batch1/SIM0001_0001_IMG_0001.JPG");
    EXPECT_EQ(f->size, data.size());
    EXPECT_EQ(f->sha256, Sha256::of(data));
    EXPECT_GT(f->mtime_ms, 0);
    EXPECT_EQ(read_file(f->path), data);
    EXPECT_EQ(list_files(tmp.path()).size(), 1u) << "no temp left behind";
    EXPECT_EQ(spool.file_count(), 1u);
    EXPECT_TRUE(spool.exists("batch1/SIM0001_0001_IMG_0001.JPG"));
    EXPECT_FALSE((*w)->write("x", 1)) << "write after commit refused";
}

TEST(Spool, CommitKeepsTheFilesStartForItsHeaderAndTimesItsWork) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    std::string data = pseudo_random_bytes(SpoolWriter::kKeptHeadBytes * 3 + 5, 2);
    auto w = spool.create_writer("b/big.jpg");
    ASSERT_TRUE(w);
    for (size_t off = 0; off < data.size(); off += 65536)
        ASSERT_TRUE((*w)->write(data.data() + off, std::min<size_t>(65536, data.size() - off)));
    // The directory's fsync is left to the caller: the photo is renamed into place at once.
    auto f = (*w)->commit(/*sync_dir=*/false);
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->head, data.substr(0, SpoolWriter::kKeptHeadBytes));
    EXPECT_EQ(read_file(f->path), data);
    EXPECT_GT(f->hash_us + f->commit_us, 0);
    EXPECT_TRUE(spool.sync_dir_of("b/big.jpg"));
    EXPECT_FALSE(spool.sync_dir_of("../outside.jpg")) << "paths outside the spool refused";

    auto small = spool.create_writer("b/small.jpg");
    ASSERT_TRUE(small);
    ASSERT_TRUE((*small)->write("tiny", 4));
    auto g = (*small)->commit();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->head, "tiny");
    ASSERT_TRUE(spool.write_sidecar("b/small.jpg", "{}", /*sync_dir=*/false));
    EXPECT_EQ(*spool.read_sidecar("b/small.jpg"), "{}");
}

TEST(Spool, AbortAndDestructorLeaveNothing) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    {
        auto w = spool.create_writer("b/one.jpg");
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write("hello", 5));
        (*w)->abort();
        (*w)->abort();  // idempotent
        EXPECT_FALSE((*w)->commit());
    }
    {
        auto w = spool.create_writer("b/two.jpg");
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write("hello", 5));
    }  // destroyed uncommitted
    EXPECT_TRUE(list_files(tmp.path()).empty());
    EXPECT_EQ(spool.file_count(), 0u);
}

TEST(Spool, CommitNeverOverwrites) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    auto a = spool.create_writer("b/x.jpg");
    auto b = spool.create_writer("b/x.jpg");
    ASSERT_TRUE(a && b);
    ASSERT_TRUE((*a)->write("first", 5));
    ASSERT_TRUE((*b)->write("second", 6));
    ASSERT_TRUE((*a)->commit());
    auto second = (*b)->commit();
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, "exists");
    EXPECT_EQ(read_file(spool.dir() + "/b/x.jpg"), "first");
    EXPECT_EQ(list_files(tmp.path()).size(), 1u) << "the refused temp is removed";
}

TEST(Spool, PathTraversalAndBadPathsRefused) {
    TempDir tmp;
    Spool spool(tmp.path() + "/spool");
    ASSERT_TRUE(spool.init());
    for (const char* bad : {"../evil.jpg", "b/../../evil.jpg", "/etc/passwd", "", "b//x.jpg", "b/",
                            "./x.jpg", "b/./x.jpg", "b/..", ".hidden.jpg", "b/x.jpg.meta.json"}) {
        auto st = validate_relative_path(bad);
        EXPECT_FALSE(st) << bad;
        if (!st) {
            EXPECT_EQ(st.error().code, "bad_path") << bad;
        }
        auto w = spool.create_writer(bad);
        EXPECT_FALSE(w) << bad;
        if (!w) {
            EXPECT_EQ(w.error().code, "bad_path");
        }
        EXPECT_FALSE(spool.write_sidecar(bad, "{}")) << bad;
        EXPECT_FALSE(spool.remove(bad)) << bad;
    }
    EXPECT_TRUE(list_files(tmp.path()).empty()) << "nothing was created anywhere";
    EXPECT_TRUE(validate_relative_path("batch1/SIM0001_0001_IMG_0001.JPG"));
    EXPECT_TRUE(validate_relative_path("a.b..c.jpg"));
}

TEST(Spool, SidecarListAndRemove) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    std::vector<std::string> names = {"b1/c.jpg", "b1/a.jpg", "b2/b.cr2"};
    time_t ago = 300;
    for (const auto& n : names) {
        auto w = spool.create_writer(n);
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write(n.data(), n.size()));
        auto f = (*w)->commit();
        ASSERT_TRUE(f);
        set_mtime(f->path, ago);  // c oldest, then a, then b
        ago -= 100;
    }
    ASSERT_TRUE(spool.write_sidecar("b1/a.jpg", R"({"job_id":"j-a"})"));
    ASSERT_TRUE(spool.write_sidecar("b1/a.jpg", R"({"job_id":"j-a2"})"))
        << "a sidecar may be replaced";
    auto side = spool.read_sidecar("b1/a.jpg");
    ASSERT_TRUE(side);
    EXPECT_EQ(*side, R"({"job_id":"j-a2"})");
    auto none = spool.read_sidecar("b1/c.jpg");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code, "not_found");
    // A leftover writer temp is not a photo.
    write_file(spool.dir() + "/b2/.b.cr2.part-0123456789ab", "partial");

    auto l = spool.list();
    ASSERT_TRUE(l) << l.error().describe();
    ASSERT_EQ(l->size(), 3u);
    EXPECT_EQ((*l)[0].relative_path, "b1/c.jpg");
    EXPECT_EQ((*l)[1].relative_path, "b1/a.jpg");
    EXPECT_EQ((*l)[2].relative_path, "b2/b.cr2");
    EXPECT_EQ((*l)[1].name, "a.jpg");
    EXPECT_EQ((*l)[1].path, spool.dir() + "/b1/a.jpg");
    EXPECT_EQ((*l)[1].size, 8u);
    EXPECT_TRUE((*l)[1].has_sidecar);
    EXPECT_EQ((*l)[1].sidecar, R"({"job_id":"j-a2"})");
    EXPECT_FALSE((*l)[0].has_sidecar);
    EXPECT_TRUE((*l)[0].sidecar.empty());
    EXPECT_LT((*l)[0].mtime_ms, (*l)[1].mtime_ms);
    EXPECT_EQ(spool.file_count(), 3u);

    ASSERT_TRUE(spool.remove("b1/a.jpg"));
    EXPECT_FALSE(exists(spool.dir() + "/b1/a.jpg"));
    EXPECT_FALSE(exists(spool.dir() + "/b1/a.jpg.meta.json"));
    EXPECT_TRUE(exists(spool.dir() + "/b1")) << "batch still holds c.jpg";
    ASSERT_TRUE(spool.remove("b1/c.jpg"));
    EXPECT_FALSE(exists(spool.dir() + "/b1")) << "empty batch dir removed";
    EXPECT_TRUE(spool.remove("b1/c.jpg")) << "removing twice is fine";
    EXPECT_EQ(spool.file_count(), 1u);
    EXPECT_TRUE(exists(spool.dir())) << "the spool root stays";
}

TEST(Spool, InitRemovesStaleLeftoversOnly) {
    TempDir tmp;
    std::string dir = tmp.path() + "/spool";
    {
        Spool spool(dir);
        ASSERT_TRUE(spool.init());
        auto w = spool.create_writer("b/keep.jpg");
        ASSERT_TRUE(w && (*w)->write("k", 1) && (*w)->commit());
    }
    write_file(dir + "/b/.old.jpg.part-aaaaaaaaaaaa", "crash leftover");
    set_mtime(dir + "/b/.old.jpg.part-aaaaaaaaaaaa", 3600);
    write_file(dir + "/b/.new.jpg.part-bbbbbbbbbbbb", "being written right now");
    write_file(dir + "/b/gone.jpg.meta.json", "{}");  // photo removed, crash before sidecar
    set_mtime(dir + "/b/gone.jpg.meta.json", 3600);
    write_file(dir + "/b/keep.jpg.meta.json", "{}");
    set_mtime(dir + "/b/keep.jpg.meta.json", 3600);

    Spool spool(dir);
    ASSERT_TRUE(spool.init(60));
    EXPECT_FALSE(exists(dir + "/b/.old.jpg.part-aaaaaaaaaaaa"));
    EXPECT_TRUE(exists(dir + "/b/.new.jpg.part-bbbbbbbbbbbb"));
    EXPECT_FALSE(exists(dir + "/b/gone.jpg.meta.json"));
    EXPECT_TRUE(exists(dir + "/b/keep.jpg.meta.json"));
    EXPECT_TRUE(exists(dir + "/b/keep.jpg"));
    EXPECT_EQ(spool.file_count(), 1u);
}

TEST(Spool, DirIsCanonicalAndDiskFreeReported) {
    TempDir tmp;
    ASSERT_EQ(::mkdir(tmp.file("real").c_str(), 0755), 0);
    ASSERT_EQ(::symlink(tmp.file("real").c_str(), tmp.file("link").c_str()), 0);
    Spool spool(tmp.path() + "/link/");
    ASSERT_TRUE(spool.init());
    char buf[4096];
    ASSERT_NE(::realpath(tmp.file("real").c_str(), buf), nullptr);
    EXPECT_EQ(spool.dir(), std::string(buf));
    auto free_bytes = spool.disk_free_bytes();
    ASSERT_TRUE(free_bytes);
    EXPECT_GT(*free_bytes, 0u);
}

TEST(Spool, WriterSharedAcrossThreads) {
    // The agent writes on the camera thread and commits on the capture thread.
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    auto w = spool.create_writer("b/t.jpg");
    ASSERT_TRUE(w);
    std::string data = pseudo_random_bytes(1 << 20, 7);
    std::thread t([&] { ASSERT_TRUE((*w)->write(data.data(), data.size())); });
    t.join();
    auto f = (*w)->commit();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->sha256, Sha256::of(data));
}

TEST(Spool, KeptUploadsLeaveTheQueueKeepTheirSidecarAndNeverReplaceEachOther) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    auto put = [&](const std::string& rel, const std::string& data) {
        auto w = spool.create_writer(rel);
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write(data.data(), data.size()));
        ASSERT_TRUE((*w)->commit());
        ASSERT_TRUE(spool.write_sidecar(rel, "{\"job_id\":\"" + data + "\"}"));
    };
    put("b1/IMG_1.JPG", "first");
    auto kept = spool.keep_uploaded("b1/IMG_1.JPG");
    ASSERT_TRUE(kept) << kept.error().describe();
    EXPECT_EQ(*kept, spool.dir() + "/.uploaded/b1/IMG_1.JPG");
    EXPECT_EQ(read_file(*kept), "first");
    EXPECT_EQ(read_file(*kept + ".meta.json"), R"({"job_id":"first"})");
    EXPECT_FALSE(exists(spool.dir() + "/b1")) << "the emptied batch dir goes, as after remove()";
    EXPECT_EQ(spool.file_count(), 0u) << "a kept photo is no longer waiting for upload";
    auto listed = spool.list();
    ASSERT_TRUE(listed);
    EXPECT_TRUE(listed->empty()) << "the agent must never offer a kept photo again";

    // The same batch and name captured again later: both copies are kept.
    put("b1/IMG_1.JPG", "second");
    auto again = spool.keep_uploaded("b1/IMG_1.JPG");
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, spool.dir() + "/.uploaded/b1/IMG_1-2.JPG");
    EXPECT_EQ(read_file(*again), "second");
    EXPECT_EQ(read_file(spool.dir() + "/.uploaded/b1/IMG_1.JPG"), "first");
    auto gone = spool.keep_uploaded("b1/IMG_1.JPG");
    ASSERT_TRUE(gone) << "a photo already gone is not an error";
    EXPECT_EQ(*gone, "");
    EXPECT_FALSE(spool.keep_uploaded("../escape.jpg"));

    auto files = spool.kept_files();
    ASSERT_EQ(files.size(), 2u);
    EXPECT_LE(files[0].kept_at_ms, files[1].kept_at_ms);
    EXPECT_EQ(files[0].size + files[1].size, 11u);
}

TEST(Spool, KeptUploadsExpireByAgeAndGiveWayWhenTheDiskRunsLow) {
    TempDir tmp;
    Spool spool(tmp.path());
    ASSERT_TRUE(spool.init());
    for (const char* rel : {"b1/A.JPG", "b1/B.JPG", "b2/C.JPG"}) {
        auto w = spool.create_writer(rel);
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->write("x", 1));
        ASSERT_TRUE((*w)->commit());
        ASSERT_TRUE(spool.keep_uploaded(rel));
    }
    const int64_t now_ms = static_cast<int64_t>(time(nullptr)) * 1000;
    EXPECT_EQ(spool.remove_kept_before(now_ms - 3600 * 1000), 0u) << "nothing is an hour old";
    EXPECT_EQ(spool.kept_files().size(), 3u);
    EXPECT_EQ(spool.evict_kept_until_free(0), 0u) << "enough room: nothing evicted";
    // A threshold no disk meets: every kept copy goes, oldest first, and then it stops.
    EXPECT_EQ(spool.evict_kept_until_free(UINT64_MAX), 3u);
    EXPECT_TRUE(spool.kept_files().empty());
    EXPECT_FALSE(exists(spool.dir() + "/.uploaded/b1")) << "emptied kept dirs go too";

    auto w = spool.create_writer("b3/D.JPG");
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write("y", 1));
    ASSERT_TRUE((*w)->commit());
    ASSERT_TRUE(spool.keep_uploaded("b3/D.JPG"));
    EXPECT_EQ(spool.remove_kept_before(now_ms + 5000), 1u) << "kept before the cutoff: deleted";
    EXPECT_TRUE(spool.kept_files().empty());
    EXPECT_FALSE(exists(spool.dir() + "/.uploaded/b3/D.JPG.meta.json"));
}

TEST(PhotoNames, BatchSerialSeqAndCameraNameMadeSafe) {
    using photorig::spool::photo_relative_path;
    using photorig::spool::safe_name_part;
    EXPECT_EQ(photo_relative_path("b1", 7, "SIM0001", "IMG_0001.JPG"),
              "b1/SIM0001_0007_IMG_0001.JPG");
    EXPECT_EQ(photo_relative_path("b1", 12345, "", "a b.jpg"), "b1/cam_12345_a_b.jpg");
    EXPECT_EQ(safe_name_part("..hidden/x"), "hidden_x");
    EXPECT_EQ(safe_name_part(""), "x");
    EXPECT_EQ(safe_name_part("..."), "x");
    // Issue 15: hostile camera names never leave the batch directory nor exceed NAME_MAX.
    EXPECT_EQ(photo_relative_path("b1", 1, "S", "../../x.JPG"), "b1/S_0001__.._x.JPG");
    EXPECT_EQ(photo_relative_path("b1", 1, "S", std::string("..\0/e", 5)), "b1/S_0001___e");
    std::string longest =
        photo_relative_path("b1", 1, std::string(254, 's'), std::string(250, 'L') + ".JPG");
    EXPECT_EQ(longest, "b1/" + std::string(64, 's') + "_0001_" + std::string(76, 'L') + ".JPG");
}

TEST(PhotoNames, ATakenNameGetsATagAndNoPhotoIsReplaced) {
    TempDir dir;
    Spool spool(dir.path());
    ASSERT_TRUE(spool.init());
    photorig::spool::PhotoWriters first(spool, "b1", 1, "SIM1");
    auto w = first.open("IMG_1.JPG");
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write("one", 3));
    ASSERT_TRUE((*w)->commit());
    ASSERT_EQ(first.writers().size(), 1u);
    EXPECT_EQ(first.writers()[0].first, "b1/SIM1_0001_IMG_1.JPG");

    photorig::spool::PhotoWriters again(spool, "b1", 1, "SIM1");
    auto w2 = again.open("IMG_1.JPG");
    ASSERT_TRUE(w2);
    ASSERT_TRUE((*w2)->write("two", 3));
    auto committed = (*w2)->commit();
    ASSERT_TRUE(committed);
    const std::string rel = again.writers().at(0).first;
    EXPECT_NE(rel, "b1/SIM1_0001_IMG_1.JPG");
    EXPECT_EQ(rel.rfind("b1/SIM1_0001_IMG_1_", 0), 0u) << rel;
    EXPECT_EQ(rel.substr(rel.size() - 4), ".JPG");
    EXPECT_EQ(read_file(spool.path_of("b1/SIM1_0001_IMG_1.JPG")), "one");
    EXPECT_EQ(read_file(committed->path), "two");
}

TEST(Spool, ACutShortSidecarWriteIsATempNotAPhoto) {
    TempDir tmp;
    std::string dir = tmp.path() + "/spool";
    {
        Spool spool(dir);
        ASSERT_TRUE(spool.init());
        auto w = spool.create_writer("b/keep.jpg");
        ASSERT_TRUE(w && (*w)->write("k", 1) && (*w)->commit());
        ASSERT_TRUE(spool.write_sidecar("b/keep.jpg", "{\"a\":1}"));
        EXPECT_EQ(*spool.read_sidecar("b/keep.jpg"), "{\"a\":1}");
    }
    // files::write_atomic's temp beside the sidecar, left by a crash.
    write_file(dir + "/b/keep.jpg.meta.json.tmp-0123abcd", "{\"a\"");
    Spool spool(dir);
    ASSERT_TRUE(spool.init(60));
    EXPECT_EQ(spool.file_count(), 1u);
    auto entries = spool.list();
    ASSERT_TRUE(entries);
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].relative_path, "b/keep.jpg");
    set_mtime(dir + "/b/keep.jpg.meta.json.tmp-0123abcd", 3600);
    EXPECT_EQ(spool.remove_stale_temps(60), 1u);
    EXPECT_FALSE(exists(dir + "/b/keep.jpg.meta.json.tmp-0123abcd"));
}
