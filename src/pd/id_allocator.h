// IdAllocator: unique, increasing 64-bit ids (store, region and peer ids) that are
// never reused, across restarts too.
//
// Ids are reserved from a durable bound in steps; after a restart allocation
// resumes at the saved bound, skipping ids reserved but not handed out.
// Thread safety: allocate() may be called from any thread (internally locked).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "pd/bound_store.h"

namespace rdb {

class IdAllocator {
 public:
  static constexpr std::uint32_t kMaxCount = 10000;

  static Result<std::unique_ptr<IdAllocator>> create(BoundStore& store, std::uint64_t step = 1000);

  // Reserves `count` consecutive ids (1 <= count <= kMaxCount) and returns the first (ids start at 1).
  Result<std::uint64_t> allocate(std::uint32_t count = 1);
  // Whether `id` may have been handed out by this allocator (now or before a restart).
  bool handed_out(std::uint64_t id) {
    std::lock_guard lock(mu_);
    return id >= 1 && id < next_;
  }

 private:
  IdAllocator(BoundStore& store, std::uint64_t step) : store_(store), step_(step) {}

  BoundStore& store_;
  std::uint64_t step_;
  std::mutex mu_;
  std::uint64_t next_ = 1;
  std::uint64_t bound_ = 0;  // every handed-out id is < this
};

}  // namespace rdb
