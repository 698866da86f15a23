// Errors as values at module boundaries: every fallible call that crosses a module
// returns Expected<T>. An Error carries a stable snake_case code (what callers switch on
// and what goes on the wire), a human message, and context added as it travels up.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace photorig {

struct Error {
    std::string code;     // stable, snake_case: "bad_request", "camera_busy", "io_error", ...
    std::string message;  // for humans; never contains secrets

    Error() = default;
    Error(std::string c, std::string m) : code(std::move(c)), message(std::move(m)) {}

    // Prefixes the message with where it happened: "spool: rename x: No such file".
    Error with_context(const std::string& where) const {
        return Error(code, where + ": " + message);
    }
    std::string describe() const { return code + ": " + message; }
};

inline Error make_error(std::string code, std::string message) {
    return Error(std::move(code), std::move(message));
}

template <typename T>
class [[nodiscard]] Expected {
  public:
    Expected(const T& v) : value_(v) {}
    Expected(T&& v) : value_(std::move(v)) {}
    Expected(const Error& e) : value_(e) {}
    Expected(Error&& e) : value_(std::move(e)) {}

    bool has_value() const { return value_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        assert(has_value());
        return std::get<0>(value_);
    }
    const T& value() const& {
        assert(has_value());
        return std::get<0>(value_);
    }
    T&& value() && {
        assert(has_value());
        return std::get<0>(std::move(value_));
    }
    const Error& error() const {
        assert(!has_value());
        return std::get<1>(value_);
    }

    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

  private:
    std::variant<T, Error> value_;
};

template <>
class [[nodiscard]] Expected<void> {
  public:
    Expected() = default;
    Expected(const Error& e) : error_(e) {}
    Expected(Error&& e) : error_(std::move(e)) {}

    bool has_value() const { return !error_.has_value(); }
    explicit operator bool() const { return has_value(); }
    const Error& error() const {
        assert(error_);
        return *error_;
    }

  private:
    std::optional<Error> error_;
};

using Status = Expected<void>;
inline Status ok() {
    return Status();
}

}  // namespace photorig
