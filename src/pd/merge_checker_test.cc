#include "pd/merge_checker.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

constexpr std::uint64_t kNow = 10'000'000;

MergeCandidate candidate(std::uint64_t id, const std::string& start, const std::string& end, std::uint64_t size,
                         std::vector<std::uint64_t> stores = {1, 2, 3}) {
  MergeCandidate c;
  c.region.set_id(id);
  c.region.set_start_key(start);
  c.region.set_end_key(end);
  for (auto s : stores) {
    auto* p = c.region.add_peers();
    p->set_id(id * 10 + s);
    p->set_store_id(s);
  }
  c.size = size;
  c.keys = size / 100;
  c.range_since_ms = 0;
  return c;
}

MergeConfig config() {
  MergeConfig c;
  c.max_merge_region_size = 1000;
  c.max_merge_region_keys = 100;
  c.split_merge_interval_ms = 60'000;
  return c;
}

TEST(MergeCheckerTest, ASmallRegionMergesIntoItsSmallerSmallNeighbour) {
  auto left = candidate(1, "", "g", 800);
  auto source = candidate(2, "g", "p", 100);
  auto right = candidate(3, "p", "", 300);
  auto target = merge_target(source, left, right, config(), 3, kNow);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->id(), 3u);
  right.size = 5000;  // too big now: the left one
  target = merge_target(source, left, right, config(), 3, kNow);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->id(), 1u);
}

TEST(MergeCheckerTest, NothingMergesThatIsBigUnmeasuredYoungOrElsewhere) {
  auto source = candidate(2, "g", "p", 100);
  auto right = candidate(3, "p", "", 300);
  auto cfg = config();
  EXPECT_TRUE(merge_target(source, std::nullopt, right, cfg, 3, kNow).has_value());

  auto big = source;
  big.size = 2000;
  EXPECT_FALSE(merge_target(big, std::nullopt, right, cfg, 3, kNow)) << "source over the size limit";
  auto many_keys = source;
  many_keys.keys = 101;
  EXPECT_FALSE(merge_target(many_keys, std::nullopt, right, cfg, 3, kNow)) << "source over the key limit";
  auto unmeasured = source;
  unmeasured.size = 0;
  EXPECT_FALSE(merge_target(unmeasured, std::nullopt, right, cfg, 3, kNow)) << "size never reported";
  auto young = source;
  young.range_since_ms = kNow - 1000;
  EXPECT_FALSE(merge_target(young, std::nullopt, right, cfg, 3, kNow)) << "split a second ago";
  auto young_target = right;
  young_target.range_since_ms = kNow - 1000;
  EXPECT_FALSE(merge_target(source, std::nullopt, young_target, cfg, 3, kNow));
  auto elsewhere = candidate(3, "p", "", 300, {1, 2, 4});
  EXPECT_FALSE(merge_target(source, std::nullopt, elsewhere, cfg, 3, kNow)) << "peers on other stores";
  auto learner = right;
  learner.region.mutable_peers(1)->set_is_learner(true);
  EXPECT_FALSE(merge_target(source, std::nullopt, learner, cfg, 3, kNow)) << "a learner: a move is under way";
  auto pending = source;
  pending.has_pending_peers = true;
  EXPECT_FALSE(merge_target(pending, std::nullopt, right, cfg, 3, kNow));
  auto gap = candidate(3, "q", "", 300);
  EXPECT_FALSE(merge_target(source, std::nullopt, gap, cfg, 3, kNow)) << "not adjacent";
  EXPECT_FALSE(merge_target(source, std::nullopt, right, cfg, 5, kNow)) << "under-replicated for max_replicas 5";
  cfg.max_merge_region_size = 0;
  EXPECT_FALSE(merge_target(source, std::nullopt, right, cfg, 3, kNow)) << "merging turned off";
}

}  // namespace
}  // namespace rdb
