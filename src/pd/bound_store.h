// BoundStore: a durable single uint64 (an upper bound that must survive restarts).
//
// The TSO and id allocators persist a bound ahead of what they hand out; save()
// returns only after the value is durable (fsync'd), so after a crash the
// allocator can resume above it. Thread safety: implementations are called
// under the owning allocator's lock; they need not be thread-safe themselves.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "storage/storage_engine.h"

namespace rdb {

class BoundStore {
 public:
  virtual ~BoundStore() = default;
  // 0 when nothing was ever saved.
  virtual Result<std::uint64_t> load() = 0;
  virtual Status save(std::uint64_t bound) = 0;
};

// Keeps the bound under one key of the engine's meta space (synced writes).
class MetaBoundStore final : public BoundStore {
 public:
  MetaBoundStore(StorageEngine& engine, std::string key) : engine_(engine), key_(std::move(key)) {}
  Result<std::uint64_t> load() override;
  Status save(std::uint64_t bound) override;

 private:
  StorageEngine& engine_;
  std::string key_;
};

}  // namespace rdb
