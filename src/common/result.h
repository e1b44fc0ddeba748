// Result<T> inside rdb's processes: the public rdb::Result (include/rdb/result.h) plus the
// RDB_ASSIGN_OR_RETURN macro, which is not part of the installed client package.
#pragma once

#include "common/status.h"
#include "rdb/result.h"

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
