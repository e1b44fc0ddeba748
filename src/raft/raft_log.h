// RaftLog: a node's log — the persisted part (Storage) plus the unstable tail
// (entries and possibly a snapshot not yet handed to the application to persist).
//
// Index arithmetic: entries are 1-based; index 0 is an implicit empty entry of
// term 0. committed is the highest index known committed; applied the highest
// handed to the application. Invariant: applied <= committed <= last_index().
// Thread safety: none; owned by one Raft.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/storage.h"

namespace rdb::raft {

// The tail of the log that the application has not persisted yet.
class Unstable {
 public:
  std::optional<std::uint64_t> maybe_first_index() const;
  std::optional<std::uint64_t> maybe_last_index() const;
  std::optional<std::uint64_t> maybe_term(std::uint64_t i) const;
  void stable_to(std::uint64_t i, std::uint64_t t);
  void stable_snap_to(std::uint64_t i);
  void restore(const Snapshot& snap);
  void truncate_and_append(std::vector<Entry> ents);
  std::vector<Entry> slice(std::uint64_t lo, std::uint64_t hi) const;

  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  std::uint64_t offset = 0;  // index of entries[0]
};

class RaftLog {
 public:
  // Reads first/last index from storage; committed and applied start at first_index - 1.
  static Result<RaftLog> create(const Storage& storage, std::uint64_t max_next_ents_size);

  std::uint64_t first_index() const;
  std::uint64_t last_index() const;
  std::uint64_t last_term() const;
  // Term of index i; 0 (with OK) when i is outside [first_index - 1, last_index].
  Result<std::uint64_t> term(std::uint64_t i) const;
  // Term of i, or 0 if it is unknown for any reason (compacted, out of range).
  std::uint64_t term_or_zero(std::uint64_t i) const;
  bool match_term(std::uint64_t i, std::uint64_t t) const;

  // Appends ents after (index, log_term) if that entry matches, truncating any
  // conflicting suffix; returns the last new index, or nullopt if it did not match.
  std::optional<std::uint64_t> maybe_append(std::uint64_t index, std::uint64_t log_term, std::uint64_t committed,
                                            std::vector<Entry> ents);
  std::uint64_t append(std::vector<Entry> ents);
  // First index in ents whose term conflicts with ours or that we lack; 0 if none.
  std::uint64_t find_conflict(const std::vector<Entry>& ents) const;
  // Largest index <= `index` whose term is <= `term` (used for fast back-off).
  std::uint64_t find_conflict_by_term(std::uint64_t index, std::uint64_t term) const;

  const std::vector<Entry>& unstable_entries() const { return unstable_.entries; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_.snapshot; }
  // Committed entries not yet applied (limited by max_next_ents_size).
  std::vector<Entry> next_committed_entries() const;
  bool has_next_committed_entries() const;
  Result<Snapshot> snapshot() const;
  Result<std::vector<Entry>> entries(std::uint64_t i, std::uint64_t max_bytes) const;
  Result<std::vector<Entry>> slice(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const;
  std::vector<Entry> all_entries() const;  // for tests

  // Raft §5.4.1: is (last_index, term) at least as up to date as our log?
  bool is_up_to_date(std::uint64_t last_index, std::uint64_t term) const;
  bool maybe_commit(std::uint64_t max_index, std::uint64_t term);
  void commit_to(std::uint64_t to_commit);
  void applied_to(std::uint64_t i);
  void stable_to(std::uint64_t i, std::uint64_t t) { unstable_.stable_to(i, t); }
  void stable_snap_to(std::uint64_t i) { unstable_.stable_snap_to(i); }
  void restore(const Snapshot& snap);

  std::uint64_t committed() const { return committed_; }
  std::uint64_t applied() const { return applied_; }
  const Storage& storage() const { return *storage_; }
  std::string describe() const;

 private:
  explicit RaftLog(const Storage& storage) : storage_(&storage) {}
  Status must_check_out_of_bounds(std::uint64_t lo, std::uint64_t hi) const;

  const Storage* storage_;
  Unstable unstable_;
  std::uint64_t committed_ = 0;
  std::uint64_t applied_ = 0;
  std::uint64_t max_next_ents_size_ = kNoLimit;
};

}  // namespace rdb::raft
