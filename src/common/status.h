// Status inside rdb's processes: the public rdb::Status (include/rdb/status.h) plus the codes
// only the server side uses.
//
// The client library returns only the codes its public enum lists. Stores, PD and the tools
// also need "not found", "already exists", "busy", "I/O error" and "corruption": they are
// values of the same StatusCode type outside the public enumerators (ServerCode::k*), built
// with ServerStatus::*(). They must not reach a client caller: the gRPC boundary turns them
// into the public codes. Thread safety: values, as Status.
#pragma once

#include "rdb/status.h"

namespace rdb {

struct ServerCode {
  static constexpr StatusCode kNotFound{2};  // a named thing (not a key: missing keys are results) does not exist
  static constexpr StatusCode kAlreadyExists{3};
  static constexpr StatusCode kBusy{7};  // resource is locked or overloaded
  static constexpr StatusCode kIOError{8};
  static constexpr StatusCode kCorruption{9};
};

struct ServerStatus {
  static Status not_found(std::string msg) { return {ServerCode::kNotFound, std::move(msg)}; }
  static Status already_exists(std::string msg) { return {ServerCode::kAlreadyExists, std::move(msg)}; }
  static Status busy(std::string msg) { return {ServerCode::kBusy, std::move(msg)}; }
  static Status io_error(std::string msg) { return {ServerCode::kIOError, std::move(msg)}; }
  static Status corruption(std::string msg) { return {ServerCode::kCorruption, std::move(msg)}; }
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
