// LatencyHistogram: log-bucketed latency recording with bounded memory.
//
// Values (nanoseconds) fall into power-of-two ranges, each split into 32 linear
// sub-buckets, so any percentile is reported within ~3% of the true value no
// matter how many samples are recorded. Not thread-safe: each worker records
// into its own histogram and the results are merged.
#pragma once

#include <array>
#include <cstdint>

namespace rdb::bench {

class LatencyHistogram {
 public:
  void record(std::uint64_t nanos);
  void merge(const LatencyHistogram& other);
  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_); }
  // The value at quantile q in [0, 1] (upper edge of its bucket, capped at max()).
  std::uint64_t percentile(double q) const;
  void reset() { *this = LatencyHistogram(); }

 private:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits) * kSub + kSub;
  static int index_of(std::uint64_t v);
  static std::uint64_t upper_edge(int index);

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace rdb::bench
