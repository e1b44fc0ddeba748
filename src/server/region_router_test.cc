#include "server/region_router.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

metapb::Region region(std::uint64_t id, const std::string& start, const std::string& end) {
  metapb::Region r;
  r.set_id(id);
  r.set_start_key(start);
  r.set_end_key(end);
  r.mutable_region_epoch()->set_conf_ver(2);
  r.mutable_region_epoch()->set_version(3);
  return r;
}

kvrpc::Context ctx_for(const metapb::Region& r) {
  kvrpc::Context c;
  c.set_region_id(r.id());
  *c.mutable_region_epoch() = r.region_epoch();
  return c;
}

TEST(RegionRouterTest, ServesMatchingRequests) {
  RegionRouter router(7);
  auto r = region(5, "b", "m");
  router.set_region(r);
  EXPECT_FALSE(router.check(ctx_for(r), {"b", "c", "lzz"}).has_value());
}

TEST(RegionRouterTest, ReportsEachKindOfMisroute) {
  RegionRouter router(7);
  auto none = router.check(kvrpc::Context(), {"a"});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->has_region_not_found());

  auto r = region(5, "b", "m");
  router.set_region(r);
  auto wrong_id = ctx_for(r);
  wrong_id.set_region_id(6);
  EXPECT_TRUE(router.check(wrong_id, {"c"})->has_region_not_found());

  auto stale = ctx_for(r);
  stale.mutable_region_epoch()->set_version(2);
  auto epoch = router.check(stale, {"c"});
  ASSERT_TRUE(epoch->has_epoch_not_match());
  ASSERT_EQ(epoch->epoch_not_match().current_regions_size(), 1);
  EXPECT_EQ(epoch->epoch_not_match().current_regions(0).region_epoch().version(), 3u);

  auto outside = router.check(ctx_for(r), {"c", "z"});
  ASSERT_TRUE(outside->has_key_not_in_region());
  EXPECT_EQ(outside->key_not_in_region().key(), "z");
  EXPECT_TRUE(router.check(ctx_for(r), {"a"})->has_key_not_in_region());

  auto other_store = ctx_for(r);
  other_store.mutable_peer()->set_store_id(8);
  EXPECT_TRUE(router.check(other_store, {"c"})->has_store_not_match());
}

}  // namespace
}  // namespace rdb
