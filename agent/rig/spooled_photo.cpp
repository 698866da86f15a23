#include "rig/spooled_photo.h"

#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "media/exif.h"
#include "protocol/wire.h"

namespace photorig::rig {
static_assert(spool::SpoolWriter::kKeptHeadBytes >= media::kExifReadBytes,
              "the spool keeps as much of a photo's start as EXIF parsing reads from disk");
namespace {
constexpr const char* kLog = "rig";

protocol::ExifFields to_wire(const media::ExifInfo& e) {
    protocol::ExifFields f;
    f.iso = e.iso;
    f.exposure_time = e.exposure_time;
    f.exposure_time_text = e.exposure_time_text;
    f.f_number = e.f_number;
    f.focal_length = e.focal_length_mm;
    f.make = e.make;
    f.model = e.model;
    f.body_serial = e.body_serial;
    f.datetime_original = e.datetime_original;
    f.width = e.width;
    f.height = e.height;
    return f;
}

void describe_file(const spool::SpooledFile& spooled, protocol::CaptureMetadata* m) {
    m->file_name = spooled.name;
    m->file_path = spooled.path;
    m->size = spooled.size;
    m->sha256 = spooled.sha256;
}

void write_sidecar(spool::Spool& spool, const std::string& rel, const protocol::CaptureMetadata& m,
                   bool sync_dir = true) {
    auto st = spool.write_sidecar(rel, protocol::capture_metadata_json(m), sync_dir);
    if (!st) LOG_WARN(kLog, "sidecar for " << rel << ": " << st.error().describe());
}
}  // namespace

Expected<protocol::CaptureMetadata> commit_photo(spool::Spool& spool, const PhotoFacts& facts,
                                                 spool::SpoolWriter& writer,
                                                 spool::DirTicket& dir_ticket, CommitCosts* costs) {
    CommitCosts local_costs;
    if (!costs) costs = &local_costs;
    // One directory fsync, through `dir_ticket`, serves this rename and the sidecar's.
    auto spooled = writer.commit(/*sync_dir=*/false);
    if (!spooled) return spooled.error().with_context("spool " + facts.relative_path);
    costs->hash_us = spooled->hash_us;
    costs->commit_us = spooled->commit_us;
    protocol::CaptureMetadata m;
    m.capture_id = ids::time_ordered_id(facts.triggered_at_ms);
    m.job_id = m.capture_id;
    m.rig_id = facts.rig_id;
    m.batch = facts.batch;
    m.seq = facts.seq;
    m.camera = facts.camera;
    m.captured_at_ms = facts.triggered_at_ms;
    describe_file(*spooled, &m);
    m.mime = media::mime_for_name(spooled->name);
    int64_t t0 = clock::monotonic_us();
    auto exif = media::parse_exif(reinterpret_cast<const unsigned char*>(spooled->head.data()),
                                  spooled->head.size());
    m.exif = to_wire(exif);
    costs->exif_us = clock::monotonic_us() - t0;
    m.trigger_ms = facts.trigger_ms;
    m.download_ms = facts.download_ms;
    // The sidecar makes the spool self-describing: after a crash the reconciler re-offers
    // the file with the same job id, so the uploader recognises it.
    t0 = clock::monotonic_us();
    write_sidecar(spool, facts.relative_path, m, /*sync_dir=*/false);
    dir_ticket = spool.renamed_into_dir_of(facts.relative_path);
    costs->sidecar_us = clock::monotonic_us() - t0;
    return m;
}

Expected<std::optional<protocol::CaptureMetadata>> spool_manifest(
    spool::Spool& spool, const protocol::ScanRecord& record, const std::string& rig_id) {
    const std::string rel = record.batch + "/" + record.scan_id + ".manifest.json";
    if (spool.exists(rel)) return std::optional<protocol::CaptureMetadata>();
    const std::string text = protocol::scan_manifest_json(record, rig_id);
    auto writer = spool.create_writer(rel);
    if (!writer) return writer.error().with_context("scan manifest");
    if (auto st = (*writer)->write(text.data(), text.size()); !st)
        return st.error().with_context("scan manifest");
    auto spooled = (*writer)->commit();
    if (!spooled) return spooled.error().with_context("scan manifest");
    protocol::CaptureMetadata m;
    m.capture_id = ids::time_ordered_id(record.finished_at_ms);
    m.job_id = m.capture_id;
    m.rig_id = rig_id;
    m.batch = record.batch;
    m.captured_at_ms = record.finished_at_ms;
    describe_file(*spooled, &m);
    m.mime = "application/json";
    write_sidecar(spool, rel, m);
    return std::optional<protocol::CaptureMetadata>(std::move(m));
}

}  // namespace photorig::rig
