#include "storage/mvcc_codec.h"

#include <fmt/format.h>

#include "common/limits.h"

namespace rdb::mvcc {
namespace {

constexpr std::size_t kGroup = 8;
constexpr unsigned char kFullMarker = 0xFF;

void put_u64_be(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

std::uint64_t get_u64_be(std::string_view in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<unsigned char>(in[i]);
  }
  return v;
}

// Above every stored key: user keys are at most kMaxKeySize bytes, encoded a ninth longer.
const std::string& above_all() {
  static const std::string k(kMaxKeySize / kGroup * (kGroup + 1) + 2 * (kGroup + 1) + 8, '\xff');
  return k;
}

}  // namespace

std::string encode_key(std::string_view user_key) {
  std::string out;
  out.reserve((user_key.size() / kGroup + 1) * (kGroup + 1) + 8);
  std::size_t i = 0;
  for (;;) {
    std::size_t left = user_key.size() - i;
    if (left >= kGroup) {
      out.append(user_key.substr(i, kGroup));
      i += kGroup;
      if (left > kGroup) {
        out.push_back(static_cast<char>(kFullMarker));
        continue;
      }
      // A full last group: an all-padding group follows, so a longer key sorts after.
      out.push_back(static_cast<char>(kFullMarker));
      out.append(kGroup, '\0');
      out.push_back(static_cast<char>(kFullMarker - kGroup));
      return out;
    }
    out.append(user_key.substr(i));
    out.append(kGroup - left, '\0');
    out.push_back(static_cast<char>(kFullMarker - (kGroup - left)));
    return out;
  }
}

Result<std::string> decode_key(std::string_view encoded, std::string_view* rest) {
  std::string out;
  std::size_t i = 0;
  for (;;) {
    if (encoded.size() - i < kGroup + 1) {
      return ServerStatus::corruption("a transactional key ends inside a group");
    }
    auto marker = static_cast<unsigned char>(encoded[i + kGroup]);
    if (marker == kFullMarker) {
      out.append(encoded.substr(i, kGroup));
      i += kGroup + 1;
      continue;
    }
    std::size_t pad = kFullMarker - marker;
    if (pad > kGroup) {
      return ServerStatus::corruption(fmt::format("a transactional key has a bad group marker {:#x}", marker));
    }
    for (std::size_t p = kGroup - pad; p < kGroup; ++p) {
      if (encoded[i + p] != '\0') {
        return ServerStatus::corruption("a transactional key's padding is not zero");
      }
    }
    out.append(encoded.substr(i, kGroup - pad));
    i += kGroup + 1;
    if (rest != nullptr) {
      *rest = encoded.substr(i);
    }
    return out;
  }
}

std::string write_key(std::string_view user_key, std::uint64_t commit_ts) {
  std::string out = encode_key(user_key);
  put_u64_be(out, ~commit_ts);
  return out;
}

Result<WriteKey> parse_write_key(std::string_view key) {
  std::string_view rest;
  RDB_ASSIGN_OR_RETURN(std::string user, decode_key(key, &rest));
  if (rest.size() != 8) {
    return ServerStatus::corruption(
        fmt::format("a write record key has {} bytes after its user key, not 8", rest.size()));
  }
  return WriteKey{std::move(user), ~get_u64_be(rest)};
}

std::pair<std::string, std::string> versions_of(std::string_view user_key) {
  std::string first = encode_key(user_key);
  std::string end = first;
  // The last marker is at most 0xFE (see the header): one more bounds every version.
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return {std::move(first), std::move(end)};
}

std::pair<std::string, std::string> family_range(ColumnFamily cf, std::string_view start, std::string_view end) {
  if (cf == ColumnFamily::kTxnWrite) {
    return {encode_key(start), end.empty() ? above_all() : encode_key(end)};
  }
  static const std::string above_user_keys(kMaxKeySize + 1, '\xff');
  return {std::string(start), end.empty() ? above_user_keys : std::string(end)};
}

Result<std::string> user_key_of(ColumnFamily cf, std::string_view stored_key) {
  if (cf == ColumnFamily::kTxnWrite) {
    RDB_ASSIGN_OR_RETURN(auto parsed, parse_write_key(stored_key));
    return std::move(parsed.user_key);
  }
  return std::string(stored_key);
}

}  // namespace rdb::mvcc
