// The simulated camera: one storage (0x00010001) holding /DCIM/100PHOTO/IMG_nnnn.JPG,
// device properties, fault injection and counters. Thread-safe; the PTP/IP transport
// (server.cpp) calls execute() for each operation.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "event_log.h"
#include "options.h"

namespace ptpsim {

using Blob = std::shared_ptr<const std::vector<uint8_t>>;

// Per PTP/IP connection state the camera needs.
struct SessionCtx {
    uint32_t conn = 0;
    bool open = false;
    uint32_t session_id = 0;
    uint32_t cached_handle = 0;  // last object materialised for this connection
    Blob cached_blob;
};

struct OpRequest {
    uint16_t code = 0;
    uint32_t tid = 0;
    uint32_t params[5] = {0, 0, 0, 0, 0};
    int nparams = 0;
    bool has_data = false;  // data phase initiator -> responder
    std::vector<uint8_t> data;
    int64_t arrival_us = 0;  // kernel receive time of the request packet (epoch us), or 0
};

struct OpReply {
    uint16_t code = 0;
    std::vector<uint32_t> params;
    bool has_data = false;  // data phase responder -> initiator: data[off, off+len)
    Blob data;
    size_t off = 0;
    size_t len = 0;
    // InitiateCapture accepted: send ObjectAdded(handle) + CaptureComplete after delay_ms.
    bool capture_events = false;
    bool store_full_event = false;  // instead of those two: StoreFull(storage) (evstorefull)
    uint32_t capture_handle = 0;
    uint32_t raw_handle = 0;  // --raw-pair: announced before capture_handle
    int delay_ms = 0;
    // Sending this reply completes a download of `download_handle` (GetObject, or the
    // GetPartialObject piece that reaches the end).
    uint32_t download_handle = 0;
};

struct Stats {
    uint64_t captures = 0;
    uint64_t downloads = 0;
    uint64_t deletes = 0;
    uint64_t connections = 0;  // PTP/IP command connections accepted so far
    uint64_t active_connections = 0;
    int64_t last_initiate_us = 0;          // the last InitiateCapture's arrival (kernel time)
    int64_t last_initiate_handled_us = 0;  // when this process got to handle it
    uint64_t objects = 0;                  // images on the card now
};

class Camera {
  public:
    Camera(const Options& opt, EventLog& log);
    ~Camera();
    Camera(const Camera&) = delete;
    Camera& operator=(const Camera&) = delete;

    // Starts a background thread that encodes the picture variant of the next capture
    // ahead of time, so a capture only assembles cached pieces.
    void start_warmup();

    // Checks that --image-size can hold a JPEG of the requested dimensions. Returns the
    // smallest size possible in *min_size when it cannot.
    bool validate(uint64_t* min_size);

    OpReply execute(SessionCtx& ctx, const OpRequest& req);

    // Called by the transport once a download's last byte was sent. Returns true when
    // --disconnect-after says the connection must now be dropped.
    bool note_download(uint32_t handle, uint32_t conn);
    // --hostile event-flood: a copy of image `handle` under a new handle (0: none).
    uint32_t add_copy(uint32_t handle);
    void note_connection(bool opened);

    // Fault injection / runtime settings (control channel).
    void set_fail_busy(int n);
    void set_fail_error(int n);
    void set_no_event(int n);
    void set_store_full_event(int n);
    void set_storage_full(bool on);
    // RAW+JPEG switched on or off at the body (a burst that changes its files per shot).
    void set_raw_pair(bool on);
    void set_slow_ms(int ms);
    void set_capture_delay_ms(int ms);
    void set_disconnect_after(int n);
    // Size of the images captured from now on; false (and the minimum in *min_size) when
    // it is too small for the picture size or too large for PTP's 32-bit sizes.
    bool set_image_size(uint64_t size, uint64_t* min_size);
    int slow_ms();
    void reset_faults();
    void clear_card();
    Stats stats();
    std::string stats_json();
    const Options& options() const { return opt_; }

  private:
    struct Prop {
        uint16_t code;
        uint16_t type;  // kDtUint8/16/32 or kDtStr
        bool writable;
        uint32_t factory;
        uint32_t current;
        std::vector<uint32_t> enumeration;  // empty: range form (numeric) or none
        bool range = false;
        uint32_t min = 0, max = 0, step = 0;
        std::string str_current;  // kDtStr only
        std::vector<std::string> str_enum;
    };
    struct Object {
        uint32_t handle = 0;
        uint32_t parent = 0;  // 0: root
        uint16_t format = 0;
        std::string name;
        std::string date;  // YYYYMMDDThhmmss
        uint64_t size = 0;
        // images only
        uint64_t capture_no = 0;
        std::vector<uint8_t> head;
        uint64_t pad = 0;
        std::string pad_text;
        Blob scan;
        Blob thumb;
        uint32_t thumb_w = 0, thumb_h = 0;
    };

    OpReply get_device_info();
    OpReply get_storage_info(uint32_t storage);
    OpReply get_object_handles(const OpRequest& req, bool count_only);
    OpReply get_object_info(uint32_t handle);
    OpReply get_object(SessionCtx& ctx, uint32_t handle, bool partial, uint32_t offset,
                       uint32_t max_bytes);
    OpReply get_thumb(uint32_t handle);
    OpReply delete_object(SessionCtx& ctx, uint32_t handle, uint32_t format);
    OpReply initiate_capture(SessionCtx& ctx, const OpRequest& req);
    OpReply get_prop_desc(uint16_t code);
    uint32_t add_raw_companion(const Object& jpeg);
    OpReply get_prop_value(uint16_t code);
    OpReply set_prop_value(uint16_t code, const std::vector<uint8_t>& data);

    Prop* find_prop(uint16_t code);
    void pack_value(std::vector<uint8_t>& out, const Prop& p, uint32_t v) const;
    Blob scan_for(int pattern);
    Blob thumb_for(int pattern, uint32_t* w, uint32_t* h);
    uint64_t image_count() const;
    Blob materialize(const Object& o) const;
    std::string make_unique_id(uint64_t capture_no) const;
    uint64_t min_image_size();

    const Options opt_;
    EventLog& log_;
    std::mutex mu_;
    std::vector<Prop> props_;
    std::map<uint32_t, Object> objects_;
    uint32_t next_handle_ = 1;
    uint64_t capture_no_ = 0;
    uint64_t nonce_ = 0;
    std::map<int, Blob> scan_cache_;
    std::map<int, Blob> thumb_cache_;
    // faults and settings
    int fail_busy_, fail_error_, no_event_, slow_ms_, capture_delay_ms_, disconnect_after_;
    int store_full_event_ = 0;
    bool storage_full_;
    bool raw_pair_;        // starts as --raw-pair; the control's rawpair on|off changes it
    uint64_t image_size_;  // --image-size, or the control channel's `size`
    Stats stats_;
    std::thread warmup_;
    std::condition_variable warmup_cv_;  // with mu_
    int warmup_want_ = 0;                // pattern to encode next, -1: nothing to do
    bool stop_warmup_ = false;
};

}  // namespace ptpsim
