// RegionRangeIndex: the key ranges of the initialized regions a store holds,
// ordered by start key, so the store can tell which region holds a key and
// whether a new region's range overlaps one it already has (a peer for such a
// region is refused until the overlap is resolved, e.g. by a split or a removal
// that has not reached this store yet) without scanning every peer.
// Thread safety: none; owned by the store's loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "metapb.pb.h"

namespace rdb {

class RegionRangeIndex {
 public:
  // Adds the region, or moves it to its new range.
  void put(const metapb::Region& region);
  void erase(std::uint64_t region_id);
  // A region other than `region` itself whose range overlaps `region`'s.
  std::optional<std::uint64_t> overlapping(const metapb::Region& region) const;
  // The region whose range holds `key`.
  std::optional<std::uint64_t> region_of(std::string_view key) const;
  std::size_t size() const { return start_of_.size(); }

 private:
  struct Range {
    std::string end;  // exclusive; empty = to the end of the key space
    std::uint64_t id;
  };
  std::map<std::string, Range, std::less<>> by_start_;
  std::map<std::uint64_t, std::string> start_of_;
};

}  // namespace rdb
