// Status: the outcome of an operation that can fail, carried as a value.
//
// rdb does not throw across module boundaries; every fallible call returns a
// Status (or a Result<T>, see result.h). A Status is cheap to copy when OK and
// carries a code plus a human-readable message that names what was wrong.
// Thread safety: a Status is an immutable value; share copies freely.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace rdb {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input; nothing was done
  kNotFound,         // a named thing (not a key: missing keys are results) does not exist
  kAlreadyExists,
  kUnavailable,       // cannot reach / serve now; retrying may help
  kDeadlineExceeded,  // ran out of time; for writes the outcome may be unknown
  kUndetermined,      // a write whose outcome is unknown: it may or may not have applied
  kBusy,              // resource is locked or overloaded
  kIOError,
  kCorruption,
  kInternal,
  kAborted,  // a transaction conflicted (or its locks were rolled back): nothing of it applied; safe to retry
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status not_found(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status already_exists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status deadline_exceeded(std::string msg) { return {StatusCode::kDeadlineExceeded, std::move(msg)}; }
  static Status undetermined(std::string msg) { return {StatusCode::kUndetermined, std::move(msg)}; }
  static Status aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }
  static Status busy(std::string msg) { return {StatusCode::kBusy, std::move(msg)}; }
  static Status io_error(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: key is empty (keys must be 1 B to 8 KiB)".
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace rdb

// Propagates a non-OK Status from an expression to the caller.
#define RDB_RETURN_IF_ERROR(expr)           \
  do {                                      \
    ::rdb::Status rdb_status_tmp_ = (expr); \
    if (!rdb_status_tmp_.is_ok()) {         \
      return rdb_status_tmp_;               \
    }                                       \
  } while (0)
