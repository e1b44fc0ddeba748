#include "key_chooser.h"

#include <algorithm>
#include <cmath>

namespace rdb::bench {

KeyChooser::KeyChooser(std::uint64_t n, double theta) : n_(std::max<std::uint64_t>(n, 1)), theta_(theta) {
  if (theta_ <= 0) {
    return;
  }
  for (std::uint64_t i = 1; i <= n_; ++i) {  // O(n) once, at start
    zetan_ += 1.0 / std::pow(static_cast<double>(i), theta_);
  }
  double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta_);
  alpha_ = 1.0 / (1.0 - theta_);
  eta_ = (1.0 - std::pow(2.0 / static_cast<double>(n_), 1.0 - theta_)) / (1.0 - zeta2 / zetan_);
  half_pow_theta_ = std::pow(0.5, theta_);
}

std::uint64_t KeyChooser::next(std::mt19937_64& rng) const {
  if (theta_ <= 0) {
    return rng() % n_;
  }
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double uz = u * zetan_;
  if (uz < 1.0) {
    return 0;
  }
  if (uz < 1.0 + half_pow_theta_) {
    return std::min<std::uint64_t>(1, n_ - 1);
  }
  auto rank = static_cast<std::uint64_t>(static_cast<double>(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  return std::min(rank, n_ - 1);
}

}  // namespace rdb::bench
