// EXIF from photos built byte by byte here: a TIFF structure (either byte order) wrapped
// in a JPEG APP1 segment, or alone as a TIFF-based raw.
#include "media/exif.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/test_util.h"

using photorig::media::format_exposure;
using photorig::media::mime_for_name;
using photorig::media::read_exif;
using photorig::test::TempDir;
using photorig::test::write_file;

namespace {
enum Type : uint16_t { BYTE = 1, ASCII = 2, SHORT = 3, LONG = 4, RATIONAL = 5, SRATIONAL = 10 };

struct Tag {
    uint16_t tag;
    uint16_t type;
    uint32_t count;
    std::vector<uint8_t> value;  // already in the file's byte order
};

// Minimal TIFF writer: IFD0 + one Exif sub-IFD, values > 4 bytes placed after each IFD.
class Tiff {
  public:
    explicit Tiff(bool little) : le_(little) {}
    std::vector<uint8_t> u16(uint16_t v) const {
        return le_ ? std::vector<uint8_t>{uint8_t(v), uint8_t(v >> 8)}
                   : std::vector<uint8_t>{uint8_t(v >> 8), uint8_t(v)};
    }
    std::vector<uint8_t> u32(uint32_t v) const {
        auto lo = u16(uint16_t(v & 0xffff)), hi = u16(uint16_t(v >> 16));
        std::vector<uint8_t> out = le_ ? lo : hi;
        auto second = le_ ? hi : lo;
        out.insert(out.end(), second.begin(), second.end());
        return out;
    }
    Tag ascii(uint16_t tag, const std::string& s) const {
        std::vector<uint8_t> v(s.begin(), s.end());
        v.push_back(0);
        return {tag, ASCII, uint32_t(v.size()), v};
    }
    Tag short_(uint16_t tag, uint16_t v) const { return {tag, SHORT, 1, u16(v)}; }
    Tag long_(uint16_t tag, uint32_t v) const { return {tag, LONG, 1, u32(v)}; }
    Tag rational(uint16_t tag, uint32_t num, uint32_t den) const {
        auto v = u32(num);
        auto d = u32(den);
        v.insert(v.end(), d.begin(), d.end());
        return {tag, RATIONAL, 1, v};
    }

    std::vector<uint8_t> build(std::vector<Tag> ifd0, const std::vector<Tag>& exif) const {
        std::vector<uint8_t> out;
        if (le_) {
            out = {'I', 'I', 0x2a, 0x00};
        } else {
            out = {'M', 'M', 0x00, 0x2a};
        }
        append(out, u32(8));
        // IFD0 size is known in advance: place the Exif IFD right after IFD0 and its data.
        ifd0.push_back(long_(0x8769, 0));  // ExifIFDPointer, patched below
        size_t exif_ptr_index = ifd0.size() - 1;
        size_t ifd0_size = 2 + 12 * ifd0.size() + 4 + data_size(ifd0);
        ifd0[exif_ptr_index].value = u32(uint32_t(8 + ifd0_size));
        write_ifd(out, ifd0, 8);
        write_ifd(out, exif, out.size());
        return out;
    }

  private:
    static void append(std::vector<uint8_t>& out, const std::vector<uint8_t>& v) {
        out.insert(out.end(), v.begin(), v.end());
    }
    static size_t data_size(const std::vector<Tag>& tags) {
        size_t n = 0;
        for (const auto& t : tags) {
            if (t.value.size() > 4) n += (t.value.size() + 1) & ~size_t(1);
        }
        return n;
    }
    void write_ifd(std::vector<uint8_t>& out, std::vector<Tag> tags, size_t at) const {
        std::sort(tags.begin(), tags.end(),
                  [](const Tag& a, const Tag& b) { return a.tag < b.tag; });
        ASSERT_EQ(out.size(), at);
        size_t data_at = at + 2 + 12 * tags.size() + 4;
        std::vector<uint8_t> data;
        append(out, u16(uint16_t(tags.size())));
        for (const auto& t : tags) {
            append(out, u16(t.tag));
            append(out, u16(t.type));
            append(out, u32(t.count));
            if (t.value.size() <= 4) {
                std::vector<uint8_t> v = t.value;
                v.resize(4, 0);
                append(out, v);
            } else {
                append(out, u32(uint32_t(data_at + data.size())));
                append(data, t.value);
                if (data.size() % 2) data.push_back(0);
            }
        }
        append(out, u32(0));  // no next IFD
        append(out, data);
    }
    bool le_;
};

std::vector<uint8_t> camera_tiff(bool little) {
    Tiff t(little);
    return t.build({t.ascii(0x010f, "Canon"), t.ascii(0x0110, "Canon EOS R6"), t.short_(0x0112, 6)},
                   {t.rational(0x829a, 1, 125),                    // ExposureTime
                    t.rational(0x829d, 28, 10),                    // FNumber 2.8
                    t.short_(0x8827, 400),                         // ISOSpeedRatings
                    t.ascii(0x9003, "2026:11:25 04:10:15"),        // DateTimeOriginal
                    t.rational(0x920a, 50, 1),                     // FocalLength
                    t.long_(0xa002, 6000), t.long_(0xa003, 4000),  // PixelX/YDimension
                    t.ascii(0xa431, "012345678901")});             // BodySerialNumber
}

void segment(std::string& jpeg, uint8_t marker, const std::string& payload) {
    size_t len = payload.size() + 2;
    jpeg += char(0xFF);
    jpeg += char(marker);
    jpeg += char(len >> 8);
    jpeg += char(len & 0xff);
    jpeg += payload;
}

// SOI, [APP0 JFIF], [padding APPn], APP1 Exif, DQT, SOF0 (w x h), DHT, SOS, data, EOI.
std::string jpeg_with(const std::vector<uint8_t>* tiff, int w, int h, size_t app2_padding = 0) {
    std::string j = "\xFF\xD8";
    segment(j, 0xE0, std::string("JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00", 14));
    while (app2_padding > 0) {
        size_t n = std::min<size_t>(app2_padding, 60000);
        segment(j, 0xE2, std::string(n, 'p'));
        app2_padding -= n;
    }
    if (tiff)
        segment(j, 0xE1, std::string("Exif\0\0", 6) + std::string(tiff->begin(), tiff->end()));
    segment(j, 0xDB, std::string(1, '\0') + std::string(64, '\x01'));
    std::string sof = {8, char(h >> 8), char(h & 0xff), char(w >> 8), char(w & 0xff), 1, 1, 0x11,
                       0};
    segment(j, 0xC0, sof);
    segment(j, 0xC4, std::string(1, '\0') + std::string(16, '\0'));
    segment(j, 0xDA, std::string("\x01\x01\x00\x00\x3f\x00", 6));
    j += std::string(200, '\x55');
    j += "\xFF\xD9";
    return j;
}
}  // namespace

TEST(Exif, ReadsCameraFieldsFromJpegBothByteOrders) {
    for (bool little : {true, false}) {
        TempDir tmp;
        auto tiff = camera_tiff(little);
        std::string path = tmp.file("IMG_0001.JPG");
        write_file(path, jpeg_with(&tiff, 640, 480));
        auto e = read_exif(path);
        ASSERT_TRUE(e) << e.error().describe();
        SCOPED_TRACE(little ? "II" : "MM");
        ASSERT_TRUE(e->iso);
        EXPECT_EQ(*e->iso, 400);
        ASSERT_TRUE(e->exposure_time);
        EXPECT_DOUBLE_EQ(*e->exposure_time, 1.0 / 125);
        EXPECT_EQ(e->exposure_time_text.value_or(""), "1/125");
        ASSERT_TRUE(e->f_number);
        EXPECT_DOUBLE_EQ(*e->f_number, 2.8);
        ASSERT_TRUE(e->focal_length_mm);
        EXPECT_DOUBLE_EQ(*e->focal_length_mm, 50.0);
        EXPECT_EQ(e->make.value_or(""), "Canon");
        EXPECT_EQ(e->model.value_or(""), "Canon EOS R6");
        EXPECT_EQ(e->body_serial.value_or(""), "012345678901");
        EXPECT_EQ(e->datetime_original.value_or(""), "2026:11:25 04:10:15");
        EXPECT_EQ(e->orientation.value_or(0), 6);
        // A JPEG's own frame header wins over the EXIF pixel size.
        EXPECT_EQ(e->width.value_or(0), 640);
        EXPECT_EQ(e->height.value_or(0), 480);
    }
}

TEST(Exif, ReadsTiffBasedRaw) {
    TempDir tmp;
    auto tiff = camera_tiff(true);
    tiff.resize(300000, 0);  // pixel data beyond the read window
    std::string path = tmp.file("DSC_0001.NEF");
    write_file(path, std::string(tiff.begin(), tiff.end()));
    auto e = read_exif(path);
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_EQ(e->iso.value_or(0), 400);
    EXPECT_EQ(e->exposure_time_text.value_or(""), "1/125");
    EXPECT_DOUBLE_EQ(e->f_number.value_or(0), 2.8);
    EXPECT_DOUBLE_EQ(e->focal_length_mm.value_or(0), 50.0);
    EXPECT_EQ(e->width.value_or(0), 6000);
    EXPECT_EQ(e->height.value_or(0), 4000);
}

TEST(Exif, MissingExifIsEmptyNotAnError) {
    TempDir tmp;
    write_file(tmp.file("plain.jpg"), jpeg_with(nullptr, 32, 16));
    auto e = read_exif(tmp.file("plain.jpg"));
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_FALSE(e->iso);
    EXPECT_FALSE(e->exposure_time);
    EXPECT_FALSE(e->make);
    EXPECT_EQ(e->width.value_or(0), 32);

    write_file(tmp.file("junk.cr3"), std::string(5000, 'z'));
    auto j = read_exif(tmp.file("junk.cr3"));
    ASSERT_TRUE(j);
    EXPECT_TRUE(j->empty());

    write_file(tmp.file("empty.jpg"), "");
    auto z = read_exif(tmp.file("empty.jpg"));
    ASSERT_TRUE(z);
    EXPECT_TRUE(z->empty());

    // A truncated APP1 (the file ends inside it) is not a crash and not an error.
    auto tiff = camera_tiff(true);
    std::string cut = jpeg_with(&tiff, 10, 10).substr(0, 60);
    write_file(tmp.file("cut.jpg"), cut);
    EXPECT_TRUE(read_exif(tmp.file("cut.jpg")));
}

TEST(Exif, MissingFileIsAnError) {
    TempDir tmp;
    auto e = read_exif(tmp.file("nope.jpg"));
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, "not_found");
}

TEST(Exif, ReadsOnlyTheStartOfTheFile) {
    TempDir tmp;
    auto tiff = camera_tiff(true);
    // 180 KB of APP2 before the Exif segment: past the 128 KiB window, so not seen...
    write_file(tmp.file("late.jpg"), jpeg_with(&tiff, 8, 8, 180000));
    auto e = read_exif(tmp.file("late.jpg"));
    ASSERT_TRUE(e);
    EXPECT_FALSE(e->iso);
    // ...but found with a larger window.
    auto wide = read_exif(tmp.file("late.jpg"), 512 * 1024);
    ASSERT_TRUE(wide);
    EXPECT_EQ(wide->iso.value_or(0), 400);
}

TEST(Exif, ExposureText) {
    EXPECT_EQ(format_exposure(1.0 / 125), "1/125");
    EXPECT_EQ(format_exposure(1.0 / 4000), "1/4000");
    EXPECT_EQ(format_exposure(0.5), "1/2");
    EXPECT_EQ(format_exposure(0.3333333), "1/3");
    EXPECT_EQ(format_exposure(0.6), "0.6");
    EXPECT_EQ(format_exposure(1.0), "1");
    EXPECT_EQ(format_exposure(2.5), "2.5");
    EXPECT_EQ(format_exposure(30), "30");
}

TEST(Mime, ForName) {
    EXPECT_EQ(mime_for_name("IMG_0001.JPG"), "image/jpeg");
    EXPECT_EQ(mime_for_name("a.jpeg"), "image/jpeg");
    EXPECT_EQ(mime_for_name("a.CR2"), "image/x-canon-cr2");
    EXPECT_EQ(mime_for_name("a.cr3"), "image/x-canon-cr3");
    EXPECT_EQ(mime_for_name("a.nef"), "image/x-nikon-nef");
    EXPECT_EQ(mime_for_name("a.ARW"), "image/x-sony-arw");
    EXPECT_EQ(mime_for_name("a.raf"), "image/x-fuji-raf");
    EXPECT_EQ(mime_for_name("a.dng"), "image/x-adobe-dng");
    EXPECT_EQ(mime_for_name("a.orf"), "image/x-olympus-orf");
    EXPECT_EQ(mime_for_name("a.rw2"), "image/x-panasonic-rw2");
    EXPECT_EQ(mime_for_name("a.xyz"), "application/octet-stream");
    EXPECT_EQ(mime_for_name("noext"), "application/octet-stream");
    EXPECT_EQ(mime_for_name("dir.jpg/file"), "application/octet-stream");
}
