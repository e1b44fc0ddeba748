// Which key a benchmark operation touches: uniform over [0, n), or zipfian with
// skew theta (YCSB's generator after Gray et al., "Quickly generating
// billion-record synthetic databases": rank 0 is the hottest key).
// Thread safety: const after construction; next() uses the caller's generator.
#pragma once

#include <cstdint>
#include <random>

namespace rdb::bench {

class KeyChooser {
 public:
  static KeyChooser uniform(std::uint64_t n) { return KeyChooser(n, 0); }
  static KeyChooser zipfian(std::uint64_t n, double theta = 0.99) { return KeyChooser(n, theta); }
  std::uint64_t next(std::mt19937_64& rng) const;
  std::uint64_t size() const { return n_; }

 private:
  KeyChooser(std::uint64_t n, double theta);
  std::uint64_t n_;
  double theta_;
  double zetan_ = 0;
  double alpha_ = 0;
  double eta_ = 0;
  double half_pow_theta_ = 0;
};

}  // namespace rdb::bench
