// Small text helpers shared by the modules.
#pragma once

#include <string>

namespace photorig::text {

// ASCII lower case (hex digests, HTTP header names); other bytes pass unchanged.
std::string lower(std::string s);

}  // namespace photorig::text
