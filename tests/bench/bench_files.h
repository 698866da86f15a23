// Helpers shared by the upload benchmarks: incompressible test files written fast, and a
// process's peak RSS.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sha256.h"

namespace photorig::bench {

// Writes `size` pseudo-random bytes (splitmix64, 1 MiB blocks: ~1 GB/s, unlike
// /dev/urandom) to `path`; returns their sha256 (hex). Random so that nothing on the way
// can compress or deduplicate them.
inline std::string write_random_file(const std::string& path, uint64_t size, uint64_t seed) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot create " + path);
    std::vector<uint64_t> block(128 * 1024);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    Sha256 hash;
    for (uint64_t left = size; left > 0;) {
        for (auto& w : block) {
            uint64_t z = (x += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            w = z ^ (z >> 31);
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size() * sizeof(uint64_t)));
        if (std::fwrite(block.data(), 1, n, f) != n) {
            std::fclose(f);
            throw std::runtime_error("cannot write " + path);
        }
        hash.update(block.data(), n);
        left -= n;
    }
    // On disk before anyone is told of it, as the agent's spool does before it publishes a
    // job: left dirty, the first fsync of the uploader's journal would write these files
    // back too (ext4 commits them with its journal) and time the disk, not the uploader.
    if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) {
        std::fclose(f);
        throw std::runtime_error("cannot write " + path);
    }
    if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + path);
    return hash.hex_digest();
}

// VmHWM (peak resident set) of a live process in KiB, -1 when unreadable.
inline long vm_hwm_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

}  // namespace photorig::bench
