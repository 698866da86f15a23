// The records photorig writes itself and reads back from places others can write (issue 15):
// a capture's sidecar (parse_capture_metadata: the spool reconciler, scan records), a scan
// record (parse_scan_record: a scan resumed from the spool) and an upload event
// (parse_upload_event: rigctl and the agent, from the broker). Whatever they hold, the parse
// answers a value or an Error (no exception, no undefined conversion), and a record that
// parsed survives its own writer: written again and parsed back, it is the same.
// Input: byte 0 picks the parser (0 sidecar, 1 scan record, 2 upload event), rest: the JSON.
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/scan.h"
#include "protocol/wire.h"

namespace {
using namespace photorig;

void sidecar(const std::string& text) {
    auto m = protocol::parse_capture_metadata(text);
    if (!m) {
        PHOTORIG_FUZZ_CHECK(!m.error().code.empty());
        return;
    }
    auto back = protocol::parse_capture_metadata(protocol::capture_metadata_json(*m));
    PHOTORIG_FUZZ_CHECK(back.has_value());
    PHOTORIG_FUZZ_CHECK(back->capture_id == m->capture_id && back->size == m->size &&
                        back->file_name == m->file_name && back->seq == m->seq &&
                        back->exif.iso == m->exif.iso && back->trigger_ms == m->trigger_ms);
}

void scan_record(const std::string& text) {
    auto r = protocol::parse_scan_record(text);
    if (!r) {
        PHOTORIG_FUZZ_CHECK(!r.error().code.empty());
        return;
    }
    auto back = protocol::parse_scan_record(protocol::scan_record_json(*r));
    PHOTORIG_FUZZ_CHECK(back.has_value());
    PHOTORIG_FUZZ_CHECK(back->scan_id == r->scan_id && back->steps_done == r->steps_done &&
                        back->request.positions == r->request.positions &&
                        back->captures.size() == r->captures.size() && back->busy_ms == r->busy_ms);
}

void upload_event(const std::string& text) {
    auto e = protocol::parse_upload_event(text);
    if (!e) {
        PHOTORIG_FUZZ_CHECK(!e.error().code.empty());
        return;
    }
    auto back = protocol::parse_upload_event(protocol::upload_event_json(*e));
    PHOTORIG_FUZZ_CHECK(back.has_value());
    PHOTORIG_FUZZ_CHECK(back->job_id == e->job_id && back->type == e->type);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t which = in.byte() % 3;
    const std::string text = in.rest();
    if (which == 0) sidecar(text);
    if (which == 1) scan_record(text);
    if (which == 2) upload_event(text);
    return 0;
}
