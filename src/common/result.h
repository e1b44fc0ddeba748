// Result<T>: either a value of type T or a non-OK Status.
//
// The value-or-error return type for fallible functions that produce something.
// Accessing value() on an error, or status() being OK with no value, is a bug
// and asserts. Thread safety: like any value type.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

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

// Assigns the value of a Result expression to `lhs`, or returns its error.
#define RDB_CONCAT_INNER_(a, b) a##b
#define RDB_CONCAT_(a, b) RDB_CONCAT_INNER_(a, b)
#define RDB_ASSIGN_OR_RETURN(lhs, expr) RDB_ASSIGN_OR_RETURN_IMPL_(RDB_CONCAT_(rdb_result_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration and `tmp` a name.
#define RDB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) {                              \
    return tmp.status();                           \
  }                                                \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
