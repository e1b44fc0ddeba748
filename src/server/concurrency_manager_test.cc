// The leader's in-memory transaction state: latches exclude, memory locks hold reads
// back until released, max_ts only grows, term sync is per term and epoch.
#include "server/concurrency_manager.h"

#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

namespace rdb {
namespace {

using Clock = ConcurrencyManager::Clock;

Clock::time_point soon() {
  return Clock::now() + std::chrono::milliseconds(50);
}
Clock::time_point later() {
  return Clock::now() + std::chrono::seconds(30);
}

TEST(ConcurrencyManagerTest, LatchesOnAKeyExcludeEachOtherUntilReleased) {
  ConcurrencyManager cm;
  auto held = cm.latch({"a", "b"}, later());
  ASSERT_TRUE(held.has_value());
  EXPECT_FALSE(cm.latch({"b", "c"}, soon()).has_value()) << "b is held";
  EXPECT_EQ(cm.latched_keys(), 2U) << "a refused latch holds nothing";
  EXPECT_TRUE(cm.latch({"c"}, soon()).has_value()) << "other keys are free";
  auto waiter = std::async(std::launch::async, [&] { return cm.latch({"b", "c"}, later()).has_value(); });
  held.reset();
  EXPECT_TRUE(waiter.get()) << "a waiter gets the keys once they are released";
  EXPECT_EQ(cm.latched_keys(), 0U);
}

TEST(ConcurrencyManagerTest, ReadsWaitForMemoryLocksOnlyOnTheirKeys) {
  ConcurrencyManager cm;
  auto held = cm.latch({"k"}, later());
  ASSERT_TRUE(held.has_value());
  EXPECT_TRUE(cm.wait_for_memory_locks({"k"}, soon())) << "a plain latch does not hold reads back";
  held->mark_memory_locks(1, 5);
  EXPECT_FALSE(cm.wait_for_memory_locks({"k"}, soon()));
  EXPECT_FALSE(cm.wait_for_memory_locks_in_range("a", "z", soon()));
  EXPECT_FALSE(cm.wait_for_memory_locks_in_range("j", "", soon())) << "an empty end is unbounded";
  EXPECT_TRUE(cm.wait_for_memory_locks({"other"}, soon()));
  EXPECT_TRUE(cm.wait_for_memory_locks_in_range("l", "z", soon()));
  EXPECT_TRUE(cm.wait_for_memory_locks_in_range("a", "k", soon())) << "the end is exclusive";
  auto reader = std::async(std::launch::async, [&] { return cm.wait_for_memory_locks({"k"}, later()); });
  held.reset();
  EXPECT_TRUE(reader.get());
}

TEST(ConcurrencyManagerTest, AMemoryLockOfALeadershipThatEndedHoldsNoReadBack) {
  ConcurrencyManager cm;
  auto held = cm.latch({"k"}, later());
  ASSERT_TRUE(held.has_value());
  held->mark_memory_locks(7, 3);
  std::atomic<std::uint64_t> term{3};
  auto live = [&](std::uint64_t region, std::uint64_t t) { return region == 7 && t == term.load(); };
  EXPECT_FALSE(cm.wait_for_memory_locks({"k"}, soon(), live));
  auto reader = std::async(std::launch::async, [&] { return cm.wait_for_memory_locks({"k"}, later(), live); });
  term = 4;  // the store lost the lead (or won a new term): no release comes
  EXPECT_TRUE(reader.get()) << "the reader looks at leadership again without a release";
  EXPECT_TRUE(cm.wait_for_memory_locks_in_range("a", "z", soon(), live));
}

TEST(ConcurrencyManagerTest, MaxTsOnlyGrowsUnderConcurrentUpdates) {
  ConcurrencyManager cm;
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&cm, t] {
      for (std::uint64_t i = 1; i <= 10'000; ++i) {
        cm.update_max_ts(i * 4 + t);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(cm.max_ts(), 40'003U);
  cm.update_max_ts(5);
  EXPECT_EQ(cm.max_ts(), 40'003U);
}

TEST(ConcurrencyManagerTest, OnePhaseCommitTimestampsAreNeverShared) {
  ConcurrencyManager cm;
  cm.update_max_ts(100);
  std::vector<std::vector<std::uint64_t>> taken(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < taken.size(); ++t) {
    threads.emplace_back([&cm, &taken, t] {
      for (int i = 0; i < 5'000; ++i) {
        auto ts = cm.next_commit_ts(50, 1'000'000);
        if (ts) {
          taken[t].push_back(*ts);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::set<std::uint64_t> all;
  for (const auto& v : taken) {
    ASSERT_EQ(v.size(), 5'000u);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 20'000u) << "every 1PC got its own timestamp";
  EXPECT_GT(*all.begin(), 100u) << "above every read served";
  EXPECT_EQ(cm.max_ts(), *all.rbegin());
  EXPECT_FALSE(cm.next_commit_ts(50, cm.max_ts()).has_value()) << "refused above the limit";
  EXPECT_EQ(cm.max_ts(), *all.rbegin()) << "and max_ts untouched then";
  EXPECT_EQ(cm.next_commit_ts(1'000'000'000, 2'000'000'000), 1'000'000'001u) << "above the start too";
}

TEST(ConcurrencyManagerTest, SyncIsPerTermAndEpoch) {
  ConcurrencyManager cm;
  EXPECT_FALSE(cm.synced(1, 5, 2));
  cm.mark_synced(1, 5, 2);
  EXPECT_TRUE(cm.synced(1, 5, 2));
  EXPECT_FALSE(cm.synced(1, 6, 2)) << "a new term may follow another leader's reads";
  EXPECT_FALSE(cm.synced(1, 5, 3)) << "a merge brings another region's reads";
  EXPECT_FALSE(cm.synced(2, 5, 2));
}

}  // namespace
}  // namespace rdb
