#include "core/ids.h"

#include <cstdio>
#include <mutex>
#include <random>

namespace photorig::ids {

std::string random_hex(size_t n_chars) {
    static std::mutex mutex;
    static std::mt19937_64 rng{std::random_device{}()};
    static const char* digits = "0123456789abcdef";
    std::lock_guard<std::mutex> lock(mutex);
    std::string out;
    out.reserve(n_chars);
    for (size_t i = 0; i < n_chars; ++i) out.push_back(digits[rng() & 0xf]);
    return out;
}

std::string time_ordered_id(int64_t epoch_ms) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%012llx",
                  static_cast<unsigned long long>(epoch_ms) & 0xffffffffffffULL);
    return std::string(buf) + random_hex(12);
}

}  // namespace photorig::ids
