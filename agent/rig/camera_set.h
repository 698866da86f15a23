// The rig's cameras: one worker per configured (or, with port "auto", detected) camera,
// and the choice of cameras a request names. The set is fixed after open(); the workers
// reconnect on their own.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "camera/camera.h"
#include "config/config.h"
#include "core/expected.h"
#include "protocol/types.h"

namespace photorig::rig {

class CameraSet {
  public:
    // Starts the workers of every configured camera.
    void open(const config::Config& config);
    void stop_all();

    // Every camera for "all", else the one with that serial; none gives `error`.
    std::vector<camera::CameraWorker*> choose(const std::string& selector, Error* error) const;
    // config/get, config/set, preview: one camera ("" or "all" = the only one).
    camera::CameraWorker* choose_one(const std::string& serial, Error* error) const;
    std::vector<protocol::CameraRef> refs() const;
    std::vector<camera::CameraHealth> health() const;  // in the order of refs()
    // The camera whose worker has been inside one call the longest, and how long (ms).
    std::pair<std::string, int64_t> longest_busy() const;
    bool empty() const { return workers_.empty(); }

  private:
    static void warn_if_gvfs_holds_cameras(const config::Config& config);
    void add_workers_for(const config::Config& config, const config::CameraConfig& entry);

    std::vector<std::unique_ptr<camera::CameraWorker>> workers_;
};

}  // namespace photorig::rig
