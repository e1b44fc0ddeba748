#include "server/region_index.h"

namespace rdb {

void RegionRangeIndex::put(const metapb::Region& region) {
  erase(region.id());
  by_start_[region.start_key()] = {region.end_key(), region.id()};
  start_of_[region.id()] = region.start_key();
}

void RegionRangeIndex::erase(std::uint64_t region_id) {
  auto it = start_of_.find(region_id);
  if (it == start_of_.end()) {
    return;
  }
  if (auto r = by_start_.find(it->second); r != by_start_.end() && r->second.id == region_id) {
    by_start_.erase(r);
  }
  start_of_.erase(it);
}

std::optional<std::uint64_t> RegionRangeIndex::overlapping(const metapb::Region& region) const {
  const std::string& start = region.start_key();
  const std::string& end = region.end_key();
  // The range starting at or before `start` overlaps if it reaches past it.
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin()) {
    auto before = std::prev(it);
    if (before->second.id != region.id() && (before->second.end.empty() || before->second.end > start)) {
      return before->second.id;
    }
  }
  // Ranges starting after `start` overlap if they start before `end`.
  for (; it != by_start_.end() && (end.empty() || it->first < end); ++it) {
    if (it->second.id != region.id()) {
      return it->second.id;
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> RegionRangeIndex::region_of(std::string_view key) const {
  auto it = by_start_.upper_bound(key);
  if (it == by_start_.begin()) {
    return std::nullopt;
  }
  --it;
  if (it->second.end.empty() || key < it->second.end) {
    return it->second.id;
  }
  return std::nullopt;
}

}  // namespace rdb
