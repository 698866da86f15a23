#include "core/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace photorig {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
    EVP_MD_CTX_free(impl_->ctx);
}

void Sha256::update(const void* data, size_t len) {
    EVP_DigestUpdate(impl_->ctx, data, len);
}

std::string Sha256::hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(impl_->ctx, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    hex.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        hex.push_back(digits[md[i] >> 4]);
        hex.push_back(digits[md[i] & 0xf]);
    }
    return hex;
}

std::string Sha256::of(const std::string& data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.hex_digest();
}

Expected<std::string> Sha256::of_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error("io_error", "open " + path + ": " + std::strerror(errno));
    Sha256 h;
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
        h.update(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return h.hex_digest();
}

}  // namespace photorig
