#include "server/region_index.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

metapb::Region region(std::uint64_t id, const std::string& start, const std::string& end) {
  metapb::Region r;
  r.set_id(id);
  r.set_start_key(start);
  r.set_end_key(end);
  return r;
}

TEST(RegionRangeIndexTest, FindsTheRegionOfAKeyAndOverlaps) {
  RegionRangeIndex index;
  index.put(region(1, "", "b"));
  index.put(region(2, "b", "d"));
  index.put(region(3, "f", ""));
  EXPECT_EQ(index.size(), 3u);
  EXPECT_EQ(index.region_of(""), 1u);
  EXPECT_EQ(index.region_of("a"), 1u);
  EXPECT_EQ(index.region_of("b"), 2u);
  EXPECT_EQ(index.region_of("c\xff"), 2u);
  EXPECT_FALSE(index.region_of("d").has_value()) << "a gap: no region holds [d, f)";
  EXPECT_EQ(index.region_of("zzz"), 3u);

  EXPECT_FALSE(index.overlapping(region(4, "d", "f")).has_value()) << "fits the gap exactly";
  EXPECT_EQ(index.overlapping(region(4, "c", "e")), 2u);
  EXPECT_EQ(index.overlapping(region(4, "e", "g")), 3u);
  EXPECT_EQ(index.overlapping(region(4, "", "")), 1u);
  EXPECT_FALSE(index.overlapping(region(2, "b", "e")).has_value()) << "a region never overlaps itself";
  EXPECT_EQ(index.overlapping(region(2, "b", "g")), 3u);

  // A region that moves (a split narrows it) and one that goes.
  index.put(region(2, "b", "c"));
  EXPECT_FALSE(index.region_of("c").has_value());
  index.erase(3);
  EXPECT_FALSE(index.region_of("zzz").has_value());
  EXPECT_FALSE(index.overlapping(region(5, "c", "")).has_value());
  index.erase(42);  // unknown: nothing happens
  EXPECT_EQ(index.size(), 2u);
}

}  // namespace
}  // namespace rdb
