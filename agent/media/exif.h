// Photo metadata from the file itself: EXIF via libexif, MIME type from the name.
//
// read_exif reads only the first `max_bytes` of the file (EXIF sits at the start; photos
// are up to 50 MB). JPEG (APP1 "Exif"), TIFF-based raws (CR2, NEF, ARW, DNG, PEF, ORF,
// RW2) and the JPEG preview inside a Fuji RAF are understood; other files (CR3, PNG...)
// give an empty ExifInfo. Missing or damaged EXIF is not an error; an unreadable file is
// ("io_error", or "not_found" if it does not exist).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "core/expected.h"

namespace photorig::media {

struct ExifInfo {
    std::optional<std::string> make, model, body_serial;
    std::optional<std::string> datetime_original;  // as in the file: "2026:11:25 04:10:15"
    std::optional<int> iso;
    std::optional<double> exposure_time;            // seconds
    std::optional<std::string> exposure_time_text;  // "1/125", "0.6", "2", "30"
    std::optional<double> f_number;
    std::optional<double> focal_length_mm;
    std::optional<int> width, height;  // pixels (JPEG: from the frame header)
    std::optional<int> orientation;    // 1..8

    bool empty() const {
        return !make && !model && !body_serial && !datetime_original && !iso && !exposure_time &&
               !f_number && !focal_length_mm && !width && !height && !orientation;
    }
};

constexpr size_t kExifReadBytes = 128 * 1024;

Expected<ExifInfo> read_exif(const std::string& path, size_t max_bytes = kExifReadBytes);
// The same on bytes already in memory (the start of a file).
ExifInfo parse_exif(const unsigned char* data, size_t len);

// By extension, case-insensitive: jpg/jpeg -> image/jpeg; raws -> image/x-canon-cr2,
// image/x-canon-cr3, image/x-nikon-nef, image/x-sony-arw, image/x-fuji-raf,
// image/x-adobe-dng, image/x-olympus-orf, image/x-panasonic-rw2, ...; also png, tiff,
// heic/heif; anything else application/octet-stream.
std::string mime_for_name(const std::string& name);

// "1/125" for 0.008, "0.6" for 0.6, "2" for 2.0, "2.5" for 2.5.
std::string format_exposure(double seconds);

}  // namespace photorig::media
