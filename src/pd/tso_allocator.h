// TsoAllocator: the timestamp oracle. Hands out 64-bit timestamps
// `physical_ms << 18 | logical` that strictly increase across every call,
// across restarts, and across a wall clock that goes backwards.
//
// How: the allocator keeps (physical, logical). A call moves physical up to the
// wall clock when the clock is ahead; otherwise (clock stalled or went back) it
// keeps counting logical. When logical would overflow 2^18, physical advances by
// one millisecond (running ahead of the clock if need be) — never repeating.
// Before any timestamp with physical >= the persisted bound is handed out, a new
// bound `physical + save_window` is saved durably. After a restart, physical
// starts at max(wall clock, saved bound): above everything handed out before.
//
// Thread safety: allocate() may be called from any thread (internally locked).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "common/clock.h"
#include "pd/bound_store.h"

namespace rdb {

class TsoAllocator {
 public:
  static constexpr int kLogicalBits = 18;
  static constexpr std::uint64_t kLogicalLimit = std::uint64_t{1} << kLogicalBits;  // logical < this
  static constexpr std::uint32_t kMaxCount = 1 << 16;  // most timestamps one call may ask for

  struct Options {
    std::uint64_t save_window_ms = 3000;  // how far ahead of physical the persisted bound runs
  };

  // Loads the bound and persists a fresh one before returning.
  static Result<std::unique_ptr<TsoAllocator>> create(Clock& clock, BoundStore& store, Options options);
  static Result<std::unique_ptr<TsoAllocator>> create(Clock& clock, BoundStore& store) {
    return create(clock, store, Options{});
  }

  // Reserves `count` consecutive timestamps (1 <= count <= kMaxCount) and returns the
  // first. Fails (handing out nothing) if the bound cannot be persisted.
  Result<std::uint64_t> allocate(std::uint32_t count);

  static std::uint64_t physical_of(std::uint64_t ts) { return ts >> kLogicalBits; }
  static std::uint64_t logical_of(std::uint64_t ts) { return ts & (kLogicalLimit - 1); }
  static std::uint64_t compose(std::uint64_t physical, std::uint64_t logical) {
    return (physical << kLogicalBits) | logical;
  }

  std::uint64_t saved_bound_ms() const;

 private:
  TsoAllocator(Clock& clock, BoundStore& store, Options options) : clock_(clock), store_(store), options_(options) {}
  Status ensure_bound_locked();

  Clock& clock_;
  BoundStore& store_;
  Options options_;
  mutable std::mutex mu_;
  std::uint64_t physical_ = 0;
  std::uint64_t logical_ = 0;
  std::uint64_t saved_bound_ = 0;  // every handed-out physical is < this
};

}  // namespace rdb
