#include "latency_histogram.h"

#include <gtest/gtest.h>

#include <random>

namespace rdb::bench {
namespace {

TEST(LatencyHistogramTest, PercentilesWithinThreePercent) {
  LatencyHistogram h;
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t v = 1000 + rng() % 10'000'000;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    auto exact = static_cast<double>(values[static_cast<std::size_t>(q * values.size()) - 1]);
    auto got = static_cast<double>(h.percentile(q));
    EXPECT_NEAR(got, exact, exact * 0.035) << "q=" << q;
  }
  EXPECT_EQ(h.percentile(1.0), values.back());
  EXPECT_EQ(h.count(), 100000u);
}

TEST(LatencyHistogramTest, SmallValuesExactAndMerge) {
  LatencyHistogram a, b;
  for (std::uint64_t v = 0; v < 10; ++v) {
    a.record(v);
  }
  b.record(1'000'000);
  a.merge(b);
  EXPECT_EQ(a.count(), 11u);
  EXPECT_EQ(a.percentile(0.5), 5u);
  EXPECT_EQ(a.max(), 1'000'000u);
  EXPECT_EQ(LatencyHistogram().percentile(0.5), 0u);
}

}  // namespace
}  // namespace rdb::bench
