// Photo naming: where in the spool a downloaded photo goes. A photo of batch B, shot S,
// from the camera with serial C, which the camera calls N, is "B/C_SSSS_N" (each part made
// safe for a file name); a name the batch already holds (the same batch id used twice)
// gets a random tag before its extension, so no photo ever replaces another.
//
// Threads: PhotoWriters::open runs on a camera's worker thread (one call per file that
// camera downloads); the capture thread reads writers() once the download has finished.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/expected.h"
#include "spool/spool.h"

namespace photorig::spool {

// Letters, digits, '-', '_' and '.' stay; anything else becomes '_'; leading dots go; "" is "x".
std::string safe_name_part(const std::string& text);

// "B/C_SSSS_N" for one photo, before any collision tag.
std::string photo_relative_path(const std::string& batch, int seq, const std::string& camera_serial,
                                const std::string& camera_file_name);

// The writers of one camera's files for one shot, in the order the camera sent them.
class PhotoWriters {
  public:
    PhotoWriters(const Spool& spool, std::string batch, int seq, std::string camera_serial);

    // Names the file (tagging it if the name is taken) and opens its writer.
    Expected<std::shared_ptr<SpoolWriter>> open(const std::string& camera_file_name);

    using Named = std::pair<std::string, std::shared_ptr<SpoolWriter>>;  // relative path, writer
    std::vector<Named> writers() const;

  private:
    const Spool& spool_;
    const std::string batch_, camera_serial_;
    const int seq_;
    mutable std::mutex mutex_;
    std::vector<Named> writers_;
};

}  // namespace photorig::spool
