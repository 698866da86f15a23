// Splits a fuzz input into the pieces a harness needs. Fields are lines ('\n'-terminated) and
// single bytes, the last field is the rest: seed files stay readable and editable by hand
// (e.g. "\x08308\nbytes=0-99\n\n{...body...}"), and libFuzzer's mutations of one field
// rarely disturb the others.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace photorig::fuzz {

class Input {
  public:
    Input(const uint8_t* data, size_t size)
        : data_(reinterpret_cast<const char*>(data)), size_(size) {}

    // One byte (0 when the input is used up).
    uint8_t byte() { return pos_ < size_ ? static_cast<uint8_t>(data_[pos_++]) : 0; }
    // Up to the next '\n' (not included), or the rest when there is none.
    std::string line() {
        size_t start = pos_;
        while (pos_ < size_ && data_[pos_] != '\n') ++pos_;
        std::string out(data_ + start, pos_ - start);
        if (pos_ < size_) ++pos_;  // the '\n'
        return out;
    }
    // Up to the next NUL byte (not included), or the rest when there is none.
    std::string until_nul() {
        size_t start = pos_;
        while (pos_ < size_ && data_[pos_] != '\0') ++pos_;
        std::string out(data_ + start, pos_ - start);
        if (pos_ < size_) ++pos_;
        return out;
    }
    std::string rest() {
        std::string out(data_ + pos_, size_ - pos_);
        pos_ = size_;
        return out;
    }
    bool done() const { return pos_ >= size_; }

  private:
    const char* data_;
    size_t size_;
    size_t pos_ = 0;
};

// Aborts (a crash libFuzzer reports with this input) when an invariant the daemons rely on
// does not hold.
#define PHOTORIG_FUZZ_CHECK(cond)                                                         \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            __builtin_fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, \
                              __LINE__);                                                  \
            __builtin_abort();                                                            \
        }                                                                                 \
    } while (0)

}  // namespace photorig::fuzz
