// Storage: the Raft core's read-only view of what the application has persisted.
//
// The core never writes through this interface. The application persists the
// entries, hard state and snapshot handed out by Ready, and makes them visible
// here before calling RawNode::advance(). Storage errors are values:
//   compacted_error()   — the index is below first_index(): the entries are gone
//                         (the leader then sends a snapshot instead);
//   unavailable_error() — the index is above last_index();
//   snapshot_temporarily_unavailable() — no snapshot yet; the core retries later.
// Any other error is treated as fatal by the caller of the core.
//
// MemoryStorage is an in-memory implementation for tests and simulations.
// Thread safety: the core calls Storage from the thread that drives it;
// MemoryStorage is not internally synchronised.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "raftpb.pb.h"

namespace rdb::raft {

using raftpb::ConfState;
using raftpb::Entry;
using raftpb::HardState;
using raftpb::Snapshot;
using raftpb::SnapshotMetadata;

Status compacted_error();
Status unavailable_error();
Status snapshot_temporarily_unavailable();
bool is_compacted(const Status& s);
bool is_unavailable(const Status& s);
bool is_snapshot_temporarily_unavailable(const Status& s);

// No limit on the size of entries returned.
inline constexpr std::uint64_t kNoLimit = UINT64_MAX;

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

class Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<InitialState> initial_state() const = 0;
  // Entries [lo, hi), at least one if any exist in range, then up to max_bytes in total.
  virtual Result<std::vector<Entry>> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const = 0;
  // Term of the entry at index i; i may be first_index()-1 (the snapshot's term).
  virtual Result<std::uint64_t> term(std::uint64_t i) const = 0;
  virtual Result<std::uint64_t> first_index() const = 0;
  virtual Result<std::uint64_t> last_index() const = 0;
  virtual Result<Snapshot> snapshot() const = 0;
};

// Adds entries to `out` while the total size stays within max_bytes (at least one entry).
void limit_size(std::vector<Entry>& entries, std::uint64_t max_bytes);

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  Result<InitialState> initial_state() const override;
  Result<std::vector<Entry>> entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const override;
  Result<std::uint64_t> term(std::uint64_t i) const override;
  Result<std::uint64_t> first_index() const override;
  Result<std::uint64_t> last_index() const override;
  Result<Snapshot> snapshot() const override;

  void set_hard_state(const HardState& hs) { hard_state_ = hs; }
  const HardState& hard_state() const { return hard_state_; }
  // The configuration to restart with (the application persists it when it applies a
  // conf change). Snapshots carry their own configuration, fixed when they are made.
  void set_conf_state(const ConfState& cs) { conf_state_ = cs; }
  const ConfState& conf_state() const { return conf_state_; }
  // Replaces everything with the snapshot (ignored, returning an error, if older than ours).
  Status apply_snapshot(const Snapshot& snap);
  // Makes a snapshot at index i (<= last applied, which the caller knows) with the given data.
  Result<Snapshot> create_snapshot(std::uint64_t i, const ConfState* cs, const std::string& data);
  // Discards entries before index i.
  Status compact(std::uint64_t i);
  // Appends entries, truncating any conflicting suffix. Pass them by move to keep them
  // without a copy.
  Status append(std::vector<Entry> entries);

 private:
  std::uint64_t first() const { return ents_.front().index() + 1; }
  std::uint64_t last() const { return ents_.front().index() + ents_.size() - 1; }

  HardState hard_state_;
  ConfState conf_state_;
  Snapshot snapshot_;
  // ents_[0] is a dummy holding the index and term of the last compacted entry.
  std::vector<Entry> ents_;
};

}  // namespace rdb::raft
