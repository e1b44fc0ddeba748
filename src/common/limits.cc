#include "common/limits.h"

#include <fmt/format.h>

namespace rdb {

Status validate_key(std::string_view key, std::string_view what) {
  if (key.empty()) {
    return Status::invalid_argument(fmt::format("{} is empty (keys must be 1 B to {} B)", what, kMaxKeySize));
  }
  if (key.size() > kMaxKeySize) {
    return Status::invalid_argument(
        fmt::format("{} is {} B, over the key size limit of {} B (8 KiB)", what, key.size(), kMaxKeySize));
  }
  return Status::ok();
}

Status validate_value(std::string_view value) {
  if (value.size() > kMaxValueSize) {
    return Status::invalid_argument(
        fmt::format("value is {} B, over the value size limit of {} B (8 MiB)", value.size(), kMaxValueSize));
  }
  return Status::ok();
}

Status validate_scan_limit(std::uint32_t limit) {
  if (limit == 0 || limit > kMaxScanLimit) {
    return Status::invalid_argument(
        fmt::format("scan limit {} is out of range (the scan limit must be 1 to {})", limit, kMaxScanLimit));
  }
  return Status::ok();
}

Status validate_write_bytes(std::size_t bytes) {
  if (bytes > kMaxWriteBytes) {
    return Status::invalid_argument(
        fmt::format("write holds {} bytes of keys and values, over the limit of {} MiB "
                    "for one write (split it into several batches)",
                    bytes, kMaxWriteBytes >> 20));
  }
  return Status::ok();
}

Status validate_batch_size(std::size_t count) {
  if (count == 0) {
    return Status::invalid_argument("batch is empty (a batch must hold 1 to 10240 entries)");
  }
  if (count > kMaxBatchKeys) {
    return Status::invalid_argument(
        fmt::format("batch holds {} entries, over the batch limit of {}", count, kMaxBatchKeys));
  }
  return Status::ok();
}

Status validate_range(std::string_view start, std::string_view end, bool end_required) {
  if (start.size() > kMaxKeySize) {
    return validate_key(start, "start key");
  }
  if (end.empty()) {
    if (end_required) {
      return Status::invalid_argument("end key is empty (this operation needs a bounded range [start, end))");
    }
    return Status::ok();
  }
  RDB_RETURN_IF_ERROR(validate_key(end, "end key"));
  if (start >= end) {
    return Status::invalid_argument("start key must be less than end key in the range [start, end)");
  }
  return Status::ok();
}

}  // namespace rdb
