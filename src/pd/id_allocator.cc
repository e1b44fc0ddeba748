#include "pd/id_allocator.h"

#include <fmt/format.h>

#include <algorithm>

namespace rdb {

Result<std::unique_ptr<IdAllocator>> IdAllocator::create(BoundStore& store, std::uint64_t step) {
  if (step == 0) {
    return Status::invalid_argument("id allocation step must be positive");
  }
  RDB_ASSIGN_OR_RETURN(std::uint64_t bound, store.load());
  std::unique_ptr<IdAllocator> ids(new IdAllocator(store, step));
  ids->next_ = std::max<std::uint64_t>(bound, 1);
  ids->bound_ = bound;
  return ids;
}

Result<std::uint64_t> IdAllocator::allocate(std::uint32_t count) {
  if (count == 0 || count > kMaxCount) {
    return Status::invalid_argument(fmt::format("id count {} is out of range (1 to {})", count, kMaxCount));
  }
  std::lock_guard lock(mu_);
  if (next_ + count > bound_) {
    std::uint64_t new_bound = next_ + count + step_;
    RDB_RETURN_IF_ERROR(store_.save(new_bound).with_context("persisting the id bound"));
    bound_ = new_bound;
  }
  std::uint64_t first = next_;
  next_ += count;
  return first;
}

}  // namespace rdb
