// EXIF/JPEG bytes as a camera delivers them: media::parse_exif on the start of a file (what
// the capture pipeline calls on the head it kept while spooling), then the photo's metadata
// as the pipeline builds it (capture_metadata_json: the sidecar and the capture message) and
// parsed back as the spool reconciler reads a sidecar. Input: the file's first bytes.
#include "media/exif.h"

#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace photorig;
    media::ExifInfo e = media::parse_exif(data, size);
    if (e.exposure_time) (void)media::format_exposure(*e.exposure_time);
    if (e.orientation) PHOTORIG_FUZZ_CHECK(*e.orientation >= 1 && *e.orientation <= 8);

    // As rig/spooled_photo.cpp's to_wire() maps it.
    protocol::CaptureMetadata m;
    m.rig_id = "rig1";
    m.batch = "b1";
    m.capture_id = "c1";
    m.file_name = "IMG_0001.JPG";
    m.mime = media::mime_for_name(m.file_name);
    m.exif.iso = e.iso;
    m.exif.exposure_time = e.exposure_time;
    m.exif.exposure_time_text = e.exposure_time_text;
    m.exif.f_number = e.f_number;
    m.exif.focal_length = e.focal_length_mm;
    m.exif.make = e.make;
    m.exif.model = e.model;
    m.exif.body_serial = e.body_serial;
    m.exif.datetime_original = e.datetime_original;
    m.exif.width = e.width;
    m.exif.height = e.height;
    const std::string sidecar = protocol::capture_metadata_json(m);
    auto back = protocol::parse_capture_metadata(sidecar);
    PHOTORIG_FUZZ_CHECK(back.has_value() && back->capture_id == m.capture_id);
    return 0;
}
