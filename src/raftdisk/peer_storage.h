// PeerStorage: the Raft core's Storage for one Raft group (a store's region peer, or PD's own group),
// persisted in the engine's "raft" column family, plus the writes that keep it.
//
// Keys (all in ColumnFamily::kRaft, region id and index 8-byte big-endian):
//   0x01 region 0x01 index  -> raftpb.Entry            (the log)
//   0x01 region 0x02        -> RaftLocalState          (hard state, last index)
//   0x01 region 0x03        -> RaftApplyState          (applied index, truncation, conf state)
//
// Writes go into a caller's WriteBatch so that a store can persist the Ready
// work of all its regions with one synced write (group commit), and so that
// the apply state is written in the same batch as the data it covers. The
// in-memory view (indexes, hard state, recent entries) is updated when a write
// is added to a batch: the caller must write that batch before serving anything
// else, and must stop the process if the write fails.
//
// Thread safety: none; one thread (the store's Raft loop) owns a PeerStorage.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/storage.h"
#include "raft_serverpb.pb.h"
#include "storage/storage_engine.h"

namespace rdb {

class PeerStorage final : public raft::Storage {
 public:
  // Hands out the region's snapshot (or snapshot_temporarily_unavailable()).
  using SnapshotDataBuilder = std::function<Result<raft::Snapshot>()>;

  // Loads the region's Raft state; a region never written starts empty (index 0).
  static Result<std::unique_ptr<PeerStorage>> open(StorageEngine& engine, std::uint64_t region_id);

  // ---- raft::Storage
  Result<raft::InitialState> initial_state() const override;
  Result<std::vector<raft::Entry>> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const override;
  Result<std::uint64_t> term(std::uint64_t i) const override;
  Result<std::uint64_t> first_index() const override;
  Result<std::uint64_t> last_index() const override;
  Result<raft::Snapshot> snapshot() const override;

  // ---- writes (into the caller's batch)
  // Appends entries, deleting any persisted suffix that conflicts with them. The entry
  // cache keeps them: pass them by move to keep them without a copy.
  void append(std::vector<raft::Entry> entries, WriteBatch& wb);
  void set_hard_state(const raft::HardState& hs, WriteBatch& wb);
  // append() and set_hard_state() of one Ready, with the local state written once (each
  // alone writes it: twice per region per round, which with many regions is felt).
  void save_ready(std::vector<raft::Entry> entries, const std::optional<raft::HardState>& hs, WriteBatch& wb);
  // Records that everything up to `index` is applied (write it with the applied data).
  void set_applied(std::uint64_t index, WriteBatch& wb);
  void set_conf_state(const raft::ConfState& cs, WriteBatch& wb);
  // Discards log entries before `index` (index <= applied).
  Status compact_to(std::uint64_t index, WriteBatch& wb);
  // Replaces the log with a snapshot's position (the caller writes the snapshot's data).
  void apply_snapshot_meta(const raft::SnapshotMetadata& meta, WriteBatch& wb);

  // A new group's log starts at this index and term, its initial configuration held as
  // a snapshot position there. A member added later (its log empty) then cannot be sent
  // entries from index 1, which would only tell it who joined since; it gets a snapshot,
  // and with it the whole configuration.
  static constexpr std::uint64_t kInitLogIndex = 5;
  static constexpr std::uint64_t kInitLogTerm = 5;
  // Starts a new group with `cs` as its configuration (at kInitLogIndex).
  void bootstrap(const raft::ConfState& cs, WriteBatch& wb);

  void set_snapshot_builder(SnapshotDataBuilder builder) { snapshot_builder_ = std::move(builder); }
  // Where a snapshot taken now stands: the applied index, its term and configuration.
  Result<raft::SnapshotMetadata> snapshot_metadata() const;
  std::uint64_t region_id() const { return region_id_; }
  std::uint64_t applied_index() const { return apply_.applied_index(); }
  std::uint64_t truncated_index() const { return apply_.truncated_index(); }
  const raft::HardState& hard_state() const { return local_.hard_state(); }
  const raft::ConfState& conf_state() const { return apply_.conf_state(); }
  // Bytes of entry data held in memory for this region (bounded by cache_limit()).
  std::size_t cached_bytes() const { return cache_bytes_; }
  // The store divides its entry cache budget among its regions: at most `bytes` (and
  // never more than kCacheBytes) stay cached here; the oldest go first.
  void set_cache_limit(std::size_t bytes);
  std::size_t cache_limit() const { return cache_limit_; }

 private:
  PeerStorage(StorageEngine& engine, std::uint64_t region_id) : engine_(engine), region_id_(region_id) {}
  void put_local_state(WriteBatch& wb);
  // append() without writing the local state; false when there was nothing to append.
  bool append_entries(std::vector<raft::Entry>& entries, WriteBatch& wb);
  void put_apply_state(WriteBatch& wb);
  Result<raft::Entry> read_entry(std::uint64_t index) const;

  StorageEngine& engine_;
  std::uint64_t region_id_;
  raft_serverpb::RaftLocalState local_;
  raft_serverpb::RaftApplyState apply_;
  std::uint64_t last_term_ = 0;
  // Recently appended entries (a suffix of the log), so followers' reads and the
  // apply path rarely touch RocksDB.
  // Bounded in entries and in bytes (of entry data): a region writing big values keeps
  // fewer; older entries are read from the engine.
  std::deque<raft::Entry> cache_;
  std::size_t cache_bytes_ = 0;
  std::size_t cache_limit_ = kCacheBytes;
  void pop_cache_front();
  void clear_cache();
  SnapshotDataBuilder snapshot_builder_;
  static constexpr std::size_t kCacheEntries = 4096;
  static constexpr std::size_t kCacheBytes = std::size_t{32} << 20;
};

}  // namespace rdb
