// config/get, config/set and preview: one camera's answer, waited for off the service
// thread (which keeps answering other requests meanwhile), then the response.
//
// Threads: handle() on the service thread; the waiting and answering on an executor of
// its own. At most kMaxWaiting requests wait (each holds a camera's future and its reply
// topic); past that handle() answers queue_full at once, naming the depth. Destroy it before the
// cameras stop, so what it waits for still answers.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "core/expected.h"
#include "core/serial_executor.h"
#include "mqtt/client.h"
#include "protocol/topics.h"
#include "rig/camera_set.h"
#include "rig/publisher.h"
#include "rig/responder.h"
#include "rig/rig_stats.h"

namespace photorig::rig {

class CameraRequests {
  public:
    CameraRequests(const CameraSet& cameras, Publisher& publisher, protocol::RigTopics topics,
                   Responder& responder, RigStats& stats)
        : cameras_(cameras),
          publisher_(publisher),
          topics_(std::move(topics)),
          responder_(responder),
          stats_(stats) {}

    // A RequestRouter handler: refuses at once, or answers later (nullopt).
    Expected<std::optional<std::string>> handle(const mqtt::Message& message,
                                                const std::string& verb, const std::string& txn);

    static constexpr int kMaxWaiting = 1024;

  private:
    const CameraSet& cameras_;
    Publisher& publisher_;
    const protocol::RigTopics topics_;
    Responder& responder_;
    RigStats& stats_;
    std::atomic<int> waiting_{0};  // accepted and not yet answered
    SerialExecutor executor_;      // last: its tasks use the members above
};

}  // namespace photorig::rig
