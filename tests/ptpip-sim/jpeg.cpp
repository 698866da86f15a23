#include "jpeg.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace ptpsim {
namespace {

// ---------------------------------------------------------------------------------------
// Huffman tables: ITU-T T.81 Annex K.3 (typical tables for 8-bit baseline).

struct HuffSpec {
    uint8_t bits[16];             // number of codes of length 1..16
    std::vector<uint8_t> values;  // symbols in order of increasing code length
};

const HuffSpec kLumDc = {{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
                         {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}};
const HuffSpec kChromDc = {{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
                           {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}};
const HuffSpec kLumAc = {
    {0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d},
    {0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
     0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52,
     0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
     0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45,
     0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
     0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
     0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
     0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
     0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3,
     0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8,
     0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa}};
const HuffSpec kChromAc = {
    {0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77},
    {0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61,
     0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
     0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
     0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44,
     0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63,
     0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
     0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97,
     0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
     0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
     0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
     0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa}};

// Code and length per symbol, derived from a spec with the canonical procedure of
// T.81 Annex C (Generate_size_table / Generate_code_table).
struct HuffCodes {
    std::array<uint16_t, 256> code{};
    std::array<uint8_t, 256> len{};
};

HuffCodes build_codes(const HuffSpec& spec) {
    HuffCodes out;
    uint16_t code = 0;
    size_t k = 0;
    for (int l = 1; l <= 16; ++l) {
        for (int i = 0; i < spec.bits[l - 1]; ++i) {
            uint8_t sym = spec.values[k++];
            out.code[sym] = code;
            out.len[sym] = static_cast<uint8_t>(l);
            ++code;
        }
        code = static_cast<uint16_t>(code << 1);
    }
    return out;
}

const HuffCodes& lum_dc() {
    static const HuffCodes c = build_codes(kLumDc);
    return c;
}
const HuffCodes& chrom_dc() {
    static const HuffCodes c = build_codes(kChromDc);
    return c;
}
const HuffCodes& lum_ac() {
    static const HuffCodes c = build_codes(kLumAc);
    return c;
}
const HuffCodes& chrom_ac() {
    static const HuffCodes c = build_codes(kChromAc);
    return c;
}

// Entropy-coded segment writer with 0xFF byte stuffing.
class BitWriter {
  public:
    explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
    void put(uint32_t bits, int n) {  // n <= 32
        acc_ = (acc_ << n) | (bits & ((n == 32) ? 0xFFFFFFFFu : ((1u << n) - 1)));
        nbits_ += n;
        while (nbits_ >= 8) {
            uint8_t b = static_cast<uint8_t>(acc_ >> (nbits_ - 8));
            out_.push_back(b);
            if (b == 0xFF) out_.push_back(0x00);
            nbits_ -= 8;
        }
    }
    void flush() {  // pad the last byte with 1 bits
        if (nbits_ > 0) put(0x7F, 8 - nbits_);
    }

  private:
    std::vector<uint8_t>& out_;
    uint64_t acc_ = 0;
    int nbits_ = 0;
};

// One block of one component: DC difference (Huffman code + magnitude bits) then EOB,
// written as one bit string.
void put_block(BitWriter& bw, const HuffCodes& dc, const HuffCodes& ac, int diff) {
    int mag = diff < 0 ? -diff : diff;
    int cat = 0;
    while (mag) {
        ++cat;
        mag >>= 1;
    }
    uint32_t bits = dc.code[cat];
    int n = dc.len[cat];
    if (cat) {
        int v = diff < 0 ? diff + (1 << cat) - 1 : diff;
        bits = (bits << cat) | static_cast<uint32_t>(v);
        n += cat;
    }
    bits = (bits << ac.len[0x00]) | ac.code[0x00];  // EOB: all AC coefficients are zero
    bw.put(bits, n + ac.len[0x00]);
}

void seg_header(std::vector<uint8_t>& out, uint8_t marker, size_t payload_len) {
    size_t len = payload_len + 2;
    out.push_back(0xFF);
    out.push_back(marker);
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(static_cast<uint8_t>(len));
}

void append_dqt_sof_dht(std::vector<uint8_t>& out, uint32_t width, uint32_t height) {
    // DQT: two flat tables of 8; with DC-only blocks a quantised DC equals (level - 128).
    seg_header(out, 0xDB, 2 * 65);
    for (uint8_t t = 0; t < 2; ++t) {
        out.push_back(t);
        out.insert(out.end(), 64, 8);
    }
    // SOF0 baseline, 8-bit, three components 1x1 (4:4:4).
    seg_header(out, 0xC0, 6 + 3 * 3);
    out.push_back(8);
    out.push_back(static_cast<uint8_t>(height >> 8));
    out.push_back(static_cast<uint8_t>(height));
    out.push_back(static_cast<uint8_t>(width >> 8));
    out.push_back(static_cast<uint8_t>(width));
    out.push_back(3);
    const uint8_t comps[3][3] = {{1, 0x11, 0}, {2, 0x11, 1}, {3, 0x11, 1}};
    for (const auto& c : comps) out.insert(out.end(), c, c + 3);
    // DHT with the four standard tables.
    struct T {
        uint8_t id;
        const HuffSpec* s;
    };
    const T tables[4] = {{0x00, &kLumDc}, {0x10, &kLumAc}, {0x01, &kChromDc}, {0x11, &kChromAc}};
    size_t len = 0;
    for (const auto& t : tables) len += 17 + t.s->values.size();
    seg_header(out, 0xC4, len);
    for (const auto& t : tables) {
        out.push_back(t.id);
        out.insert(out.end(), t.s->bits, t.s->bits + 16);
        out.insert(out.end(), t.s->values.begin(), t.s->values.end());
    }
}

// ---------------------------------------------------------------------------------------
// Exif (TIFF) writer.

enum : uint16_t {
    kTypeAscii = 2,
    kTypeShort = 3,
    kTypeLong = 4,
    kTypeRational = 5,
    kTypeUndef = 7
};

struct IfdEntry {
    uint16_t tag;
    uint16_t type;
    uint32_t count;
    std::vector<uint8_t> value;  // little-endian bytes, count * size(type)
};

IfdEntry ascii(uint16_t tag, const std::string& s) {
    std::vector<uint8_t> v(s.begin(), s.end());
    v.push_back(0);
    return {tag, kTypeAscii, static_cast<uint32_t>(v.size()), v};
}
IfdEntry short1(uint16_t tag, uint16_t x) {
    return {tag, kTypeShort, 1, {static_cast<uint8_t>(x), static_cast<uint8_t>(x >> 8)}};
}
IfdEntry long1(uint16_t tag, uint32_t x) {
    std::vector<uint8_t> v(4);
    for (int i = 0; i < 4; ++i) v[i] = static_cast<uint8_t>(x >> (8 * i));
    return {tag, kTypeLong, 1, v};
}
uint32_t gcd32(uint32_t a, uint32_t b) {
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a ? a : 1;
}
IfdEntry rational(uint16_t tag, uint32_t num, uint32_t den) {
    uint32_t g = gcd32(num, den);
    num /= g;
    den /= g;
    std::vector<uint8_t> v(8);
    for (int i = 0; i < 4; ++i) v[i] = static_cast<uint8_t>(num >> (8 * i));
    for (int i = 0; i < 4; ++i) v[4 + i] = static_cast<uint8_t>(den >> (8 * i));
    return {tag, kTypeRational, 1, v};
}
IfdEntry undef(uint16_t tag, const std::vector<uint8_t>& bytes) {
    return {tag, kTypeUndef, static_cast<uint32_t>(bytes.size()), bytes};
}

// Serialises an IFD placed at TIFF offset `at`; out-of-line values follow it.
std::vector<uint8_t> serialize_ifd(std::vector<IfdEntry> entries, uint32_t at) {
    std::sort(entries.begin(), entries.end(),
              [](const IfdEntry& a, const IfdEntry& b) { return a.tag < b.tag; });
    size_t head = 2 + 12 * entries.size() + 4;
    std::vector<uint8_t> out(head);
    std::vector<uint8_t> data;
    auto w16 = [&](size_t off, uint16_t v) {
        out[off] = static_cast<uint8_t>(v);
        out[off + 1] = static_cast<uint8_t>(v >> 8);
    };
    auto w32 = [&](size_t off, uint32_t v) {
        for (int i = 0; i < 4; ++i) out[off + i] = static_cast<uint8_t>(v >> (8 * i));
    };
    w16(0, static_cast<uint16_t>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
        const IfdEntry& e = entries[i];
        size_t off = 2 + 12 * i;
        w16(off, e.tag);
        w16(off + 2, e.type);
        w32(off + 4, e.count);
        if (e.value.size() <= 4) {
            for (size_t k = 0; k < e.value.size(); ++k) out[off + 8 + k] = e.value[k];
        } else {
            if (data.size() % 2) data.push_back(0);  // word alignment
            w32(off + 8, static_cast<uint32_t>(at + head + data.size()));
            data.insert(data.end(), e.value.begin(), e.value.end());
        }
    }
    w32(head - 4, 0);  // no next IFD
    out.insert(out.end(), data.begin(), data.end());
    if (out.size() % 2) out.push_back(0);
    return out;
}

std::vector<uint8_t> build_tiff(const ExifInfo& x) {
    std::vector<IfdEntry> exif = {
        rational(0x829A, x.exposure_tenth_ms, 10000),  // ExposureTime
        rational(0x829D, x.fnumber_x100, 100),         // FNumber
        short1(0x8827, x.iso),                         // ISOSpeedRatings
        undef(0x9000, {'0', '2', '3', '0'}),           // ExifVersion
        ascii(0x9003, x.datetime),                     // DateTimeOriginal
        ascii(0x9004, x.datetime),                     // DateTimeDigitized
        undef(0x9101, {1, 2, 3, 0}),                   // ComponentsConfiguration
        rational(0x920A, x.focal_x100, 100),           // FocalLength
        undef(0xA000, {'0', '1', '0', '0'}),           // FlashpixVersion
        short1(0xA001, 1),                             // ColorSpace sRGB
        long1(0xA002, x.width),                        // PixelXDimension
        long1(0xA003, x.height),                       // PixelYDimension
        ascii(0xA420, x.unique_id),                    // ImageUniqueID
        ascii(0xA431, x.serial),                       // BodySerialNumber
    };
    auto ifd0_entries = [&](uint32_t exif_offset) {
        return std::vector<IfdEntry>{
            ascii(0x010F, x.make),       // Make
            ascii(0x0110, x.model),      // Model
            short1(0x0112, 1),           // Orientation
            rational(0x011A, 72, 1),     // XResolution
            rational(0x011B, 72, 1),     // YResolution
            short1(0x0128, 2),           // ResolutionUnit inch
            ascii(0x0131, x.software),   // Software
            ascii(0x0132, x.datetime),   // DateTime
            short1(0x0213, 1),           // YCbCrPositioning centered
            long1(0x8769, exif_offset),  // ExifIFDPointer
        };
    };
    // Two passes: the Exif IFD goes right after IFD0, whose size does not depend on the
    // pointer's value.
    std::vector<uint8_t> ifd0 = serialize_ifd(ifd0_entries(0), 8);
    uint32_t exif_at = static_cast<uint32_t>(8 + ifd0.size());
    ifd0 = serialize_ifd(ifd0_entries(exif_at), 8);
    std::vector<uint8_t> exif_ifd = serialize_ifd(exif, exif_at);

    std::vector<uint8_t> tiff = {'I', 'I', 0x2A, 0x00, 8, 0, 0, 0};
    tiff.insert(tiff.end(), ifd0.begin(), ifd0.end());
    tiff.insert(tiff.end(), exif_ifd.begin(), exif_ifd.end());
    return tiff;
}

// ---------------------------------------------------------------------------------------
// Picture content: one RGB colour per 8x8 block.

struct Rgb {
    int r, g, b;
};
struct Levels {
    int v[3];  // Y, Cb, Cr
};

int clamp_level(double v) {
    int i = static_cast<int>(v + (v >= 0 ? 0.5 : -0.5));
    return std::min(255, std::max(0, i));
}

Levels to_ycbcr(const Rgb& c) {  // JFIF conversion
    return {{clamp_level(0.299 * c.r + 0.587 * c.g + 0.114 * c.b),
             clamp_level(-0.168736 * c.r - 0.331264 * c.g + 0.5 * c.b + 128),
             clamp_level(0.5 * c.r - 0.418688 * c.g - 0.081312 * c.b + 128)}};
}

// The gradient, and its darkened version, per block: computed once per picture size.
struct Backdrop {
    std::vector<Levels> base, dark;
};

std::shared_ptr<const Backdrop> backdrop(uint32_t bw, uint32_t bh) {
    static std::mutex mu;
    static std::map<std::pair<uint32_t, uint32_t>, std::shared_ptr<const Backdrop>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[{bw, bh}];
    if (slot) return slot;
    auto b = std::make_shared<Backdrop>();
    b->base.reserve(static_cast<size_t>(bw) * bh);
    b->dark.reserve(static_cast<size_t>(bw) * bh);
    for (uint32_t y = 0; y < bh; ++y) {
        for (uint32_t x = 0; x < bw; ++x) {
            uint32_t fx = bw > 1 ? x * 255 / (bw - 1) : 0;
            uint32_t fy = bh > 1 ? y * 255 / (bh - 1) : 0;
            Rgb c{static_cast<int>(30 + fx * 190 / 255), static_cast<int>(40 + fy * 170 / 255),
                  static_cast<int>(210 - fx * 150 / 255)};
            b->base.push_back(to_ycbcr(c));
            b->dark.push_back(to_ycbcr({c.r / 4, c.g / 4, c.b / 4}));
        }
    }
    slot = b;
    return slot;
}

// The picture of `pattern`, block by block, row by row: the gradient, a light vertical bar
// at one of 16 positions and a dark horizontal band at one of 9 (pattern % 16,
// pattern / 16); pattern < 0 is flat grey. Calls fn(levels) for each block.
template <typename Fn>
void for_each_block(uint32_t bw, uint32_t bh, int pattern, Fn fn) {
    if (pattern < 0) {
        const Levels grey = to_ycbcr({128, 128, 128});
        for (size_t i = 0, n = static_cast<size_t>(bw) * bh; i < n; ++i) fn(grey);
        return;
    }
    const Levels bar = to_ycbcr({245, 245, 235});
    const Levels bar_dark = to_ycbcr({245 / 4, 245 / 4, 235 / 4});
    std::shared_ptr<const Backdrop> bd = backdrop(bw, bh);
    uint32_t vpos = static_cast<uint32_t>(pattern % 16) * bw / 16;
    uint32_t vwidth = std::max<uint32_t>(1, bw / 32);
    uint32_t hpos = static_cast<uint32_t>(pattern / 16 % 9) * bh / 9;
    uint32_t hheight = std::max<uint32_t>(1, bh / 24);
    for (uint32_t y = 0; y < bh; ++y) {
        bool band = y >= hpos && y < hpos + hheight;
        const Levels* row =
            (band ? bd->dark.data() : bd->base.data()) + static_cast<size_t>(y) * bw;
        for (uint32_t x = 0; x < bw; ++x) {
            if (x >= vpos && x < vpos + vwidth)
                fn(band ? bar_dark : bar);
            else
                fn(row[x]);
        }
    }
}

std::vector<uint8_t> encode_scan(uint32_t width, uint32_t height, int pattern) {
    std::vector<uint8_t> out;
    // SOS: three components; Y uses tables 0/0, Cb and Cr use 1/1; Ss=0, Se=63, Ah/Al=0.
    seg_header(out, 0xDA, 1 + 3 * 2 + 3);
    out.push_back(3);
    const uint8_t comps[3][2] = {{1, 0x00}, {2, 0x11}, {3, 0x11}};
    for (const auto& c : comps) out.insert(out.end(), c, c + 2);
    out.push_back(0);
    out.push_back(63);
    out.push_back(0);

    uint32_t bw = (width + 7) / 8, bh = (height + 7) / 8;
    out.reserve(out.size() + static_cast<size_t>(bw) * bh * 2 + 16);
    BitWriter bits(out);
    const HuffCodes& ldc = lum_dc();
    const HuffCodes& cdc = chrom_dc();
    const HuffCodes& lac = lum_ac();
    const HuffCodes& cac = chrom_ac();
    int pred[3] = {0, 0, 0};
    for_each_block(bw, bh, pattern, [&](const Levels& lv) {
        for (int k = 0; k < 3; ++k) {
            int dc = lv.v[k] - 128;  // DC coefficient 8*(level-128), quantised by 8
            put_block(bits, k == 0 ? ldc : cdc, k == 0 ? lac : cac, dc - pred[k]);
            pred[k] = dc;
        }
    });
    bits.flush();
    out.push_back(0xFF);
    out.push_back(0xD9);  // EOI
    return out;
}

}  // namespace

std::vector<uint8_t> jpeg_head(const ExifInfo& exif, size_t app1_extra) {
    std::vector<uint8_t> out = {0xFF, 0xD8};  // SOI
    std::vector<uint8_t> tiff = build_tiff(exif);
    seg_header(out, 0xE1, 6 + tiff.size() + app1_extra);
    const char hdr[6] = {'E', 'x', 'i', 'f', 0, 0};
    out.insert(out.end(), hdr, hdr + 6);
    out.insert(out.end(), tiff.begin(), tiff.end());
    out.insert(out.end(), app1_extra, 0);
    append_dqt_sof_dht(out, exif.width, exif.height);
    return out;
}

std::vector<uint8_t> jpeg_scan(uint32_t width, uint32_t height, int pattern) {
    return encode_scan(width, height, pattern);
}

std::vector<uint8_t> jpeg_small(uint32_t width, uint32_t height, int pattern) {
    std::vector<uint8_t> out = {0xFF, 0xD8};
    // APP0 JFIF 1.01, no units, 1:1 density, no embedded thumbnail.
    seg_header(out, 0xE0, 14);
    const uint8_t jfif[14] = {'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
    out.insert(out.end(), jfif, jfif + 14);
    append_dqt_sof_dht(out, width, height);
    std::vector<uint8_t> scan = encode_scan(width, height, pattern);
    out.insert(out.end(), scan.begin(), scan.end());
    return out;
}

void append_com_padding(std::vector<uint8_t>& out, uint64_t pad, const std::string& first_text) {
    static const std::vector<uint8_t> filler = [] {
        const char* unit = "photorig ptpip-sim padding. ";
        std::vector<uint8_t> f;
        while (f.size() < 65533) f.insert(f.end(), unit, unit + std::strlen(unit));
        f.resize(65533);
        return f;
    }();
    if (pad < 4) return;  // callers never ask for 1..3 bytes (no segment is that small)
    bool first = true;
    while (pad > 0) {
        uint64_t seg = std::min<uint64_t>(pad, 65537);
        if (pad - seg > 0 && pad - seg < 4) seg = pad - 4;  // leave room for one more segment
        size_t payload = static_cast<size_t>(seg - 4);
        seg_header(out, 0xFE, payload);
        size_t used = 0;
        if (first) {
            used = std::min(payload, first_text.size());
            const uint8_t* t = reinterpret_cast<const uint8_t*>(first_text.data());
            out.insert(out.end(), t, t + used);
            first = false;
        }
        out.insert(out.end(), filler.data(), filler.data() + (payload - used));
        pad -= seg;
    }
}

}  // namespace ptpsim
