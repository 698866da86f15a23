#include "spool/photo_names.h"

#include <cstdio>

#include "core/ids.h"

namespace photorig::spool {

std::string safe_name_part(const std::string& text) {
    std::string out;
    for (char c : text) {
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
        out.push_back(keep ? c : '_');
    }
    while (!out.empty() && out[0] == '.') out.erase(0, 1);
    return out.empty() ? "x" : out;
}

namespace {
// A camera's file name may be 254 characters (PTP) but a path component only 255 bytes,
// with our prefix, the dedup tag and the temp suffix: keep its start and its extension.
// The serial gets the same treatment (a USB serial is up to 126 characters, PTP's 254).
constexpr size_t kMaxCameraNamePart = 80;
constexpr size_t kMaxSerialPart = 64;

std::string bounded_name_part(const std::string& name, size_t max) {
    if (name.size() <= max) return name;
    auto dot = name.rfind('.');
    std::string ext = dot != std::string::npos && name.size() - dot <= 10 ? name.substr(dot) : "";
    return name.substr(0, max - ext.size()) + ext;
}
}  // namespace

std::string photo_relative_path(const std::string& batch, int seq, const std::string& camera_serial,
                                const std::string& camera_file_name) {
    std::string prefix = bounded_name_part(
        safe_name_part(camera_serial.empty() ? "cam" : camera_serial), kMaxSerialPart);
    char seq_text[16];
    std::snprintf(seq_text, sizeof seq_text, "%04d", seq);
    return batch + "/" + prefix + "_" + seq_text + "_" +
           bounded_name_part(safe_name_part(camera_file_name), kMaxCameraNamePart);
}

PhotoWriters::PhotoWriters(const Spool& spool, std::string batch, int seq,
                           std::string camera_serial)
    : spool_(spool),
      batch_(std::move(batch)),
      camera_serial_(std::move(camera_serial)),
      seq_(seq) {}

Expected<std::shared_ptr<SpoolWriter>> PhotoWriters::open(const std::string& camera_file_name) {
    std::string rel = photo_relative_path(batch_, seq_, camera_serial_, camera_file_name);
    if (spool_.exists(rel)) {
        // The same batch id was used before: keep both photos, never overwrite.
        std::string name = rel.substr(batch_.size() + 1);
        auto dot = name.rfind('.');
        std::string tag = "_" + ids::random_hex(6);
        name = dot == std::string::npos ? name + tag : name.substr(0, dot) + tag + name.substr(dot);
        rel = batch_ + "/" + name;
    }
    auto writer = spool_.create_writer(rel);
    if (!writer) return writer.error();
    auto shared = std::shared_ptr<SpoolWriter>(std::move(*writer));
    std::lock_guard<std::mutex> lock(mutex_);
    writers_.emplace_back(rel, shared);
    return shared;
}

std::vector<PhotoWriters::Named> PhotoWriters::writers() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return writers_;
}

}  // namespace photorig::spool
