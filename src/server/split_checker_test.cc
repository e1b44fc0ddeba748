#include "server/split_checker.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "storage/mvcc_codec.h"
#include "storage/rocks_engine.h"
#include "support/temp_dir.h"

namespace rdb {
namespace {

class SplitCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override { engine_ = std::move(RocksEngine::open(dir_.sub("db"))).value(); }

  // `n` raw keys "k00000".. of `value_bytes` each (keys are 6 bytes).
  void fill(int n, std::size_t value_bytes, ColumnFamily cf = ColumnFamily::kRaw) {
    WriteBatch wb;
    for (int i = 0; i < n; ++i) {
      wb.put(cf, fmt::format("k{:05}", i), std::string(value_bytes, 'v'));
    }
    ASSERT_TRUE(engine_->write(wb, false).is_ok());
  }

  SplitCheck check(const metapb::Region& region, SplitLimits limits) {
    auto view = engine_->snapshot();
    auto r = check_region_split(*engine_, *view, region, limits);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : SplitCheck{};
  }

  testing::TempDir dir_;
  std::unique_ptr<RocksEngine> engine_;
  metapb::Region whole_;  // all keys
};

TEST_F(SplitCheckerTest, CountsKeysAndValuesAsWrittenInBothKeySpaces) {
  fill(100, 94);                     // 100 bytes per pair
  fill(10, 94, ColumnFamily::kCas);  // the same keys, versioned
  auto c = check(whole_, SplitLimits{1 << 20, 1'000'000, 64});
  EXPECT_EQ(c.bytes, 110u * 100);
  EXPECT_EQ(c.keys, 110u);
  EXPECT_TRUE(c.complete);
  EXPECT_TRUE(c.split_keys.empty()) << "far below the limits";
}

TEST_F(SplitCheckerTest, ARegionOverOneAndAHalfLimitsIsCutIntoParts) {
  fill(1000, 94);  // 100,000 bytes
  // 1.5 * 40,000 = 60,000 < 100,000: parts of 40,000 bytes, the 20,000-byte tail stays.
  auto c = check(whole_, SplitLimits{40'000, 1'000'000, 64});
  ASSERT_EQ(c.split_keys.size(), 2u);
  EXPECT_EQ(c.split_keys[0], "k00400");
  EXPECT_EQ(c.split_keys[1], "k00800");
  // Just over the limit but under 1.5 times: no split.
  EXPECT_TRUE(check(whole_, SplitLimits{70'000, 1'000'000, 64}).split_keys.empty());
  // A small tail joins the part before it: 100,000 = 45,000 + 45,000 + 10,000.
  auto tail = check(whole_, SplitLimits{45'000, 1'000'000, 64});
  ASSERT_EQ(tail.split_keys.size(), 1u);
  EXPECT_EQ(tail.split_keys[0], "k00450");
  // By keys too.
  auto by_keys = check(whole_, SplitLimits{1 << 30, 300, 64});
  ASSERT_EQ(by_keys.split_keys.size(), 2u) << "the 100-key tail joins the third part";
  EXPECT_EQ(by_keys.split_keys[0], "k00300");
  EXPECT_EQ(by_keys.split_keys[1], "k00600");
}

TEST_F(SplitCheckerTest, OnlyTheRegionsRangeCountsAndCutsStayInside) {
  fill(1000, 94);
  metapb::Region r;
  r.set_start_key("k00100");
  r.set_end_key("k00300");
  auto c = check(r, SplitLimits{5'000, 1'000'000, 64});
  EXPECT_EQ(c.keys, 200u);
  ASSERT_FALSE(c.split_keys.empty());
  for (const auto& k : c.split_keys) {
    EXPECT_GT(k, r.start_key());
    EXPECT_LT(k, r.end_key());
  }
  // At most max_split_keys cuts; the walk stops there.
  auto capped = check(whole_, SplitLimits{1'000, 1'000'000, 4});
  EXPECT_EQ(capped.split_keys.size(), 4u);
  EXPECT_FALSE(capped.complete);
}

}  // namespace
}  // namespace rdb

namespace rdb {
namespace {

// Transactional versions are stored under an encoding of the user key: they count
// toward the size, and a cut among them is a user key of the region.
TEST_F(SplitCheckerTest, TransactionalVersionsCountAndAreCutAtUserKeys) {
  WriteBatch wb;
  for (int i = 0; i < 1000; ++i) {
    for (std::uint64_t ts = 1; ts <= 2; ++ts) {
      wb.put(ColumnFamily::kTxnWrite, mvcc::write_key(fmt::format("t{:05}", i), ts), std::string(80, 'v'));
    }
  }
  ASSERT_TRUE(engine_->write(wb, false).is_ok());
  metapb::Region region;
  region.set_start_key("t00100");
  region.set_end_key("t00900");
  auto c = check(region, SplitLimits{40'000, 1'000'000, 64});
  EXPECT_EQ(c.keys, 1600u) << "800 keys of two versions each";
  ASSERT_FALSE(c.split_keys.empty());
  for (const auto& k : c.split_keys) {
    EXPECT_EQ(k.size(), 6u) << "a user key, not an encoded one";
    EXPECT_GT(k, region.start_key());
    EXPECT_LT(k, region.end_key());
  }
  EXPECT_TRUE(std::is_sorted(c.split_keys.begin(), c.split_keys.end()));
}

}  // namespace
}  // namespace rdb
