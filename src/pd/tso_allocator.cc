#include "pd/tso_allocator.h"

#include <fmt/format.h>

#include <algorithm>

namespace rdb {

Result<std::unique_ptr<TsoAllocator>> TsoAllocator::create(Clock& clock, BoundStore& store, Options options) {
  if (options.save_window_ms < 2) {
    return Status::invalid_argument("TSO save window must be at least 2 ms");
  }
  RDB_ASSIGN_OR_RETURN(std::uint64_t bound, store.load());
  std::unique_ptr<TsoAllocator> tso(new TsoAllocator(clock, store, options));
  std::lock_guard lock(tso->mu_);
  // Everything handed out before had physical < bound, so starting at the bound is above it.
  tso->physical_ = std::max(clock.now_ms(), bound);
  tso->logical_ = 0;
  tso->saved_bound_ = bound;
  RDB_RETURN_IF_ERROR(tso->ensure_bound_locked());
  return tso;
}

Status TsoAllocator::ensure_bound_locked() {
  // Save early (half a window ahead) so that steady traffic rarely waits for an fsync.
  if (physical_ + options_.save_window_ms / 2 < saved_bound_) {
    return Status::ok();
  }
  std::uint64_t next = physical_ + options_.save_window_ms;
  RDB_RETURN_IF_ERROR(store_.save(next).with_context("persisting the TSO bound"));
  saved_bound_ = next;
  return Status::ok();
}

Result<std::uint64_t> TsoAllocator::allocate(std::uint32_t count) {
  if (count == 0 || count > kMaxCount) {
    return Status::invalid_argument(fmt::format("TSO count {} is out of range (1 to {})", count, kMaxCount));
  }
  std::lock_guard lock(mu_);
  std::uint64_t now = clock_.now_ms();
  if (now > physical_) {
    physical_ = now;
    logical_ = 0;
  }
  if (logical_ + count > kLogicalLimit) {
    // This millisecond is used up: move to the next one even if the clock has not.
    physical_ += 1;
    logical_ = 0;
  }
  RDB_RETURN_IF_ERROR(ensure_bound_locked());
  std::uint64_t first = compose(physical_, logical_);
  logical_ += count;
  return first;
}

std::uint64_t TsoAllocator::saved_bound_ms() const {
  std::lock_guard lock(mu_);
  return saved_bound_;
}

}  // namespace rdb
