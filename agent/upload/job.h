// One spooled file that must reach the upload target exactly once: what the journal keeps
// and every Target uploads. The uploader maps the wire's upload job (protocol) onto it, so
// nothing in `upload` or `targets` depends on the MQTT message format.
#pragma once

#include <cstdint>
#include <string>

namespace photorig::upload {

struct Job {
    std::string job_id;  // stable per spooled file: a re-offer carries the same id
    std::string capture_id;
    std::string rig_id;
    std::string batch;
    std::string path;         // absolute path of the spooled file
    std::string remote_name;  // file name at the target (the spool file's name)
    std::string mime;
    std::string sha256;  // hex, of the spooled file
    uint64_t size = 0;
    int64_t captured_at_ms = 0;  // epoch ms; gives {date} in templates
};

}  // namespace photorig::upload
