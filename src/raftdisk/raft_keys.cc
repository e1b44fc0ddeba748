#include "raftdisk/raft_keys.h"

namespace rdb::raft_keys {
namespace {

constexpr char kRegionPrefix = 0x01;
constexpr char kLogSuffix = 0x01;
constexpr char kLocalStateSuffix = 0x02;
constexpr char kApplyStateSuffix = 0x03;
constexpr char kRegionStateSuffix = 0x04;
constexpr char kSnapshotIngestSuffix = 0x05;
constexpr char kMergeStateSuffix = 0x06;
constexpr std::size_t kRegionKeySize = 10;  // prefix + id + suffix

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::string region_key(std::uint64_t region_id, char suffix) {
  std::string k;
  k.push_back(kRegionPrefix);
  put_u64(k, region_id);
  k.push_back(suffix);
  return k;
}

}  // namespace

std::string log_key(std::uint64_t region_id, std::uint64_t index) {
  std::string k = region_key(region_id, kLogSuffix);
  put_u64(k, index);
  return k;
}

std::string local_state_key(std::uint64_t region_id) {
  return region_key(region_id, kLocalStateSuffix);
}

std::string apply_state_key(std::uint64_t region_id) {
  return region_key(region_id, kApplyStateSuffix);
}

std::string region_state_key(std::uint64_t region_id) {
  return region_key(region_id, kRegionStateSuffix);
}

std::string merge_state_key(std::uint64_t region_id) {
  return region_key(region_id, kMergeStateSuffix);
}

std::string snapshot_ingest_key(std::uint64_t region_id) {
  return region_key(region_id, kSnapshotIngestSuffix);
}

std::pair<std::string, std::string> all_regions_range() {
  return {std::string(1, kRegionPrefix), std::string(1, static_cast<char>(kRegionPrefix + 1))};
}

std::pair<std::string, std::string> region_range(std::uint64_t region_id) {
  std::string start(1, kRegionPrefix);
  put_u64(start, region_id);
  if (region_id == ~std::uint64_t{0}) {
    return {start, all_regions_range().second};
  }
  std::string end(1, kRegionPrefix);
  put_u64(end, region_id + 1);
  return {start, end};
}

std::uint64_t region_id_of(std::string_view key) {
  if (key.size() < 9 || key[0] != kRegionPrefix) {
    return 0;
  }
  std::uint64_t id = 0;
  for (std::size_t i = 1; i < 9; ++i) {
    id = (id << 8) | static_cast<unsigned char>(key[i]);
  }
  return id;
}

bool is_region_state_key(std::string_view key) {
  return key.size() == kRegionKeySize && key[0] == kRegionPrefix && key[9] == kRegionStateSuffix;
}

bool is_snapshot_ingest_key(std::string_view key) {
  return key.size() == kRegionKeySize && key[0] == kRegionPrefix && key[9] == kSnapshotIngestSuffix;
}

std::size_t insert_hint_group(std::string_view key) {
  if (key.size() < kRegionKeySize || key[0] != kRegionPrefix) {
    return 0;
  }
  const char suffix = key[kRegionKeySize - 1];
  const bool log_entry = suffix == kLogSuffix && key.size() == kRegionKeySize + 8;
  const bool state = (suffix == kLocalStateSuffix || suffix == kApplyStateSuffix) && key.size() == kRegionKeySize;
  return log_entry || state ? kRegionKeySize : 0;
}

std::string log_range_start(std::uint64_t region_id, std::uint64_t index) {
  if (index == 0) {
    return region_key(region_id, kLogSuffix);  // sorts before every log key; too short for a group
  }
  // One byte longer than a log key: right after log_key(index - 1), before log_key(index).
  std::string k = log_key(region_id, index - 1);
  k.push_back('\0');
  return k;
}

}  // namespace rdb::raft_keys
