// Lease reads on real stores (RegionPeer's leader lease): a read round wins the lease,
// reads inside it need no round, and a lease never outlives the time it was won for —
// not through a pause of the leader (the clock ran on), nor past a leadership transfer.
#include <gtest/gtest.h>

#include <atomic>

#include "server/raft_store_fixture.h"

namespace rdb {
namespace {

class LeaseReadTest : public SteppedRaftStoreTest {
 protected:
  void SetUp() override {
    SteppedRaftStoreTest::SetUp();
    configure_ = [](RaftStoreConfig& c) { c.lease_reads = true; };
  }

  // The lease: election timeout (10 ticks) less two ticks.
  static constexpr std::uint64_t kLeaseMs = 8 * kTickMs;

  // Asks `store` for a read and runs its loop without moving time: whether it was
  // answered (nullopt: not yet) and with what.
  std::optional<bool> read_now(std::uint64_t store) {
    auto answer = std::make_shared<std::optional<bool>>();
    nodes_[store].store->read_index(context(), {"k"}, [answer](auto err) { *answer = !err.has_value(); });
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(nodes_[store].store->sync());
    }
    return *answer;
  }

  // A read on `store`, time stepping until it is answered; whether it succeeded.
  bool read_on(std::uint64_t store) {
    auto answer = std::make_shared<std::optional<bool>>();
    auto mu = std::make_shared<std::mutex>();
    nodes_[store].store->read_index(context(), {"k"}, [answer, mu](auto err) {
      std::lock_guard lock(*mu);
      *answer = !err.has_value();
    });
    EXPECT_TRUE(step_until([&] {
      std::lock_guard lock(*mu);
      return answer->has_value();
    }));
    std::lock_guard lock(*mu);
    return answer->value_or(false);
  }

  std::uint64_t start_three_and_write() {
    auto region = region_with({1, 2, 3});
    for (std::uint64_t s = 1; s <= 3; ++s) {
      start(s, region);
    }
    std::uint64_t leader = step_until_leader();
    EXPECT_FALSE(write_on(leader, put("k", "v")).region_error);  // committed in this term
    return leader;
  }
};

TEST_F(LeaseReadTest, OneRoundWinsALeaseAndReadsInsideItNeedNone) {
  std::uint64_t leader = start_three_and_write();
  ASSERT_TRUE(read_on(leader));  // a round: it wins the lease
  const std::size_t rounds = read_rounds();
  ASSERT_GE(rounds, 1u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(read_now(leader), std::optional<bool>(true)) << "read " << i << " inside the lease waited";
  }
  EXPECT_EQ(read_rounds(), rounds) << "reads inside the lease ran read rounds";
}

TEST_F(LeaseReadTest, SteadyReadsRenewTheLeaseBeforeItRunsOut) {
  std::uint64_t leader = start_three_and_write();
  ASSERT_TRUE(read_on(leader));
  // Reads every tick for ten leases' time: each answered at once, the lease renewed by
  // rounds started ahead of its end.
  for (int i = 0; i < 80; ++i) {
    step();
    ASSERT_EQ(read_now(leader), std::optional<bool>(true)) << "tick " << i;
  }
  EXPECT_GE(read_rounds(), 2u) << "the lease was never renewed";
}

// The pause the tick-counted lease got wrong: a leader whose loop did not run while
// its clock moved past the lease (SIGSTOP, a stalled VM) must ask its followers again
// — and without them it answers nothing.
TEST_F(LeaseReadTest, ALeaderPausedPastItsLeaseAsksItsFollowersAgain) {
  std::uint64_t leader = start_three_and_write();
  ASSERT_TRUE(read_on(leader));
  ASSERT_EQ(read_now(leader), std::optional<bool>(true));
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != leader) {
      transport_.mute(s, true);  // their answers are lost: no quorum confirms the leader
    }
  }
  clock->advance(kLeaseMs + kTickMs);  // time passed; the leader's loop did not run
  EXPECT_EQ(read_now(leader), std::nullopt) << "a lease outlived its time";
  for (std::uint64_t s = 1; s <= 3; ++s) {
    transport_.mute(s, false);
  }
  ASSERT_TRUE(step_until([&] { return read_now(leader).has_value(); }, 20));
}

// A leader that sent MsgTimeoutNow may be replaced by its transferee at once (a
// transferee's campaign passes the followers' refusal): no lease for the rest of its term,
// even when the transfer came to nothing.
TEST_F(LeaseReadTest, ALeaderThatStartedATransferHoldsNoLeaseForTheRestOfItsTerm) {
  std::uint64_t leader = start_three_and_write();
  auto status = leader_status();
  ASSERT_TRUE(status.has_value());
  const std::uint64_t term = status->term;
  ASSERT_TRUE(read_on(leader));
  ASSERT_EQ(read_now(leader), std::optional<bool>(true));
  transport_.drop_type(raftpb::MSG_TIMEOUT_NOW, true);  // the transfer comes to nothing
  std::uint64_t target = leader == 1 ? 1002 : 1001;
  nodes_[leader].store->transfer_leader(100, target);
  step(15);  // past an election timeout: the leader abandons the transfer
  status = leader_status();
  ASSERT_TRUE(status.has_value());
  ASSERT_EQ(status->term, term);
  ASSERT_EQ(status->self.store_id(), leader);
  // Each read now runs a round of its own, though a round just confirmed the leader.
  ASSERT_TRUE(read_on(leader));
  for (int i = 0; i < 3; ++i) {
    const std::size_t rounds = read_rounds();
    EXPECT_TRUE(read_on(leader));
    EXPECT_EQ(read_rounds(), rounds + 1) << "a read inside a lease after MsgTimeoutNow in the same term";
  }
}

// The local reader (server/local_reader.h): inside the lease a read is served on the
// thread that asks, with no task for the Raft thread; it ends with the lease, by the clock.
TEST_F(LeaseReadTest, AReadInsideTheLeaseIsServedOnTheCallingThreadUntilTheLeaseEnds) {
  std::uint64_t leader = start_three_and_write();
  const std::vector<std::string> keys{"k"};
  EXPECT_FALSE(nodes_[leader].store->try_local_read(context(), keys)) << "no round has won a lease yet";
  ASSERT_TRUE(read_on(leader));
  metapb::Region region;
  ASSERT_TRUE(nodes_[leader].store->try_local_read(context(), keys, &region));
  EXPECT_EQ(region.id(), 100u);
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != leader) {
      EXPECT_FALSE(nodes_[s].store->try_local_read(context(), keys)) << "a follower served a local read";
    }
  }
  kvrpc::Context stale = context();
  stale.mutable_region_epoch()->set_version(stale.region_epoch().version() + 1);
  EXPECT_FALSE(nodes_[leader].store->try_local_read(stale, keys)) << "another epoch";
  kvrpc::Context other_term = context();
  other_term.set_term(leader_status()->term + 1);
  EXPECT_FALSE(nodes_[leader].store->try_local_read(other_term, keys)) << "another term";
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != leader) {
      transport_.mute(s, true);  // no renewal can succeed
    }
  }
  clock->advance(kLeaseMs);  // the loop did not run: only the clock tells the lease ended
  EXPECT_FALSE(nodes_[leader].store->try_local_read(context(), keys)) << "a local read outlived the lease";
}

TEST_F(LeaseReadTest, SteadyLocalReadsRenewTheLeaseBeforeItRunsOut) {
  std::uint64_t leader = start_three_and_write();
  const std::vector<std::string> keys{"k"};
  ASSERT_TRUE(read_on(leader));
  const std::size_t rounds = read_rounds();
  for (int i = 0; i < 80; ++i) {  // ten leases' time, a local read each tick
    step();
    ASSERT_TRUE(nodes_[leader].store->try_local_read(context(), keys)) << "tick " << i;
  }
  EXPECT_GE(read_rounds(), rounds + 2) << "the lease was never renewed";
}

TEST_F(LeaseReadTest, ATransferEndsLocalReadsBeforeMsgTimeoutNowLeaves) {
  std::uint64_t leader = start_three_and_write();
  const std::vector<std::string> keys{"k"};
  ASSERT_TRUE(read_on(leader));
  ASSERT_TRUE(nodes_[leader].store->try_local_read(context(), keys));
  // Whoever receives MsgTimeoutNow first checks that the leader serves no local read.
  std::atomic<int> checked{0};
  std::atomic<bool> served_during_transfer{false};
  transport_.on_send([&](const raftsvc::RaftMessage& m) {
    if (m.message().type() == raftpb::MSG_TIMEOUT_NOW) {
      checked.fetch_add(1);
      if (nodes_[leader].store->try_local_read(context(), keys)) {
        served_during_transfer = true;
      }
    }
  });
  nodes_[leader].store->transfer_leader(100, leader == 1 ? 1002 : 1001);
  ASSERT_TRUE(step_until([&] { return checked.load() > 0; }, 50)) << "MsgTimeoutNow never left";
  EXPECT_FALSE(served_during_transfer.load()) << "a local read was served while MsgTimeoutNow was on its way";
  transport_.on_send(nullptr);
}

}  // namespace
}  // namespace rdb
