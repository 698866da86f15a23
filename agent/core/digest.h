// Message digests over OpenSSL's EVP, with hex output: the one implementation behind the
// spool's sha256, the targets' MD5/SHA-256 checks and SigV4's hashes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/expected.h"

namespace photorig {

namespace hex {
// Lower-case hex of `len` bytes.
std::string encode(const void* data, size_t len);
inline std::string encode(const std::string& bytes) {
    return encode(bytes.data(), bytes.size());
}
// The bytes of a hex string; an odd length or a non-hex digit gives "".
std::string decode(const std::string& hex_text);
}  // namespace hex

// An incremental digest: feed bytes as they stream past, finish once.
class Digest {
  public:
    enum class Algorithm { sha256, md5 };

    explicit Digest(Algorithm algorithm);
    ~Digest();
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;

    void update(const void* data, size_t len);
    std::string raw_digest();  // finishes; call once (or hex_digest)
    std::string hex_digest() { return hex::encode(raw_digest()); }

    static std::string hex_of(Algorithm algorithm, const std::string& data);
    static Expected<std::string> hex_of_file(Algorithm algorithm, const std::string& path);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// SHA-256, the digest photorig names files by.
class Sha256 : public Digest {
  public:
    Sha256() : Digest(Algorithm::sha256) {}
    static std::string of(const std::string& data) { return hex_of(Algorithm::sha256, data); }
    static Expected<std::string> of_file(const std::string& path) {
        return hex_of_file(Algorithm::sha256, path);
    }
};

}  // namespace photorig
