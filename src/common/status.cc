#include "common/status.h"

#include <fmt/format.h>

namespace rdb {

std::string_view status_code_name(StatusCode code) {
  // Not a switch: the server-only codes are values outside the public enumerators.
  if (code == StatusCode::kOk)
    return "OK";
  if (code == StatusCode::kInvalidArgument)
    return "INVALID_ARGUMENT";
  if (code == StatusCode::kUnavailable)
    return "UNAVAILABLE";
  if (code == StatusCode::kDeadlineExceeded)
    return "DEADLINE_EXCEEDED";
  if (code == StatusCode::kUndetermined)
    return "UNDETERMINED";
  if (code == StatusCode::kInternal)
    return "INTERNAL";
  if (code == StatusCode::kAborted)
    return "ABORTED";
  if (code == ServerCode::kNotFound)
    return "NOT_FOUND";
  if (code == ServerCode::kAlreadyExists)
    return "ALREADY_EXISTS";
  if (code == ServerCode::kBusy)
    return "BUSY";
  if (code == ServerCode::kIOError)
    return "IO_ERROR";
  if (code == ServerCode::kCorruption)
    return "CORRUPTION";
  return "UNKNOWN";
}

std::string Status::to_string() const {
  if (is_ok()) {
    return "OK";
  }
  return fmt::format("{}: {}", status_code_name(code_), message_);
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) {
    return *this;
  }
  return Status(code_, fmt::format("{}: {}", context, message_));
}

}  // namespace rdb
