// What S3Target reads from an S3 server's answers, and its resume state in the journal: pure
// functions (no I/O), so the fuzz target (tests/fuzz/s3.cpp) and unit tests reach them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/expected.h"
#include "targets/http.h"
#include "upload/job.h"

namespace photorig::targets::s3 {

// An object as a HEAD answer (200) describes it.
struct ObjectHead {
    bool exists = false;
    uint64_t size = 0;
    std::string etag, meta_sha256;  // etag without quotes or W/, lower case
};
ObjectHead head_from(const http::Response& resp);

// An ETag header or <ETag> without quotes (also &quot;), spaces and W/, in lower case.
std::string strip_etag(std::string etag);
// "<32 hex>" or "<32 hex>-<parts>".
bool md5_shaped(const std::string& etag);

// The <Code> of an error answer ("" when none), and the Error it means.
std::string error_code(const std::string& body);
Error error_from(const http::Response& r, const std::string& what);

// CreateMultipartUpload's <UploadId> ("" when none).
std::string upload_id_from(const std::string& body);
// ListParts: each <Part>'s <PartNumber> (0 when unreadable) and stripped <ETag>, in order.
std::vector<std::pair<int, std::string>> listed_parts(const std::string& body);

// A multipart upload as far as it got, kept in the journal across restarts.
struct Resume {
    std::string key, upload_id;
    std::vector<std::pair<int, std::string>> parts;  // part number, etag
};
std::string encode_resume(const std::string& key, const std::string& upload_id,
                          const upload::Job& job, uint64_t part_size,
                          const std::vector<std::pair<int, std::string>>& parts);
// nullopt for anything but a state saved for this job's bytes and part size.
std::optional<Resume> decode_resume(const std::string& text, const upload::Job& job,
                                    uint64_t part_size);

}  // namespace photorig::targets::s3
