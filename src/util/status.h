// Errors as values: an errno plus one sentence of context (file, offset, region).
// Converted to an errno in one place for FUSE and printed as-is by the CLI.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

namespace clonefs {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status ok() { return Status(); }
  // `code` is an errno value (never 0); `message` names what failed and where.
  static Status error(int code, std::string message) {
    return Status(code == 0 ? EIO : code, std::move(message));
  }
  // The one place a failed syscall becomes a Status: "<context>: <strerror(err)>".
  static Status from_errno(int err, const std::string& context);

  bool is_ok() const { return code_ == 0; }
  explicit operator bool() const { return is_ok(); }
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  // Adds an outer context: "outer: inner".
  Status with_context(const std::string& outer) const;

 private:
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}
  int code_ = 0;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace clonefs

#define CLONEFS_RETURN_IF_ERROR(expr)                     \
  do {                                                    \
    ::clonefs::Status clonefs_status_ = (expr);           \
    if (!clonefs_status_.is_ok()) return clonefs_status_; \
  } while (0)
