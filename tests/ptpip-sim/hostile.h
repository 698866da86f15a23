// --hostile MODE (README.md "Hostile modes"): what a lying camera says instead of the truth.
#pragma once

#include <cstdint>
#include <string>

namespace ptpsim {

// --hostile name-*: the file name a hostile camera gives capture `plain`.
std::string hostile_file_name(const std::string& mode, const std::string& plain);
// --hostile folder-*: the name a hostile camera gives its photo folder (plain: 100PHOTO).
std::string hostile_folder_name(const std::string& mode, const std::string& plain);
// --hostile folder-deep: folders of 254 characters between DCIM and the photo folder, so the
// photo folder's path is over 1024 bytes (libgphoto2 2.5.30 builds it in a char[1024]).
constexpr int kDeepFolderLevels = 3;
// --hostile size-*: the ObjectCompressedSize a lying camera announces for a `size` file.
uint32_t announced_size(const std::string& mode, uint64_t size);

}  // namespace ptpsim
