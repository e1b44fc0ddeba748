#include "storage/versioned_codec.h"

#include <fmt/format.h>

namespace rdb {

namespace {
constexpr std::size_t kHeaderSize = 9;
}

std::string encode_versioned(std::uint64_t version, bool tombstone, std::string_view value) {
  std::string out;
  out.reserve(kHeaderSize + value.size());
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((version >> shift) & 0xff));
  }
  out.push_back(tombstone ? 1 : 0);
  out.append(value);
  return out;
}

Result<VersionedRecord> decode_versioned(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) {
    return ServerStatus::corruption(
        fmt::format("versioned record is {} B, shorter than its {} B header", bytes.size(), kHeaderSize));
  }
  VersionedRecord rec;
  for (std::size_t i = 0; i < 8; ++i) {
    rec.version = (rec.version << 8) | static_cast<unsigned char>(bytes[i]);
  }
  auto kind = static_cast<unsigned char>(bytes[8]);
  if (kind > 1) {
    return ServerStatus::corruption(fmt::format("versioned record has unknown kind byte {}", kind));
  }
  rec.tombstone = kind == 1;
  rec.value.assign(bytes.substr(kHeaderSize));
  return rec;
}

}  // namespace rdb
