// Unit tests organised by the rules of the Raft paper (Ongaro & Ousterhout, §5).
#include <gtest/gtest.h>

#include "raft/raft_test_util.h"

namespace rdb::raft {
namespace {

using testing::make_entry;
using testing::TestGroup;

Message vote_request(std::uint64_t from, std::uint64_t to, std::uint64_t term, std::uint64_t last_index,
                     std::uint64_t last_term) {
  Message m;
  m.set_type(raftpb::MSG_VOTE);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  m.set_index(last_index);
  m.set_log_term(last_term);
  return m;
}

std::vector<Message> take_messages(RawNode& n) {
  Ready rd = n.ready();
  n.advance(rd);
  return rd.messages;
}

// ---- §5.1 terms

TEST(RaftPaper51Terms, NodeAdoptsHigherTermAndBecomesFollower) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  ASSERT_EQ(g.raft(1).role(), StateRole::kLeader);
  Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(2);
  m.set_to(1);
  m.set_term(g.raft(1).term() + 5);
  m.set_index(0);
  (void)g.node(1).step(m);
  EXPECT_EQ(g.raft(1).role(), StateRole::kFollower);
  EXPECT_EQ(g.raft(1).term(), g.raft(2).term() + 5);
  EXPECT_EQ(g.raft(1).leader(), 2u);
}

TEST(RaftPaper51Terms, StaleTermMessagesAreIgnored) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  std::uint64_t term = g.raft(2).term();
  std::uint64_t commit = g.raft(2).log().committed();
  Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(3);
  m.set_to(2);
  m.set_term(term - 1);
  m.set_index(commit);
  m.set_log_term(g.raft(2).log().term_or_zero(commit));
  *m.add_entries() = make_entry(commit + 1, term - 1, "stale");
  (void)g.node(2).step(m);
  EXPECT_EQ(g.raft(2).term(), term);
  EXPECT_EQ(g.raft(2).log().last_index(), commit);
}

// ---- §5.2 leader election

TEST(RaftPaper52Election, FollowerCampaignsAfterElectionTimeout) {
  TestGroup g({1, 2, 3});
  RawNode& n = g.node(1);
  std::uint64_t term = n.raft().term();
  for (int i = 0; i < 2 * 10; ++i) {
    n.tick();
  }
  EXPECT_EQ(n.raft().role(), StateRole::kCandidate);
  EXPECT_EQ(n.raft().term(), term + 1);
  EXPECT_EQ(n.raft().vote(), 1u);
  auto msgs = take_messages(n);
  int votes = 0;
  for (const auto& m : msgs) {
    votes += m.type() == raftpb::MSG_VOTE ? 1 : 0;
  }
  EXPECT_EQ(votes, 2);
}

TEST(RaftPaper52Election, ElectionTimeoutsAreRandomizedWithinOneToTwoTimeouts) {
  std::set<int> timeouts;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    Config c = TestGroup::default_config();
    c.seed = seed;
    TestGroup g({1, 2, 3}, c);
    RawNode& n = g.node(1);
    int ticks = 0;
    while (n.raft().role() == StateRole::kFollower && ticks < 100) {
      n.tick();
      ++ticks;
    }
    EXPECT_GE(ticks, 10);
    EXPECT_LT(ticks, 20);
    timeouts.insert(ticks);
  }
  EXPECT_GT(timeouts.size(), 3u) << "timeouts are not randomized";
}

TEST(RaftPaper52Election, CandidateWithMajorityBecomesLeader) {
  TestGroup g({1, 2, 3, 4, 5});
  g.isolate(5);
  g.isolate(4);
  g.campaign(1);  // 1, 2, 3 are a majority of 5
  EXPECT_EQ(g.raft(1).role(), StateRole::kLeader);
}

TEST(RaftPaper52Election, CandidateWithoutMajorityDoesNotWin) {
  TestGroup g({1, 2, 3, 4, 5});
  g.isolate(1);
  g.cut(1, 2);
  g.campaign(1);
  EXPECT_EQ(g.raft(1).role(), StateRole::kCandidate);
}

TEST(RaftPaper52Election, VoterGrantsAtMostOneVotePerTerm) {
  TestGroup g({1, 2, 3});
  RawNode& voter = g.node(3);
  std::uint64_t term = voter.raft().term() + 1;
  (void)voter.step(vote_request(1, 3, term, 1, 1));
  (void)voter.step(vote_request(2, 3, term, 1, 1));
  auto msgs = take_messages(voter);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_FALSE(msgs[0].reject());
  EXPECT_EQ(msgs[0].to(), 1u);
  EXPECT_TRUE(msgs[1].reject()) << "granted a second vote in the same term";
  // Repeating the request of the node it voted for is answered the same way.
  (void)voter.step(vote_request(1, 3, term, 1, 1));
  auto again = take_messages(voter);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(again[0].reject());
}

TEST(RaftPaper52Election, CandidateStepsDownOnAppendFromLeaderOfSameTerm) {
  TestGroup g({1, 2, 3});
  g.isolate(2);
  (void)g.node(2).campaign();  // 2 becomes candidate in term 2, isolated
  g.settle();
  g.heal();
  g.isolate(2);
  g.campaign(1);  // 1 becomes leader of the same term with 3's vote
  g.heal();
  ASSERT_EQ(g.raft(1).role(), StateRole::kLeader);
  ASSERT_EQ(g.raft(2).role(), StateRole::kCandidate);
  ASSERT_EQ(g.raft(2).term(), g.raft(1).term());
  g.tick(1);  // the leader's heartbeat reaches the candidate
  EXPECT_EQ(g.raft(2).role(), StateRole::kFollower);
  EXPECT_EQ(g.raft(2).leader(), 1u);
}

TEST(RaftPaper52Election, AtMostOneLeaderPerTermUnderSplitVotes) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    Config c = TestGroup::default_config();
    c.seed = seed;
    TestGroup g({1, 2, 3, 4, 5}, c);
    std::map<std::uint64_t, std::set<std::uint64_t>> leaders_by_term;
    for (int t = 0; t < 60; ++t) {
      g.tick_all();
      for (std::uint64_t id = 1; id <= 5; ++id) {
        if (g.raft(id).role() == StateRole::kLeader) {
          leaders_by_term[g.raft(id).term()].insert(id);
        }
      }
    }
    for (const auto& [term, ids] : leaders_by_term) {
      EXPECT_EQ(ids.size(), 1u) << "seed " << seed << " term " << term;
    }
    EXPECT_FALSE(leaders_by_term.empty()) << "seed " << seed;
  }
}

// ---- §5.3 log replication

TEST(RaftPaper53Replication, LeaderCommitsOnceAMajorityHasTheEntry) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  g.isolate(3);
  ASSERT_TRUE(g.propose(1, "a").is_ok());
  std::uint64_t idx = g.raft(1).log().last_index();
  EXPECT_EQ(g.raft(1).log().committed(), idx);  // 1 and 2 are a majority
  EXPECT_EQ(g.member(1).applied.back().data(), "a");
  EXPECT_EQ(g.member(2).applied.back().data(), "a");
  EXPECT_LT(g.raft(3).log().last_index(), idx);
  g.heal();
  g.tick(1);  // heartbeat: 3 catches up
  EXPECT_EQ(g.member(3).applied.back().data(), "a");
}

TEST(RaftPaper53Replication, LeaderAloneDoesNotCommit) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  std::uint64_t committed = g.raft(1).log().committed();
  g.isolate(1);
  ASSERT_TRUE(g.propose(1, "lonely").is_ok());
  EXPECT_EQ(g.raft(1).log().committed(), committed);
}

TEST(RaftPaper53Replication, FollowerRejectsAppendWhoseLogDoesNotMatch) {
  TestGroup g({1, 2});
  RawNode& f = g.node(2);
  Message m;
  m.set_type(raftpb::MSG_APP);
  m.set_from(1);
  m.set_to(2);
  m.set_term(2);
  m.set_index(5);  // 2 has nothing at 5
  m.set_log_term(2);
  *m.add_entries() = make_entry(6, 2);
  (void)f.step(m);
  auto msgs = take_messages(f);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type(), raftpb::MSG_APP_RESP);
  EXPECT_TRUE(msgs[0].reject());
  EXPECT_EQ(msgs[0].reject_hint(), 1u);  // its last index: the leader can jump there
}

TEST(RaftPaper53Replication, ConflictingFollowerSuffixIsReplacedByLeaderLog) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  // 1 writes entries only it has, then loses leadership to 2.
  g.isolate(1);
  (void)g.propose(1, "lost-1");
  (void)g.propose(1, "lost-2");
  g.heal();
  g.isolate(1);
  g.campaign(2);
  ASSERT_EQ(g.raft(2).role(), StateRole::kLeader);
  (void)g.propose(2, "kept");
  g.heal();
  g.tick(2);
  g.settle();
  EXPECT_EQ(g.raft(1).role(), StateRole::kFollower);
  auto ents1 = g.raft(1).log().all_entries();
  auto ents2 = g.raft(2).log().all_entries();
  ASSERT_EQ(ents1.size(), ents2.size());
  for (std::size_t i = 0; i < ents1.size(); ++i) {
    EXPECT_EQ(ents1[i].term(), ents2[i].term());
    EXPECT_EQ(ents1[i].data(), ents2[i].data());
    EXPECT_NE(ents1[i].data(), "lost-1");
  }
}

TEST(RaftPaper53Replication, FastBackoffSkipsAConflictingTermInOneRoundTrip) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  g.isolate(1);
  for (int i = 0; i < 30; ++i) {
    (void)g.propose(1, "orphan");  // 30 entries of term 2 only 1 has
  }
  g.heal();
  g.isolate(1);
  g.campaign(2);
  (void)g.propose(2, "new");
  g.heal();
  g.clear_sent();
  g.tick(2);
  g.settle();
  int rejections = 0;
  for (const auto& m : g.sent()) {
    if (m.type() == raftpb::MSG_APP_RESP && m.from() == 1 && m.reject()) {
      ++rejections;
    }
  }
  EXPECT_LE(rejections, 2) << "back-off went entry by entry";
  EXPECT_EQ(g.raft(1).log().last_index(), g.raft(2).log().last_index());
}

// ---- §5.4.1 election restriction

TEST(RaftPaper541ElectionRestriction, VoterRejectsCandidateWithLowerLastTerm) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  (void)g.propose(1, "x");
  RawNode& voter = g.node(3);
  std::uint64_t term = voter.raft().term() + 1;
  std::uint64_t older = voter.raft().log().last_term() - 1;
  (void)voter.step(vote_request(2, 3, term, 100, older));  // longer log, but older last term
  auto msgs = take_messages(voter);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject());
}

TEST(RaftPaper541ElectionRestriction, VoterRejectsCandidateWithShorterLogOfSameTerm) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  (void)g.propose(1, "x");
  RawNode& voter = g.node(3);
  std::uint64_t last = voter.raft().log().last_index();
  std::uint64_t last_term = voter.raft().log().last_term();
  (void)voter.step(vote_request(2, 3, voter.raft().term() + 1, last - 1, last_term));
  auto msgs = take_messages(voter);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_TRUE(msgs[0].reject());
  (void)voter.step(vote_request(2, 3, voter.raft().term() + 1, last, last_term));
  auto ok = take_messages(voter);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_FALSE(ok[0].reject());
}

TEST(RaftPaper541ElectionRestriction, NodeMissingCommittedEntriesCannotBeElected) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  g.isolate(3);
  (void)g.propose(1, "committed-without-3");
  g.heal();
  g.isolate(1);   // the leader goes away; 3 lacks the committed entry
  g.campaign(3);  // 2 refuses: its log is more up to date
  EXPECT_NE(g.raft(3).role(), StateRole::kLeader);
  g.campaign(2);
  EXPECT_EQ(g.raft(2).role(), StateRole::kLeader);
}

// ---- §5.4.2 committing entries from previous terms

TEST(RaftPaper542PreviousTermCommit, OldTermEntryCommitsOnlyWithACurrentTermEntry) {
  Config c = TestGroup::default_config();
  c.max_size_per_msg = 1;  // one entry per append, so old and new entries are acked apart
  TestGroup g({1, 2, 3}, c);
  g.campaign(1);
  g.isolate(1);
  (void)g.propose(1, "old");  // an entry only 1 has
  std::uint64_t old_index = g.raft(1).log().last_index();
  // 1 learns of a higher term (a vote request it refuses) and steps down, keeping "old".
  Message higher = vote_request(3, 1, g.raft(1).term() + 1, 0, 0);
  (void)g.node(1).step(higher);
  g.settle();
  ASSERT_EQ(g.raft(1).role(), StateRole::kFollower);
  g.heal();
  // 1 campaigns again (term 3) with the old entry; its no-op follows it. Append
  // acknowledgements are held back so that we can step them by hand.
  g.drop_type(raftpb::MSG_APP_RESP);
  g.campaign(1);
  ASSERT_EQ(g.raft(1).role(), StateRole::kLeader);
  std::uint64_t committed_before = g.raft(1).log().committed();
  ASSERT_LT(committed_before, old_index);
  Message ack;
  ack.set_type(raftpb::MSG_APP_RESP);
  ack.set_from(2);
  ack.set_to(1);
  ack.set_term(g.raft(1).term());
  ack.set_index(old_index);  // 2 now has the old entry, but not the no-op of term 3
  (void)g.node(1).step(ack);
  EXPECT_LT(g.raft(1).log().committed(), old_index) << "committed a previous-term entry by counting replicas";
  ack.set_index(old_index + 1);  // 2 has the term-3 no-op as well
  (void)g.node(1).step(ack);
  EXPECT_EQ(g.raft(1).log().committed(), old_index + 1);
}

// ---- §5.5 crashes

TEST(RaftPaper55Crashes, RestartRecoversTermVoteAndLog) {
  TestGroup g({1, 2, 3});
  g.campaign(1);
  (void)g.propose(1, "durable");
  std::uint64_t term = g.raft(2).term();
  std::uint64_t last = g.raft(2).log().last_index();
  g.restart(2);
  EXPECT_EQ(g.raft(2).term(), term);
  EXPECT_EQ(g.raft(2).vote(), 1u);
  EXPECT_EQ(g.raft(2).log().last_index(), last);
  EXPECT_EQ(g.raft(2).log().committed(), last);
  EXPECT_EQ(g.raft(2).log().applied(), last);
}

}  // namespace
}  // namespace rdb::raft
