// MvccReader: reads the transactional key space (locks and versions, see
// storage/mvcc_codec.h) for the Percolator commands and for snapshot reads.
//
// It reads through an MvccSource: the engine itself (reads served after a read
// point), or the engine under the writes of the batch being applied (the applier,
// so that a command sees the commands before it in the same batch).
// Thread safety: none; one reader per thread. Sources as documented.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "storage/storage_engine.h"
#include "txnpb.pb.h"

namespace rdb {

class MvccSource {
 public:
  virtual ~MvccSource() = default;
  virtual Result<std::optional<std::string>> get(ColumnFamily cf, std::string_view key) = 0;
  // Pairs in [start, end) in key order, at most `limit` (> 0).
  virtual Result<std::vector<KvPair>> scan(ColumnFamily cf, std::string_view start, std::string_view end,
                                           std::size_t limit) = 0;
};

// The engine as it is (safe from any thread, as the engine is).
class EngineSource final : public MvccSource {
 public:
  explicit EngineSource(StorageEngine& engine) : engine_(engine) {}
  Result<std::optional<std::string>> get(ColumnFamily cf, std::string_view key) override {
    return engine_.get_cf(cf, key);
  }
  Result<std::vector<KvPair>> scan(ColumnFamily cf, std::string_view start, std::string_view end,
                                   std::size_t limit) override {
    return engine_.scan_cf(cf, start, end, limit);
  }

 private:
  StorageEngine& engine_;
};

// The engine under a batch not yet written: put()/del() record what the batch will
// change. Scans merge the batch's puts in; the transactional commands never delete
// in a family they scan while applying ("txn_write"), which is what makes a merge
// of the engine's first `limit` pairs with the batch's pairs exact.
class BatchOverlaySource final : public MvccSource {
 public:
  explicit BatchOverlaySource(StorageEngine& engine) : engine_(engine) {}
  void put(ColumnFamily cf, std::string key, std::string value, WriteBatch& wb);
  void del(ColumnFamily cf, std::string key, WriteBatch& wb);
  void clear() { pending_.clear(); }
  Result<std::optional<std::string>> get(ColumnFamily cf, std::string_view key) override;
  Result<std::vector<KvPair>> scan(ColumnFamily cf, std::string_view start, std::string_view end,
                                   std::size_t limit) override;

 private:
  StorageEngine& engine_;
  std::map<std::pair<ColumnFamily, std::string>, std::optional<std::string>> pending_;
};

struct MvccVersion {
  std::uint64_t commit_ts = 0;
  txnpb::WriteRecord record;
};

// What a snapshot read of one key found.
struct MvccRead {
  std::optional<txnpb::LockInfo> locked;  // a lock at or before the read's ts: resolve it first
  bool found = false;
  std::string value;
  std::uint64_t commit_ts = 0;  // of the version found
};

// A key that exists at a scan's timestamp: its value and when that version committed.
struct MvccPair {
  std::string key;
  std::string value;
  std::uint64_t commit_ts = 0;
};

class MvccReader {
 public:
  explicit MvccReader(MvccSource& source) : source_(source) {}

  Result<std::optional<txnpb::LockRecord>> lock(const std::string& key);
  // The newest version committed at or before `max_ts`; with `data_only`, rollbacks and
  // LOCK records are skipped (what a read sees).
  Result<std::optional<MvccVersion>> newest_version(const std::string& key, std::uint64_t max_ts, bool data_only);
  // The version the transaction started at `start_ts` left on `key` (its commit or its
  // rollback), if any.
  Result<std::optional<MvccVersion>> version_of_txn(const std::string& key, std::uint64_t start_ts);

  // A read of `key` at `ts`.
  Result<MvccRead> get(const std::string& key, std::uint64_t ts);
  // A forward scan of [start, end) at `ts` ("" = to the end): keys that exist, at most
  // `limit`, stopping after `max_bytes` of keys and values (at least one pair). A lock
  // at or before `ts` in the range is reported instead (`locked`).
  struct ScanResult {
    std::optional<txnpb::LockInfo> locked;
    std::vector<MvccPair> pairs;
    bool truncated = false;  // cut at max_bytes
  };
  Result<ScanResult> scan(const std::string& start, const std::string& end, std::uint64_t ts, std::uint32_t limit,
                          bool keys_only, std::size_t max_bytes);
  // The committed puts and deletes in [start, end) with commit_ts in (from_ts, to_ts], by key
  // and then oldest first, each with the data version it replaced (with_prev). Stops after
  // the key whose changes reach `limit` or `max_bytes` (`truncated`, next_key after it). A
  // lock at or below to_ts is reported instead, as by scan().
  struct Change {
    std::string key;
    std::uint64_t commit_ts = 0;
    bool deleted = false;
    std::string value;
    std::optional<MvccPair> prev;  // the key's previous version, when it existed
  };
  struct ChangesResult {
    std::optional<txnpb::LockInfo> locked;
    std::vector<Change> changes;
    bool truncated = false;
    std::string next_key;  // with truncated
  };
  Result<ChangesResult> scan_changes(const std::string& start, const std::string& end, std::uint64_t from_ts,
                                     std::uint64_t to_ts, std::uint32_t limit, bool with_prev, std::size_t max_bytes);
  // Locks in [start, end) of transactions started at or before max_ts, at most `limit`.
  Result<std::vector<txnpb::LockInfo>> scan_locks(const std::string& start, const std::string& end,
                                                  std::uint64_t max_ts, std::uint32_t limit);
  // The first lock in [start, end) that a read at `ts` must not pass: one of a transaction
  // started at or before ts that writes its key (a LOCK-only lock commits no change).
  Result<std::optional<txnpb::LockInfo>> blocking_lock(const std::string& start, const std::string& end,
                                                       std::uint64_t ts);

  static txnpb::LockInfo lock_info(const std::string& key, const txnpb::LockRecord& lock);
  // Test-only: get() and scan() no longer look for locks (not snapshot isolation).
  void ignore_locks_for_test() { ignore_locks_ = true; }

 private:
  MvccSource& source_;
  bool ignore_locks_ = false;
};

}  // namespace rdb
