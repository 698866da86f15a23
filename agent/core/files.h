// File-system helpers with the durability rules the product relies on: a file that
// exists under its final name is complete and on disk (temp -> fsync -> rename -> fsync dir).
#pragma once

#include <cstdint>
#include <string>

#include "core/expected.h"

namespace photorig::files {

// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir.
Status write_atomic(const std::string& path, const std::string& data);
// As write_atomic, but leaves the fsync of the directory to the caller, who syncs it once
// for several renames in it (a photo and its sidecar).
Status write_atomic_unsynced_dir(const std::string& path, const std::string& data);
// "a/b/c.jpg" -> "a/b" and "c.jpg" ("." and the whole path when there is no '/').
std::string dirname_of(const std::string& path);
std::string basename_of(const std::string& path);
Status fsync_dir(const std::string& dir);

// Renames without ever replacing an existing file: renameat2(RENAME_NOREPLACE) where the file
// system has it, else link() + unlink() (link fails with EEXIST atomically). 0, or -1 + errno.
int rename_noreplace(const std::string& from, const std::string& to);
Status make_dirs(const std::string& dir);  // mkdir -p
Expected<std::string> read_all(const std::string& path);

// Reads a one-secret file (password, token, key). Refuses a file that other users can
// read. A single trailing newline (as `echo` writes it) is not part of the secret.
// Error messages name the path, never the contents.
Expected<std::string> read_secret(const std::string& path);

// Free bytes for an unprivileged user on the file system holding `path`.
Expected<uint64_t> disk_free_bytes(const std::string& path);

}  // namespace photorig::files
