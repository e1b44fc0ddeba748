// rdb::Status: the outcome of a client call that can fail, carried as a value.
//
// The client library never throws; every call returns a Status (or a Result<T>, see
// rdb/result.h). A Status is cheap to copy when OK and carries a code plus a message that
// names what was wrong ("INVALID_ARGUMENT: key is empty (keys must be 1 B to 8 KiB)").
// A missing key or a failed compare-and-swap is a result, not an error.
//
// This header is self-contained (the standard library only) and part of the installed
// client package. Thread safety: a Status is an immutable value; share copies freely.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace rdb {

// Every code the client library returns. What each means for a call:
enum class StatusCode {
  kOk = 0,
  // Bad input (a key out of 1 B..8 KiB, a value over 8 MiB, a scan limit out of 1..10240,
  // a malformed address, a timestamp PD has not reached...): nothing was done.
  kInvalidArgument = 1,
  // No server could be reached or serve the request in time; the request was not applied.
  // Retrying later may succeed.
  kUnavailable = 4,
  // A read, or a request that was never sent, ran out of the call's deadline. Writes that
  // may have been sent report kUndetermined instead.
  kDeadlineExceeded = 5,
  // A write whose outcome is unknown: it was sent and its answer lost, so it may or may not
  // have been applied. The client never retries such a write (a retry could apply an old
  // value over a newer one); read before deciding.
  kUndetermined = 6,
  // A server failed (its message says how), or the client met an answer it cannot use.
  kInternal = 10,
  // A transaction conflicted with another one, or its locks were rolled back: nothing of it
  // was applied. Safe to retry with a new transaction.
  kAborted = 11,
};

// "OK", "INVALID_ARGUMENT", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNDETERMINED", "INTERNAL",
// "ABORTED".
std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status deadline_exceeded(std::string msg) { return {StatusCode::kDeadlineExceeded, std::move(msg)}; }
  static Status undetermined(std::string msg) { return {StatusCode::kUndetermined, std::move(msg)}; }
  static Status internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status aborted(std::string msg) { return {StatusCode::kAborted, std::move(msg)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK", or "CODE: message".
  std::string to_string() const;

  // A copy whose message is prefixed with `context: ` (OK stays OK).
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace rdb
