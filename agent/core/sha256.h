#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/expected.h"

namespace photorig {

// Incremental SHA-256 (OpenSSL's libcrypto): feed bytes as they stream past.
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t len);
    std::string hex_digest();  // finishes; call once

    static std::string of(const std::string& data);
    static Expected<std::string> of_file(const std::string& path);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace photorig
