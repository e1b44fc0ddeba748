// On-disk encoding of a versioned ("cas" column family) record.
//
//   [version: 8 bytes big-endian][kind: 1 byte, 0 = value, 1 = tombstone][value bytes]
//
// A tombstone carries the version of the delete so that versions keep growing
// when the key is re-created. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rdb {

struct VersionedRecord {
  std::uint64_t version = 0;
  bool tombstone = false;
  std::string value;
};

std::string encode_versioned(std::uint64_t version, bool tombstone, std::string_view value);
Result<VersionedRecord> decode_versioned(std::string_view bytes);

}  // namespace rdb
