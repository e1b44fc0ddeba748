// RegionCache: the client's memory of where keys live.
//
// Maps key ranges to (region, leader store address). Entries are filled from PD
// (GetRegion + GetStore) or, in direct mode, from one store's StoreInfo, and are
// dropped or replaced when a store answers with a RegionError.
// Thread safety: all methods are internally synchronised.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvrpc.pb.h"

namespace rdb {

struct RegionRoute {
  metapb::Region region;
  metapb::Peer leader;     // the peer to send to
  std::string store_addr;  // its store's address
};

class RegionCache {
 public:
  std::optional<RegionRoute> lookup(const std::string& key) const;
  // The region holding the greatest keys below `key` (the last region for ""), if cached.
  std::optional<RegionRoute> lookup_before(const std::string& key) const;
  void insert(RegionRoute route);
  void invalidate(std::uint64_t region_id);
  // Drops `region_id`'s entry and inserts `routes` as one step: a lookup from another
  // thread sees the old routing or the new, never a miss in between (a miss sends an
  // asynchronous call to the pool).
  void replace(std::uint64_t region_id, std::vector<RegionRoute> routes);
  void clear();

 private:
  void insert_locked(RegionRoute route);
  void invalidate_locked(std::uint64_t region_id);

  mutable std::mutex mu_;
  std::map<std::string, RegionRoute> by_start_;  // start_key -> route
};

}  // namespace rdb
