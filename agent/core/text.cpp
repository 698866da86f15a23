#include "core/text.h"

#include <cctype>

namespace photorig::text {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace photorig::text
