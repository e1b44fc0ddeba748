#include "client/region_cache.h"

namespace rdb {

std::optional<RegionRoute> RegionCache::lookup(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = by_start_.upper_bound(key);
  if (it == by_start_.begin()) {
    return std::nullopt;
  }
  --it;
  const auto& r = it->second.region;
  if (!r.end_key().empty() && key >= r.end_key()) {
    return std::nullopt;
  }
  return it->second;
}

std::optional<RegionRoute> RegionCache::lookup_before(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = key.empty() ? by_start_.end() : by_start_.lower_bound(key);
  if (it == by_start_.begin()) {
    return std::nullopt;
  }
  --it;
  const auto& end = it->second.region.end_key();
  if (key.empty() ? !end.empty() : (!end.empty() && end < key)) {
    return std::nullopt;
  }
  return it->second;
}

void RegionCache::insert(RegionRoute route) {
  std::lock_guard lock(mu_);
  insert_locked(std::move(route));
}

void RegionCache::invalidate(std::uint64_t region_id) {
  std::lock_guard lock(mu_);
  invalidate_locked(region_id);
}

void RegionCache::replace(std::uint64_t region_id, std::vector<RegionRoute> routes) {
  std::lock_guard lock(mu_);
  invalidate_locked(region_id);
  for (auto& route : routes) {
    insert_locked(std::move(route));
  }
}

void RegionCache::insert_locked(RegionRoute route) {
  // Drop cached regions that overlap the new one (they are older).
  const auto& start = route.region.start_key();
  const auto& end = route.region.end_key();
  for (auto it = by_start_.begin(); it != by_start_.end();) {
    const auto& r = it->second.region;
    bool before = !r.end_key().empty() && r.end_key() <= start;
    bool after = !end.empty() && r.start_key() >= end;
    if (!before && !after) {
      it = by_start_.erase(it);
    } else {
      ++it;
    }
  }
  by_start_[start] = std::move(route);
}

void RegionCache::invalidate_locked(std::uint64_t region_id) {
  for (auto it = by_start_.begin(); it != by_start_.end(); ++it) {
    if (it->second.region.id() == region_id) {
      by_start_.erase(it);
      return;
    }
  }
}

void RegionCache::clear() {
  std::lock_guard lock(mu_);
  by_start_.clear();
}

}  // namespace rdb
