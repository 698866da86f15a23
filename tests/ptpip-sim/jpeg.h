// A tiny baseline JPEG writer for the simulator: DC-only 8x8 blocks (each block one flat
// colour), YCbCr 4:4:4, the standard Huffman tables of ITU-T T.81 Annex K, an Exif APP1
// segment, and COM-segment padding so a file can be made exactly N bytes long.
//
// File layout: SOI, APP1(Exif), DQT, SOF0, DHT | COM padding | SOS, scan data, EOI.
// The "head" and the "scan" are built separately so a capture can reuse a cached scan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ptpsim {

struct ExifInfo {
    std::string make;
    std::string model;
    std::string serial;  // BodySerialNumber (0xA431)
    std::string software;
    std::string datetime;             // "YYYY:MM:DD HH:MM:SS"
    std::string unique_id;            // ImageUniqueID (0xA420), 32 hex chars
    uint16_t iso = 100;               // ISOSpeedRatings (0x8827)
    uint32_t exposure_tenth_ms = 80;  // ExposureTime in 1/10000 s, as PTP property 0x500D
    uint16_t fnumber_x100 = 560;      // FNumber * 100, as PTP property 0x5007
    uint32_t focal_x100 = 5000;       // FocalLength (mm) * 100, as PTP property 0x5008
    uint32_t width = 640;
    uint32_t height = 480;
};

// SOI, APP1 Exif (with `app1_extra` zero bytes appended inside the segment), DQT, SOF0, DHT.
// Its size depends only on the lengths of the strings in `exif`, not on the numbers.
std::vector<uint8_t> jpeg_head(const ExifInfo& exif, size_t app1_extra = 0);

// SOS, the entropy-coded data and EOI for a width x height picture. `pattern` in
// [0, kPatternCount) draws a gradient with a vertical and a horizontal bar whose positions
// depend on it; a negative `pattern` gives a flat grey picture (the smallest scan).
constexpr int kPatternCount = 144;
std::vector<uint8_t> jpeg_scan(uint32_t width, uint32_t height, int pattern);

// A complete small JFIF file (no Exif) showing `pattern`, for thumbnails.
std::vector<uint8_t> jpeg_small(uint32_t width, uint32_t height, int pattern);

// Appends `pad` bytes of COM segments (pad must be 0 or >= 4). Each segment holds at most
// 65533 payload bytes; `first_text` starts the first segment's payload.
void append_com_padding(std::vector<uint8_t>& out, uint64_t pad, const std::string& first_text);

}  // namespace ptpsim
