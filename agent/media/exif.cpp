#include "media/exif.h"

#include <fcntl.h>
#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/text.h"

namespace photorig::media {
namespace {

uint16_t be16(const unsigned char* p) {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t be32(const unsigned char* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Frame size from the JPEG's own SOF marker (top-level segments only, so an embedded
// thumbnail inside APP1 is skipped). False if not found within `len`.
bool jpeg_frame_size(const unsigned char* d, size_t len, int* width, int* height) {
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8) return false;
    size_t p = 2;
    while (p + 4 <= len) {
        if (d[p] != 0xFF) return false;  // lost sync
        unsigned char m = d[p + 1];
        if (m == 0xFF) {  // fill byte
            ++p;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // standalone markers
            p += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA) return false;  // EOI / start of scan: no SOF before it
        uint16_t seglen = be16(d + p + 2);
        if (seglen < 2) return false;
        bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof) {
            if (p + 9 > len) return false;
            *height = be16(d + p + 5);
            *width = be16(d + p + 7);
            return *width > 0 && *height > 0;
        }
        p += 2 + seglen;
    }
    return false;
}

std::optional<std::string> get_string(ExifContent* ifd, ExifTag tag) {
    if (!ifd) return std::nullopt;
    ExifEntry* e = exif_content_get_entry(ifd, tag);
    if (!e || !e->data || e->size == 0) return std::nullopt;
    if (e->format != EXIF_FORMAT_ASCII && e->format != EXIF_FORMAT_UNDEFINED) return std::nullopt;
    std::string s(reinterpret_cast<const char*>(e->data), e->size);
    auto nul = s.find('\0');
    if (nul != std::string::npos) s.resize(nul);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t start = 0;
    while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
    s.erase(0, start);
    for (auto& c : s) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // keep it printable for JSON/logs
    }
    if (s.empty()) return std::nullopt;
    return text::valid_utf8(s);  // EXIF ASCII is whatever bytes the firmware wrote
}

std::optional<double> get_number(ExifContent* ifd, ExifTag tag, ExifByteOrder order) {
    if (!ifd) return std::nullopt;
    ExifEntry* e = exif_content_get_entry(ifd, tag);
    if (!e || !e->data || e->components < 1) return std::nullopt;
    size_t unit = exif_format_get_size(e->format);
    if (unit == 0 || e->size < unit) return std::nullopt;
    switch (e->format) {
        case EXIF_FORMAT_BYTE:
            return static_cast<double>(e->data[0]);
        case EXIF_FORMAT_SHORT:
            return static_cast<double>(exif_get_short(e->data, order));
        case EXIF_FORMAT_SSHORT:
            return static_cast<double>(exif_get_sshort(e->data, order));
        case EXIF_FORMAT_LONG:
            return static_cast<double>(exif_get_long(e->data, order));
        case EXIF_FORMAT_SLONG:
            return static_cast<double>(exif_get_slong(e->data, order));
        case EXIF_FORMAT_RATIONAL: {
            ExifRational r = exif_get_rational(e->data, order);
            if (r.denominator == 0) return std::nullopt;
            return static_cast<double>(r.numerator) / static_cast<double>(r.denominator);
        }
        case EXIF_FORMAT_SRATIONAL: {
            ExifSRational r = exif_get_srational(e->data, order);
            if (r.denominator == 0) return std::nullopt;
            return static_cast<double>(r.numerator) / static_cast<double>(r.denominator);
        }
        default:
            return std::nullopt;
    }
}

std::optional<int> get_int(ExifContent* ifd, ExifTag tag, ExifByteOrder order) {
    auto v = get_number(ifd, tag, order);
    if (!v || !std::isfinite(*v) || *v < -2147483648.0 || *v > 2147483647.0) return std::nullopt;
    return static_cast<int>(std::lround(*v));
}

void fill_from_exif(ExifData* ed, ExifInfo* out) {
    ExifByteOrder order = exif_data_get_byte_order(ed);
    ExifContent* ifd0 = ed->ifd[EXIF_IFD_0];
    ExifContent* exif = ed->ifd[EXIF_IFD_EXIF];

    out->make = get_string(ifd0, EXIF_TAG_MAKE);
    out->model = get_string(ifd0, EXIF_TAG_MODEL);
    out->body_serial = get_string(exif, EXIF_TAG_BODY_SERIAL_NUMBER);
    out->datetime_original = get_string(exif, EXIF_TAG_DATE_TIME_ORIGINAL);
    if (!out->datetime_original) out->datetime_original = get_string(ifd0, EXIF_TAG_DATE_TIME);

    auto iso = get_int(exif, EXIF_TAG_ISO_SPEED_RATINGS, order);
    if (!iso || *iso == 65535 || *iso <= 0) {  // 65535: "too high to fit", see ISOSpeed
        auto iso2 = get_int(exif, EXIF_TAG_ISO_SPEED, order);
        if (!iso2 || *iso2 <= 0)
            iso2 = get_int(exif, static_cast<ExifTag>(0x8832), order);  // RecommendedExposureIndex
        if (iso2 && *iso2 > 0) iso = iso2;
    }
    if (iso && *iso > 0) out->iso = iso;

    auto t = get_number(exif, EXIF_TAG_EXPOSURE_TIME, order);
    if (!t || *t <= 0) {
        auto tv = get_number(exif, EXIF_TAG_SHUTTER_SPEED_VALUE, order);  // APEX: t = 2^-Tv
        if (tv && std::fabs(*tv) < 64) t = std::pow(2.0, -*tv);
    }
    if (t && *t > 0 && std::isfinite(*t)) {
        out->exposure_time = *t;
        out->exposure_time_text = format_exposure(*t);
    }

    auto f = get_number(exif, EXIF_TAG_FNUMBER, order);
    if (!f || *f <= 0) {
        auto av = get_number(exif, EXIF_TAG_APERTURE_VALUE, order);  // APEX: N = 2^(Av/2)
        if (av && *av >= 0 && *av < 64) f = std::round(std::pow(2.0, *av / 2.0) * 10.0) / 10.0;
    }
    if (f && *f > 0 && std::isfinite(*f)) out->f_number = *f;

    auto fl = get_number(exif, EXIF_TAG_FOCAL_LENGTH, order);
    if (fl && *fl > 0 && std::isfinite(*fl)) out->focal_length_mm = *fl;

    auto w = get_int(exif, EXIF_TAG_PIXEL_X_DIMENSION, order);
    auto h = get_int(exif, EXIF_TAG_PIXEL_Y_DIMENSION, order);
    if (!(w && h && *w > 0 && *h > 0)) {
        // IFD0's size is the main image only when it is not a reduced-resolution subfile.
        auto subfile = get_int(ifd0, EXIF_TAG_NEW_SUBFILE_TYPE, order);
        if (!subfile || *subfile == 0) {
            w = get_int(ifd0, EXIF_TAG_IMAGE_WIDTH, order);
            h = get_int(ifd0, EXIF_TAG_IMAGE_LENGTH, order);
        }
    }
    if (w && h && *w > 0 && *h > 0) {
        out->width = w;
        out->height = h;
    }

    auto o = get_int(ifd0, EXIF_TAG_ORIENTATION, order);
    if (o && *o >= 1 && *o <= 8) out->orientation = o;
}

bool load_into(const unsigned char* data, size_t len, ExifInfo* out) {
    if (len < 6 || len > 0x7fffffff) return false;
    ExifData* ed = exif_data_new();
    if (!ed) return false;
    // FOLLOW_SPECIFICATION would invent mandatory tags with default values (e.g. a pixel
    // size of 0): report only what the camera wrote.
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_unset_option(ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
    exif_data_load_data(ed, data, static_cast<unsigned int>(len));
    bool any = false;
    for (int i = 0; i < EXIF_IFD_COUNT; ++i) any = any || (ed->ifd[i] && ed->ifd[i]->count > 0);
    if (any) fill_from_exif(ed, out);
    exif_data_unref(ed);
    return any;
}

bool is_tiff_like(const unsigned char* d, size_t len) {
    if (len < 8) return false;
    return (d[0] == 'I' && d[1] == 'I' &&
            ((d[2] == 0x2a && d[3] == 0) ||                    // TIFF, CR2, NEF, ARW, DNG, PEF
             (d[2] == 'R' && (d[3] == 'O' || d[3] == 'S')) ||  // ORF
             (d[2] == 'U' && d[3] == 0))) ||                   // RW2
           (d[0] == 'M' && d[1] == 'M' &&
            ((d[2] == 0 && d[3] == 0x2a) || (d[2] == 'O' && d[3] == 'R')));
}
}  // namespace

std::string format_exposure(double t) {
    char buf[32];
    if (!(t > 0) || !std::isfinite(t)) return "";
    if (t < 1.0) {
        double n = 1.0 / t;
        double r = std::round(n);
        if (r >= 1 && std::fabs(n - r) / n < 0.05) {
            std::snprintf(buf, sizeof buf, "1/%.0f", r);
            return buf;
        }
        std::snprintf(buf, sizeof buf, "%.1f", t);
        return buf;
    }
    std::snprintf(buf, sizeof buf, "%.1f", t);
    std::string s = buf;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s;
}

ExifInfo parse_exif(const unsigned char* data, size_t len) {
    ExifInfo info;
    if (!data || len < 8) return info;
    if (data[0] == 0xFF && data[1] == 0xD8) {
        load_into(data, len, &info);
        int w = 0, h = 0;
        if (jpeg_frame_size(data, len, &w, &h)) {  // the frame header is the truth for a JPEG
            info.width = w;
            info.height = h;
        }
    } else if (is_tiff_like(data, len)) {
        // libexif wants the "Exif\0\0" APP1 payload: prefix it, and give raw variants with
        // their own magic (ORF, RW2) the standard TIFF 42 so their IFDs are read.
        std::vector<unsigned char> buf(len + 6);
        std::memcpy(buf.data(), "Exif\0\0", 6);
        std::memcpy(buf.data() + 6, data, len);
        bool intel = data[0] == 'I';
        buf[6 + 2] = intel ? 0x2a : 0x00;
        buf[6 + 3] = intel ? 0x00 : 0x2a;
        load_into(buf.data(), buf.size(), &info);
    } else if (len >= 92 && std::memcmp(data, "FUJIFILMCCD-RAW", 15) == 0) {
        // RAF: the camera's EXIF lives in the embedded JPEG preview (offset at byte 84).
        uint32_t off = be32(data + 84);
        if (off >= 92 && off < len) {
            load_into(data + off, len - off, &info);
            info.width.reset();  // the preview's size, not the raw's
            info.height.reset();
        }
    }
    return info;
}

Expected<ExifInfo> read_exif(const std::string& path, size_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return make_error(err == ENOENT ? "not_found" : "io_error",
                          "exif: open " + path + ": " + std::strerror(err));
    }
    std::vector<unsigned char> buf(max_bytes);
    size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            return make_error("io_error", "exif: read " + path + ": " + std::strerror(err));
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    ::close(fd);
    return parse_exif(buf.data(), got);
}

std::string mime_for_name(const std::string& name) {
    auto dot = name.find_last_of('.');
    auto slash = name.find_last_of('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
        return "application/octet-stream";
    std::string ext;
    for (char c : name.substr(dot + 1))
        ext.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    struct Mime {
        const char* ext;
        const char* mime;
    };
    static const Mime table[] = {
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"jpe", "image/jpeg"},
        {"cr2", "image/x-canon-cr2"},
        {"cr3", "image/x-canon-cr3"},
        {"crw", "image/x-canon-crw"},
        {"nef", "image/x-nikon-nef"},
        {"nrw", "image/x-nikon-nrw"},
        {"arw", "image/x-sony-arw"},
        {"srf", "image/x-sony-srf"},
        {"sr2", "image/x-sony-sr2"},
        {"raf", "image/x-fuji-raf"},
        {"dng", "image/x-adobe-dng"},
        {"orf", "image/x-olympus-orf"},
        {"rw2", "image/x-panasonic-rw2"},
        {"pef", "image/x-pentax-pef"},
        {"srw", "image/x-samsung-srw"},
        {"x3f", "image/x-sigma-x3f"},
        {"iiq", "image/x-phaseone-iiq"},
        {"3fr", "image/x-hasselblad-3fr"},
        {"png", "image/png"},
        {"tif", "image/tiff"},
        {"tiff", "image/tiff"},
        {"heic", "image/heic"},
        {"heif", "image/heif"},
        {"webp", "image/webp"},
        {"avif", "image/avif"},
        {"mp4", "video/mp4"},
        {"mov", "video/quicktime"},
    };
    for (const auto& m : table) {
        if (ext == m.ext) return m.mime;
    }
    return "application/octet-stream";
}

}  // namespace photorig::media
