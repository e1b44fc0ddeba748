// rdb::Result<T>: either a value of type T or a non-OK rdb::Status.
//
// What a client call that produces something returns. Check is_ok() before value() (or
// `*`, `->`): reading the value of an error is a bug (it asserts in debug builds). A
// Result built from an OK Status without a value becomes an INTERNAL error.
//
// Self-contained (the standard library and rdb/status.h); part of the installed client
// package. Thread safety: like any value type.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "rdb/status.h"

namespace rdb {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.is_ok() && "Result constructed from an OK status without a value");
    if (status_.is_ok()) {
      status_ = Status::internal("Result constructed from OK status without a value");
    }
  }

  bool is_ok() const { return value_.has_value(); }
  // OK when there is a value.
  const Status& status() const { return status_; }

  T& value() & {
    assert(is_ok());
    return *value_;
  }
  const T& value() const& {
    assert(is_ok());
    return *value_;
  }
  T&& value() && {
    assert(is_ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace rdb
