#include "ctl/fleet.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "core/clock.h"
#include "protocol/wire.h"

namespace photorig::ctl {
namespace wire = protocol::client;
using wire::FleetRow;

FleetRow fleet_row(const RigSummary& rig) {
    FleetRow row;
    row.rig_id = rig.rig_id;
    row.availability = rig.availability;
    if (auto s = wire::parse_agent_state(rig.state_json); s && !rig.state_json.empty()) {
        for (const auto& c : s->cameras) {
            ++row.cameras_total;
            row.cameras_online += c.connected ? 1 : 0;
        }
        row.spool_files = s->spool_files;
        row.last_error = s->last_error;
        row.groups = s->groups;
    }
    if (auto u = wire::parse_uploader_state(rig.uploader_state_json);
        u && !rig.uploader_state_json.empty()) {
        row.upload_queue = u->queued + u->uploading;
        if (row.last_error.empty() && !u->last_error.empty())
            row.last_error = "uploader: " + u->last_error;
    }
    if (auto f = wire::parse_state_fleet_fields(rig.state_json); f && !rig.state_json.empty()) {
        row.bridge_connected = f->bridge_connected;
        row.clock_synced = f->clock_synced;
        row.clock_est_error_us = f->clock_est_error_us;
    }
    // mosquitto's own notification first: when the link drops, the central broker's copy
    // turns `0` (the bridge's will) while the rig's last state there still says connected.
    if (rig.bridge_state == "1" || rig.bridge_state == "0")
        row.bridge_connected = rig.bridge_state == "1";
    return row;
}

namespace {
std::string or_dash(const std::optional<uint64_t>& v) {
    return v ? std::to_string(*v) : "-";
}

std::string clock_column(const FleetRow& r) {
    if (r.clock_synced && !*r.clock_synced) return "unsynced";
    if (r.clock_est_error_us) return std::to_string(*r.clock_est_error_us) + "us";
    return "-";
}

std::string line(const std::vector<std::string>& cols) {
    static const int widths[] = {16, 9, 8, 6, 7, 13, 10};
    std::string out;
    char buf[256];
    for (size_t i = 0; i < cols.size(); ++i) {
        if (i < std::size(widths)) {
            std::snprintf(buf, sizeof buf, "%-*s ", widths[i], cols[i].c_str());
            out += buf;
        } else {
            out += cols[i];
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
}
}  // namespace

std::string fleet_table(const std::vector<FleetRow>& rows) {
    std::string out =
        line({"RIG", "AVAIL", "CAMERAS", "SPOOL", "UPLOADQ", "BRIDGE", "CLOCK", "LAST_ERROR"});
    for (const auto& r : rows) {
        std::string bridge =
            r.bridge_connected ? (*r.bridge_connected ? "connected" : "disconnected") : "-";
        out += line({r.rig_id, r.availability.empty() ? "?" : r.availability,
                     std::to_string(r.cameras_online) + "/" + std::to_string(r.cameras_total),
                     or_dash(r.spool_files), or_dash(r.upload_queue), bridge, clock_column(r),
                     r.last_error.empty() ? "-" : r.last_error});
    }
    return out;
}

std::vector<std::string> group_members(const std::vector<FleetRow>& rows,
                                       const std::string& group) {
    std::vector<std::string> members;
    for (const auto& r : rows) {
        if (r.availability == "online" &&
            std::find(r.groups.begin(), r.groups.end(), group) != r.groups.end())
            members.push_back(r.rig_id);
    }
    return members;
}

bool is_group_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

std::optional<int64_t> parse_capture_at(const std::string& text, int64_t now_ms) {
    if (text.empty()) return std::nullopt;
    const bool relative = text[0] == '+';
    const char* start = text.c_str() + (relative ? 1 : 0);
    char* end = nullptr;
    long long n = std::strtoll(start, &end, 10);
    if (end == start || n < 0) return std::nullopt;
    const std::string unit(end);
    if (!relative) return unit.empty() && n > 0 ? std::optional<int64_t>(n) : std::nullopt;
    if (unit == "s") return now_ms + n * 1000;
    if (unit == "ms") return now_ms + n;
    return std::nullopt;
}

GroupCapture::GroupCapture(const std::vector<std::string>& expected, std::string transaction)
    : transaction_(std::move(transaction)) {
    for (const auto& rig : expected) rigs_[rig].expected = true;
}

bool GroupCapture::on_response(const std::string& rig, const std::string& payload) {
    auto r = wire::parse_response(payload);
    if (!r || r->transaction != transaction_) return false;
    Rig& entry = rigs_[rig];  // a rig not expected (no groups in its state) counts too
    if (entry.answered) return false;
    entry.answered = true;
    entry.ok = r->ok;
    if (!r->ok) {
        entry.error = r->error;
        return true;
    }
    auto result = wire::parse_capture_result(r->data_json);
    if (!result) {
        entry.ok = false;
        entry.error = result.error();
        return true;
    }
    entry.result = std::move(*result);
    for (const auto& id : early_done_[rig]) mark_done(entry, id);
    early_done_.erase(rig);
    return true;
}

void GroupCapture::mark_done(Rig& rig, const std::string& capture_id) {
    for (const auto& p : rig.result.photos) {
        if (p.capture_id == capture_id) rig.done.insert(capture_id);
    }
}

bool GroupCapture::on_upload_event(const std::string& rig, const std::string& payload) {
    auto e = protocol::parse_upload_event(payload);
    if (!e || e->type != "done") return false;
    auto it = rigs_.find(rig);
    if (it == rigs_.end() || !it->second.answered) {
        early_done_[rig].insert(e->capture_id);
        return false;
    }
    const size_t before = it->second.done.size();
    mark_done(it->second, e->capture_id);
    return it->second.done.size() > before;
}

bool GroupCapture::all_answered() const {
    return unanswered().empty();
}

bool GroupCapture::all_uploaded() const {
    return missing_photos().empty();
}

size_t GroupCapture::photos_expected() const {
    size_t n = 0;
    for (const auto& [id, rig] : rigs_) {
        std::set<std::string> ids;
        for (const auto& p : rig.result.photos) ids.insert(p.capture_id);
        n += ids.size();
    }
    return n;
}

size_t GroupCapture::photos_done() const {
    size_t n = 0;
    for (const auto& [id, rig] : rigs_) n += rig.done.size();
    return n;
}

std::vector<std::string> GroupCapture::unanswered() const {
    std::vector<std::string> out;
    for (const auto& [id, rig] : rigs_) {
        if (!rig.answered) out.push_back(id);
    }
    return out;
}

std::map<std::string, size_t> GroupCapture::missing_photos() const {
    std::map<std::string, size_t> out;
    for (const auto& [id, rig] : rigs_) {
        // Distinct capture ids: a photo is one capture id.
        std::set<std::string> ids;
        for (const auto& p : rig.result.photos) ids.insert(p.capture_id);
        if (ids.size() > rig.done.size()) out[id] = ids.size() - rig.done.size();
    }
    return out;
}

bool GroupCapture::any_error() const {
    for (const auto& [id, rig] : rigs_) {
        if (rig.answered && !rig.ok) return true;
    }
    return false;
}

std::optional<int64_t> GroupCapture::trigger_spread_us() const {
    std::map<int, std::pair<int64_t, int64_t>> shots;  // seq -> first, last trigger (us)
    std::map<int, int> triggers_per_shot;
    for (const auto& [id, rig] : rigs_) {
        for (const auto& t : rig.result.triggers) {
            auto [it, fresh] =
                shots.emplace(t.seq, std::make_pair(t.triggered_at_us, t.triggered_at_us));
            it->second.first = std::min(it->second.first, t.triggered_at_us);
            it->second.second = std::max(it->second.second, t.triggered_at_us);
            ++triggers_per_shot[t.seq];
        }
    }
    std::optional<int64_t> spread;
    for (const auto& [seq, bounds] : shots) {
        if (triggers_per_shot[seq] < 2) continue;
        spread = std::max(spread.value_or(0), bounds.second - bounds.first);
    }
    return spread;
}

size_t GroupCapture::cameras_triggered() const {
    std::set<std::string> cameras;
    for (const auto& [id, rig] : rigs_) {
        for (const auto& t : rig.result.triggers) cameras.insert(id + "/" + t.camera);
    }
    return cameras.size();
}

namespace {
// 2026-11-25T04:10:15.123456Z
std::string rfc3339_us(int64_t epoch_us) {
    std::string ms = clock::rfc3339_utc_ms(epoch_us / 1000);
    char tail[8];
    std::snprintf(tail, sizeof tail, "%03d", static_cast<int>(epoch_us % 1000));
    if (!ms.empty() && ms.back() == 'Z') ms.insert(ms.size() - 1, tail);
    return ms;
}

std::string rig_report(const std::string& id, const GroupCapture::Rig& rig) {
    if (!rig.answered) return id + "  no answer\n";
    if (!rig.ok) return id + "  error " + rig.error.code + ": " + rig.error.message + "\n";
    std::string out = id + "  ok  " + std::to_string(rig.result.photos.size()) + " photo(s)";
    if (!rig.result.errors.empty())
        out += ", " + std::to_string(rig.result.errors.size()) + " camera error(s)";
    out += "\n";
    for (const auto& t : rig.result.triggers) {
        out += "  " + t.camera + "  seq " + std::to_string(t.seq) + "  triggered " +
               rfc3339_us(t.triggered_at_us) + "\n";
    }
    for (const auto& e : rig.result.errors)
        out += "  camera error " + e.code + ": " + e.message + "\n";
    return out;
}
}  // namespace

std::string group_capture_report(const GroupCapture& capture) {
    std::string out;
    size_t answered = 0;
    for (const auto& [id, rig] : capture.rigs()) {
        out += rig_report(id, rig);
        answered += rig.answered ? 1 : 0;
    }
    char buf[160];
    if (auto spread = capture.trigger_spread_us()) {
        std::snprintf(buf, sizeof buf, "trigger spread: %.3f ms across %zu rig(s), %zu camera(s)\n",
                      static_cast<double>(*spread) / 1000.0, answered, capture.cameras_triggered());
    } else {
        std::snprintf(buf, sizeof buf, "trigger spread: - (fewer than two triggers)\n");
    }
    return out + buf;
}

}  // namespace photorig::ctl
