#include "pd/region_tree.h"

#include <fmt/format.h>

namespace rdb {
namespace {

bool contains(const metapb::Region& r, const std::string& key) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

}  // namespace

std::vector<std::uint64_t> RegionTree::overlapping(const std::string& start, const std::string& end) const {
  std::vector<std::uint64_t> out;
  // The region starting at or before `start` may reach into the range.
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin()) {
    auto prev = std::prev(it);
    const auto& r = by_id_.at(prev->second).region();
    if (r.end_key().empty() || r.end_key() > start) {
      out.push_back(prev->second);
    }
  }
  for (; it != by_start_.end() && (end.empty() || it->first < end); ++it) {
    out.push_back(it->second);
  }
  return out;
}

Result<RegionTree::Update> RegionTree::check(const pdpb::RegionInfo& info) const {
  const metapb::Region& region = info.region();
  if (region.id() == 0) {
    return Status::invalid_argument("a region report without a region id");
  }
  if (!region.end_key().empty() && region.end_key() <= region.start_key()) {
    return Status::invalid_argument(fmt::format("region {} reports an empty key range", region.id()));
  }
  const auto& epoch = region.region_epoch();
  Update update;
  auto known = by_id_.find(region.id());
  if (known != by_id_.end()) {
    const auto& have = known->second.region().region_epoch();
    if (epoch.version() < have.version() || epoch.conf_ver() < have.conf_ver()) {
      return Status::invalid_argument(
          fmt::format("region {} reports epoch (conf_ver {}, version {}), older than the known ({}, {})", region.id(),
                      epoch.conf_ver(), epoch.version(), have.conf_ver(), have.version()));
    }
  }
  for (std::uint64_t id : overlapping(region.start_key(), region.end_key())) {
    if (id == region.id()) {
      continue;
    }
    const auto& other = by_id_.at(id).region();
    if (other.region_epoch().version() >= epoch.version()) {
      return Status::invalid_argument(
          fmt::format("region {} (version {}) overlaps region {} (version {}), which is newer", region.id(),
                      epoch.version(), id, other.region_epoch().version()));
    }
    update.removed.push_back(id);
  }
  update.changed =
      known == by_id_.end() || !update.removed.empty() || known->second.SerializeAsString() != info.SerializeAsString();
  return update;
}

void RegionTree::put(const pdpb::RegionInfo& info, const Update& update) {
  for (std::uint64_t id : update.removed) {
    auto it = by_id_.find(id);
    if (it != by_id_.end()) {
      auto s = by_start_.find(it->second.region().start_key());
      if (s != by_start_.end() && s->second == id) {
        by_start_.erase(s);
      }
      by_id_.erase(it);
    }
  }
  load(info);
}

void RegionTree::load(const pdpb::RegionInfo& info) {
  auto it = by_id_.find(info.region().id());
  if (it != by_id_.end()) {
    auto s = by_start_.find(it->second.region().start_key());
    if (s != by_start_.end() && s->second == info.region().id()) {
      by_start_.erase(s);
    }
  }
  by_id_[info.region().id()] = info;
  by_start_[info.region().start_key()] = info.region().id();
}

std::optional<pdpb::RegionInfo> RegionTree::by_key(const std::string& key) const {
  auto it = by_start_.upper_bound(key);
  if (it == by_start_.begin()) {
    return std::nullopt;
  }
  const auto& info = by_id_.at(std::prev(it)->second);
  if (!contains(info.region(), key)) {
    return std::nullopt;  // a gap: the region holding it has not reported yet
  }
  return info;
}

std::optional<pdpb::RegionInfo> RegionTree::before(const std::string& key) const {
  // The region starting below `key` with the greatest start; it must reach `key`.
  auto it = key.empty() ? by_start_.end() : by_start_.lower_bound(key);
  if (it == by_start_.begin()) {
    return std::nullopt;
  }
  const auto& info = by_id_.at(std::prev(it)->second);
  const auto& end = info.region().end_key();
  if (key.empty() ? !end.empty() : (!end.empty() && end < key)) {
    return std::nullopt;  // a gap below `key`
  }
  return info;
}

std::optional<pdpb::RegionInfo> RegionTree::by_id(std::uint64_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    return std::nullopt;
  }
  return it->second;
}

std::vector<pdpb::RegionInfo> RegionTree::all() const {
  std::vector<pdpb::RegionInfo> out;
  out.reserve(by_start_.size());
  for (const auto& [start, id] : by_start_) {
    out.push_back(by_id_.at(id));
  }
  return out;
}

}  // namespace rdb
