#include "upload/target.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/clock.h"

namespace photorig::upload {

Target::~Target() = default;

Status check_source_size(const upload::Job& job, const std::string& what) {
    struct stat st {};
    if (::stat(job.path.c_str(), &st) != 0) {
        int err = errno;
        return make_error(err == ENOENT ? "source_missing" : "io_error",
                          what + ": " + job.path + ": " + std::strerror(err));
    }
    if (static_cast<uint64_t>(st.st_size) != job.size)
        return make_error("checksum_mismatch",
                          what + ": " + job.path + " holds " + std::to_string(st.st_size) +
                              " bytes, the job says " + std::to_string(job.size));
    return ok();
}

namespace {
Status check_value(const std::string& field, const std::string& v) {
    if (v.empty())
        return make_error("invalid_name", "template field {" + field + "} is empty in the job");
    if (v == "." || v == "..")
        return make_error("invalid_name", "template field {" + field + "} is '" + v + "'");
    for (char c : v) {
        if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return make_error("invalid_name", "template field {" + field +
                                                  "} holds '/', '\\\\' or a control character");
        }
    }
    return ok();
}
}  // namespace

Expected<std::string> expand_template(const std::string& tmpl, const upload::Job& job) {
    if (tmpl.empty()) return make_error("bad_template", "empty path template");
    if (tmpl[0] == '/')
        return make_error("bad_template", "path template '" + tmpl + "' is absolute");
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        char c = tmpl[i];
        if (c == '}')
            return make_error("bad_template", "stray '}' in path template '" + tmpl + "'");
        if (c != '{') {
            out.push_back(c);
            continue;
        }
        auto close = tmpl.find('}', i);
        if (close == std::string::npos)
            return make_error("bad_template", "unclosed '{' in path template '" + tmpl + "'");
        std::string field = tmpl.substr(i + 1, close - i - 1);
        std::string value;
        if (field == "rig_id")
            value = job.rig_id;
        else if (field == "batch")
            value = job.batch;
        else if (field == "name")
            value = job.remote_name;
        else if (field == "capture_id")
            value = job.capture_id;
        else if (field == "date")
            value = clock::date_utc(job.captured_at_ms);
        else {
            return make_error(
                "bad_template",
                "unknown field {" + field +
                    "} in path template (known: rig_id, batch, name, capture_id, date)");
        }
        if (auto st = check_value(field, value); !st) return st.error();
        out += value;
        i = close;
    }
    // Every component of the result must be a plain name (fields are checked above, so a
    // bad component comes from the template itself).
    size_t start = 0;
    for (;;) {
        size_t slash = out.find('/', start);
        std::string comp =
            out.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (comp.empty() || comp == "." || comp == "..") {
            return make_error("bad_template", "path template '" + tmpl + "' gives '" + out +
                                                  "' (empty, '.' or '..' component)");
        }
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return out;
}

Status validate_template(const std::string& tmpl) {
    upload::Job sample;
    sample.rig_id = "rig1";
    sample.batch = "batch";
    sample.remote_name = "IMG_0001.JPG";
    sample.capture_id = "0123456789abcdef01234567";
    sample.captured_at_ms = 1764043815000;
    auto r = expand_template(tmpl, sample);
    if (!r) return r.error();
    return ok();
}

bool is_permanent_error(const Error& e) {
    return e.code == "checksum_mismatch" || e.code == "source_missing" || e.code == "bad_request" ||
           e.code == "bad_template" || e.code == "invalid_name";
}

}  // namespace photorig::upload
