#include "pd/move_peer.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

metapb::Region region_on(std::vector<std::pair<std::uint64_t, bool>> stores) {
  metapb::Region r;
  r.set_id(9);
  std::uint64_t id = 90;
  for (auto [store, learner] : stores) {
    auto* p = r.add_peers();
    p->set_id(id++);
    p->set_store_id(store);
    p->set_is_learner(learner);
  }
  return r;
}

TEST(MovePeerTest, StepsAreLearnerThenLeadershipThenOneJointSwap) {
  const MovePeer move{3, 4, 0};
  auto add = move_peer_step(region_on({{1, false}, {2, false}, {3, false}}), 1, move, {});
  ASSERT_TRUE(add.has_value() && add->change.has_value());
  EXPECT_EQ(add->change->type(), pdpb::ADD_LEARNER);
  EXPECT_EQ(add->change->peer().store_id(), 4u);
  const auto with_learner = region_on({{1, false}, {2, false}, {3, false}, {4, true}});
  auto wait = move_peer_step(with_learner, 1, move, {with_learner.peers(3)});
  ASSERT_TRUE(wait.has_value());
  EXPECT_FALSE(wait->change || wait->joint_change || wait->transfer_leader_to) << "a pending learner is waited for";
  auto transfer = move_peer_step(with_learner, 3, move, {});
  ASSERT_TRUE(transfer.has_value() && transfer->transfer_leader_to.has_value());
  EXPECT_NE(transfer->transfer_leader_to->store_id(), 3u);
  EXPECT_NE(transfer->transfer_leader_to->store_id(), 4u);
  auto swap = move_peer_step(with_learner, 1, move, {});
  ASSERT_TRUE(swap.has_value() && swap->joint_change.has_value());
  ASSERT_EQ(swap->joint_change->changes_size(), 2);
  EXPECT_EQ(swap->joint_change->changes(0).type(), pdpb::ADD_VOTER);
  EXPECT_EQ(swap->joint_change->changes(0).peer().store_id(), 4u);
  EXPECT_EQ(swap->joint_change->changes(1).type(), pdpb::REMOVE);
  EXPECT_EQ(swap->joint_change->changes(1).peer().store_id(), 3u);
  EXPECT_FALSE(move_peer_step(region_on({{1, false}, {2, false}, {4, false}}), 1, move, {}).has_value())
      << "done once store 3 holds nothing";
}

TEST(MovePeerTest, RefusesMovesThatCannotStart) {
  StoreLiveness live;
  live.up = true;
  const auto r = region_on({{1, false}, {2, false}, {3, true}});
  EXPECT_TRUE(check_move_peer(r, {1, 4, 0}, &live).is_ok());
  Status no_voter = check_move_peer(r, {3, 4, 0}, &live);
  EXPECT_NE(no_voter.message().find("no voter on store 3"), std::string::npos) << no_voter.to_string();
  Status occupied = check_move_peer(r, {1, 2, 0}, &live);
  EXPECT_NE(occupied.message().find("already has a peer on store 2"), std::string::npos) << occupied.to_string();
  EXPECT_FALSE(check_move_peer(r, {1, 4, 0}, nullptr).is_ok());
  StoreLiveness down;
  EXPECT_FALSE(check_move_peer(r, {1, 4, 0}, &down).is_ok());
  EXPECT_FALSE(check_move_peer(r, {1, 1, 0}, &live).is_ok());
}

}  // namespace
}  // namespace rdb
