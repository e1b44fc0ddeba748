// Clock: milliseconds behind an interface, so time-dependent logic (TSO, the
// store's Raft ticks) can be tested with a clock that stands still, goes
// backwards or is stepped by hand.
// Thread safety: implementations must be callable from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace rdb {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::uint64_t now_ms() = 0;  // milliseconds (since the Unix epoch for SystemClock)
};

class SystemClock final : public Clock {
 public:
  std::uint64_t now_ms() override {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
  }
};

// Monotonic milliseconds (since an arbitrary start): for intervals and timers,
// which must not jump when the wall clock is set.
class SteadyClock final : public Clock {
 public:
  std::uint64_t now_ms() override {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
  }
};

// A clock tests move by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::uint64_t start_ms) : now_(start_ms) {}
  std::uint64_t now_ms() override { return now_.load(); }
  void set(std::uint64_t ms) { now_.store(ms); }
  void advance(std::uint64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<std::uint64_t> now_;
};

}  // namespace rdb
