#include "rig/spool_reconciler.h"

#include <algorithm>

#include "core/backoff.h"
#include "core/digest.h"
#include "core/ids.h"
#include "core/log.h"
#include "media/exif.h"
#include "protocol/wire.h"

namespace photorig::rig {
namespace {
constexpr const char* kLog = "rig";
constexpr int64_t kMaxOfferBackoffMs = 3600 * 1000;
}  // namespace

bool SpoolReconciler::describe(const spool::SpoolEntry& entry, protocol::CaptureMetadata* meta) {
    auto parsed = entry.sidecar.empty()
                      ? Expected<protocol::CaptureMetadata>(make_error("missing", "no sidecar"))
                      : protocol::parse_capture_metadata(entry.sidecar);
    if (parsed) {
        *meta = *parsed;
        meta->file_path = entry.path;
        return true;
    }
    auto sha = Sha256::of_file(entry.path);
    if (!sha) return false;
    meta->capture_id = ids::time_ordered_id(entry.mtime_ms);
    meta->job_id = meta->capture_id;
    meta->rig_id = rig_id_;
    auto slash = entry.relative_path.find('/');
    meta->batch = slash == std::string::npos ? "recovered" : entry.relative_path.substr(0, slash);
    meta->captured_at_ms = entry.mtime_ms;
    meta->file_name = entry.name;
    meta->file_path = entry.path;
    meta->size = entry.size;
    meta->sha256 = *sha;
    meta->mime = media::mime_for_name(entry.name);
    (void)spool_.write_sidecar(entry.relative_path, protocol::capture_metadata_json(*meta));
    return true;
}

int64_t SpoolReconciler::next_backoff_ms(const std::string& job_id) {
    int attempt = ++offers_[job_id];
    BackoffPolicy policy{age_limit_ms_, kMaxOfferBackoffMs, BackoffPolicy::Jitter::none};
    int64_t delay = backoff_delay_ms(policy, attempt);
    // The first wait is reoffer_after_s even above the cap; the doubling never passes it.
    return attempt == 1 ? delay : std::min(delay, kMaxOfferBackoffMs);
}

size_t SpoolReconciler::reconcile(bool at_startup, int64_t now) {
    // Half-written photos of a crash that happened after start-up's own clean-up.
    if (!at_startup) spool_.remove_stale_temps(300);
    auto entries = spool_.list();
    if (!entries) {
        LOG_WARN(kLog, "listing the spool: " << entries.error().describe());
        return 0;
    }
    size_t offered = 0;
    std::map<std::string, bool> still_there;
    for (const auto& entry : *entries) {
        if (!at_startup && now - entry.mtime_ms < age_limit_ms_) continue;
        protocol::CaptureMetadata meta;
        if (!describe(entry, &meta)) continue;
        still_there[meta.job_id] = true;
        auto next = next_offer_ms_.find(meta.job_id);
        if (!at_startup && next != next_offer_ms_.end() && now < next->second) continue;
        next_offer_ms_[meta.job_id] = now + next_backoff_ms(meta.job_id);
        if (!publisher_.connected()) continue;
        jobs_.publish_job(meta);
        ++stats_.jobs_reoffered;
        ++offered;
    }
    forget_gone(still_there);
    if (offered > 0) LOG_INFO(kLog, "re-offered " << offered << " spooled file(s) to the uploader");
    stats_.state_dirty = true;
    return offered;
}

// Forgets files that have gone (uploaded and deleted).
void SpoolReconciler::forget_gone(const std::map<std::string, bool>& still_there) {
    for (auto it = next_offer_ms_.begin(); it != next_offer_ms_.end();) {
        if (!still_there.count(it->first)) {
            offers_.erase(it->first);
            it = next_offer_ms_.erase(it);
        } else {
            ++it;
        }
    }
}

}  // namespace photorig::rig
