// RocksEngine: StorageEngine over one RocksDB instance.
//
// Column families: "default" (raw), "cas" (versioned records, see
// versioned_codec.h), "meta" (process bookkeeping) and "raft" (reserved for
// the Raft log and state). Families found on disk are opened too, so a newer
// layout does not stop an older binary from opening the directory.
//
// Ownership: the engine owns the RocksDB handle; destroying it flushes nothing
// extra (every acknowledged write is already in the synced WAL) and releases
// the directory lock. Thread safety: as StorageEngine.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "storage/storage_engine.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace rdb {

struct RocksEngineOptions {
  // Sync the WAL before acknowledging a write. Only tests of non-durability
  // concerns should turn this off.
  bool sync_writes = true;
  std::size_t block_cache_bytes = 64 << 20;
  std::size_t write_buffer_bytes = 32 << 20;
  // Key groups of the raft family that RocksDB inserts next to the group's previous
  // insert (a per-group hint) instead of searching its memtable from the top: returns
  // the length of the key's group prefix, or 0 for a key in no group. Empty: no hints.
  // It pays for keys written in order within a group, as a region's log is, while
  // many groups interleave. RocksDB 7.8 keeps the hints of its range-deletion table
  // in the same map, so a range deletion starting inside a group would corrupt them:
  // write() refuses one.
  std::function<std::size_t(std::string_view)> raft_insert_hint_group;
};

class RocksEngine final : public StorageEngine {
 public:
  // Opens (creating if needed) the database in `dir`. A directory locked by
  // another process returns BUSY naming the directory; an unreadable or
  // non-directory path returns IO_ERROR naming it.
  static Result<std::unique_ptr<RocksEngine>> open(const std::string& dir, const RocksEngineOptions& options = {});

  ~RocksEngine() override;
  RocksEngine(const RocksEngine&) = delete;
  RocksEngine& operator=(const RocksEngine&) = delete;

  Result<std::optional<std::string>> raw_get(std::string_view key) override;
  Status raw_put(std::string_view key, std::string_view value) override;
  Status raw_delete(std::string_view key) override;
  Result<std::vector<KvPair>> raw_scan(const ScanOptions& options) override;
  Status resume() override;
  Result<std::vector<KvPair>> raw_batch_get(const std::vector<std::string>& keys, std::size_t max_bytes = 0) override;
  Status raw_batch_put(const std::vector<KvPair>& pairs) override;
  Status raw_batch_delete(const std::vector<std::string>& keys) override;
  Status raw_delete_range(std::string_view start_key, std::string_view end_key) override;

  Result<VersionedValue> get(std::string_view key) override;
  Result<CasOutcome> compare_and_swap(std::string_view key, std::uint64_t expected_version,
                                      const std::optional<std::string>& new_value) override;

  Result<std::optional<std::string>> meta_get(std::string_view key) override;
  Status meta_put(std::string_view key, std::string_view value) override;
  Result<std::vector<KvPair>> meta_scan_prefix(std::string_view prefix) override;

  Status write(const WriteBatch& batch, bool sync) override;
  Result<std::optional<std::string>> get_cf(ColumnFamily cf, std::string_view key) override;
  Result<std::vector<KvPair>> scan_cf(ColumnFamily cf, std::string_view start, std::string_view end,
                                      std::size_t limit) override;
  std::shared_ptr<const EngineSnapshot> snapshot() override;
  Status visit_range(const EngineSnapshot& view, const std::vector<ColumnFamily>& cfs, std::string_view start,
                     std::string_view end, const RangeVisitor& visit) override;
  Result<SstInfo> export_sst(const EngineSnapshot& view, ColumnFamily cf, std::string_view start, std::string_view end,
                             const std::string& path) override;
  Status read_sst(const std::string& path, const SstVisitor& visit) override;
  Status ingest_sst(const std::vector<std::pair<ColumnFamily, std::string>>& files) override;

  // RocksDB's estimate of live keys across families (for /metrics).
  std::uint64_t estimate_num_keys() const;
  // A RocksDB integer property (e.g. "rocksdb.cur-size-all-mem-tables") summed over
  // the column families; 0 when unknown.
  std::uint64_t int_property_total(const std::string& property) const;
  const std::string& dir() const { return dir_; }

 private:
  struct Handles;
  RocksEngine(std::string dir, const RocksEngineOptions& options, std::unique_ptr<Handles> handles);
  Result<std::optional<std::string>> get_from(rocksdb::ColumnFamilyHandle* cf, std::string_view key);
  std::mutex& cas_lock_for(std::string_view key);
  rocksdb::ColumnFamilyHandle* handle(ColumnFamily cf) const;

  std::string dir_;
  RocksEngineOptions options_;
  std::unique_ptr<Handles> h_;
  // CAS is read-compare-write; striped locks make it atomic per key without
  // serialising writes to unrelated keys.
  static constexpr std::size_t kCasStripes = 1024;
  std::array<std::mutex, kCasStripes> cas_locks_;
};

}  // namespace rdb
