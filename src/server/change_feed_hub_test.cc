#include "server/change_feed_hub.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

FeedChange put(std::string key, std::uint64_t ts, std::string value = "v") {
  return {std::move(key), ts, false, std::move(value)};
}

std::vector<std::pair<std::uint64_t, std::string>> order_of(const std::vector<FeedChange>& changes) {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (const auto& c : changes) {
    out.emplace_back(c.commit_ts, c.key);
  }
  return out;
}

TEST(ChangeFeedHubTest, AFeedKeepsTheChangesInItsRangeInTimestampOrderUntilPolledPast) {
  ChangeFeedHub hub({});
  EXPECT_FALSE(hub.active());
  auto id = hub.add("b", "d");
  ASSERT_TRUE(id.is_ok());
  EXPECT_TRUE(hub.active());
  hub.publish({put("c", 20), put("a", 5), put("b", 30), put("d", 7), put("b", 10), {"c", 10, true, ""}});
  auto t = hub.take(*id, 0, 25, 1 << 20);
  ASSERT_TRUE(t.is_ok());
  EXPECT_TRUE(t->lost.empty());
  EXPECT_EQ(t->resolved_ts, 25u);
  using P = std::vector<std::pair<std::uint64_t, std::string>>;
  EXPECT_EQ(order_of(t->changes), (P{{10, "b"}, {10, "c"}, {20, "c"}}));
  EXPECT_TRUE(t->changes[1].deleted);
  // Asked again (a lost answer): the same.
  auto again = hub.take(*id, 0, 25, 1 << 20);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(order_of(again->changes), order_of(t->changes));
  // Past 25: only what is newer is left.
  auto next = hub.take(*id, 25, 40, 1 << 20);
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(order_of(next->changes), (P{{30, "b"}}));
  EXPECT_GT(hub.bytes(), 0u);
  ASSERT_TRUE(hub.take(*id, 40, 41, 1 << 20).is_ok());
  EXPECT_EQ(hub.bytes(), 0u);
}

TEST(ChangeFeedHubTest, AChangePublishedTwiceIsKeptOnce) {
  ChangeFeedHub hub({});
  auto id = hub.add("", "");
  ASSERT_TRUE(id.is_ok());
  hub.publish({put("k", 3)});
  hub.publish({put("k", 3)});
  auto t = hub.take(*id, 0, 10, 1 << 20);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->changes.size(), 1u);
}

TEST(ChangeFeedHubTest, AnAnswerIsCutBetweenTimestampsNeverWithinOne) {
  ChangeFeedHub hub({});
  auto id = hub.add("", "");
  ASSERT_TRUE(id.is_ok());
  hub.publish({put("a", 1, std::string(100, 'x')), put("b", 2, std::string(100, 'x')),
               put("c", 2, std::string(100, 'x')), put("d", 3, std::string(100, 'x'))});
  auto t = hub.take(*id, 0, 9, 150);  // room for about one change
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->changes.size(), 1u);
  EXPECT_EQ(t->resolved_ts, 1u);
  t = hub.take(*id, 1, 9, 150);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->changes.size(), 2u);  // timestamp 2 whole
  EXPECT_EQ(t->resolved_ts, 2u);
  t = hub.take(*id, 2, 9, 150);
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->changes.size(), 1u);
  EXPECT_EQ(t->resolved_ts, 9u);
}

TEST(ChangeFeedHubTest, MemoryIsBoundedAFeedThatDoesNotFitIsLost) {
  ChangeFeedHub::Options o;
  o.memory_limit = 1000;
  ChangeFeedHub hub(o);
  auto slow = hub.add("", "");
  ASSERT_TRUE(slow.is_ok());
  for (std::uint64_t ts = 1; ts <= 20; ++ts) {
    hub.publish({put("k", ts, std::string(100, 'x'))});
    EXPECT_LE(hub.bytes(), 1000u);
  }
  auto t = hub.take(*slow, 0, 30, 1 << 20);
  ASSERT_TRUE(t.is_ok());
  EXPECT_NE(t->lost.find("--change-feed-memory"), std::string::npos) << t->lost;
  EXPECT_TRUE(t->changes.empty());
  EXPECT_EQ(hub.bytes(), 0u);
  // A lost feed stays lost (its poller must register again); a new one works.
  hub.publish({put("k", 40)});
  EXPECT_FALSE(hub.take(*slow, 0, 50, 1 << 20)->lost.empty());
  auto fresh = hub.add("", "");
  ASSERT_TRUE(fresh.is_ok());
  hub.publish({put("k", 41)});
  EXPECT_EQ(hub.take(*fresh, 0, 50, 1 << 20)->changes.size(), 1u);
}

TEST(ChangeFeedHubTest, ASnapshotOverARangeLosesTheFeedsOverlappingIt) {
  ChangeFeedHub hub({});
  auto left = hub.add("a", "c");
  auto right = hub.add("c", "");
  ASSERT_TRUE(left.is_ok() && right.is_ok());
  hub.lose_range("d", "f", "region 7 installed a snapshot");
  EXPECT_TRUE(hub.take(*left, 0, 5, 1 << 20)->lost.empty());
  EXPECT_EQ(hub.take(*right, 0, 5, 1 << 20)->lost, "region 7 installed a snapshot");
}

TEST(ChangeFeedHubTest, FeedsAreCountedAndIdleOnesDropped) {
  ChangeFeedHub::Options o;
  o.max_feeds = 2;
  o.idle_timeout = std::chrono::seconds(10);
  ChangeFeedHub hub(o);
  auto t0 = ChangeFeedHub::Clock::now();
  auto a = hub.add("", "", t0);
  auto b = hub.add("", "", t0);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(*a, *b);
  auto c = hub.add("", "", t0);
  EXPECT_EQ(c.status().code(), ServerCode::kBusy);
  EXPECT_NE(c.status().message().find("--max-change-feeds"), std::string::npos);
  ASSERT_TRUE(hub.take(*a, 0, 1, 100, t0 + std::chrono::seconds(6)).is_ok());  // a is polled, b not
  auto later = t0 + std::chrono::seconds(12);
  auto d = hub.add("", "", later);
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(hub.take(*b, 0, 1, 100, later).status().code(), ServerCode::kNotFound);
  EXPECT_TRUE(hub.take(*a, 0, 1, 100, later).is_ok());
  hub.remove(*a);
  EXPECT_EQ(hub.take(*a, 0, 1, 100, later).status().code(), ServerCode::kNotFound);
  EXPECT_EQ(hub.feed_count(), 1u);
}

}  // namespace
}  // namespace rdb
