// `rigctl fleet`: many rigs seen through one (central) broker. The rows of `fleet status`,
// built from each rig's retained topics, and the bookkeeping of one group capture: which
// rigs must answer, what they answered, the trigger spread across all of them, and which of
// their photos the uploaders reported `done`. No I/O here: rigctl feeds it messages.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/expected.h"
#include "ctl/rig_client.h"
#include "protocol/client.h"

namespace photorig::ctl {

// One row of `rigctl fleet status` (a state that does not parse counts as none).
protocol::client::FleetRow fleet_row(const RigSummary& rig);
// The rows as a table, one line per rig, with a header line.
std::string fleet_table(const std::vector<protocol::client::FleetRow>& rows);

// Rigs of `rows` that are online and list `group` in their state.
std::vector<std::string> group_members(const std::vector<protocol::client::FleetRow>& rows,
                                       const std::string& group);

// A group name as config `groups` takes it ([a-z0-9_-]{1,64}): never a topic wildcard.
bool is_group_name(const std::string& name);

// "+2s", "+500ms" (from now_ms) or epoch ms; nullopt when it is none of these.
std::optional<int64_t> parse_capture_at(const std::string& text, int64_t now_ms);

// One group capture, identified by its transaction.
class GroupCapture {
  public:
    struct Rig {
        bool expected = false;  // an online member when the request went out
        bool answered = false;
        bool ok = false;
        Error error;                             // ok == false
        protocol::client::CaptureResult result;  // ok == true
        std::set<std::string> done;              // capture ids reported done
    };

    GroupCapture(const std::vector<std::string>& expected, std::string transaction);

    // A message on <prefix>/<rig>/response/capture; true when it is this capture's answer.
    bool on_response(const std::string& rig, const std::string& payload);
    // A message on <prefix>/<rig>/upload/events; true when it marks one of our photos done.
    bool on_upload_event(const std::string& rig, const std::string& payload);

    bool all_answered() const;
    bool all_uploaded() const;  // every photo of every answer is done
    size_t photos_expected() const;
    size_t photos_done() const;
    std::vector<std::string> unanswered() const;
    // Rig -> photos of its answer not reported done yet (rigs with none left out).
    std::map<std::string, size_t> missing_photos() const;
    bool any_error() const;
    // Largest first-to-last trigger spread of any shot across every rig and camera, in us;
    // nullopt with fewer than two triggers of one shot.
    std::optional<int64_t> trigger_spread_us() const;
    size_t cameras_triggered() const;  // distinct rig/camera pairs
    const std::map<std::string, Rig>& rigs() const { return rigs_; }

  private:
    void mark_done(Rig& rig, const std::string& capture_id);

    std::string transaction_;
    std::map<std::string, Rig> rigs_;
    // Done events that came before their rig's answer (uploads can finish before the answer
    // crosses the broker), by rig; matched once the answer names its photos.
    std::map<std::string, std::set<std::string>> early_done_;
};

// One line per rig of a capture's answers, then the spread.
std::string group_capture_report(const GroupCapture& capture);

}  // namespace photorig::ctl
