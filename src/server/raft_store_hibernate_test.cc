// Hibernation on real stores: time is a manual clock stepped tick by tick, each step
// followed by a round of every store's loop, so "nothing happened for N ticks" is exact.
#include <gtest/gtest.h>

#include "server/raft_store_fixture.h"

namespace rdb {
namespace {

class HibernateTest : public SteppedRaftStoreTest {
 protected:
  bool all_asleep(const std::vector<std::uint64_t>& stores) {
    for (auto s : stores) {
      if (nodes_[s].store->hibernating_regions() != 1) {
        return false;
      }
    }
    return true;
  }
};

TEST_F(HibernateTest, AnIdleRegionSleepsAndAWriteWakesIt) {
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k1", "v1")).region_error);
  ASSERT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); })) << "the idle region never slept";

  // Ten election timeouts: not one Raft message, no election. (First a few ticks for the
  // answers to the last heartbeats, which other loops send on their own time.)
  step(5);
  std::uint64_t messages = transport_.raft_messages();
  auto before = leader_status();
  step(100);
  EXPECT_EQ(transport_.raft_messages(), messages) << "a sleeping region sent Raft messages";
  EXPECT_TRUE(all_asleep({1, 2, 3}));
  auto after = leader_status();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->term, before->term);
  EXPECT_EQ(after->self.id(), before->self.id());

  // A write wakes the region, commits everywhere, and the region sleeps again.
  ASSERT_FALSE(write_on(leader, put("k2", "v2")).region_error);
  EXPECT_LT(nodes_[leader].store->hibernating_regions(), 1u);
  EXPECT_TRUE(
      step_until([&] { return has_value(1, "k2", "v2") && has_value(2, "k2", "v2") && has_value(3, "k2", "v2"); }));
  EXPECT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); })) << "the region did not sleep again";
  EXPECT_EQ(leader_status()->term, before->term);
}

TEST_F(HibernateTest, AReadOnASleepingLeaderLeavesTheFollowersAsleep) {
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  ASSERT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); }));
  auto p = std::make_shared<std::promise<std::optional<kvrpc::RegionError>>>();
  auto f = p->get_future();
  nodes_[leader].store->read_index(context(), {"k"}, [p](auto err) { p->set_value(std::move(err)); });
  ASSERT_TRUE(step_until([&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  EXPECT_FALSE(f.get().has_value()) << "the read was refused";
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != leader) {
      EXPECT_EQ(nodes_[s].store->hibernating_regions(), 1u) << "the read's heartbeat woke the follower on store " << s;
    }
  }
}

TEST_F(HibernateTest, FollowersOfADeadLeaderWakeAndElectAnother) {
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  ASSERT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); }));
  std::uint64_t old_term = leader_status()->term;
  stop(leader);
  std::uint64_t next = 0;
  ASSERT_TRUE(step_until([&] {
    auto s = leader_status();
    next = s && s->term > old_term ? s->self.store_id() : 0;
    return next != 0;
  })) << "the sleeping followers of a dead leader never elected another";
  EXPECT_NE(next, leader);
  EXPECT_FALSE(write_on(next, put("k", "v2")).region_error);
}

TEST_F(HibernateTest, ARegionWithADeadFollowerStillSleeps) {
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  std::uint64_t dead = leader % 3 + 1;
  std::uint64_t alive = dead % 3 + 1 == leader ? leader % 3 + 1 : dead % 3 + 1;
  ASSERT_NE(alive, leader);
  ASSERT_NE(alive, dead);
  stop(dead);
  ASSERT_FALSE(write_on(leader, put("k", "v2")).region_error);  // committed by two of three
  ASSERT_TRUE(step_until([&] {
    return all_asleep({leader, alive});
  })) << "the region never slept with one follower's store down";
  step(5);  // answers to the last heartbeats
  std::uint64_t messages = transport_.raft_messages();
  step(100);
  EXPECT_EQ(transport_.raft_messages(), messages);
  EXPECT_TRUE(all_asleep({leader, alive}));

  // The dead follower comes back: it catches up (its election attempts wake the others).
  start(dead, std::nullopt);
  EXPECT_TRUE(step_until([&] { return has_value(dead, "k", "v2"); })) << "the returning follower never caught up";
  EXPECT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); }));
}

TEST_F(HibernateTest, ForgedHibernationSignalsAreDroppedOrIgnored) {
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  std::uint64_t follower = leader % 3 + 1;
  std::uint64_t other = follower % 3 + 1;
  auto status = leader_status();
  RaftStore& target = *nodes_[follower].store;
  auto signal = [&](std::uint64_t from_store, std::uint64_t term) {
    raftsvc::RaftMessage m;
    m.set_region_id(100);
    m.mutable_from_peer()->set_id(1000 + from_store);
    m.mutable_from_peer()->set_store_id(from_store);
    m.mutable_to_peer()->set_id(1000 + follower);
    m.mutable_to_peer()->set_store_id(follower);
    m.mutable_hibernate()->set_term(term);
    m.mutable_hibernate()->set_index(status->commit_index);
    return m;
  };
  std::uint64_t dropped = target.dropped_messages().total();
  auto bad = signal(leader, status->term);
  bad.mutable_hibernate()->set_term(0);
  target.deliver(bad);
  bad = signal(leader, status->term);
  bad.mutable_message()->set_type(raftpb::MSG_HEARTBEAT);  // a signal with Raft content
  target.deliver(bad);
  bad = signal(leader, status->term);
  bad.set_store_heartbeat(true);  // two kinds at once
  target.deliver(bad);
  bad = signal(leader, status->term);
  bad.set_region_id(0);
  target.deliver(bad);
  bad = signal(leader, status->term);
  bad.set_region_id(999);  // no such region here
  target.deliver(bad);
  raftsvc::RaftMessage beat;
  beat.set_store_heartbeat(true);
  beat.mutable_to_peer()->set_store_id(follower);  // from store 0
  target.deliver(beat);
  ASSERT_TRUE(target.sync());
  EXPECT_EQ(target.dropped_messages().total(), dropped + 6);

  // Well-formed, but not from the leader, or of another term: the follower keeps ticking.
  target.deliver(signal(other, status->term));
  target.deliver(signal(leader, status->term + 1));
  ASSERT_TRUE(target.sync());
  EXPECT_EQ(target.hibernating_regions(), 0u);
}

// Lease reads and hibernation together: the region sleeps; a read on the sleeping
// leader, its lease long run out by the clock, runs a round (the followers stay asleep)
// and is answered; one right after it needs no round.
TEST_F(HibernateTest, StoresServingLeaseReadsSleepAndTheirLeaseRunsOutByTheClock) {
  configure_ = [](RaftStoreConfig& c) { c.lease_reads = true; };
  start_all({1, 2, 3});
  std::uint64_t leader = step_until_leader();
  ASSERT_FALSE(write_on(leader, put("k", "v")).region_error);
  ASSERT_TRUE(step_until([&] { return all_asleep({1, 2, 3}); })) << "lease-reading stores never slept";
  auto read = [&] {
    auto p = std::make_shared<std::promise<std::optional<kvrpc::RegionError>>>();
    auto f = p->get_future();
    nodes_[leader].store->read_index(context(), {"k"}, [p](auto err) { p->set_value(std::move(err)); });
    EXPECT_TRUE(step_until([&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
    return !f.get().has_value();
  };
  const std::size_t before = read_rounds();
  EXPECT_TRUE(read());
  EXPECT_EQ(read_rounds(), before + 1) << "a read after the lease ran out did not confirm the leader";
  EXPECT_TRUE(read());
  EXPECT_EQ(read_rounds(), before + 1) << "a read inside the new lease ran a round";
  for (std::uint64_t s = 1; s <= 3; ++s) {
    if (s != leader) {
      EXPECT_EQ(nodes_[s].store->hibernating_regions(), 1u) << "the read's heartbeat woke the follower on store " << s;
    }
  }
}

}  // namespace
}  // namespace rdb
