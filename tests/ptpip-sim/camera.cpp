#include "camera.h"

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "hostile.h"
#include "jpeg.h"
#include "ptp.h"

namespace ptpsim {
namespace {

constexpr uint32_t kDcimHandle = 1;
constexpr uint32_t kPhotoFolderHandle = 2;

std::string format_time(time_t t, const char* fmt) {
    struct tm tm;
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, fmt, &tm);
    return buf;
}
std::string ptp_date(time_t t) {
    return format_time(t, "%Y%m%dT%H%M%S");
}
std::string exif_date(time_t t) {
    return format_time(t, "%Y:%m:%d %H:%M:%S");
}

OpReply rc(uint16_t code) {
    OpReply r;
    r.code = code;
    return r;
}

OpReply with_data(std::vector<uint8_t> bytes) {
    OpReply r;
    r.code = kRcOK;
    r.has_data = true;
    r.len = bytes.size();
    r.data = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
    return r;
}

std::string hex_rc(uint16_t code) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%04X", code);
    return buf;
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

}  // namespace

Camera::Camera(const Options& opt, EventLog& log)
    : opt_(opt),
      log_(log),
      fail_busy_(opt.fail_busy),
      fail_error_(opt.fail_error),
      no_event_(opt.no_event),
      slow_ms_(opt.slow_ms),
      capture_delay_ms_(opt.capture_delay_ms),
      disconnect_after_(opt.disconnect_after),
      storage_full_(opt.storage_full),
      raw_pair_(opt.raw_pair),
      image_size_(opt.image_size) {
    nonce_ = fnv1a(opt.serial) ^ static_cast<uint64_t>(realtime_us());

    std::string size_str = std::to_string(opt.image_width) + "x" + std::to_string(opt.image_height);
    props_ = {
        {kPropBatteryLevel, kDtUint8, false, 100, 100, {}, true, 0, 100, 1, "", {}},
        {kPropImageSize, kDtStr, false, 0, 0, {}, false, 0, 0, 0, size_str, {size_str}},
        {kPropFNumber,
         kDtUint16,
         true,
         560,
         560,
         {280, 400, 560, 800, 1100, 1600},
         false,
         0,
         0,
         0,
         "",
         {}},
        {kPropFocalLength,
         kDtUint32,
         true,
         5000,
         5000,
         {2400, 3500, 5000, 8500},
         false,
         0,
         0,
         0,
         "",
         {}},
        {kPropExposureTime,
         kDtUint32,
         true,
         80,
         80,
         {5, 10, 20, 40, 80, 166, 333, 666, 1250, 2500, 5000, 10000},
         false,
         0,
         0,
         0,
         "",
         {}},
        {kPropExposureIndex,
         kDtUint16,
         true,
         100,
         100,
         {100, 200, 400, 800, 1600},
         false,
         0,
         0,
         0,
         "",
         {}},
    };

    std::string date = ptp_date(time(nullptr));
    Object dcim;
    dcim.handle = kDcimHandle;
    dcim.parent = 0;
    dcim.format = kFmtAssociation;
    dcim.name = "DCIM";
    dcim.date = date;
    objects_[dcim.handle] = dcim;
    Object photo = dcim;
    photo.handle = kPhotoFolderHandle;
    photo.parent = kDcimHandle;
    photo.name = hostile_folder_name(opt_.hostile, "100PHOTO");
    next_handle_ = 3;
    if (opt_.hostile == "folder-deep") {
        for (int level = 0; level < kDeepFolderLevels; ++level) {
            Object between = photo;
            between.handle = next_handle_++;
            objects_[between.handle] = between;
            photo.parent = between.handle;
        }
    }
    if (opt_.hostile == "folder-cycle") {  // 100PHOTO's parent is a folder whose parent is it
        Object loop = photo;
        loop.handle = next_handle_++;
        loop.name = "LOOP";
        loop.parent = photo.handle;
        objects_[loop.handle] = loop;
        photo.parent = loop.handle;
    }
    objects_[photo.handle] = photo;
}

Camera::~Camera() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_warmup_ = true;
    }
    warmup_cv_.notify_all();
    if (warmup_.joinable()) warmup_.join();
}

void Camera::start_warmup() {
    warmup_ = std::thread([this] {
        std::unique_lock<std::mutex> lock(mu_);
        while (!stop_warmup_) {
            if (warmup_want_ < 0) {
                warmup_cv_.wait(lock);
                continue;
            }
            int pattern = warmup_want_;
            warmup_want_ = -1;
            if (scan_cache_.count(pattern)) continue;
            lock.unlock();
            Blob b = std::make_shared<const std::vector<uint8_t>>(
                jpeg_scan(opt_.image_width, opt_.image_height, pattern));
            lock.lock();
            scan_cache_.emplace(pattern, b);
            uint32_t w, h;
            thumb_for(pattern, &w, &h);
        }
    });
}

uint64_t Camera::min_image_size() {
    ExifInfo x;
    x.make = opt_.manufacturer;
    x.model = opt_.model;
    x.serial = opt_.serial;
    x.software = "ptpip-sim";
    x.datetime = exif_date(time(nullptr));
    x.unique_id = make_unique_id(0);
    x.width = opt_.image_width;
    x.height = opt_.image_height;
    return jpeg_head(x).size() + scan_for(-1)->size();
}

bool Camera::validate(uint64_t* min_size) {
    *min_size = min_image_size();
    return image_size_ >= *min_size && image_size_ <= 0xFFFFFFFEull;
}

bool Camera::set_image_size(uint64_t size, uint64_t* min_size) {
    std::lock_guard<std::mutex> lock(mu_);
    *min_size = min_image_size();
    if (size < *min_size || size > 0xFFFFFFFEull) return false;
    image_size_ = size;
    return true;
}

std::string Camera::make_unique_id(uint64_t capture_no) const {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64, nonce_, capture_no);
    return buf;
}

Camera::Prop* Camera::find_prop(uint16_t code) {
    for (auto& p : props_)
        if (p.code == code) return &p;
    return nullptr;
}

void Camera::pack_value(std::vector<uint8_t>& out, const Prop& p, uint32_t v) const {
    Writer w;
    switch (p.type) {
        case kDtUint8:
            w.u8(static_cast<uint8_t>(v));
            break;
        case kDtUint16:
            w.u16(static_cast<uint16_t>(v));
            break;
        default:
            w.u32(v);
            break;
    }
    out.insert(out.end(), w.bytes().begin(), w.bytes().end());
}

Blob Camera::scan_for(int pattern) {
    auto it = scan_cache_.find(pattern);
    if (it != scan_cache_.end()) return it->second;
    Blob b = std::make_shared<const std::vector<uint8_t>>(
        jpeg_scan(opt_.image_width, opt_.image_height, pattern));
    scan_cache_[pattern] = b;
    return b;
}

Blob Camera::thumb_for(int pattern, uint32_t* w, uint32_t* h) {
    *w = 160;
    uint64_t th =
        static_cast<uint64_t>(160) * opt_.image_height / std::max<uint32_t>(1, opt_.image_width);
    *h = static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(th, 8), 1024));
    auto it = thumb_cache_.find(pattern);
    if (it != thumb_cache_.end()) return it->second;
    Blob b = std::make_shared<const std::vector<uint8_t>>(jpeg_small(*w, *h, pattern));
    thumb_cache_[pattern] = b;
    return b;
}

uint64_t Camera::image_count() const {
    uint64_t n = 0;
    for (const auto& kv : objects_)
        if (kv.second.format != kFmtAssociation) ++n;
    return n;
}

Blob Camera::materialize(const Object& o) const {
    auto v = std::make_shared<std::vector<uint8_t>>();
    if (o.format == kFmtAssociation) return v;
    v->reserve(o.size);
    v->insert(v->end(), o.head.begin(), o.head.end());
    append_com_padding(*v, o.pad, o.pad_text);
    v->insert(v->end(), o.scan->begin(), o.scan->end());
    return v;
}

OpReply Camera::execute(SessionCtx& ctx, const OpRequest& req) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t* p = req.params;
    switch (req.code) {
        case kOpGetDeviceInfo:
            return get_device_info();
        case kOpOpenSession: {
            if (ctx.open) {
                OpReply r = rc(kRcSessionAlreadyOpen);
                r.params.push_back(ctx.session_id);
                return r;
            }
            if (p[0] == 0) return rc(kRcInvalidParameter);
            ctx.open = true;
            ctx.session_id = p[0];
            log_.log("open_session", 0, ctx.conn, ",\"session\":" + std::to_string(p[0]));
            return rc(kRcOK);
        }
        case kOpCloseSession:
        case kOpGetStorageIDs:
        case kOpGetStorageInfo:
        case kOpGetNumObjects:
        case kOpGetObjectHandles:
        case kOpGetObjectInfo:
        case kOpGetObject:
        case kOpGetThumb:
        case kOpDeleteObject:
        case kOpInitiateCapture:
        case kOpGetDevicePropDesc:
        case kOpGetDevicePropValue:
        case kOpSetDevicePropValue:
        case kOpGetPartialObject:
            break;
        default:
            return rc(kRcOperationNotSupported);
    }
    if (!ctx.open) return rc(kRcSessionNotOpen);
    switch (req.code) {
        case kOpCloseSession:
            ctx.open = false;
            ctx.cached_blob.reset();
            ctx.cached_handle = 0;
            log_.log("close_session", 0, ctx.conn);
            return rc(kRcOK);
        case kOpGetStorageIDs:
            return with_data(Writer().u32_array({kStorageId}).take());
        case kOpGetStorageInfo:
            return get_storage_info(p[0]);
        case kOpGetNumObjects:
            return get_object_handles(req, true);
        case kOpGetObjectHandles:
            return get_object_handles(req, false);
        case kOpGetObjectInfo:
            return get_object_info(p[0]);
        case kOpGetObject:
            return get_object(ctx, p[0], false, 0, 0);
        case kOpGetPartialObject:
            return get_object(ctx, p[0], true, p[1], p[2]);
        case kOpGetThumb:
            return get_thumb(p[0]);
        case kOpDeleteObject:
            return delete_object(ctx, p[0], p[1]);
        case kOpInitiateCapture:
            return initiate_capture(ctx, req);
        case kOpGetDevicePropDesc:
            return get_prop_desc(static_cast<uint16_t>(p[0]));
        case kOpGetDevicePropValue:
            return get_prop_value(static_cast<uint16_t>(p[0]));
        case kOpSetDevicePropValue:
            if (!req.has_data) return rc(kRcInvalidDevicePropFormat);
            return set_prop_value(static_cast<uint16_t>(p[0]), req.data);
        default:
            return rc(kRcOperationNotSupported);
    }
}

OpReply Camera::get_device_info() {
    Writer w;
    w.u16(100);  // StandardVersion 1.00
    w.u32(0);    // VendorExtensionID: none (keeps libgphoto2 on its generic PTP paths)
    w.u16(0);    // VendorExtensionVersion
    w.str("");   // VendorExtensionDesc
    w.u16(0);    // FunctionalMode
    w.u16_array({kOpGetDeviceInfo, kOpOpenSession, kOpCloseSession, kOpGetStorageIDs,
                 kOpGetStorageInfo, kOpGetNumObjects, kOpGetObjectHandles, kOpGetObjectInfo,
                 kOpGetObject, kOpGetThumb, kOpDeleteObject, kOpInitiateCapture,
                 kOpGetDevicePropDesc, kOpGetDevicePropValue, kOpSetDevicePropValue,
                 kOpGetPartialObject});
    w.u16_array(
        {kEvObjectAdded, kEvObjectRemoved, kEvDevicePropChanged, kEvStoreFull, kEvCaptureComplete});
    std::vector<uint16_t> props;
    for (const auto& pr : props_) props.push_back(pr.code);
    w.u16_array(props);
    w.u16_array({kFmtExifJpeg});                   // CaptureFormats
    w.u16_array({kFmtExifJpeg, kFmtAssociation});  // ImageFormats
    w.str(opt_.manufacturer);
    w.str(opt_.model);
    w.str("1.0");  // DeviceVersion
    w.str(opt_.serial);
    return with_data(w.take());
}

OpReply Camera::get_storage_info(uint32_t storage) {
    if (storage != kStorageId) return rc(kRcInvalidStorageID);
    uint64_t max_images = static_cast<uint64_t>(std::max(opt_.max_objects, 0));
    uint64_t used = image_count();
    uint64_t free_images = (storage_full_ || used >= max_images) ? 0 : max_images - used;
    Writer w;
    w.u16(0x0004);  // StorageType: removable RAM (a memory card)
    w.u16(0x0003);  // FilesystemType: DCF
    w.u16(0x0000);  // AccessCapability: read-write
    w.u64(max_images * image_size_);
    w.u64(free_images * image_size_);
    w.u32(static_cast<uint32_t>(std::min<uint64_t>(free_images, 0xFFFFFFFEu)));
    w.str("SD card");
    w.str("PHOTORIG");
    return with_data(w.take());
}

OpReply Camera::get_object_handles(const OpRequest& req, bool count_only) {
    uint32_t storage = req.params[0], format = req.params[1], parent = req.params[2];
    if (storage != kAllStorages && storage != kStorageId && storage != 0)
        return rc(kRcInvalidStorageID);
    if (parent != 0 && parent != kRootParent) {
        auto it = objects_.find(parent);
        if (it == objects_.end() || it->second.format != kFmtAssociation)
            return rc(kRcInvalidParentObject);
    }
    std::vector<uint32_t> handles;
    for (const auto& kv : objects_) {
        const Object& o = kv.second;
        if (format != 0 && o.format != format) continue;
        if (parent == kRootParent && o.parent != 0) continue;
        if (parent != 0 && parent != kRootParent && o.parent != parent) continue;
        handles.push_back(o.handle);
    }
    if (count_only) {
        OpReply r = rc(kRcOK);
        r.params.push_back(static_cast<uint32_t>(handles.size()));
        return r;
    }
    return with_data(Writer().u32_array(handles).take());
}

OpReply Camera::get_object_info(uint32_t handle) {
    auto it = objects_.find(handle);
    if (it == objects_.end()) return rc(kRcInvalidObjectHandle);
    const Object& o = it->second;
    bool folder = o.format == kFmtAssociation;
    Writer w;
    w.u32(kStorageId);
    w.u16(o.format);
    w.u16(0);  // ProtectionStatus: none
    w.u32(folder ? 0 : announced_size(opt_.hostile, o.size));
    w.u16(folder ? 0 : kFmtJfif);  // ThumbFormat
    w.u32(folder || !o.thumb ? 0 : static_cast<uint32_t>(o.thumb->size()));
    w.u32(o.thumb_w);
    w.u32(o.thumb_h);
    w.u32(folder ? 0 : opt_.image_width);
    w.u32(folder ? 0 : opt_.image_height);
    w.u32(folder ? 0 : 24);  // ImageBitDepth
    w.u32(o.parent);
    w.u16(folder ? 1 : 0);  // AssociationType: generic folder
    w.u32(0);               // AssociationDesc
    w.u32(0);               // SequenceNumber
    if (!folder && opt_.hostile == "name-utf16") {
        // Unpaired surrogates and non-characters: no valid UTF-16 at all.
        const uint16_t units[] = {0xD800, 0x0041, 0xDFFF, 0xFFFE, 0xFFFF, 0xDBFF,
                                  0x002E, 0x004A, 0x0050, 0x0047, 0x0000};
        w.u8(static_cast<uint8_t>(sizeof units / sizeof units[0]));
        for (uint16_t u : units) w.u16(u);
    } else {
        w.str(o.name);
    }
    w.str(o.date);  // CaptureDate
    w.str(o.date);  // ModificationDate
    w.str("");      // Keywords
    return with_data(w.take());
}

OpReply Camera::get_object(SessionCtx& ctx, uint32_t handle, bool partial, uint32_t offset,
                           uint32_t max_bytes) {
    auto it = objects_.find(handle);
    if (it == objects_.end()) return rc(kRcInvalidObjectHandle);
    const Object& o = it->second;
    if (ctx.cached_handle != handle || !ctx.cached_blob) {
        ctx.cached_blob = materialize(o);
        ctx.cached_handle = handle;
    }
    OpReply r = rc(kRcOK);
    r.has_data = true;
    r.data = ctx.cached_blob;
    size_t size = r.data->size();
    if (!partial) {
        r.off = 0;
        r.len = size;
    } else {
        if (offset > size) return rc(kRcInvalidParameter);
        r.off = offset;
        r.len = std::min<size_t>(max_bytes, size - offset);
        r.params.push_back(static_cast<uint32_t>(r.len));
    }
    if (o.format != kFmtAssociation && r.off + r.len == size) r.download_handle = handle;
    return r;
}

OpReply Camera::get_thumb(uint32_t handle) {
    auto it = objects_.find(handle);
    if (it == objects_.end()) return rc(kRcInvalidObjectHandle);
    if (!it->second.thumb) return rc(kRcNoThumbnailPresent);
    OpReply r = rc(kRcOK);
    r.has_data = true;
    r.data = it->second.thumb;
    r.len = r.data->size();
    return r;
}

OpReply Camera::delete_object(SessionCtx& ctx, uint32_t handle, uint32_t format) {
    std::vector<uint32_t> victims;
    if (handle == 0xFFFFFFFF) {
        for (const auto& kv : objects_)
            if (kv.second.format != kFmtAssociation && (format == 0 || kv.second.format == format))
                victims.push_back(kv.first);
    } else {
        auto it = objects_.find(handle);
        if (it == objects_.end()) return rc(kRcInvalidObjectHandle);
        if (it->second.format == kFmtAssociation) return rc(kRcObjectWriteProtected);
        victims.push_back(handle);
    }
    for (uint32_t h : victims) {
        objects_.erase(h);
        ++stats_.deletes;
        if (ctx.cached_handle == h) {
            ctx.cached_handle = 0;
            ctx.cached_blob.reset();
        }
        log_.log("delete_object", h, ctx.conn);
    }
    return rc(kRcOK);
}

OpReply Camera::initiate_capture(SessionCtx& ctx, const OpRequest& req) {
    int64_t t = realtime_us();
    stats_.last_initiate_handled_us = t;
    stats_.last_initiate_us = req.arrival_us ? req.arrival_us : t;
    uint16_t code = kRcOK;
    if (storage_full_) {
        code = kRcStoreFull;
    } else if (fail_busy_ > 0) {
        --fail_busy_;
        code = kRcDeviceBusy;
    } else if (fail_error_ > 0) {
        --fail_error_;
        code = kRcGeneralError;
    } else if (image_count() >= static_cast<uint64_t>(std::max(opt_.max_objects, 0))) {
        code = kRcStoreFull;
    }
    if (code != kRcOK) {
        log_.log("initiate_capture", 0, ctx.conn, ",\"rc\":\"" + hex_rc(code) + "\"", t);
        return rc(code);
    }

    uint64_t n = ++capture_no_;
    time_t now = time(nullptr);
    ExifInfo x;
    x.make = opt_.manufacturer;
    x.model = opt_.model;
    x.serial = opt_.serial;
    x.software = "ptpip-sim";
    x.datetime = exif_date(now);
    x.unique_id = make_unique_id(n);
    x.iso = static_cast<uint16_t>(find_prop(kPropExposureIndex)->current);
    x.exposure_tenth_ms = find_prop(kPropExposureTime)->current;
    x.fnumber_x100 = static_cast<uint16_t>(find_prop(kPropFNumber)->current);
    x.focal_x100 = find_prop(kPropFocalLength)->current;
    x.width = opt_.image_width;
    x.height = opt_.image_height;

    Object o;
    o.handle = next_handle_++;
    o.parent = kPhotoFolderHandle;
    o.format = kFmtExifJpeg;
    char name[32];
    if (n <= 9999)
        std::snprintf(name, sizeof name, "IMG_%04" PRIu64 ".JPG", n);
    else
        std::snprintf(name, sizeof name, "I%07" PRIu64 ".JPG", n % 10000000);
    o.name = hostile_file_name(opt_.hostile, name);
    o.date = ptp_date(now);
    o.capture_no = n;
    int pattern = static_cast<int>((n - 1) % kPatternCount);
    o.head = jpeg_head(x);
    o.scan = scan_for(pattern);
    if (o.head.size() + o.scan->size() > image_size_) o.scan = scan_for(-1);
    uint64_t fixed = o.head.size() + o.scan->size();
    if (fixed > image_size_) {  // cannot happen after validate() / set_image_size()
        log_.log("initiate_capture", 0, ctx.conn, ",\"rc\":\"0x2002\"", t);
        return rc(kRcGeneralError);
    }
    o.pad = image_size_ - fixed;
    if (o.pad > 0 && o.pad < 4) {  // too small for a COM segment: grow APP1 instead
        o.head = jpeg_head(x, static_cast<size_t>(o.pad));
        o.pad = 0;
    }
    o.pad_text = "ptpip-sim capture " + std::to_string(n) + " serial " + opt_.serial + " id " +
                 x.unique_id + "\n";
    o.size = image_size_;
    o.thumb = thumb_for(pattern, &o.thumb_w, &o.thumb_h);
    if (opt_.hostile == "thumb-huge" && o.thumb) {  // a valid JPEG start, 8 MiB long
        auto huge = std::make_shared<std::vector<uint8_t>>(*o.thumb);
        huge->resize(size_t{8} << 20, 0);
        o.thumb = huge;
    }
    uint32_t handle = o.handle;
    uint32_t raw_handle = raw_pair_ ? add_raw_companion(o) : 0;
    objects_[handle] = std::move(o);
    ++stats_.captures;
    warmup_want_ = static_cast<int>(n % kPatternCount);  // the next capture's picture
    warmup_cv_.notify_all();

    OpReply r = rc(kRcOK);
    r.capture_handle = handle;
    r.raw_handle = raw_handle;
    if (no_event_ > 0) {
        --no_event_;
        r.capture_events = false;
    } else if (store_full_event_ > 0) {
        --store_full_event_;
        r.store_full_event = true;
        r.delay_ms = capture_delay_ms_;
    } else {
        r.capture_events = true;
        r.delay_ms = capture_delay_ms_;
    }
    log_.log(
        "initiate_capture", handle, ctx.conn,
        std::string(",\"rc\":\"0x2001\",\"events\":") + (r.capture_events     ? "true"
                                                         : r.store_full_event ? "\"store_full\""
                                                                              : "false"),
        t);
    return r;
}

uint32_t Camera::add_copy(uint32_t handle) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(handle);
    if (it == objects_.end() || objects_.size() > 100000) return 0;
    Object copy = it->second;
    copy.handle = next_handle_++;
    copy.name = "F" + std::to_string(copy.handle) + ".JPG";
    uint32_t h = copy.handle;
    objects_[h] = std::move(copy);
    return h;
}

// A stand-in RAW file beside a capture's JPEG: a little-endian TIFF header (as DNG files
// start) padded to --raw-size. Format Undefined (0x3000): no vendor RAW format codes, which
// would switch libgphoto2 to vendor code paths.
uint32_t Camera::add_raw_companion(const Object& jpeg) {
    Object raw;
    raw.handle = next_handle_++;
    raw.parent = jpeg.parent;
    raw.format = kFmtUndefined;
    raw.name = jpeg.name.substr(0, jpeg.name.rfind('.')) + ".DNG";
    raw.date = jpeg.date;
    raw.capture_no = jpeg.capture_no;
    raw.head = {'I', 'I', 42, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    raw.scan = std::make_shared<const std::vector<uint8_t>>();
    raw.pad = opt_.raw_size > raw.head.size() ? opt_.raw_size - raw.head.size() : 0;
    raw.pad_text =
        "ptpip-sim raw " + std::to_string(jpeg.capture_no) + " serial " + opt_.serial + "\n";
    raw.size = raw.head.size() + raw.pad;
    uint32_t h = raw.handle;
    objects_[h] = std::move(raw);
    return h;
}

OpReply Camera::get_prop_desc(uint16_t code) {
    Prop* p = find_prop(code);
    if (!p) return rc(kRcDevicePropNotSupported);
    Writer w;
    w.u16(p->code).u16(p->type).u8(p->writable ? 1 : 0);
    if (p->type == kDtStr) {
        w.str(p->str_enum.empty() ? p->str_current : p->str_enum.front());
        w.str(p->str_current);
        if (p->str_enum.empty()) {
            w.u8(0);
        } else {
            w.u8(2).u16(static_cast<uint16_t>(p->str_enum.size()));
            for (const auto& s : p->str_enum) w.str(s);
        }
        return with_data(w.take());
    }
    std::vector<uint8_t>& b = w.bytes();
    pack_value(b, *p, p->factory);
    pack_value(b, *p, p->current);
    if (p->range) {
        b.push_back(1);
        pack_value(b, *p, p->min);
        pack_value(b, *p, p->max);
        pack_value(b, *p, p->step);
    } else if (!p->enumeration.empty()) {
        b.push_back(2);
        w.u16(static_cast<uint16_t>(p->enumeration.size()));
        for (uint32_t v : p->enumeration) pack_value(b, *p, v);
    } else {
        b.push_back(0);
    }
    return with_data(w.take());
}

OpReply Camera::get_prop_value(uint16_t code) {
    Prop* p = find_prop(code);
    if (!p) return rc(kRcDevicePropNotSupported);
    Writer w;
    if (p->type == kDtStr)
        w.str(p->str_current);
    else
        pack_value(w.bytes(), *p, p->current);
    return with_data(w.take());
}

OpReply Camera::set_prop_value(uint16_t code, const std::vector<uint8_t>& data) {
    Prop* p = find_prop(code);
    if (!p) return rc(kRcDevicePropNotSupported);
    if (!p->writable) return rc(kRcAccessDenied);
    if (p->type == kDtStr) {
        size_t off = 0;
        std::string s;
        if (!read_ptp_string(data.data(), data.size(), off, s))
            return rc(kRcInvalidDevicePropFormat);
        if (!p->str_enum.empty() &&
            std::find(p->str_enum.begin(), p->str_enum.end(), s) == p->str_enum.end())
            return rc(kRcInvalidDevicePropValue);
        p->str_current = s;
        return rc(kRcOK);
    }
    uint32_t v = 0;
    size_t want = p->type == kDtUint8 ? 1 : p->type == kDtUint16 ? 2 : 4;
    if (data.size() != want) return rc(kRcInvalidDevicePropFormat);
    for (size_t i = 0; i < want; ++i) v |= static_cast<uint32_t>(data[i]) << (8 * i);
    if (p->range) {
        if (v < p->min || v > p->max) return rc(kRcInvalidDevicePropValue);
    } else if (!p->enumeration.empty()) {
        if (std::find(p->enumeration.begin(), p->enumeration.end(), v) == p->enumeration.end())
            return rc(kRcInvalidDevicePropValue);
    }
    p->current = v;
    return rc(kRcOK);
}

bool Camera::note_download(uint32_t handle, uint32_t conn) {
    (void)handle;
    (void)conn;
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.downloads;
    if (disconnect_after_ > 0) {
        if (--disconnect_after_ == 0) return true;
    }
    return false;
}

void Camera::note_connection(bool opened) {
    std::lock_guard<std::mutex> lock(mu_);
    if (opened) {
        ++stats_.connections;
        ++stats_.active_connections;
    } else if (stats_.active_connections > 0) {
        --stats_.active_connections;
    }
}

void Camera::set_fail_busy(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_busy_ = n;
}
void Camera::set_fail_error(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_error_ = n;
}
void Camera::set_no_event(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    no_event_ = n;
}
void Camera::set_store_full_event(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    store_full_event_ = n;
}
void Camera::set_storage_full(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    storage_full_ = on;
}
void Camera::set_raw_pair(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    raw_pair_ = on;
}
void Camera::set_slow_ms(int ms) {
    std::lock_guard<std::mutex> lock(mu_);
    slow_ms_ = ms;
}
void Camera::set_capture_delay_ms(int ms) {
    std::lock_guard<std::mutex> lock(mu_);
    capture_delay_ms_ = ms;
}
void Camera::set_disconnect_after(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    disconnect_after_ = n;
}
int Camera::slow_ms() {
    std::lock_guard<std::mutex> lock(mu_);
    return slow_ms_;
}
void Camera::reset_faults() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_busy_ = fail_error_ = no_event_ = slow_ms_ = disconnect_after_ = store_full_event_ = 0;
    storage_full_ = false;
}
void Camera::clear_card() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = objects_.begin(); it != objects_.end();) {
        if (it->second.format != kFmtAssociation)
            it = objects_.erase(it);
        else
            ++it;
    }
}

Stats Camera::stats() {
    std::lock_guard<std::mutex> lock(mu_);
    Stats s = stats_;
    s.objects = image_count();
    return s;
}

std::string Camera::stats_json() {
    Stats s = stats();
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"captures\":%" PRIu64 ",\"downloads\":%" PRIu64 ",\"deletes\":%" PRIu64
                  ",\"connections\":%" PRIu64 ",\"active_connections\":%" PRIu64
                  ",\"objects\":%" PRIu64 ",\"last_initiate_us\":%" PRId64
                  ",\"last_initiate_handled_us\":%" PRId64 "}",
                  s.captures, s.downloads, s.deletes, s.connections, s.active_connections,
                  s.objects, s.last_initiate_us, s.last_initiate_handled_us);
    return buf;
}

}  // namespace ptpsim
