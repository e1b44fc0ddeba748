#include "storage/cas_rule.h"

#include "storage/versioned_codec.h"

namespace rdb {

Result<CasDecision> decide_cas(const std::optional<std::string>& stored, std::uint64_t expected_version,
                               const std::optional<std::string>& new_value) {
  VersionedRecord current;
  bool exists = false;
  if (stored) {
    RDB_ASSIGN_OR_RETURN(current, decode_versioned(*stored));
    exists = !current.tombstone;
  }
  std::uint64_t visible = exists ? current.version : 0;
  CasDecision d;
  if (expected_version != visible) {
    d.outcome.succeeded = false;
    d.outcome.version = visible;
    d.outcome.current_found = exists;
    if (exists) {
      d.outcome.current_value = std::move(current.value);
    }
    return d;
  }
  d.outcome.succeeded = true;
  if (!new_value && !exists) {
    d.outcome.version = 0;
    return d;
  }
  std::uint64_t next = current.version + 1;
  d.outcome.version = next;
  d.record_to_write = encode_versioned(next, /*tombstone=*/!new_value, new_value ? *new_value : std::string());
  return d;
}

}  // namespace rdb
