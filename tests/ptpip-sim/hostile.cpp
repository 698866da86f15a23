// --hostile MODE (README.md "Hostile modes"): what a lying camera says instead of the truth.
#include "hostile.h"

namespace ptpsim {

// --hostile name-*: the file name a hostile camera gives capture `plain` (PTP strings hold
// at most 254 UCS-2 characters; each byte here becomes one character).
std::string hostile_file_name(const std::string& mode, const std::string& plain) {
    if (mode == "name-dotdot") return "../../" + plain;
    if (mode == "name-slash") return "sub/dir/" + plain;
    if (mode == "name-nul") return std::string("..\0/evil", 9) + plain;
    if (mode == "name-control") return "\x1b[31m\r\n\x07\x7f" + plain;
    if (mode == "name-latin1") return "\xe9\xff\xfe\x80" + plain;
    // 127 characters: the longest name libgphoto2 2.5.30 survives (CameraFilePath.name is
    // char[128]); name-overlong (250) makes its fortified strcpy abort a stock process
    // (rig-agent cuts that copy and refuses the file: agent/camera/gphoto_fortify.cpp).
    if (mode == "name-long") return std::string(127 - plain.size(), 'L') + plain;
    if (mode == "name-overlong") return std::string(250 - plain.size(), 'L') + plain;
    return plain;
}

// --hostile folder-*: the name a hostile camera gives its photo folder (DCIM/100PHOTO), with
// the same garbage as the file names; folder-long is the longest PTP string (254).
std::string hostile_folder_name(const std::string& mode, const std::string& plain) {
    if (mode == "folder-dotdot") return "..";
    if (mode == "folder-slash") return "a/../../" + plain;
    if (mode == "folder-nul") return std::string("..\0/evil", 9) + plain;
    if (mode == "folder-control") return "\x1b[31m\r\n\x07\x7f" + plain;
    if (mode == "folder-latin1") return "\xe9\xff\xfe\x80" + plain;
    if (mode == "folder-long" || mode == "folder-deep") return std::string(254, 'F');
    return plain;
}
// --hostile size-*: the ObjectCompressedSize a lying camera announces.
uint32_t announced_size(const std::string& mode, uint64_t size) {
    if (mode == "size-larger") return static_cast<uint32_t>(size + 100000);
    if (mode == "size-smaller") return static_cast<uint32_t>(size / 2);
    if (mode == "size-4g") return 0xFFFFFFFFu;
    return static_cast<uint32_t>(size);
}

}  // namespace ptpsim
