#pragma once

#include <cstdint>
#include <string>

namespace photorig::ids {

// Time-ordered unique id: 12 hex digits of epoch ms + 12 random hex digits.
// Sorts by creation time, which keeps spool listings and journals in capture order.
std::string time_ordered_id(int64_t epoch_ms);
std::string random_hex(size_t n_chars);

}  // namespace photorig::ids
