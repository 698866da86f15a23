// Committing a file to the spool and describing it: the capture metadata (kept in the
// file's sidecar, so the spool describes itself after a crash and a re-offered file keeps
// its job id) of a photo or of a scan's manifest.
#pragma once

#include <cstdint>
#include <string>

#include "core/expected.h"
#include "protocol/scan.h"
#include "protocol/types.h"
#include "spool/spool.h"

namespace photorig::rig {

struct PhotoFacts {
    std::string rig_id, batch;
    int seq = 0;
    protocol::CameraRef camera;
    std::string relative_path;
    int64_t triggered_at_ms = 0, trigger_ms = 0, download_ms = 0;
};

// What committing one photo cost, in microseconds.
struct CommitCosts {
    int64_t hash_us = 0, commit_us = 0, exif_us = 0, sidecar_us = 0;
};

// Commits `writer`, reads the photo's EXIF (from the bytes the writer kept, not the disk)
// and writes its sidecar. Both renames become durable with one directory fsync, which is
// left to whoever publishes the job: it calls spool.sync_renamed(dir_ticket) first, so the
// photo is safe before its job leaves, and photos committed meanwhile share that fsync (a
// group commit). `costs` may be null.
Expected<protocol::CaptureMetadata> commit_photo(spool::Spool& spool, const PhotoFacts& facts,
                                                 spool::SpoolWriter& writer,
                                                 spool::DirTicket& dir_ticket,
                                                 CommitCosts* costs = nullptr);

// Puts a finished scan's manifest in the spool (with its sidecar) and returns its
// metadata; nullopt when a run before a restart already did (the reconciler offers it).
Expected<std::optional<protocol::CaptureMetadata>> spool_manifest(
    spool::Spool& spool, const protocol::ScanRecord& record, const std::string& rig_id);

}  // namespace photorig::rig
