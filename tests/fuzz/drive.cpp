// What GdriveTarget reads from Google's servers: byte 0 picks the HTTP status, then the
// Range, Retry-After and Location header lines, then the body (a file resource, a files.list
// answer, a Drive or OAuth error JSON, or anything). Each goes through the parse the target
// applies (targets/gdrive_api.h): session answers (Range), Retry-After, the error JSON and
// the Error it becomes, the Location's origin (whether the bearer token may follow it),
// files.list, and the body as a resume state from the journal. Every Error must be
// publishable in a failed upload event (JSON), as the uploader does with it.
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/wire.h"
#include "targets/gdrive_api.h"

namespace {
using namespace photorig;

const long kStatuses[] = {200, 201, 308, 404, 410, 401, 403, 429, 500,
                          503, 400, 302, 0,   999, 204, 408, 502, 307};

void check_publishable(const Error& e) {
    protocol::UploadEvent ev;
    ev.type = "failed";
    ev.job_id = "j1";
    ev.error_code = e.code;
    ev.error_message = e.message;
    auto back = protocol::parse_upload_event(protocol::upload_event_json(ev));
    PHOTORIG_FUZZ_CHECK(back.has_value());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace photorig::targets;
    fuzz::Input in(data, size);
    http::Response r;
    r.status = kStatuses[in.byte() % (sizeof kStatuses / sizeof kStatuses[0])];
    r.headers["range"] = in.line();
    r.headers["retry-after"] = in.line();
    const std::string location = in.line();
    r.headers["location"] = location;
    r.body = in.rest();

    auto state = gdrive::session_answer(r, "gdrive: upload status s");
    if (!state) check_publishable(state.error());
    PHOTORIG_FUZZ_CHECK(gdrive::retry_after_ms(r) >= -1);
    (void)gdrive::confirmed_bytes(r.header("range"));
    check_publishable(gdrive::status_error(r.status, r.body, "gdrive: files.list"));
    check_publishable(gdrive::token_refused(r, "gdrive: token refresh", "/etc/photorig/rt"));
    (void)gdrive::retryable(r.status, r.body);
    // The token goes along only to the API's own origin.
    const std::string api = "https://www.googleapis.com";
    if (gdrive::origin_of(location) == gdrive::origin_of(api))
        PHOTORIG_FUZZ_CHECK(location.size() >= api.size());
    if (auto files = gdrive::files_from_list(r.body))
        for (const auto& f : *files) (void)gdrive::describe(f);

    upload::Job job;
    job.job_id = "j1";
    job.size = 1234;
    job.sha256 = "ab";
    (void)gdrive::session_from_resume(r.body, job);
    PHOTORIG_FUZZ_CHECK(gdrive::printable(r.body, 60).size() <= 63);
    return 0;
}
