#include "key_chooser.h"

#include <gtest/gtest.h>

#include <vector>

namespace rdb::bench {
namespace {

std::vector<std::uint64_t> histogram(const KeyChooser& c, int draws, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> counts(c.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::uint64_t k = c.next(rng);
    EXPECT_LT(k, c.size());
    ++counts[k];
  }
  return counts;
}

TEST(KeyChooserTest, UniformCoversEveryKeyEvenly) {
  auto counts = histogram(KeyChooser::uniform(100), 100000, 1);
  for (auto n : counts) {
    EXPECT_GT(n, 700u);  // expected 1,000 each
    EXPECT_LT(n, 1300u);
  }
}

TEST(KeyChooserTest, ZipfianIsSkewedTowardsLowRanks) {
  auto counts = histogram(KeyChooser::zipfian(1000, 0.99), 200000, 2);
  // With theta 0.99 over 1,000 keys, rank 0 draws ~13% and the top 10 ranks ~39%.
  std::uint64_t top10 = 0;
  for (int i = 0; i < 10; ++i) {
    top10 += counts[static_cast<std::size_t>(i)];
  }
  EXPECT_GT(counts[0], 20000u);
  EXPECT_LT(counts[0], 32000u);
  EXPECT_GT(top10, 60000u);
  EXPECT_GT(counts[0], counts[1]);
  EXPECT_GT(counts[1], counts[10]);
  EXPECT_GT(counts[10], counts[500]);
}

TEST(KeyChooserTest, SingleKeyAlwaysZero) {
  std::mt19937_64 rng(3);
  auto c = KeyChooser::zipfian(1);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(c.next(rng), 0u);
  }
}

}  // namespace
}  // namespace rdb::bench
