#include "server/peer_roles.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

metapb::Region three_voters_and_a_learner() {
  metapb::Region r;
  r.set_id(7);
  r.mutable_region_epoch()->set_conf_ver(3);
  for (std::uint64_t s = 1; s <= 4; ++s) {
    auto* p = r.add_peers();
    p->set_id(10 + s);
    p->set_store_id(s);
    p->set_is_learner(s == 4);  // older metadata: is_learner without a role
  }
  return r;
}

metapb::Peer peer(std::uint64_t id, std::uint64_t store) {
  metapb::Peer p;
  p.set_id(id);
  p.set_store_id(store);
  return p;
}

TEST(PeerRolesTest, AJointSwapShowsInTheRolesAndEndsAsPlainVoters) {
  const metapb::Region r = three_voters_and_a_learner();
  EXPECT_FALSE(in_joint(r));
  EXPECT_EQ(configuration_of(r).learners, (std::set<std::uint64_t>{14}));
  DecodedChange swap{make_change({{raftpb::ADD_NODE, peer(14, 4)}, {raftpb::REMOVE_NODE, peer(13, 3)}}), {}};
  auto joint = region_after_change(r, swap);
  ASSERT_TRUE(joint.is_ok()) << joint.status().to_string();
  EXPECT_TRUE(in_joint(*joint));
  EXPECT_EQ(joint->region_epoch().conf_ver(), 4u);
  ASSERT_EQ(joint->peers_size(), 4);
  EXPECT_EQ(role_of(joint->peers(0)), metapb::VOTER);
  EXPECT_EQ(role_of(joint->peers(2)), metapb::LEAVING_VOTER) << "still listed: it votes until the joint ends";
  EXPECT_EQ(role_of(joint->peers(3)), metapb::INCOMING_VOTER);
  // The roles describe the same configuration the Raft core holds.
  raft::Configuration c = configuration_of(*joint);
  EXPECT_EQ(c.voters, (std::set<std::uint64_t>{11, 12, 14}));
  EXPECT_EQ(c.voters_outgoing, (std::set<std::uint64_t>{11, 12, 13}));
  EXPECT_TRUE(c.auto_leave);
  auto left = region_after_change(*joint, DecodedChange{raftpb::ConfChangeV2(), {}});
  ASSERT_TRUE(left.is_ok()) << left.status().to_string();
  EXPECT_FALSE(in_joint(*left));
  ASSERT_EQ(left->peers_size(), 3);
  for (const auto& p : left->peers()) {
    EXPECT_EQ(role_of(p), metapb::VOTER);
    EXPECT_NE(p.id(), 13u);
  }
}

TEST(PeerRolesTest, ADemotedVoterEndsAsALearner) {
  const metapb::Region r = three_voters_and_a_learner();
  DecodedChange swap{make_change({{raftpb::ADD_NODE, peer(14, 4)}, {raftpb::ADD_LEARNER_NODE, peer(11, 1)}}), {}};
  swap.added = {peer(11, 1), peer(14, 4)};
  auto joint = region_after_change(r, swap);
  ASSERT_TRUE(joint.is_ok()) << joint.status().to_string();
  EXPECT_EQ(role_of(joint->peers(0)), metapb::DEMOTING_VOTER);
  auto left = region_after_change(*joint, DecodedChange{raftpb::ConfChangeV2(), {}});
  ASSERT_TRUE(left.is_ok());
  EXPECT_TRUE(left->peers(0).is_learner());
  EXPECT_EQ(role_of(left->peers(0)), metapb::LEARNER);
}

TEST(PeerRolesTest, RefusesWhatTheMetadataCouldNotRecord) {
  const metapb::Region r = three_voters_and_a_learner();
  // A new peer without a store.
  DecodedChange unknown{make_change({{raftpb::ADD_LEARNER_NODE, peer(20, 0)}}), {}};
  EXPECT_FALSE(region_after_change(r, unknown).is_ok());
  // A second peer on a store that has one.
  DecodedChange twin{make_change({{raftpb::ADD_LEARNER_NODE, peer(20, 2)}}), {peer(20, 2)}};
  auto t = region_after_change(r, twin);
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("already holds"), std::string::npos) << t.status().to_string();
  // A joint change that moves no voter.
  raftpb::ConfChangeV2 learners_only =
      make_change({{raftpb::ADD_LEARNER_NODE, peer(20, 5)}, {raftpb::ADD_LEARNER_NODE, peer(21, 6)}});
  auto l = region_after_change(r, DecodedChange{learners_only, {peer(20, 5), peer(21, 6)}});
  ASSERT_FALSE(l.is_ok());
  EXPECT_NE(l.status().message().find("must move a voter"), std::string::npos);
  // Entering a joint configuration while joint.
  auto joint = region_after_change(
      r, DecodedChange{make_change({{raftpb::ADD_NODE, peer(14, 4)}, {raftpb::REMOVE_NODE, peer(13, 3)}}), {}});
  ASSERT_TRUE(joint.is_ok());
  auto again = region_after_change(*joint, DecodedChange{make_change({{raftpb::REMOVE_NODE, peer(12, 2)}}), {}});
  EXPECT_FALSE(again.is_ok());
}

TEST(PeerRolesTest, DecodesBothEntryKinds) {
  raftpb::ConfChange v1;
  v1.set_type(raftpb::ADD_LEARNER_NODE);
  v1.set_node_id(20);
  v1.set_context(peer(20, 5).SerializeAsString());
  raftpb::Entry e;
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data(v1.SerializeAsString());
  auto d = decode_change(e);
  ASSERT_TRUE(d.is_ok());
  ASSERT_EQ(d->added.size(), 1u);
  EXPECT_EQ(d->added[0].store_id(), 5u);
  e.set_type(raftpb::ENTRY_CONF_CHANGE_V2);
  e.set_data(make_change({{raftpb::ADD_LEARNER_NODE, peer(21, 6)}}).SerializeAsString());
  d = decode_change(e);
  ASSERT_TRUE(d.is_ok());
  ASSERT_EQ(d->added.size(), 1u);
  EXPECT_EQ(d->added[0].id(), 21u);
  e.set_data("\xff\xff garbage");
  EXPECT_FALSE(decode_change(e).is_ok());
}

}  // namespace
}  // namespace rdb
