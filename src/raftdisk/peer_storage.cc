#include "raftdisk/peer_storage.h"

#include <fmt/format.h>

#include "raftdisk/raft_keys.h"

namespace rdb {
Result<std::unique_ptr<PeerStorage>> PeerStorage::open(StorageEngine& engine, std::uint64_t region_id) {
  std::unique_ptr<PeerStorage> ps(new PeerStorage(engine, region_id));
  RDB_ASSIGN_OR_RETURN(auto local, engine.get_cf(ColumnFamily::kRaft, raft_keys::local_state_key(region_id)));
  if (local && !ps->local_.ParseFromString(*local)) {
    return ServerStatus::corruption(fmt::format("region {}: raft local state does not parse", region_id));
  }
  RDB_ASSIGN_OR_RETURN(auto apply, engine.get_cf(ColumnFamily::kRaft, raft_keys::apply_state_key(region_id)));
  if (apply && !ps->apply_.ParseFromString(*apply)) {
    return ServerStatus::corruption(fmt::format("region {}: raft apply state does not parse", region_id));
  }
  if (ps->local_.last_index() < ps->apply_.truncated_index()) {
    return ServerStatus::corruption(fmt::format("region {}: last index {} is below the truncated index {}", region_id,
                                                ps->local_.last_index(), ps->apply_.truncated_index()));
  }
  if (ps->local_.last_index() == ps->apply_.truncated_index()) {
    ps->last_term_ = ps->apply_.truncated_term();
  } else {
    RDB_ASSIGN_OR_RETURN(raft::Entry last, ps->read_entry(ps->local_.last_index()));
    ps->last_term_ = last.term();
  }
  return ps;
}

Result<raft::Entry> PeerStorage::read_entry(std::uint64_t index) const {
  RDB_ASSIGN_OR_RETURN(auto bytes, engine_.get_cf(ColumnFamily::kRaft, raft_keys::log_key(region_id_, index)));
  raft::Entry e;
  if (!bytes || !e.ParseFromString(*bytes) || e.index() != index) {
    return ServerStatus::corruption(
        fmt::format("region {}: raft log entry {} is missing or corrupt", region_id_, index));
  }
  return e;
}

Result<raft::InitialState> PeerStorage::initial_state() const {
  return raft::InitialState{local_.hard_state(), apply_.conf_state()};
}

Result<std::uint64_t> PeerStorage::first_index() const {
  return apply_.truncated_index() + 1;
}
Result<std::uint64_t> PeerStorage::last_index() const {
  return local_.last_index();
}

Result<std::uint64_t> PeerStorage::term(std::uint64_t i) const {
  if (i == apply_.truncated_index()) {
    return apply_.truncated_term();
  }
  if (i < apply_.truncated_index()) {
    return raft::compacted_error();
  }
  if (i > local_.last_index()) {
    return raft::unavailable_error();
  }
  if (i == local_.last_index()) {
    return last_term_;
  }
  if (!cache_.empty() && i >= cache_.front().index()) {
    return cache_[i - cache_.front().index()].term();
  }
  RDB_ASSIGN_OR_RETURN(raft::Entry e, read_entry(i));
  return e.term();
}

Result<std::vector<raft::Entry>> PeerStorage::entries(std::uint64_t lo, std::uint64_t hi,
                                                      std::uint64_t max_bytes) const {
  if (lo <= apply_.truncated_index()) {
    return raft::compacted_error();
  }
  if (hi > local_.last_index() + 1) {
    return Status::internal(
        fmt::format("region {}: entries [{}, {}) past the last index {}", region_id_, lo, hi, local_.last_index()));
  }
  std::vector<raft::Entry> out;
  if (lo >= hi) {
    return out;
  }
  if (!cache_.empty() && lo >= cache_.front().index()) {
    std::size_t from = lo - cache_.front().index();
    std::size_t to = hi - cache_.front().index();
    out.assign(cache_.begin() + static_cast<std::ptrdiff_t>(from), cache_.begin() + static_cast<std::ptrdiff_t>(to));
  } else {
    RDB_ASSIGN_OR_RETURN(auto pairs, engine_.scan_cf(ColumnFamily::kRaft, raft_keys::log_key(region_id_, lo),
                                                     raft_keys::log_key(region_id_, hi), 0));
    if (pairs.size() != hi - lo) {
      return ServerStatus::corruption(
          fmt::format("region {}: raft log [{}, {}) has {} entries", region_id_, lo, hi, pairs.size()));
    }
    out.resize(pairs.size());
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (!out[i].ParseFromString(pairs[i].value)) {
        return ServerStatus::corruption(fmt::format("region {}: raft log entry {} is corrupt", region_id_, lo + i));
      }
    }
  }
  raft::limit_size(out, max_bytes);
  return out;
}

Result<raft::Snapshot> PeerStorage::snapshot() const {
  if (!snapshot_builder_) {
    return raft::snapshot_temporarily_unavailable();
  }
  return snapshot_builder_();
}

Result<raft::SnapshotMetadata> PeerStorage::snapshot_metadata() const {
  raft::SnapshotMetadata meta;
  meta.set_index(apply_.applied_index());
  RDB_ASSIGN_OR_RETURN(std::uint64_t t, term(apply_.applied_index()));
  meta.set_term(t);
  *meta.mutable_conf_state() = apply_.conf_state();
  return meta;
}

void PeerStorage::put_local_state(WriteBatch& wb) {
  wb.put(ColumnFamily::kRaft, raft_keys::local_state_key(region_id_), local_.SerializeAsString());
}

void PeerStorage::put_apply_state(WriteBatch& wb) {
  wb.put(ColumnFamily::kRaft, raft_keys::apply_state_key(region_id_), apply_.SerializeAsString());
}

void PeerStorage::append(std::vector<raft::Entry> ents, WriteBatch& wb) {
  if (append_entries(ents, wb)) {
    put_local_state(wb);
  }
}

void PeerStorage::save_ready(std::vector<raft::Entry> entries, const std::optional<raft::HardState>& hs,
                             WriteBatch& wb) {
  bool appended = append_entries(entries, wb);
  if (hs) {
    *local_.mutable_hard_state() = *hs;
  }
  if (appended || hs) {
    put_local_state(wb);
  }
}

bool PeerStorage::append_entries(std::vector<raft::Entry>& ents, WriteBatch& wb) {
  if (ents.empty()) {
    return false;
  }
  std::uint64_t first = ents.front().index();
  std::uint64_t new_last = ents.back().index();
  std::uint64_t old_last = local_.last_index();
  // Entries past the new end were written by an older leader: they conflict, delete them.
  if (old_last > new_last) {
    wb.delete_range(ColumnFamily::kRaft, raft_keys::log_range_start(region_id_, new_last + 1),
                    raft_keys::log_key(region_id_, old_last + 1));
  }
  for (const auto& e : ents) {
    wb.put(ColumnFamily::kRaft, raft_keys::log_key(region_id_, e.index()), e.SerializeAsString());
  }
  while (!cache_.empty() && cache_.back().index() >= first) {
    cache_bytes_ -= cache_.back().data().size();
    cache_.pop_back();
  }
  if (!cache_.empty() && cache_.back().index() + 1 != first) {
    clear_cache();
  }
  const std::uint64_t last_term = ents.back().term();
  for (auto& e : ents) {
    cache_bytes_ += e.data().size();
    cache_.push_back(std::move(e));
  }
  while (!cache_.empty() && (cache_.size() > kCacheEntries || cache_bytes_ > cache_limit_)) {
    pop_cache_front();
  }
  local_.set_last_index(new_last);
  last_term_ = last_term;
  return true;
}

void PeerStorage::set_cache_limit(std::size_t bytes) {
  cache_limit_ = std::min(bytes, kCacheBytes);
  while (!cache_.empty() && cache_bytes_ > cache_limit_) {
    pop_cache_front();
  }
}

void PeerStorage::pop_cache_front() {
  cache_bytes_ -= cache_.front().data().size();
  cache_.pop_front();
}

void PeerStorage::clear_cache() {
  cache_.clear();
  cache_bytes_ = 0;
}

void PeerStorage::set_hard_state(const raft::HardState& hs, WriteBatch& wb) {
  *local_.mutable_hard_state() = hs;
  put_local_state(wb);
}

void PeerStorage::set_applied(std::uint64_t index, WriteBatch& wb) {
  apply_.set_applied_index(index);
  put_apply_state(wb);
}

void PeerStorage::set_conf_state(const raft::ConfState& cs, WriteBatch& wb) {
  *apply_.mutable_conf_state() = cs;
  put_apply_state(wb);
}

Status PeerStorage::compact_to(std::uint64_t index, WriteBatch& wb) {
  if (index <= apply_.truncated_index()) {
    return raft::compacted_error();
  }
  if (index > apply_.applied_index()) {
    return Status::invalid_argument(fmt::format("region {}: cannot compact to {} past the applied index {}", region_id_,
                                                index, apply_.applied_index()));
  }
  RDB_ASSIGN_OR_RETURN(std::uint64_t t, term(index));
  wb.delete_range(ColumnFamily::kRaft, raft_keys::log_range_start(region_id_, apply_.truncated_index() + 1),
                  raft_keys::log_key(region_id_, index + 1));
  apply_.set_truncated_index(index);
  apply_.set_truncated_term(t);
  while (!cache_.empty() && cache_.front().index() <= index) {
    pop_cache_front();
  }
  put_apply_state(wb);
  return Status::ok();
}

void PeerStorage::apply_snapshot_meta(const raft::SnapshotMetadata& meta, WriteBatch& wb) {
  if (local_.last_index() > apply_.truncated_index()) {
    wb.delete_range(ColumnFamily::kRaft, raft_keys::log_range_start(region_id_, apply_.truncated_index() + 1),
                    raft_keys::log_key(region_id_, local_.last_index() + 1));
  }
  clear_cache();
  apply_.set_truncated_index(meta.index());
  apply_.set_truncated_term(meta.term());
  apply_.set_applied_index(meta.index());
  *apply_.mutable_conf_state() = meta.conf_state();
  local_.set_last_index(meta.index());
  last_term_ = meta.term();
  if (local_.hard_state().commit() < meta.index()) {
    local_.mutable_hard_state()->set_commit(meta.index());
  }
  put_local_state(wb);
  put_apply_state(wb);
}

void PeerStorage::bootstrap(const raft::ConfState& cs, WriteBatch& wb) {
  raft::SnapshotMetadata meta;
  meta.set_index(kInitLogIndex);
  meta.set_term(kInitLogTerm);
  *meta.mutable_conf_state() = cs;
  apply_snapshot_meta(meta, wb);
  raft::HardState hs;
  hs.set_term(kInitLogTerm);
  hs.set_commit(kInitLogIndex);
  set_hard_state(hs, wb);
}

}  // namespace rdb
