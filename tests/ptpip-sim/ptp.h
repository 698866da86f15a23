// PTP (ISO 15740) and PTP/IP (CIPA DC-X005) constants and little-endian packing helpers
// for the simulator. Everything on the wire is little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ptpsim {

// PTP/IP packet types (DC-X005, 2.3).
enum : uint32_t {
    kPktInitCommandRequest = 1,
    kPktInitCommandAck = 2,
    kPktInitEventRequest = 3,
    kPktInitEventAck = 4,
    kPktInitFail = 5,
    kPktCmdRequest = 6,
    kPktCmdResponse = 7,
    kPktEvent = 8,
    kPktStartData = 9,
    kPktData = 10,
    kPktCancel = 11,
    kPktEndData = 12,
    kPktProbeRequest = 13,
    kPktProbeResponse = 14,
};

// Operation codes.
enum : uint16_t {
    kOpGetDeviceInfo = 0x1001,
    kOpOpenSession = 0x1002,
    kOpCloseSession = 0x1003,
    kOpGetStorageIDs = 0x1004,
    kOpGetStorageInfo = 0x1005,
    kOpGetNumObjects = 0x1006,
    kOpGetObjectHandles = 0x1007,
    kOpGetObjectInfo = 0x1008,
    kOpGetObject = 0x1009,
    kOpGetThumb = 0x100A,
    kOpDeleteObject = 0x100B,
    kOpInitiateCapture = 0x100E,
    kOpGetDevicePropDesc = 0x1014,
    kOpGetDevicePropValue = 0x1015,
    kOpSetDevicePropValue = 0x1016,
    kOpResetDevicePropValue = 0x1017,
    kOpGetPartialObject = 0x101B,
};

// Response codes.
enum : uint16_t {
    kRcOK = 0x2001,
    kRcGeneralError = 0x2002,
    kRcSessionNotOpen = 0x2003,
    kRcOperationNotSupported = 0x2005,
    kRcParameterNotSupported = 0x2006,
    kRcInvalidStorageID = 0x2008,
    kRcInvalidObjectHandle = 0x2009,
    kRcDevicePropNotSupported = 0x200A,
    kRcInvalidObjectFormatCode = 0x200B,
    kRcStoreFull = 0x200C,
    kRcObjectWriteProtected = 0x200D,
    kRcAccessDenied = 0x200F,
    kRcNoThumbnailPresent = 0x2010,
    kRcDeviceBusy = 0x2019,
    kRcInvalidParentObject = 0x201A,
    kRcInvalidDevicePropFormat = 0x201B,
    kRcInvalidDevicePropValue = 0x201C,
    kRcInvalidParameter = 0x201D,
    kRcSessionAlreadyOpen = 0x201E,
};

// Event codes.
enum : uint16_t {
    kEvObjectAdded = 0x4002,
    kEvObjectRemoved = 0x4003,
    kEvDevicePropChanged = 0x4006,
    kEvStoreFull = 0x400A,
    kEvCaptureComplete = 0x400D,
};

// Object format codes.
enum : uint16_t {
    kFmtUndefined = 0x3000,
    kFmtAssociation = 0x3001,
    kFmtExifJpeg = 0x3801,
    kFmtJfif = 0x3808,
};

// Device property codes.
enum : uint16_t {
    kPropBatteryLevel = 0x5001,
    kPropImageSize = 0x5003,
    kPropFNumber = 0x5007,
    kPropFocalLength = 0x5008,
    kPropExposureTime = 0x500D,
    kPropExposureIndex = 0x500F,
};

// Data type codes.
enum : uint16_t {
    kDtUint8 = 0x0002,
    kDtUint16 = 0x0004,
    kDtUint32 = 0x0006,
    kDtStr = 0xFFFF,
};

constexpr uint32_t kStorageId = 0x00010001;
constexpr uint32_t kAllStorages = 0xFFFFFFFF;
constexpr uint32_t kRootParent = 0xFFFFFFFF;

inline uint16_t rd16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t rd32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline void wr16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}
inline void wr32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Appends little-endian PTP data types to a byte vector.
class Writer {
  public:
    std::vector<uint8_t>& bytes() { return b_; }
    std::vector<uint8_t> take() { return std::move(b_); }
    size_t size() const { return b_.size(); }

    Writer& u8(uint8_t v) {
        b_.push_back(v);
        return *this;
    }
    Writer& u16(uint16_t v) {
        b_.push_back(static_cast<uint8_t>(v));
        b_.push_back(static_cast<uint8_t>(v >> 8));
        return *this;
    }
    Writer& u32(uint32_t v) {
        for (int i = 0; i < 4; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
        return *this;
    }
    Writer& u64(uint64_t v) {
        for (int i = 0; i < 8; ++i) b_.push_back(static_cast<uint8_t>(v >> (8 * i)));
        return *this;
    }
    // PTP string: u8 number of UCS-2 chars including the terminating NUL, then the
    // chars; the empty string is the single byte 0. ASCII/Latin-1 input, max 254 chars.
    Writer& str(const std::string& s) {
        if (s.empty()) return u8(0);
        size_t n = s.size() > 254 ? 254 : s.size();
        u8(static_cast<uint8_t>(n + 1));
        for (size_t i = 0; i < n; ++i) u16(static_cast<uint8_t>(s[i]));
        return u16(0);
    }
    Writer& u16_array(const std::vector<uint16_t>& v) {
        u32(static_cast<uint32_t>(v.size()));
        for (uint16_t x : v) u16(x);
        return *this;
    }
    Writer& u32_array(const std::vector<uint32_t>& v) {
        u32(static_cast<uint32_t>(v.size()));
        for (uint32_t x : v) u32(x);
        return *this;
    }
    Writer& raw(const void* p, size_t n) {
        const uint8_t* c = static_cast<const uint8_t*>(p);
        b_.insert(b_.end(), c, c + n);
        return *this;
    }

  private:
    std::vector<uint8_t> b_;
};

// Parses a PTP string at `off` in `data` (size n). Returns false when malformed;
// on success advances `off`.
inline bool read_ptp_string(const uint8_t* data, size_t n, size_t& off, std::string& out) {
    if (off + 1 > n) return false;
    uint8_t chars = data[off];
    if (off + 1 + static_cast<size_t>(chars) * 2 > n) return false;
    out.clear();
    for (size_t i = 0; i < chars; ++i) {
        uint16_t c = rd16(data + off + 1 + 2 * i);
        if (c == 0) break;
        out.push_back(c < 0x80 ? static_cast<char>(c) : '?');
    }
    off += 1 + static_cast<size_t>(chars) * 2;
    return true;
}

}  // namespace ptpsim
