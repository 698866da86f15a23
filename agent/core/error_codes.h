// Error codes shared by more than one module: the camera module returns them in
// Error::code and the wire format sends them unchanged in responses, so they are declared
// once here, below both. Clients switch on these strings; never rename one.
#pragma once

namespace photorig::codes {

inline constexpr const char* camera_busy = "camera_busy";
inline constexpr const char* camera_disconnected = "camera_disconnected";
inline constexpr const char* camera_storage_full = "camera_storage_full";
inline constexpr const char* timeout = "timeout";
inline constexpr const char* camera_error = "camera_error";
inline constexpr const char* unknown_setting = "unknown_setting";
inline constexpr const char* bad_setting_value = "bad_setting_value";
inline constexpr const char* setting_read_only = "setting_read_only";
inline constexpr const char* preview_unavailable = "preview_unavailable";
// Issue 15 (floods): more requests than the agent serves a second (the rig's RequestGate).
inline constexpr const char* rate_limited = "rate_limited";
// Issue 15: a capture stopped by capture/cancel before all its shots were taken.
inline constexpr const char* cancelled = "cancelled";
// Issue 15 (hostile cameras): a file larger than announced or than the per-file cap, and a
// camera that keeps announcing new files for one trigger.
inline constexpr const char* file_too_large = "file_too_large";
inline constexpr const char* too_many_files = "too_many_files";
// A camera file name (or folder path) longer than libgphoto2's fixed buffers hold: the
// file cannot be downloaded by its name, so it is refused and left on the camera.
inline constexpr const char* file_name_too_long = "file_name_too_long";
// Issue 14 (fleet): a request whose expires_at had passed when the agent read it (it waited
// at a broker while the agent was away), and a capture_at already further in the past than
// capture.late_tolerance_ms. Neither is carried out.
inline constexpr const char* expired = "expired";
inline constexpr const char* too_late = "too_late";
// Issue 14: a warning (not an error: the request was carried out) in a response's
// "warnings": a capture_at request served while the system clock is not NTP-synchronised.
inline constexpr const char* clock_unsynced = "clock_unsynced";

}  // namespace photorig::codes
