#include "pd/region_tree.h"

#include <gtest/gtest.h>

namespace rdb {
namespace {

pdpb::RegionInfo region(std::uint64_t id, const std::string& start, const std::string& end, std::uint64_t version,
                        std::uint64_t conf_ver = 1) {
  pdpb::RegionInfo info;
  info.mutable_region()->set_id(id);
  info.mutable_region()->set_start_key(start);
  info.mutable_region()->set_end_key(end);
  info.mutable_region()->mutable_region_epoch()->set_version(version);
  info.mutable_region()->mutable_region_epoch()->set_conf_ver(conf_ver);
  return info;
}

Status report(RegionTree& tree, const pdpb::RegionInfo& info) {
  auto update = tree.check(info);
  if (!update.is_ok()) {
    return update.status();
  }
  tree.put(info, *update);
  return Status::ok();
}

std::uint64_t id_at(const RegionTree& tree, const std::string& key) {
  auto r = tree.by_key(key);
  return r ? r->region().id() : 0;
}

TEST(RegionTreeTest, SplitReportsReplaceTheParentsRange) {
  RegionTree tree;
  ASSERT_TRUE(report(tree, region(1, "", "", 1)).is_ok());
  EXPECT_EQ(id_at(tree, "zzz"), 1u);
  // The parent reports its shrunk range first: keys past it are in a gap until the new
  // region reports.
  ASSERT_TRUE(report(tree, region(1, "", "m", 2)).is_ok());
  EXPECT_EQ(id_at(tree, "a"), 1u);
  EXPECT_EQ(id_at(tree, "q"), 0u);
  ASSERT_TRUE(report(tree, region(2, "m", "", 2)).is_ok());
  EXPECT_EQ(id_at(tree, "q"), 2u);
  EXPECT_EQ(tree.size(), 2u);
}

TEST(RegionTreeTest, ANewRegionReportedFirstReplacesTheOlderParent) {
  RegionTree tree;
  ASSERT_TRUE(report(tree, region(1, "", "", 1)).is_ok());
  ASSERT_TRUE(report(tree, region(2, "m", "", 2)).is_ok());
  EXPECT_EQ(id_at(tree, "q"), 2u);
  EXPECT_EQ(id_at(tree, "a"), 0u) << "the old parent overlapped the new region and is gone";
  // The parent's stale report (version 1) is refused; its new one is taken.
  EXPECT_FALSE(report(tree, region(1, "", "", 1)).is_ok());
  ASSERT_TRUE(report(tree, region(1, "", "m", 2)).is_ok());
  EXPECT_EQ(id_at(tree, "a"), 1u);
  auto all = tree.all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].region().id(), 1u);
  EXPECT_EQ(all[1].region().id(), 2u);
}

TEST(RegionTreeTest, StaleEpochsAreRefusedWithTheReason) {
  RegionTree tree;
  ASSERT_TRUE(report(tree, region(1, "", "", 3, 5)).is_ok());
  auto older_conf = tree.check(region(1, "", "", 3, 4));
  ASSERT_FALSE(older_conf.is_ok());
  EXPECT_NE(older_conf.status().message().find("older"), std::string::npos);
  EXPECT_FALSE(tree.check(region(1, "", "", 2, 5)).is_ok());
  // A region whose range overlaps a newer one was cut after the report was made.
  ASSERT_TRUE(report(tree, region(1, "", "m", 4, 5)).is_ok());
  ASSERT_TRUE(report(tree, region(2, "m", "", 4, 5)).is_ok());
  auto overlap = tree.check(region(3, "k", "p", 4, 1));
  ASSERT_FALSE(overlap.is_ok());
  EXPECT_NE(overlap.status().message().find("newer"), std::string::npos);
  EXPECT_FALSE(tree.check(region(4, "b", "a", 9)).is_ok()) << "an inverted range";
  auto same = tree.check(region(2, "m", "", 4, 5));
  ASSERT_TRUE(same.is_ok());
  EXPECT_FALSE(same->changed);
}

TEST(RegionTreeTest, BeforeFindsTheRegionEndingAtOrAfterAKey) {
  RegionTree tree;
  ASSERT_TRUE(report(tree, region(1, "", "f", 3)).is_ok());
  ASSERT_TRUE(report(tree, region(2, "f", "p", 3)).is_ok());
  ASSERT_TRUE(report(tree, region(3, "p", "", 3)).is_ok());
  EXPECT_EQ(tree.before("")->region().id(), 3u);
  EXPECT_EQ(tree.before("p")->region().id(), 2u);
  EXPECT_EQ(tree.before("pa")->region().id(), 3u);
  EXPECT_EQ(tree.before("f")->region().id(), 1u);
  EXPECT_EQ(tree.before("b")->region().id(), 1u);
  EXPECT_FALSE(RegionTree().before("a").has_value());
}

}  // namespace
}  // namespace rdb
