#include "pd/cluster_meta.h"

#include <gtest/gtest.h>

#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

metapb::Store make_store(std::uint64_t id, const std::string& addr) {
  metapb::Store s;
  s.set_id(id);
  s.set_address(addr);
  return s;
}

metapb::Region whole_space_region(std::uint64_t id, std::uint64_t peer_id, std::uint64_t store_id) {
  metapb::Region r;
  r.set_id(id);
  r.mutable_region_epoch()->set_conf_ver(1);
  r.mutable_region_epoch()->set_version(1);
  auto* p = r.add_peers();
  p->set_id(peer_id);
  p->set_store_id(store_id);
  return r;
}

TEST(ClusterMetaTest, BootstrapStoresRegionsPersistAcrossReopen) {
  testing::TempDir dir;
  ManualClock clock(1'700'000'000'000);
  std::uint64_t cluster_id = 0;
  {
    auto engine = RocksEngine::open(dir.path());
    ASSERT_TRUE(engine.is_ok());
    auto meta = ClusterMeta::load(**engine, clock);
    ASSERT_TRUE(meta.is_ok());
    cluster_id = (*meta)->cluster_id();
    EXPECT_NE(cluster_id, 0u);
    EXPECT_FALSE((*meta)->is_bootstrapped());
    EXPECT_FALSE((*meta)->region_for_key("a").has_value());
    ASSERT_TRUE((*meta)->bootstrap(make_store(1, "127.0.0.1:20160"), whole_space_region(2, 3, 1)).is_ok());
    EXPECT_EQ((*meta)->bootstrap(make_store(1, "x:1"), whole_space_region(2, 3, 1)).code(), ServerCode::kAlreadyExists);
    ASSERT_TRUE((*meta)->put_store(make_store(4, "127.0.0.1:20161")).is_ok());
    EXPECT_EQ((*meta)->put_store(make_store(5, "127.0.0.1:20161")).code(), ServerCode::kAlreadyExists);
    EXPECT_EQ((*meta)->put_store(make_store(0, "a:1")).code(), StatusCode::kInvalidArgument);
  }
  auto engine = RocksEngine::open(dir.path());
  ASSERT_TRUE(engine.is_ok());
  auto meta = ClusterMeta::load(**engine, clock);
  ASSERT_TRUE(meta.is_ok());
  EXPECT_EQ((*meta)->cluster_id(), cluster_id);
  EXPECT_TRUE((*meta)->is_bootstrapped());
  EXPECT_EQ((*meta)->all_stores().size(), 2u);
  EXPECT_EQ((*meta)->get_store(4)->address(), "127.0.0.1:20161");
  auto region = (*meta)->region_for_key("any key");
  ASSERT_TRUE(region.has_value());
  EXPECT_EQ(region->region().id(), 2u);
  EXPECT_EQ(region->leader().store_id(), 1u);
  EXPECT_TRUE((*meta)->region_by_id(2).has_value());
  EXPECT_FALSE((*meta)->region_by_id(9).has_value());
}

TEST(ClusterMetaTest, HeartbeatRejectsStaleEpoch) {
  testing::TempDir dir;
  ManualClock clock(1'700'000'000'000);
  auto engine = RocksEngine::open(dir.path());
  ASSERT_TRUE(engine.is_ok());
  auto meta = ClusterMeta::load(**engine, clock);
  ASSERT_TRUE(meta.is_ok());
  auto region = whole_space_region(2, 3, 1);
  ASSERT_TRUE((*meta)->bootstrap(make_store(1, "a:1"), region).is_ok());
  region.mutable_region_epoch()->set_conf_ver(2);
  ASSERT_TRUE((*meta)->region_heartbeat(region, region.peers(0)).is_ok());
  region.mutable_region_epoch()->set_conf_ver(1);
  EXPECT_FALSE((*meta)->region_heartbeat(region, region.peers(0)).is_ok());
  EXPECT_EQ((*meta)->region_by_id(2)->region().region_epoch().conf_ver(), 2u);
}

}  // namespace
}  // namespace rdb
