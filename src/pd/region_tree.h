// RegionTree: PD's regions ordered by start key, with the rules that keep that
// view consistent while regions split (and later merge): a report is refused when
// PD already knows a newer state of its range, and a newer report replaces every
// older region its range overlaps.
//
// Epoch rules (TiKV's): a region's version grows with every split or merge, its
// conf_ver with every membership change. A report about region R is stale when PD
// knows R with a greater version or conf_ver, or knows another region overlapping
// R's range with a greater version (R's range was cut after the report was made).
//
// Thread safety: none; ClusterMeta guards it with its lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "pdpb.pb.h"

namespace rdb {

class RegionTree {
 public:
  // What a report changed: `removed` are the ids of the regions it replaced.
  struct Update {
    bool changed = false;
    std::vector<std::uint64_t> removed;
  };
  // INVALID_ARGUMENT (naming the newer region) when the report is stale.
  Result<Update> check(const pdpb::RegionInfo& info) const;
  // Applies a report that check() accepted.
  void put(const pdpb::RegionInfo& info, const Update& update);
  // Loading persisted records: no checks.
  void load(const pdpb::RegionInfo& info);

  std::optional<pdpb::RegionInfo> by_key(const std::string& key) const;
  // The region holding the greatest keys below `key` (the last region for "").
  std::optional<pdpb::RegionInfo> before(const std::string& key) const;
  std::optional<pdpb::RegionInfo> by_id(std::uint64_t id) const;
  // In key order.
  std::vector<pdpb::RegionInfo> all() const;
  std::size_t size() const { return by_id_.size(); }

 private:
  // Ids of the regions overlapping [start, end) (end "" = unbounded), in key order.
  std::vector<std::uint64_t> overlapping(const std::string& start, const std::string& end) const;

  std::map<std::uint64_t, pdpb::RegionInfo> by_id_;
  std::map<std::string, std::uint64_t> by_start_;
};

}  // namespace rdb
