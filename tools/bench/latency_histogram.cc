#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace rdb::bench {

int LatencyHistogram::index_of(std::uint64_t v) {
  if (v < static_cast<std::uint64_t>(kSub)) {
    return static_cast<int>(v);  // exact for small values
  }
  int msb = 63 - std::countl_zero(v);  // >= kSubBits
  int shift = msb - kSubBits;
  int sub = static_cast<int>((v >> shift) & (kSub - 1));
  return (shift + 1) * kSub + sub;
}

std::uint64_t LatencyHistogram::upper_edge(int index) {
  if (index < kSub) {
    return static_cast<std::uint64_t>(index);
  }
  int shift = index / kSub - 1;
  std::uint64_t sub = static_cast<std::uint64_t>(index % kSub);
  std::uint64_t base = (static_cast<std::uint64_t>(kSub) + sub) << shift;
  return base + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(std::uint64_t nanos) {
  ++counts_[static_cast<std::size_t>(index_of(nanos))];
  ++count_;
  sum_ += nanos;
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) {
    return 0;
  }
  auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      return std::min(upper_edge(static_cast<int>(i)), max_);
    }
  }
  return max_;
}

}  // namespace rdb::bench
