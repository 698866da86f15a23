#include "upload/journal.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"

namespace photorig::upload {
namespace {
constexpr const char* kLog = "journal";

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id          TEXT NOT NULL UNIQUE,
  capture_id      TEXT NOT NULL DEFAULT '',
  rig_id          TEXT NOT NULL DEFAULT '',
  batch           TEXT NOT NULL DEFAULT '',
  path            TEXT NOT NULL DEFAULT '',
  remote_name     TEXT NOT NULL DEFAULT '',
  mime            TEXT NOT NULL DEFAULT '',
  sha256          TEXT NOT NULL DEFAULT '',
  size            INTEGER NOT NULL DEFAULT 0,
  captured_at_ms  INTEGER NOT NULL DEFAULT 0,
  state           TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT '',
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  remote_ref      TEXT NOT NULL DEFAULT '',
  resume_state    TEXT NOT NULL DEFAULT '',
  created_ms      INTEGER NOT NULL DEFAULT 0,
  updated_ms      INTEGER NOT NULL DEFAULT 0,
  done_ms         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
)sql";

constexpr const char* kColumns =
    "job_id, capture_id, rig_id, batch, path, remote_name, mime, sha256, size, captured_at_ms, "
    "state, attempts, "
    "last_error, next_attempt_ms, remote_ref, resume_state, created_ms, updated_ms, done_ms";

Error db_error(sqlite3* db, const std::string& what) {
    return make_error("journal_error", what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, finalized on scope exit.
class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    bool ok() const { return rc_ == SQLITE_OK && stmt_; }
    Stmt& bind(int i, const std::string& s) {
        sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bind(int i, int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    int step() { return sqlite3_step(stmt_); }
    std::string text(int col) const {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string();
    }
    int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }

  private:
    sqlite3_stmt* stmt_ = nullptr;
    int rc_;
};

JobState parse_state(const std::string& s) {
    if (s == "uploading") return JobState::uploading;
    if (s == "done") return JobState::done;
    if (s == "failed_permanent") return JobState::failed_permanent;
    return JobState::queued;
}

JobRecord row_to_record(const Stmt& st) {
    JobRecord r;
    r.job.job_id = st.text(0);
    r.job.capture_id = st.text(1);
    r.job.rig_id = st.text(2);
    r.job.batch = st.text(3);
    r.job.path = st.text(4);
    r.job.remote_name = st.text(5);
    r.job.mime = st.text(6);
    r.job.sha256 = st.text(7);
    r.job.size = static_cast<uint64_t>(st.int64(8));
    r.job.captured_at_ms = st.int64(9);
    r.state = parse_state(st.text(10));
    r.attempts = static_cast<int>(st.int64(11));
    r.last_error = st.text(12);
    r.next_attempt_ms = st.int64(13);
    r.remote_ref = st.text(14);
    r.resume_state = st.text(15);
    r.created_ms = st.int64(16);
    r.updated_ms = st.int64(17);
    r.done_ms = st.int64(18);
    return r;
}

std::string dirname_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}
}  // namespace

const char* to_string(JobState s) {
    switch (s) {
        case JobState::queued:
            return "queued";
        case JobState::uploading:
            return "uploading";
        case JobState::done:
            return "done";
        case JobState::failed_permanent:
            return "failed_permanent";
    }
    return "queued";
}

namespace {
// The journal holds Drive resumable session URIs, which are credentials: owner-only. SQLite
// creates the -wal and -shm files with the main file's mode; files left by an older
// version are tightened too.
Status make_private(const std::string& path) {
    if (path.empty() || path[0] == ':') return ok();  // ":memory:"
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return make_error("journal_error", "open " + path + ": " + std::strerror(errno));
    int rc = ::fchmod(fd, 0600);
    int err = errno;
    ::close(fd);
    if (rc != 0) return make_error("journal_error", "chmod " + path + ": " + std::strerror(err));
    for (const char* suffix : {"-wal", "-shm"}) {
        std::string side = path + suffix;
        if (::chmod(side.c_str(), 0600) != 0 && errno != ENOENT)
            return make_error("journal_error", "chmod " + side + ": " + std::strerror(errno));
    }
    return ok();
}
}  // namespace

Expected<std::unique_ptr<Journal>> Journal::open(const std::string& path) {
    if (auto st = make_private(path); !st) return st.error();
    std::unique_ptr<Journal> j(new Journal());
    j->path_ = path;
    int rc = sqlite3_open_v2(path.c_str(), &j->db_,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) return db_error(j->db_, "open " + path);
    sqlite3_busy_timeout(j->db_, 10000);
    std::lock_guard<std::mutex> lock(j->mutex_);
    // WAL + synchronous=FULL: every commit fsyncs the WAL before returning.
    {
        Stmt st(j->db_, "PRAGMA journal_mode=WAL");
        if (!st.ok() || st.step() != SQLITE_ROW) return db_error(j->db_, "journal_mode " + path);
        if (st.text(0) != "wal")
            return make_error("journal_error",
                              path + ": WAL mode not available (got " + st.text(0) + ")");
    }
    if (auto s = j->exec_locked("PRAGMA synchronous=FULL"); !s) return s.error();
    if (auto s = j->exec_locked("PRAGMA foreign_keys=ON"); !s) return s.error();
    if (auto s = j->exec_locked(kSchema); !s) return s.error().with_context("schema");
    // No upload is in flight in a process that just opened the journal.
    {
        Stmt st(j->db_, "UPDATE jobs SET state='queued', updated_ms=?1 WHERE state='uploading'");
        if (!st.ok()) return db_error(j->db_, "reset uploading");
        st.bind(1, clock::now_ms());
        if (st.step() != SQLITE_DONE) return db_error(j->db_, "reset uploading");
        int n = sqlite3_changes(j->db_);
        if (n > 0)
            LOG_INFO(kLog, n << " job(s) were uploading when the uploader stopped; queued again");
    }
    // The file's directory entry must be durable too (SQLite syncs files, not the dir).
    (void)files::fsync_dir(dirname_of(path));
    return j;
}

Journal::~Journal() {
    if (db_) sqlite3_close_v2(db_);
}

Status Journal::exec_locked(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        return make_error("journal_error", msg);
    }
    return ok();
}

Expected<JobRecord> Journal::get_locked(const std::string& job_id) {
    std::string sql = std::string("SELECT ") + kColumns + " FROM jobs WHERE job_id=?1";
    Stmt st(db_, sql.c_str());
    if (!st.ok()) return db_error(db_, "get");
    st.bind(1, job_id);
    int rc = st.step();
    if (rc == SQLITE_ROW) return row_to_record(st);
    if (rc == SQLITE_DONE) return make_error("not_found", "journal: no job " + job_id);
    return db_error(db_, "get " + job_id);
}

Expected<JobRecord> Journal::record(const upload::Job& job) {
    std::lock_guard<std::mutex> lock(mutex_);
    return record_locked(job);
}

std::vector<Expected<JobRecord>> Journal::record_all(const std::vector<upload::Job>& jobs) {
    std::vector<Expected<JobRecord>> out;
    std::lock_guard<std::mutex> lock(mutex_);
    if (jobs.size() == 1) {
        out.push_back(record_locked(jobs[0]));
        return out;
    }
    if (auto st = exec_locked("BEGIN IMMEDIATE"); !st) {
        for (size_t i = 0; i < jobs.size(); ++i) out.push_back(st.error());
        return out;
    }
    for (const auto& job : jobs) out.push_back(record_locked(job));
    if (auto st = exec_locked("COMMIT"); !st) {
        // Nothing of the batch is durable: every job fails (the agent offers it again).
        (void)exec_locked("ROLLBACK");
        for (auto& r : out) r = st.error();
    }
    return out;
}

Expected<JobRecord> Journal::record_locked(const upload::Job& job) {
    if (job.job_id.empty()) return make_error("bad_request", "journal: job without job_id");
    int64_t now = clock::now_ms();
    Stmt st(db_,
            "INSERT INTO jobs (job_id, capture_id, rig_id, batch, path, remote_name, mime, sha256, "
            "size, "
            "captured_at_ms, state, created_ms, updated_ms) VALUES "
            "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,'queued',?11,?11) "
            "ON CONFLICT(job_id) DO NOTHING");
    if (!st.ok()) return db_error(db_, "record");
    st.bind(1, job.job_id)
        .bind(2, job.capture_id)
        .bind(3, job.rig_id)
        .bind(4, job.batch)
        .bind(5, job.path);
    st.bind(6, job.remote_name)
        .bind(7, job.mime)
        .bind(8, job.sha256)
        .bind(9, static_cast<int64_t>(job.size));
    st.bind(10, job.captured_at_ms).bind(11, now);
    if (st.step() != SQLITE_DONE) return db_error(db_, "record " + job.job_id);
    bool inserted = sqlite3_changes(db_) > 0;
    auto rec = get_locked(job.job_id);
    if (!rec) return rec.error();
    rec->inserted = inserted;
    if (!inserted && (rec->job.sha256 != job.sha256 || rec->job.path != job.path)) {
        LOG_WARN(kLog,
                 "job " << job.job_id
                        << " offered again with a different path or sha256; keeping the first");
    }
    return rec;
}

Expected<JobRecord> Journal::get(const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    return get_locked(job_id);
}

namespace {
Status finish_update(sqlite3* db, Stmt& st, const std::string& what, const std::string& job_id) {
    if (!st.ok()) return db_error(db, what);
    if (st.step() != SQLITE_DONE) return db_error(db, what + " " + job_id);
    if (sqlite3_changes(db) == 0) return make_error("not_found", "journal: no job " + job_id);
    return ok();
}
}  // namespace

Status Journal::mark_uploading(const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    // WAL + synchronous=NORMAL: committed to the WAL without an fsync; the next FULL
    // commit syncs the WAL up to and including this one.
    if (auto s = exec_locked("PRAGMA synchronous=NORMAL"); !s) return s.error();
    Status result = [&]() -> Status {
        Stmt st(db_,
                "UPDATE jobs SET state='uploading', attempts=attempts+1, updated_ms=?2 WHERE "
                "job_id=?1");
        st.bind(1, job_id).bind(2, clock::now_ms());
        return finish_update(db_, st, "mark_uploading", job_id);
    }();
    if (auto s = exec_locked("PRAGMA synchronous=FULL"); !s) return s.error();
    return result;
}

Status Journal::mark_done(const std::string& job_id, const std::string& remote_ref) {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t now = clock::now_ms();
    Stmt st(db_,
            "UPDATE jobs SET state='done', remote_ref=?2, resume_state='', last_error='', "
            "next_attempt_ms=0, "
            "updated_ms=?3, done_ms=?3 WHERE job_id=?1");
    st.bind(1, job_id).bind(2, remote_ref).bind(3, now);
    return finish_update(db_, st, "mark_done", job_id);
}

Status Journal::mark_failed(const std::string& job_id, const std::string& reason, bool permanent,
                            int64_t next_attempt_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt st(db_,
            "UPDATE jobs SET state=?2, last_error=?3, next_attempt_ms=?4, updated_ms=?5 "
            "WHERE job_id=?1 AND state<>'done'");
    st.bind(1, job_id)
        .bind(2, std::string(permanent ? "failed_permanent" : "queued"))
        .bind(3, reason);
    st.bind(4, next_attempt_ms).bind(5, clock::now_ms());
    return finish_update(db_, st, "mark_failed", job_id);
}

Status Journal::set_resume_state(const std::string& job_id, const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt st(db_, "UPDATE jobs SET resume_state=?2, updated_ms=?3 WHERE job_id=?1");
    st.bind(1, job_id).bind(2, text).bind(3, clock::now_ms());
    return finish_update(db_, st, "set_resume_state", job_id);
}

Expected<std::string> Journal::resume_state(const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt st(db_, "SELECT resume_state FROM jobs WHERE job_id=?1");
    if (!st.ok()) return db_error(db_, "resume_state");
    st.bind(1, job_id);
    int rc = st.step();
    if (rc == SQLITE_ROW) return st.text(0);
    if (rc == SQLITE_DONE) return make_error("not_found", "journal: no job " + job_id);
    return db_error(db_, "resume_state " + job_id);
}

Expected<std::vector<JobRecord>> Journal::pending() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM jobs WHERE state IN ('queued','uploading') ORDER BY seq";
    Stmt st(db_, sql.c_str());
    if (!st.ok()) return db_error(db_, "pending");
    std::vector<JobRecord> out;
    for (;;) {
        int rc = st.step();
        if (rc == SQLITE_ROW) {
            out.push_back(row_to_record(st));
        } else if (rc == SQLITE_DONE) {
            break;
        } else {
            return db_error(db_, "pending");
        }
    }
    return out;
}

Expected<JobCounts> Journal::counts() {
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt st(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    if (!st.ok()) return db_error(db_, "counts");
    JobCounts c;
    for (;;) {
        int rc = st.step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return db_error(db_, "counts");
        auto n = static_cast<uint64_t>(st.int64(1));
        switch (parse_state(st.text(0))) {
            case JobState::queued:
                c.queued += n;
                break;
            case JobState::uploading:
                c.uploading += n;
                break;
            case JobState::done:
                c.done += n;
                break;
            case JobState::failed_permanent:
                c.failed_permanent += n;
                break;
        }
    }
    return c;
}

Expected<uint64_t> Journal::forget_done_older_than(int64_t age_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    Stmt st(db_, "DELETE FROM jobs WHERE state='done' AND done_ms < ?1");
    if (!st.ok()) return db_error(db_, "forget_done_older_than");
    st.bind(1, clock::now_ms() - age_ms);
    if (st.step() != SQLITE_DONE) return db_error(db_, "forget_done_older_than");
    return static_cast<uint64_t>(sqlite3_changes(db_));
}

}  // namespace photorig::upload
