#include "client/region_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace rdb {
namespace {

RegionRoute route(std::uint64_t id, const std::string& start, const std::string& end, const std::string& addr) {
  RegionRoute r;
  r.region.set_id(id);
  r.region.set_start_key(start);
  r.region.set_end_key(end);
  r.store_addr = addr;
  return r;
}

TEST(RegionCacheTest, LooksUpByRangeAndReplacesOverlaps) {
  RegionCache cache;
  EXPECT_FALSE(cache.lookup("a").has_value());
  cache.insert(route(1, "", "m", "s1"));
  cache.insert(route(2, "m", "", "s2"));
  EXPECT_EQ(cache.lookup("")->region.id(), 1u);
  EXPECT_EQ(cache.lookup("l")->region.id(), 1u);
  EXPECT_EQ(cache.lookup("m")->region.id(), 2u);
  EXPECT_EQ(cache.lookup("zzz")->store_addr, "s2");
  // A merged region replaces both.
  cache.insert(route(3, "", "", "s3"));
  EXPECT_EQ(cache.lookup("a")->region.id(), 3u);
  EXPECT_EQ(cache.lookup("z")->region.id(), 3u);
  cache.invalidate(3);
  EXPECT_FALSE(cache.lookup("a").has_value());
}

TEST(RegionCacheTest, GapsAreMisses) {
  RegionCache cache;
  cache.insert(route(1, "b", "d", "s1"));
  EXPECT_FALSE(cache.lookup("a").has_value());
  EXPECT_FALSE(cache.lookup("d").has_value());
  EXPECT_TRUE(cache.lookup("c").has_value());
  cache.clear();
  EXPECT_FALSE(cache.lookup("c").has_value());
}

// Reverse scans walk regions backwards: the region holding the keys just below a key.
TEST(RegionCacheTest, LookupBeforeFindsTheRegionEndingAtOrAfterAKey) {
  RegionCache cache;
  cache.insert(route(1, "", "f", "s1"));
  cache.insert(route(2, "f", "p", "s2"));
  EXPECT_EQ(cache.lookup_before("p")->region.id(), 2u);
  EXPECT_EQ(cache.lookup_before("f")->region.id(), 1u);
  EXPECT_EQ(cache.lookup_before("g")->region.id(), 2u);
  EXPECT_FALSE(cache.lookup_before("").has_value()) << "the last region is not cached";
  EXPECT_FALSE(cache.lookup_before("q").has_value()) << "keys below q but past p are in no cached region";
  cache.insert(route(3, "p", "", "s3"));
  EXPECT_EQ(cache.lookup_before("")->region.id(), 3u);
  EXPECT_EQ(cache.lookup_before("q")->region.id(), 3u);
  EXPECT_FALSE(RegionCache().lookup_before("a").has_value());
}

// A split's answer replaces the region by its halves; a range the halves leave out is
// no longer cached (the old entry is gone, not left to shadow it).
TEST(RegionCacheTest, ReplaceSwapsARegionForItsSuccessors) {
  RegionCache cache;
  cache.insert(route(1, "", "", "s1"));
  cache.replace(1, {route(1, "", "m", "s1"), route(2, "m", "t", "s1")});
  EXPECT_EQ(cache.lookup("a")->region.id(), 1u);
  EXPECT_EQ(cache.lookup("n")->region.id(), 2u);
  EXPECT_FALSE(cache.lookup("u").has_value());
  cache.replace(2, {route(2, "m", "t", "s2")});  // a new leader's store
  EXPECT_EQ(cache.lookup("n")->store_addr, "s2");
  cache.replace(7, {});  // unknown id: nothing changes
  EXPECT_EQ(cache.lookup("a")->region.id(), 1u);
}

// The regression: re-routing after a NotLeader dropped the entry and inserted the new one
// in two steps, so a concurrent lookup missed and sent its call to the pool.
TEST(RegionCacheTest, ConcurrentLookupsNeverMissWhileARouteIsReplaced) {
  RegionCache cache;
  cache.insert(route(1, "", "", "s1"));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      cache.replace(1, {route(1, "", "", i % 2 == 0 ? "s2" : "s1")});
    }
    stop = true;
  });
  int misses = 0;
  int lookups = 0;
  while (!stop) {
    misses += cache.lookup("k").has_value() ? 0 : 1;
    ++lookups;
  }
  writer.join();
  EXPECT_EQ(misses, 0) << "in " << lookups << " lookups";
}

}  // namespace
}  // namespace rdb
