#include "pd/balancer.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

// A region with voters on `stores` (peer ids 10, 11, ...).
metapb::Region region_on(std::vector<std::uint64_t> stores, std::uint64_t learner_store = 0) {
  metapb::Region r;
  r.set_id(1);
  std::uint64_t id = 10;
  for (auto s : stores) {
    auto* p = r.add_peers();
    p->set_id(id++);
    p->set_store_id(s);
  }
  if (learner_store != 0) {
    auto* p = r.add_peers();
    p->set_id(id);
    p->set_store_id(learner_store);
    p->set_is_learner(true);
  }
  return r;
}

// Stores 1..n, all eligible, with these region and leader counts.
ClusterLoad load(std::vector<std::pair<std::uint64_t, std::uint64_t>> regions_and_leaders) {
  ClusterLoad l;
  std::uint64_t id = 1;
  for (auto [regions, leaders] : regions_and_leaders) {
    l.stores[id] = {regions, leaders, true, regions};  // nothing measured: sizes are counts
    ++id;
  }
  return l;
}

TEST(BalancerTest, LeadersMoveToTheVoterWhoseStoreLeadsFewest) {
  auto r = region_on({1, 2, 3});
  auto d = balance_region(r, 1, load({{10, 6}, {10, 1}, {10, 3}}), 3, {}, true, true);
  ASSERT_TRUE(d.transfer_leader_to.has_value());
  EXPECT_EQ(d.transfer_leader_to->store_id(), 2u);
  // A difference of one is balanced enough: nothing moves (no swapping back and forth).
  EXPECT_FALSE(balance_region(r, 1, load({{10, 2}, {10, 1}, {10, 1}}), 3, {}, true, true).transfer_leader_to);
  // Out of leader budget: nothing.
  EXPECT_FALSE(balance_region(r, 1, load({{10, 6}, {10, 1}, {10, 3}}), 3, {}, false, true).transfer_leader_to);
  // Not to a pending (lagging) voter, nor to a store that may not take load.
  metapb::Peer lagging = r.peers(1);
  auto d2 = balance_region(r, 1, load({{10, 6}, {10, 1}, {10, 3}}), 3, {lagging}, true, true);
  ASSERT_TRUE(d2.transfer_leader_to.has_value());
  EXPECT_EQ(d2.transfer_leader_to->store_id(), 3u);
  auto l = load({{10, 6}, {10, 1}, {10, 5}});
  l.stores[2].eligible = false;
  EXPECT_FALSE(balance_region(r, 1, l, 3, {}, true, true).transfer_leader_to);
}

TEST(BalancerTest, ReplicasMoveOntoTheStoreWithFewestRegions) {
  auto r = region_on({1, 2, 3});
  auto l = load({{10, 3}, {10, 3}, {10, 3}, {0, 0}, {4, 0}});
  auto d = balance_region(r, 1, l, 3, {}, true, true);
  ASSERT_TRUE(d.change.has_value());
  EXPECT_EQ(d.change->type(), pdpb::ADD_LEARNER);
  EXPECT_EQ(d.change->peer().store_id(), 4u);
  EXPECT_TRUE(d.change->peer().is_learner());
  EXPECT_FALSE(balance_region(r, 1, l, 3, {}, true, false).change) << "no room under the region schedule limit";
  // Balanced within one: nothing.
  EXPECT_FALSE(balance_region(r, 1, load({{10, 3}, {10, 3}, {10, 3}, {9, 0}}), 3, {}, true, true).change);
  // A region already moving (a learner), or missing a voter, is left to the replica checker.
  EXPECT_FALSE(balance_region(region_on({1, 2, 3}, 5), 1, l, 3, {}, true, true).change);
  EXPECT_FALSE(balance_region(region_on({1, 2}), 1, l, 3, {}, true, true).change);
}

TEST(BalancerTest, ClusterLoadCountsReplicasLeadersAndMoves) {
  std::vector<pdpb::RegionInfo> regions(3);
  *regions[0].mutable_region() = region_on({1, 2, 3});
  regions[0].mutable_leader()->set_store_id(1);
  *regions[1].mutable_region() = region_on({1, 2, 3}, 4);  // moving: a learner
  regions[1].mutable_leader()->set_store_id(2);
  *regions[2].mutable_region() = region_on({1, 2, 3, 4});  // moving: a surplus voter
  std::map<std::uint64_t, StoreLiveness> stores;
  stores[1].up = true;
  stores[2].up = true;
  stores[3].up = true;
  stores[4].up = true;
  stores[4].offline = true;
  auto l = cluster_load(regions, stores, 3);
  EXPECT_EQ(l.stores[1].regions, 3u);
  EXPECT_EQ(l.stores[4].regions, 2u);
  EXPECT_EQ(l.stores[1].leaders, 1u);
  EXPECT_EQ(l.stores[2].leaders, 1u);
  EXPECT_EQ(l.moving, 2u);
  EXPECT_TRUE(l.stores[1].eligible);
  EXPECT_FALSE(l.stores[4].eligible) << "a store being removed takes no load";
}

TEST(BalancerTest, TheSurplusVoterOnTheBusiestStoreGoesLeadershipFirst) {
  std::map<std::uint64_t, StoreLiveness> stores;
  for (std::uint64_t s = 1; s <= 4; ++s) {
    stores[s].up = true;
    stores[s].region_count = s == 2 ? 50 : 10;
  }
  ReplicaCheckerConfig c;
  auto r = region_on({1, 2, 3, 4});
  auto rm = check_region(r, 1, stores, c);
  ASSERT_TRUE(rm.change.has_value());
  EXPECT_EQ(rm.change->type(), pdpb::REMOVE);
  EXPECT_EQ(rm.change->peer().store_id(), 2u);
  // The busiest store leads: leadership moves off it (to the least loaded voter) first.
  stores[3].region_count = 5;
  auto first = check_region(r, 2, stores, c);
  EXPECT_FALSE(first.change.has_value());
  ASSERT_TRUE(first.transfer_leader_to.has_value());
  EXPECT_EQ(first.transfer_leader_to->store_id(), 3u);
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

TEST(BalancerTest, ReplicasBalanceBySizeOnceRegionsAreMeasured) {
  // Store 1 holds one big region, stores 2 and 3 hold it too plus many small ones;
  // store 4 is empty. By count store 1 looks lightest; by size it is the heaviest.
  std::vector<pdpb::RegionInfo> regions;
  std::map<std::uint64_t, std::uint64_t> sizes;
  auto add = [&](std::uint64_t id, std::vector<std::uint64_t> stores, std::uint64_t size) {
    pdpb::RegionInfo info;
    *info.mutable_region() = region_on(stores);
    info.mutable_region()->set_id(id);
    info.mutable_leader()->set_store_id(stores[0]);
    regions.push_back(info);
    if (size > 0) {
      sizes[id] = size;
    }
  };
  add(1, {1, 2, 3}, 1000);
  for (std::uint64_t id = 2; id <= 5; ++id) {
    add(id, {2, 3, 4}, 10);
  }
  add(6, {2, 3, 4}, 0);  // not measured yet: counts as the average
  std::map<std::uint64_t, StoreLiveness> stores;
  for (std::uint64_t s = 1; s <= 4; ++s) {
    stores[s].up = true;
  }
  auto l = cluster_load(regions, stores, 3, sizes);
  EXPECT_EQ(l.average_region_size, (1000 + 40) / 5);
  EXPECT_EQ(l.stores[1].size, 1000u);
  EXPECT_EQ(l.stores[4].size, 40u + l.average_region_size);
  EXPECT_EQ(l.stores[1].regions, 1u);
  // The big region: the busiest holder by size (store 2: 1000 + 40 + 208) vs store 4 (248):
  // the gap is under twice its size, so it stays (it would only swap the imbalance).
  EXPECT_FALSE(balance_region(regions[0].region(), 1, l, 3, {}, false, true, 1000).change);
  // A small region moves off the heaviest store onto the lightest one without it.
  l.stores[1].size = 100;  // say store 1 held little
  auto r = region_on({2, 3, 4});
  auto d = balance_region(r, 2, l, 3, {}, false, true, 10);
  ASSERT_TRUE(d.change.has_value());
  EXPECT_EQ(d.change->peer().store_id(), 1u);
  // Nothing measured: sizes are counts, as before.
  auto counts = cluster_load(regions, stores, 3, {});
  EXPECT_EQ(counts.average_region_size, 1u);
  EXPECT_EQ(counts.stores[2].size, 6u);
}

}  // namespace
}  // namespace rdb
