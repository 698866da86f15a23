// Upload to a local (or mounted) directory: a USB disk, NAS mount, or the test target.
//
// Destination = dir / expand_template(path_template, job). The copy streams the spool file
// in 256 KiB chunks (memory does not grow with the file) into a hidden temp beside the
// destination (".<name>.part-<random>"), hashing as it goes; a hash other than job.sha256
// removes the temp ("checksum_mismatch"). Then fsync, rename (never replacing), fsync of
// the directories. Idempotent: a destination that already holds the same size and sha256
// is success without a copy. A destination holding other content is never overwritten:
// the photo goes to "<stem>-<capture_id tail><ext>" (then "-2", "-3"...), and the same
// name sequence is searched first, so a re-delivered job finds its earlier copy.
// `dir` itself must exist (a missing mount is "target_unavailable"); subdirectories are made.
// The bandwidth limit is shared by all uploads of this target (one simulated link), and so
// is the link's gate when there is one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/bandwidth_limiter.h"
#include "upload/target.h"

namespace photorig::upload {

class LocalTarget : public Target {
  public:
    struct Options {
        uint64_t bandwidth_limit_bytes_per_s = 0;  // 0 = unlimited
        std::string path_template = "{rig_id}/{batch}/{name}";
        std::shared_ptr<BandwidthLimiter> limiter;  // if set, used instead of the limit above
        // One copy on the link at a time (see LinkGate); null = parallel copies. The turn is
        // taken right before the first byte is copied and given back after the last.
        std::shared_ptr<LinkGate> gate;
        const std::atomic<bool>* cancel = nullptr;  // ends a wait for the gate ("cancelled")
    };

    LocalTarget(std::string dir, Options options);
    explicit LocalTarget(std::string dir) : LocalTarget(std::move(dir), Options()) {}

    Expected<UploadResult> upload(const upload::Job& job, const ProgressFn& progress) override;
    std::string name() const override { return "local"; }

    // Where `job` would go before collision handling ("bad_template"/"invalid_name").
    Expected<std::string> destination(const upload::Job& job) const;

    static constexpr size_t kChunkBytes = 256 * 1024;

  private:
    std::string dir_;
    Options options_;
    std::shared_ptr<BandwidthLimiter> limiter_;  // null: unlimited
};

}  // namespace photorig::upload
