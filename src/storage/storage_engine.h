// StorageEngine: the local key-value store under one rdb-server (or rdb-pd).
//
// Two key spaces live side by side:
//  - raw (column family "default"): plain put/get/delete/scan, last writer wins;
//  - versioned (column family "cas"): each key holds (value, version), written
//    only through compare_and_swap. A key's version strictly increases over its
//    whole life, across delete and re-create: a delete leaves a tombstone that
//    keeps the version, so a stale expected_version can never match again (no ABA).
// plus a small "meta" space for the process's own bookkeeping (ids, bounds).
//
// Contract for every call: input is validated first (see common/limits.h); an
// invalid call returns INVALID_ARGUMENT naming the limit and writes nothing. A
// write that returns OK is durable (the WAL is synced before the call returns;
// concurrent writers share one sync). A missing key is a result, not an error.
//
// Thread safety: all methods may be called concurrently from any thread.
// compare_and_swap is atomic with respect to every other write of the same key.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "storage/write_batch.h"

namespace rdb {

struct KvPair {
  std::string key;
  std::string value;
  bool operator==(const KvPair&) const = default;
};

struct ScanOptions {
  std::string start_key;    // inclusive
  std::string end_key;      // exclusive; empty = to the end of the key space
  std::uint32_t limit = 0;  // 1..kMaxScanLimit
  bool reverse = false;     // same range, descending key order
  bool keys_only = false;   // values are left empty
  // 0 = unbounded; else stop after the pair that brings keys + values to this many
  // bytes (at least one pair is returned), so a response stays bounded.
  std::size_t max_bytes = 0;
};

struct VersionedValue {
  bool found = false;
  std::string value;
  std::uint64_t version = 0;  // 0 when not found
};

struct CasOutcome {
  bool succeeded = false;
  // On success: the key's new version. On conflict: its current version (0 if absent).
  std::uint64_t version = 0;
  // On conflict: what the key holds now.
  bool current_found = false;
  std::string current_value;
};

// A consistent, read-only view of the engine at one moment (see snapshot()).
// Opaque; it pins what it sees until destroyed, which must happen before the
// engine is destroyed. Safe to use from any thread.
class EngineSnapshot {
 public:
  virtual ~EngineSnapshot() = default;
};

// What export_sst() wrote.
struct SstInfo {
  std::uint64_t keys = 0;
  std::uint64_t bytes = 0;  // the file's size; 0 (and no file) when the range was empty
};

// Called for each pair read from a table file; an error stops the read and is returned.
using SstVisitor = std::function<Status(std::string_view key, std::string_view value)>;
// Called for each pair of a range walk, in key order across the families walked
// (a key held by two families comes once from each); returns false to stop early.
using RangeVisitor = std::function<bool(ColumnFamily cf, std::string_view key, std::string_view value)>;

class StorageEngine {
 public:
  virtual ~StorageEngine() = default;

  // ---- raw key space
  virtual Result<std::optional<std::string>> raw_get(std::string_view key) = 0;
  virtual Status raw_put(std::string_view key, std::string_view value) = 0;
  virtual Status raw_delete(std::string_view key) = 0;
  virtual Result<std::vector<KvPair>> raw_scan(const ScanOptions& options) = 0;
  // Returns the pairs that exist, in the order of `keys`.
  // With `max_bytes` > 0, INVALID_ARGUMENT (naming the bound) when the pairs found
  // exceed it; values are read in small groups, so memory stays near the bound.
  virtual Result<std::vector<KvPair>> raw_batch_get(const std::vector<std::string>& keys,
                                                    std::size_t max_bytes = 0) = 0;
  // Atomic: every pair is written, or none.
  virtual Status raw_batch_put(const std::vector<KvPair>& pairs) = 0;
  virtual Status raw_batch_delete(const std::vector<std::string>& keys) = 0;
  // Deletes [start_key, end_key); both bounds required, start < end.
  virtual Status raw_delete_range(std::string_view start_key, std::string_view end_key) = 0;

  // ---- versioned key space
  virtual Result<VersionedValue> get(std::string_view key) = 0;
  // Applies new_value (or deletes the key when new_value is nullopt) iff the
  // key's current version equals expected_version (0 = must not exist).
  virtual Result<CasOutcome> compare_and_swap(std::string_view key, std::uint64_t expected_version,
                                              const std::optional<std::string>& new_value) = 0;

  // ---- process bookkeeping (not visible to clients)
  virtual Result<std::optional<std::string>> meta_get(std::string_view key) = 0;
  virtual Status meta_put(std::string_view key, std::string_view value) = 0;
  // Every meta pair whose key starts with `prefix`, in key order.
  virtual Result<std::vector<KvPair>> meta_scan_prefix(std::string_view prefix) = 0;

  // ---- low-level access for the replication layer (no limit checks: callers own the keys)
  // Applies every write of the batch atomically; durable on return when `sync`.
  virtual Status write(const WriteBatch& batch, bool sync) = 0;
  // After a failed write (e.g. no space left): tries to make the engine writable again.
  virtual Status resume() { return Status::ok(); }
  virtual Result<std::optional<std::string>> get_cf(ColumnFamily cf, std::string_view key) = 0;
  // Pairs in [start, end) of one column family, at most `limit` (0 = no limit), in key order.
  virtual Result<std::vector<KvPair>> scan_cf(ColumnFamily cf, std::string_view start, std::string_view end,
                                              std::size_t limit) = 0;

  // ---- table files, for region snapshots that never sit whole in memory
  // A view of everything written so far; later writes are not seen through it.
  virtual std::shared_ptr<const EngineSnapshot> snapshot() = 0;
  // Streams the pairs of [start, end) in `cf`, as `view` sees them, into a new table
  // file at `path` (synced). Writes no file when the range is empty.
  virtual Result<SstInfo> export_sst(const EngineSnapshot& view, ColumnFamily cf, std::string_view start,
                                     std::string_view end, const std::string& path) = 0;
  // Walks [start, end) (end "" = unbounded) of the families `cfs` together, in key
  // order, as `view` sees them, without holding the pairs in memory.
  virtual Status visit_range(const EngineSnapshot& view, const std::vector<ColumnFamily>& cfs, std::string_view start,
                             std::string_view end, const RangeVisitor& visit) = 0;
  // Reads a table file that came from elsewhere, without trusting it: block checksums
  // are verified and range deletions refused (CORRUPTION / INVALID_ARGUMENT), then
  // `visit` sees every pair in key order. Memory stays bounded whatever the file's size.
  virtual Status read_sst(const std::string& path, const SstVisitor& visit) = 0;
  // Adds the files' pairs to their families in one atomic step, above every older
  // write of the same keys. The files stay where they are (the engine links them).
  virtual Status ingest_sst(const std::vector<std::pair<ColumnFamily, std::string>>& files) = 0;
};

}  // namespace rdb
