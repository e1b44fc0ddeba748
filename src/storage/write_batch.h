// WriteBatch: an engine-independent list of writes applied atomically by
// StorageEngine::write(). Used where several column families must change
// together — e.g. applied data plus the apply index, or Raft entries plus the
// hard state — so that a crash leaves all or none of them.
// Thread safety: a value type; build it on one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rdb {

enum class ColumnFamily : std::uint8_t {
  kRaw = 0,   // "default": the raw key space
  kCas = 1,   // versioned records
  kMeta = 2,  // process bookkeeping
  kRaft = 3,  // Raft logs and state, per region
  // The transactional key space (see storage/mvcc_codec.h):
  kTxnLock = 4,   // "txn_lock": user key -> txnpb.LockRecord
  kTxnWrite = 5,  // "txn_write": memcomparable(user key) + ~commit_ts -> txnpb.WriteRecord
};

class WriteBatch {
 public:
  enum class Op : std::uint8_t { kPut, kDelete, kDeleteRange };
  struct Write {
    Op op;
    ColumnFamily cf;
    std::string key;    // or range start
    std::string value;  // or range end
  };

  void put(ColumnFamily cf, std::string_view key, std::string_view value) {
    writes_.push_back({Op::kPut, cf, std::string(key), std::string(value)});
    bytes_ += key.size() + value.size();
  }
  void del(ColumnFamily cf, std::string_view key) {
    writes_.push_back({Op::kDelete, cf, std::string(key), {}});
    bytes_ += key.size();
  }
  // Deletes [start, end).
  void delete_range(ColumnFamily cf, std::string_view start, std::string_view end) {
    writes_.push_back({Op::kDeleteRange, cf, std::string(start), std::string(end)});
    bytes_ += start.size() + end.size();
  }
  void append(WriteBatch&& other) {
    writes_.insert(writes_.end(), std::make_move_iterator(other.writes_.begin()),
                   std::make_move_iterator(other.writes_.end()));
    bytes_ += other.bytes_;
    other.clear();
  }
  void clear() {
    writes_.clear();
    bytes_ = 0;
  }
  bool empty() const { return writes_.empty(); }
  std::size_t count() const { return writes_.size(); }
  std::size_t bytes() const { return bytes_; }
  const std::vector<Write>& writes() const { return writes_; }

 private:
  std::vector<Write> writes_;
  std::size_t bytes_ = 0;
};

}  // namespace rdb
