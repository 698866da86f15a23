// What S3Target reads from an S3 server: byte 0 picks the HTTP status, then header lines
// (content-length, etag, x-amz-meta-sha256), then the body (an XML error, a
// CreateMultipartUpload or ListParts answer, or anything). Each answer goes through the
// parse S3Target applies to it (targets/s3_wire.h); the body is also tried as a resume state
// from the journal. The error an answer turns into must be publishable in a failed upload
// event (JSON), as the uploader does with it.
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/wire.h"
#include "targets/s3_wire.h"

namespace {
using namespace photorig;

const long kStatuses[] = {200, 204, 206, 301, 307, 400, 403, 404, 409, 412,
                          500, 501, 503, 507, 401, 408, 429, 0,   999, 100};

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
    fuzz::Input in(data, size);
    targets::http::Response r;
    r.status = kStatuses[in.byte() % (sizeof kStatuses / sizeof kStatuses[0])];
    r.headers["content-length"] = in.line();
    r.headers["etag"] = in.line();
    r.headers["x-amz-meta-sha256"] = in.line();
    r.body = in.rest();

    auto head = targets::s3::head_from(r);
    if (targets::s3::md5_shaped(head.etag)) PHOTORIG_FUZZ_CHECK(head.etag.size() >= 32);
    (void)targets::s3::error_code(r.body);
    check_publishable(targets::s3::error_from(r, "s3 upload j1: PUT k"));
    (void)targets::s3::upload_id_from(r.body);
    for (const auto& part : targets::s3::listed_parts(r.body))
        PHOTORIG_FUZZ_CHECK(part.second.find('"') == std::string::npos);

    upload::Job job;
    job.job_id = "j1";
    job.size = 20u << 20;
    job.sha256 = "ab";
    if (auto resume = targets::s3::decode_resume(r.body, job, 8u << 20)) {
        PHOTORIG_FUZZ_CHECK(!resume->key.empty());
        auto again =
            targets::s3::decode_resume(targets::s3::encode_resume(resume->key, resume->upload_id,
                                                                  job, 8u << 20, resume->parts),
                                       job, 8u << 20);
        PHOTORIG_FUZZ_CHECK(again && again->key == resume->key &&
                            again->parts.size() == resume->parts.size());
    }
    return 0;
}
