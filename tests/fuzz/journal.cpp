// The upload journal's stored rows as the uploader reads them back (Journal::pending, get,
// counts, resume_state) after a crash, a disk fault or someone's hand edit: the row is written
// through a second SQLite connection, column by column from the input (byte: the value's type
// - integer, real, text, blob or NULL; then a line: its bytes), bypassing Journal's own
// writes. Each record read back is used as the uploader uses it at start-up: its resume state
// handed to the S3 and Drive resume decoders, its job published in upload events.
#include "upload/journal.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz_input.h"
#include "protocol/wire.h"
#include "targets/gdrive_api.h"
#include "targets/s3_wire.h"
#include "uploader/upload_events.h"

namespace {
using namespace photorig;

const char* kColumns[] = {"job_id",     "capture_id",      "rig_id",     "batch",
                          "path",       "remote_name",     "mime",       "sha256",
                          "size",       "captured_at_ms",  "state",      "attempts",
                          "last_error", "next_attempt_ms", "remote_ref", "resume_state",
                          "created_ms", "updated_ms",      "done_ms"};
constexpr int kColumnCount = sizeof kColumns / sizeof kColumns[0];

struct Fixture {
    std::string dir;
    std::unique_ptr<upload::Journal> journal;
    sqlite3* writer = nullptr;
    std::string insert_sql;

    Fixture() {
        // run-fuzzers.sh names a directory it removes afterwards (libFuzzer ends with _Exit:
        // no destructor runs); else tmpfs when there is one, as the journal's commits fsync.
        const char* dir_env = std::getenv("PHOTORIG_FUZZ_TMP");
        std::string base = dir_env && *dir_env             ? dir_env
                           : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                           : "/tmp";
        std::string tmpl = base + "/photorig-fuzz-journal-XXXXXX";
        if (!mkdtemp(tmpl.data())) std::abort();
        dir = tmpl;
        auto j = upload::Journal::open(dir + "/journal.db");
        if (!j) std::abort();
        journal = std::move(*j);
        if (sqlite3_open(journal->path().c_str(), &writer) != SQLITE_OK) std::abort();
        sqlite3_exec(writer, "PRAGMA synchronous=OFF", nullptr, nullptr, nullptr);
        insert_sql = "INSERT INTO jobs (";
        std::string values;
        for (int i = 0; i < kColumnCount; ++i) {
            insert_sql += std::string(i ? ", " : "") + kColumns[i];
            values += std::string(i ? ", " : "") + "?" + std::to_string(i + 1);
        }
        insert_sql += ") VALUES (" + values + ")";
    }
    ~Fixture() {
        sqlite3_close(writer);
        journal.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

Fixture& fixture() {
    static Fixture f;
    return f;
}

void bind_from_input(sqlite3_stmt* st, int i, fuzz::Input& in) {
    const uint8_t type = in.byte();
    const std::string bytes = in.line();
    switch (type % 5) {
        case 0:
            sqlite3_bind_int64(
                st, i, static_cast<sqlite3_int64>(std::strtoll(bytes.c_str(), nullptr, 10)));
            break;
        case 1:
            sqlite3_bind_double(st, i, std::strtod(bytes.c_str(), nullptr));
            break;
        case 2:
            sqlite3_bind_text(st, i, bytes.data(), static_cast<int>(bytes.size()),
                              SQLITE_TRANSIENT);
            break;
        case 3:
            sqlite3_bind_blob(st, i, bytes.data(), static_cast<int>(bytes.size()),
                              SQLITE_TRANSIENT);
            break;
        default:
            sqlite3_bind_null(st, i);
    }
}

void use_record(const upload::JobRecord& rec) {
    (void)targets::s3::decode_resume(rec.resume_state, rec.job, 8u << 20);
    (void)targets::gdrive::session_from_resume(rec.resume_state, rec.job);
    // The uploader announces a resumed job's attempt with the job's fields.
    auto ev = uploader::job_event(rec.job, "started", rec.attempts + 1);
    (void)protocol::upload_event_json(ev);
    PHOTORIG_FUZZ_CHECK(std::string(upload::to_string(rec.state)).size() > 0);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Fixture& f = fixture();
    fuzz::Input in(data, size);
    sqlite3_exec(f.writer, "DELETE FROM jobs", nullptr, nullptr, nullptr);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(f.writer, f.insert_sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
        std::abort();
    for (int i = 1; i <= kColumnCount; ++i) bind_from_input(st, i, in);
    const bool inserted = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!inserted) return 0;  // a NOT NULL column got NULL

    auto pending = f.journal->pending();
    PHOTORIG_FUZZ_CHECK(pending.has_value());
    for (const auto& rec : *pending) use_record(rec);
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(f.writer, "SELECT CAST(job_id AS TEXT) FROM jobs", -1, &q, nullptr);
    if (sqlite3_step(q) == SQLITE_ROW) {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
        std::string job_id =
            p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(q, 0))) : "";
        if (auto rec = f.journal->get(job_id)) use_record(*rec);
        (void)f.journal->resume_state(job_id);
    }
    sqlite3_finalize(q);
    auto counts = f.journal->counts();
    PHOTORIG_FUZZ_CHECK(counts.has_value());
    return 0;
}
