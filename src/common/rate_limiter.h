// RateLimiter: paces a byte stream (e.g. snapshots leaving a store) to a rate.
//
// acquire(n) returns once n more bytes may go: the first call goes at once, the
// next ones are spaced so that the long-run rate stays at bytes_per_sec. A rate
// of 0 means unlimited. stop() wakes every waiter (acquire returns false), so a
// slow rate never holds up a shutdown.
// Thread safety: all methods may be called from any thread; waiters share the rate.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace rdb {

class RateLimiter {
 public:
  explicit RateLimiter(std::uint64_t bytes_per_sec = 0) : rate_(bytes_per_sec) {}

  // False when stopped before the bytes could go.
  bool acquire(std::uint64_t bytes) {
    std::unique_lock lock(mu_);
    if (stopped_) {
      return false;
    }
    if (rate_ == 0) {
      return true;
    }
    auto now = std::chrono::steady_clock::now();
    if (next_ < now) {
      next_ = now;
    }
    auto go_at = next_;
    next_ += std::chrono::nanoseconds(
        static_cast<std::int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(rate_)));
    cv_.wait_until(lock, go_at, [this] { return stopped_; });
    return !stopped_;
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

  std::uint64_t bytes_per_sec() const { return rate_; }

 private:
  const std::uint64_t rate_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point next_{};
  bool stopped_ = false;
};

}  // namespace rdb
