// The errors the etcd gateway answers, as etcd answers them: the same gRPC codes and
// the same messages, because etcd's clients recognise errors by their text (the Go
// client's rpctypes, for one, turns "etcdserver: requested lease not found" into
// ErrLeaseNotFound and stops keeping that lease alive).
// Thread safety: pure functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace rdb::etcd {

inline grpc::Status err_empty_key() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided"};
}
inline grpc::Status err_key_not_found() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key not found"};
}
inline grpc::Status err_value_provided() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: value is provided"};
}
inline grpc::Status err_lease_provided() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: lease is provided"};
}
inline grpc::Status err_too_many_ops() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: too many operations in txn request"};
}
inline grpc::Status err_duplicate_key() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"};
}
inline grpc::Status err_compacted() {
  return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"};
}
inline grpc::Status err_future_rev() {
  return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"};
}
inline grpc::Status err_lease_not_found() {
  return {grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"};
}
inline grpc::Status err_lease_exists() {
  return {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: lease already exists"};
}
inline grpc::Status err_lease_ttl_too_large() {
  return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"};
}
inline grpc::Status err_request_too_large() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"};
}
inline grpc::Status err_not_supported(const char* what) {
  return {grpc::StatusCode::UNIMPLEMENTED, std::string("rdb-etcd: ") + what + " is not supported by the gateway"};
}

// An rdb failure as a gRPC status. UNAVAILABLE stays UNAVAILABLE (etcd's clients retry
// it; rdb answers it only for what was not applied). A write of unknown outcome is
// UNKNOWN: never retried by etcd's clients, and its message says what happened.
grpc::Status to_grpc(const Status& s);

}  // namespace rdb::etcd
