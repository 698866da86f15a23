#include "core/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace photorig {

namespace hex {
std::string encode(const void* data, size_t len) {
    static const char* digits = "0123456789abcdef";
    const auto* p = static_cast<const unsigned char*>(data);
    std::string out;
    out.reserve(len * 2);
    for (size_t i = 0; i < len; ++i) {
        out.push_back(digits[p[i] >> 4]);
        out.push_back(digits[p[i] & 0xf]);
    }
    return out;
}

namespace {
int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string decode(const std::string& hex_text) {
    if (hex_text.size() % 2 != 0) return std::string();
    std::string out;
    out.reserve(hex_text.size() / 2);
    for (size_t i = 0; i < hex_text.size(); i += 2) {
        int hi = nibble(hex_text[i]), lo = nibble(hex_text[i + 1]);
        if (hi < 0 || lo < 0) return std::string();
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}
}  // namespace hex

struct Digest::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Digest::Digest(Algorithm algorithm) : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(impl_->ctx, algorithm == Algorithm::md5 ? EVP_md5() : EVP_sha256(), nullptr);
}

Digest::~Digest() {
    EVP_MD_CTX_free(impl_->ctx);
}

void Digest::update(const void* data, size_t len) {
    EVP_DigestUpdate(impl_->ctx, data, len);
}

std::string Digest::raw_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(impl_->ctx, md, &len);
    return std::string(reinterpret_cast<const char*>(md), len);
}

std::string Digest::hex_of(Algorithm algorithm, const std::string& data) {
    Digest d(algorithm);
    d.update(data.data(), data.size());
    return d.hex_digest();
}

Expected<std::string> Digest::hex_of_file(Algorithm algorithm, const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error("io_error", "open " + path + ": " + std::strerror(errno));
    Digest d(algorithm);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            Error e = make_error("io_error", "read " + path + ": " + std::strerror(errno));
            ::close(fd);
            return e;
        }
        if (n == 0) break;
        d.update(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return d.hex_digest();
}

}  // namespace photorig
