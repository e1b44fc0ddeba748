#include "pd/replica_checker.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

metapb::Region region(std::vector<std::pair<std::uint64_t, bool>> peers) {
  metapb::Region r;
  r.set_id(1);
  std::uint64_t id = 10;
  for (auto [store, learner] : peers) {
    auto* p = r.add_peers();
    p->set_id(id++);
    p->set_store_id(store);
    p->set_is_learner(learner);
  }
  return r;
}

std::map<std::uint64_t, StoreLiveness> stores(std::vector<std::uint64_t> up, std::vector<std::uint64_t> down = {}) {
  std::map<std::uint64_t, StoreLiveness> m;
  for (auto s : up) {
    m[s].up = true;
    m[s].region_count = s;  // lower ids are less loaded
  }
  for (auto s : down) {
    m[s].down_long = true;
  }
  return m;
}

TEST(ReplicaCheckerTest, AddsLearnersOnLeastLoadedStoresUntilEnoughVoters) {
  ReplicaCheckerConfig c;
  auto change = check_region(region({{1, false}}), 1, stores({1, 3, 2}), c).change;
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->type(), pdpb::ADD_LEARNER);
  EXPECT_EQ(change->peer().store_id(), 2u);
  EXPECT_EQ(change->peer().id(), 0u);
  auto promote = check_region(region({{1, false}, {2, true}}), 1, stores({1, 2, 3}), c).change;
  ASSERT_TRUE(promote.has_value());
  EXPECT_EQ(promote->type(), pdpb::ADD_VOTER);
  EXPECT_EQ(promote->peer().store_id(), 2u);
  EXPECT_FALSE(check_region(region({{1, false}, {2, false}, {3, false}}), 1, stores({1, 2, 3}), c).change.has_value());
  // Not enough live stores: nothing to do.
  EXPECT_FALSE(check_region(region({{1, false}}), 1, stores({1}), c).change.has_value());
}

TEST(ReplicaCheckerTest, ReplacesReplicasOfLongDownStoresButNeverTheLeader) {
  ReplicaCheckerConfig c;
  auto r = region({{1, false}, {2, false}, {3, false}});
  auto remove = check_region(r, 1, stores({1, 2, 4}, {3}), c).change;
  ASSERT_TRUE(remove.has_value());
  EXPECT_EQ(remove->type(), pdpb::REMOVE);
  EXPECT_EQ(remove->peer().store_id(), 3u);
  auto after = region({{1, false}, {2, false}});
  auto add = check_region(after, 1, stores({1, 2, 4}, {3}), c).change;
  ASSERT_TRUE(add.has_value());
  EXPECT_EQ(add->type(), pdpb::ADD_LEARNER);
  EXPECT_EQ(add->peer().store_id(), 4u);
  // A down store that is merely "not up" (short outage) keeps its replica.
  auto short_outage = stores({1, 2});
  short_outage[3] = StoreLiveness{};
  EXPECT_FALSE(check_region(r, 1, short_outage, c).change.has_value());
}

TEST(ReplicaCheckerTest, RemovesASurplusVoter) {
  ReplicaCheckerConfig c;
  c.max_replicas = 1;
  auto change = check_region(region({{1, false}, {2, false}}), 1, stores({1, 2}), c).change;
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->type(), pdpb::REMOVE);
  EXPECT_EQ(change->peer().store_id(), 2u);
}

TEST(ReplicaCheckerTest, RemovingAStoreMovesItsReplicasFirst) {
  ReplicaCheckerConfig c;
  auto r = region({{1, false}, {2, false}, {3, false}});
  auto live = stores({1, 2, 3, 4});
  live[3].offline = true;
  auto add = check_region(r, 1, live, c).change;  // first a replacement on store 4
  ASSERT_TRUE(add.has_value());
  EXPECT_EQ(add->type(), pdpb::ADD_LEARNER);
  EXPECT_EQ(add->peer().store_id(), 4u);
  auto full = region({{1, false}, {2, false}, {3, false}, {4, false}});
  auto remove = check_region(full, 1, live, c).change;  // then the replica on the offline store goes
  ASSERT_TRUE(remove.has_value());
  EXPECT_EQ(remove->type(), pdpb::REMOVE);
  EXPECT_EQ(remove->peer().store_id(), 3u);
  // A leader on the offline store is moved away first.
  auto transfer = check_region(full, 3, live, c);
  EXPECT_FALSE(transfer.change.has_value());
  ASSERT_TRUE(transfer.transfer_leader_to.has_value());
  EXPECT_NE(transfer.transfer_leader_to->store_id(), 3u);
}

TEST(ClusterLivenessTest, UpWindowAndDownAfter) {
  ManualClock clock(1'000'000);
  ReplicaCheckerConfig c;
  c.store_up_window_ms = 1000;
  c.store_down_after_ms = 5000;
  ClusterLiveness l(clock, c);
  EXPECT_FALSE(l.liveness(1).up);
  l.heartbeat(1, 3, 1);
  EXPECT_TRUE(l.liveness(1).up);
  EXPECT_EQ(l.liveness(1).region_count, 3u);
  clock.advance(2000);
  EXPECT_FALSE(l.liveness(1).up);
  EXPECT_FALSE(l.liveness(1).down_long);
  clock.advance(4000);
  EXPECT_TRUE(l.liveness(1).down_long);
  EXPECT_TRUE(l.liveness(2).down_long) << "never heard from since PD started, for longer than the window";
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

metapb::Peer peer_of(const metapb::Region& r, std::uint64_t store) {
  for (const auto& p : r.peers()) {
    if (p.store_id() == store) {
      return p;
    }
  }
  return {};
}

// The remove-store story: a learner whose snapshot has not landed is not promoted, and
// the replica being moved stays until the replacement has caught up.
TEST(ReplicaCheckerTest, PendingPeersAreNeitherPromotedNorCounted) {
  ReplicaCheckerConfig c;
  auto live = stores({1, 2, 3, 4});
  live[3].offline = true;
  auto with_learner = region({{1, false}, {2, false}, {3, false}, {4, true}});
  std::vector<metapb::Peer> pending = {peer_of(with_learner, 4)};
  auto d = check_region(with_learner, 1, live, c, pending);
  EXPECT_FALSE(d.change.has_value()) << "a pending learner must wait: " << d.change->ShortDebugString();
  // Caught up: swapped in for the offline store's voter in one joint step.
  auto swap = check_region(with_learner, 1, live, c).joint_change;
  ASSERT_TRUE(swap.has_value());
  ASSERT_EQ(swap->changes_size(), 2);
  EXPECT_EQ(swap->changes(0).type(), pdpb::ADD_VOTER);
  EXPECT_EQ(swap->changes(0).peer().store_id(), 4u);
  EXPECT_EQ(swap->changes(1).type(), pdpb::REMOVE);
  EXPECT_EQ(swap->changes(1).peer().store_id(), 3u);
  // Promoted, but it fell behind again: the offline store's voter stays.
  auto full = region({{1, false}, {2, false}, {3, false}, {4, false}});
  EXPECT_FALSE(check_region(full, 1, live, c, {peer_of(full, 4)}).change.has_value());
  // A surplus voter is removed only while max_replicas caught-up voters remain: with
  // store 2 behind, removing 1 of the others would leave two; the pending one goes.
  auto surplus = region({{1, false}, {2, false}, {3, false}, {4, false}});
  auto rm = check_region(surplus, 1, stores({1, 2, 3, 4}), c, {peer_of(surplus, 2)}).change;
  ASSERT_TRUE(rm.has_value());
  EXPECT_EQ(rm->type(), pdpb::REMOVE);
  EXPECT_EQ(rm->peer().store_id(), 2u);
}

// A learner that caught up replaces a voter in one joint step: the voter on the
// busiest store goes (never more voters than max_replicas at any time).
TEST(ReplicaCheckerTest, ACaughtUpLearnerReplacesAVoterInOneJointStep) {
  ReplicaCheckerConfig c;
  auto r = region({{1, false}, {2, false}, {3, false}, {4, true}});
  auto d = check_region(r, 1, stores({1, 2, 3, 4}), c);
  EXPECT_FALSE(d.change.has_value());
  ASSERT_TRUE(d.joint_change.has_value());
  ASSERT_EQ(d.joint_change->changes_size(), 2);
  EXPECT_EQ(d.joint_change->changes(0).type(), pdpb::ADD_VOTER);
  EXPECT_EQ(d.joint_change->changes(0).peer().store_id(), 4u);
  EXPECT_EQ(d.joint_change->changes(1).type(), pdpb::REMOVE);
  EXPECT_EQ(d.joint_change->changes(1).peer().store_id(), 3u) << "store 3 holds the most regions";
  // When the voter to replace leads, leadership moves first.
  auto led = check_region(r, 3, stores({1, 2, 3, 4}), c);
  EXPECT_FALSE(led.joint_change.has_value());
  ASSERT_TRUE(led.transfer_leader_to.has_value());
  EXPECT_NE(led.transfer_leader_to->store_id(), 3u);
  EXPECT_NE(led.transfer_leader_to->store_id(), 4u) << "not to the learner";
}

// A region in a joint configuration is left alone until its leader leaves it.
TEST(ReplicaCheckerTest, AJointRegionIsLeftAlone) {
  ReplicaCheckerConfig c;
  auto r = region({{1, false}, {2, false}, {3, false}, {4, false}});
  r.mutable_peers(2)->set_role(metapb::LEAVING_VOTER);
  r.mutable_peers(3)->set_role(metapb::INCOMING_VOTER);
  auto d = check_region(r, 1, stores({1, 2, 3, 4}), c);
  EXPECT_FALSE(d.change.has_value());
  EXPECT_FALSE(d.joint_change.has_value());
  EXPECT_FALSE(d.transfer_leader_to.has_value());
}

}  // namespace
}  // namespace rdb
