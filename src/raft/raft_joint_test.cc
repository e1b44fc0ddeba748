// Joint consensus: the Configuration value (quorums, transitions, refusals) and
// a Raft group that moves through joint configurations.
#include <gtest/gtest.h>

#include "raft/configuration.h"
#include "raft/raft_test_util.h"

namespace rdb::raft {
namespace {

using testing::TestGroup;

Configuration simple(std::set<std::uint64_t> voters, std::set<std::uint64_t> learners = {}) {
  Configuration c;
  c.voters = std::move(voters);
  c.learners = std::move(learners);
  return c;
}

raftpb::ConfChangeV2 joint(std::vector<std::pair<raftpb::ConfChangeType, std::uint64_t>> changes,
                           raftpb::ConfChangeTransition t = raftpb::TRANSITION_AUTO) {
  raftpb::ConfChangeV2 cc;
  cc.set_transition(t);
  for (auto [type, id] : changes) {
    auto* c = cc.add_changes();
    c->set_type(type);
    c->set_node_id(id);
  }
  return cc;
}

const raftpb::ConfChangeV2 kLeave;

// Voters 1..4 led by 1, then 4 demoted to a learner: it holds the log, so it can be
// swapped back in at once.
void make_4_a_learner(TestGroup& g) {
  g.campaign(1);
  ASSERT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::ADD_LEARNER_NODE, 4}})).is_ok());
  g.settle();
}

// Learner 4 in, voter 3 out, in a joint configuration left only when asked.
void enter_explicit_swap(TestGroup& g) {
  ASSERT_TRUE(g.node(1)
                  .propose_conf_change(
                      joint({{raftpb::ADD_NODE, 4}, {raftpb::REMOVE_NODE, 3}}, raftpb::TRANSITION_JOINT_EXPLICIT))
                  .is_ok());
  g.settle();
}

TEST(ConfigurationTest, SwapALearnerForAVoterInOneJointStep) {
  auto next = apply_change(simple({1, 2, 3}, {4}), joint({{raftpb::ADD_NODE, 4}, {raftpb::REMOVE_NODE, 3}}));
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_TRUE(next->joint());
  EXPECT_TRUE(next->auto_leave);
  EXPECT_EQ(next->voters, (std::set<std::uint64_t>{1, 2, 4}));
  EXPECT_EQ(next->voters_outgoing, (std::set<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(next->learners.empty());
  EXPECT_TRUE(next->is_voter(3)) << "an outgoing voter votes until the joint configuration ends";
  auto left = apply_change(*next, kLeave);
  ASSERT_TRUE(left.is_ok()) << left.status().to_string();
  EXPECT_EQ(*left, simple({1, 2, 4}));
}

TEST(ConfigurationTest, ADemotedVoterBecomesALearnerWhenTheJointEnds) {
  auto next = apply_change(simple({1, 2, 3}, {4}), joint({{raftpb::ADD_NODE, 4}, {raftpb::ADD_LEARNER_NODE, 1}},
                                                         raftpb::TRANSITION_JOINT_EXPLICIT));
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_FALSE(next->auto_leave);
  EXPECT_EQ(next->learners_next, (std::set<std::uint64_t>{1}));
  EXPECT_TRUE(next->learners.empty()) << "1 still votes in the outgoing configuration";
  auto left = apply_change(*next, kLeave);
  ASSERT_TRUE(left.is_ok());
  EXPECT_EQ(*left, simple({2, 3, 4}, {1}));
  // The ConfState round trip keeps every list.
  auto back = Configuration::from_conf_state(next->to_conf_state());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, *next);
}

TEST(ConfigurationTest, RefusesChangesThatAreNotSafeInOneStep) {
  const Configuration c = simple({1, 2, 3}, {4, 5});
  auto two_voters = apply_change(c, joint({{raftpb::ADD_NODE, 4}}));  // one change: simple
  EXPECT_TRUE(two_voters.is_ok());
  // A simple change that moves two voters is not expressible: simple means one change.
  auto inside = apply_change(*apply_change(c, joint({{raftpb::ADD_NODE, 4}, {raftpb::REMOVE_NODE, 1}})),
                             joint({{raftpb::ADD_NODE, 5}}));
  ASSERT_FALSE(inside.is_ok());
  EXPECT_NE(inside.status().message().find("leave it first"), std::string::npos) << inside.status().to_string();
  auto leave_simple = apply_change(c, kLeave);
  ASSERT_FALSE(leave_simple.is_ok());
  EXPECT_NE(leave_simple.status().message().find("not joint"), std::string::npos);
  auto no_voters = apply_change(simple({1}), joint({{raftpb::REMOVE_NODE, 1}}));
  ASSERT_FALSE(no_voters.is_ok());
  EXPECT_NE(no_voters.status().message().find("no voters"), std::string::npos);
  auto zero = apply_change(c, joint({{raftpb::ADD_NODE, 0}}));
  ASSERT_FALSE(zero.is_ok());
  EXPECT_NE(zero.status().message().find("node 0"), std::string::npos);
  raftpb::ConfChangeV2 bad_type = joint({{raftpb::ADD_NODE, 4}});
  bad_type.mutable_changes(0)->set_type(static_cast<raftpb::ConfChangeType>(9));
  EXPECT_FALSE(apply_change(c, bad_type).is_ok());
}

TEST(ConfigurationTest, MalformedConfStatesAreRefused) {
  raftpb::ConfState both;
  both.add_voters(1);
  both.add_learners(1);
  EXPECT_FALSE(Configuration::from_conf_state(both).is_ok());
  raftpb::ConfState next_without_outgoing;
  next_without_outgoing.add_voters(1);
  next_without_outgoing.add_learners_next(2);
  EXPECT_FALSE(Configuration::from_conf_state(next_without_outgoing).is_ok());
  raftpb::ConfState leave_when_simple;
  leave_when_simple.add_voters(1);
  leave_when_simple.set_auto_leave(true);
  EXPECT_FALSE(Configuration::from_conf_state(leave_when_simple).is_ok());
  raftpb::ConfState empty;
  EXPECT_FALSE(Configuration::from_conf_state(empty).is_ok());
}

TEST(ConfigurationTest, JointDecisionsNeedAMajorityOfBothSides) {
  Configuration c = *apply_change(
      simple({1, 2, 3}, {4, 5}),
      joint({{raftpb::ADD_NODE, 4}, {raftpb::ADD_NODE, 5}, {raftpb::REMOVE_NODE, 2}, {raftpb::REMOVE_NODE, 3}}));
  // incoming {1,4,5}, outgoing {1,2,3}
  std::map<std::uint64_t, std::uint64_t> match{{1, 10}, {2, 9}, {3, 3}, {4, 4}, {5, 8}};
  auto m = [&](std::uint64_t id) { return match.at(id); };
  EXPECT_EQ(c.committed(m), 8u) << "incoming majority reached 8, outgoing 9: the lower one";
  EXPECT_EQ(simple({1, 2, 3}).committed(m), 9u);
  EXPECT_TRUE(c.has_quorum({1, 2, 5}));
  EXPECT_FALSE(c.has_quorum({1, 4, 5})) << "no outgoing majority";
  EXPECT_FALSE(c.has_quorum({2, 3})) << "no incoming majority";
  EXPECT_EQ(c.vote({{1, true}, {4, true}}), VoteOutcome::kPending);
  EXPECT_EQ(c.vote({{1, true}, {4, true}, {2, true}}), VoteOutcome::kWon);
  EXPECT_EQ(c.vote({{2, false}, {3, false}, {4, true}, {5, true}}), VoteOutcome::kLost);
  EXPECT_TRUE(c.only_voter_is(1) == false);
  EXPECT_TRUE(simple({7}).only_voter_is(7));
}

// ---- a group moving through joint configurations

TEST(RaftJointTest, ReplaceAVoterInOneStepAndLeaveAutomatically) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  g.add_empty_member(4);
  ASSERT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::ADD_LEARNER_NODE, 4}})).is_ok());
  g.settle();
  ConfState cs = g.raft(1).conf_state();
  ASSERT_TRUE(g.member(1).storage->create_snapshot(g.raft(1).log().applied(), &cs, "").is_ok());
  g.tick(1, 2);
  ASSERT_EQ(g.raft(4).log().committed(), g.raft(1).log().committed());

  ASSERT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::ADD_NODE, 4}, {raftpb::REMOVE_NODE, 3}})).is_ok());
  g.settle();
  for (std::uint64_t id : {1, 2, 4}) {
    EXPECT_EQ(g.raft(id).configuration(), simple({1, 2, 4}))
        << "node " << id << ": " << g.raft(id).configuration().describe();
  }
  // The removed voter is out: 1, 2 and 4 commit without it.
  g.isolate(3);
  ASSERT_TRUE(g.propose(1, "after").is_ok());
  EXPECT_EQ(g.member(4).applied.back().data(), "after");
}

TEST(RaftJointTest, WhileJointACommitNeedsBothMajorities) {
  TestGroup g({1, 2, 3, 4});
  make_4_a_learner(g);
  enter_explicit_swap(g);
  ASSERT_TRUE(g.raft(1).configuration().joint()) << g.raft(1).configuration().describe();
  // {1, 3} is a majority of the outgoing {1,2,3} but not of the incoming {1,2,4}.
  g.isolate(2);
  g.isolate(4);
  std::uint64_t committed = g.raft(1).log().committed();
  (void)g.propose(1, "needs-both");
  EXPECT_EQ(g.raft(1).log().committed(), committed);
  g.heal();
  g.tick(1, 2);
  EXPECT_GT(g.raft(1).log().committed(), committed);
  // Nothing else may change until the joint configuration is left.
  Status refused = g.node(1).propose_conf_change(joint({{raftpb::REMOVE_NODE, 2}}));
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("leave it first"), std::string::npos) << refused.to_string();
  ASSERT_TRUE(g.node(1).propose_conf_change(raftpb::ConfChangeV2()).is_ok());
  g.settle();
  EXPECT_EQ(g.raft(2).configuration(), simple({1, 2, 4}));
}

TEST(RaftJointTest, ALeaderDemotedInAJointStepLeadsUntilTheJointEnds) {
  TestGroup g({1, 2, 3, 4});
  make_4_a_learner(g);
  ASSERT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::ADD_NODE, 4}, {raftpb::ADD_LEARNER_NODE, 1}})).is_ok());
  g.settle();
  EXPECT_EQ(g.raft(2).configuration(), simple({2, 3, 4}, {1}));
  EXPECT_NE(g.raft(1).role(), StateRole::kLeader) << "a learner does not lead";
  g.tick_all(40);
  std::uint64_t l = g.leader();
  EXPECT_TRUE(l == 2 || l == 3 || l == 4) << "leader " << l;
  ASSERT_TRUE(g.propose(l, "new-leader").is_ok());
  EXPECT_EQ(g.member(1).applied.back().data(), "new-leader") << "the demoted node still follows as a learner";
}

TEST(RaftJointTest, ANewLeaderLeavesAnAutoLeaveJointConfiguration) {
  TestGroup g({1, 2, 3, 4});
  make_4_a_learner(g);
  ASSERT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::ADD_NODE, 4}, {raftpb::REMOVE_NODE, 3}})).is_ok());
  // Stop as soon as the leader committed the joint entry, before it proposes leaving.
  const std::uint64_t joint_index = g.raft(1).log().last_index();
  g.settle_until([&] { return g.raft(1).log().committed() >= joint_index; });
  g.isolate(1);
  g.tick(2, 40);
  g.settle();
  ASSERT_EQ(g.raft(2).role(), StateRole::kLeader);
  EXPECT_EQ(g.raft(2).configuration(), simple({1, 2, 4})) << g.raft(2).configuration().describe();
  EXPECT_EQ(g.raft(4).configuration(), simple({1, 2, 4})) << g.raft(4).configuration().describe();
}

TEST(RaftJointTest, AJointConfigurationSurvivesARestart) {
  TestGroup g({1, 2, 3, 4});
  make_4_a_learner(g);
  enter_explicit_swap(g);
  const Configuration before = g.raft(2).configuration();
  ASSERT_TRUE(before.joint());
  g.restart(2);
  EXPECT_EQ(g.raft(2).configuration(), before);
}

TEST(RaftJointTest, AMalformedConfChangeIsRefusedAtProposal) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  Status s = g.node(1).propose_conf_change(raftpb::ConfChangeV2());  // leave, but not joint
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not joint"), std::string::npos) << s.to_string();
  Status none = g.node(1).propose_conf_change(
      joint({{raftpb::REMOVE_NODE, 1}, {raftpb::REMOVE_NODE, 2}, {raftpb::REMOVE_NODE, 3}}));
  EXPECT_EQ(none.code(), StatusCode::kInvalidArgument);
  // Nothing was appended: another change may still be proposed.
  EXPECT_TRUE(g.node(1).propose_conf_change(joint({{raftpb::REMOVE_NODE, 3}})).is_ok());
}

}  // namespace
}  // namespace rdb::raft
