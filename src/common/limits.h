// Input limits shared by server-side validation and client-side pre-checks.
//
// They match TiKV's defaults so that users moving from it meet no surprises.
// Every check returns INVALID_ARGUMENT with a message that names the limit.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace rdb {

inline constexpr std::size_t kMaxKeySize = std::size_t{8} * 1024;           // 8 KiB
inline constexpr std::size_t kMaxValueSize = std::size_t{8} * 1024 * 1024;  // 8 MiB
inline constexpr std::uint32_t kMaxScanLimit = 10240;
inline constexpr std::size_t kMaxBatchKeys = 10240;  // per request (a transaction's prewrite is sent in parts)
// Keys one transaction may write or lock. Its bytes stay within kMaxWriteBytes (a
// transaction in one region may commit in one Raft entry), so this bounds only the count.
inline constexpr std::size_t kMaxTxnKeys = std::size_t{1} << 20;
// gRPC message cap: the largest value plus generous room for batches and framing.
inline constexpr int kMaxGrpcMessageBytes = 64 * 1024 * 1024;
// A read's response is cut (scan: continued by the client) or refused (batch get)
// beyond this many bytes of keys and values, well inside the message cap.
inline constexpr std::size_t kMaxResponseBytes = std::size_t{32} * 1024 * 1024;
// One write (a Raft entry) may carry at most this many bytes of keys and values:
// followers receive entries in messages capped at kMaxGrpcMessageBytes * 4, and
// an entry that cannot travel would stall replication forever.
inline constexpr std::size_t kMaxWriteBytes = std::size_t{48} * 1024 * 1024;

Status validate_key(std::string_view key, std::string_view what = "key");
Status validate_value(std::string_view value);
Status validate_scan_limit(std::uint32_t limit);
Status validate_batch_size(std::size_t count);
// The keys and values of one write together, against kMaxWriteBytes.
Status validate_write_bytes(std::size_t bytes);
// [start, end) with end == "" meaning unbounded; a bounded range must have start < end.
Status validate_range(std::string_view start, std::string_view end, bool end_required);

}  // namespace rdb
