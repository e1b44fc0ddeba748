#include "raft/raft_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace rdb::raft {

// ---- Unstable

std::optional<std::uint64_t> Unstable::maybe_first_index() const {
  if (snapshot) {
    return snapshot->metadata().index() + 1;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> Unstable::maybe_last_index() const {
  if (!entries.empty()) {
    return offset + entries.size() - 1;
  }
  if (snapshot) {
    return snapshot->metadata().index();
  }
  return std::nullopt;
}

std::optional<std::uint64_t> Unstable::maybe_term(std::uint64_t i) const {
  if (i < offset) {
    if (snapshot && snapshot->metadata().index() == i) {
      return snapshot->metadata().term();
    }
    return std::nullopt;
  }
  auto last = maybe_last_index();
  if (!last || i > *last) {
    return std::nullopt;
  }
  return entries[i - offset].term();
}

void Unstable::stable_to(std::uint64_t i, std::uint64_t t) {
  auto gt = maybe_term(i);
  // Only if the entry at i is still the one that was persisted (it may have been replaced).
  if (gt && *gt == t && i >= offset) {
    entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(i + 1 - offset));
    offset = i + 1;
  }
}

void Unstable::stable_snap_to(std::uint64_t i) {
  if (snapshot && snapshot->metadata().index() == i) {
    snapshot.reset();
  }
}

void Unstable::restore(const Snapshot& snap) {
  offset = snap.metadata().index() + 1;
  entries.clear();
  snapshot = snap;
}

void Unstable::truncate_and_append(std::vector<Entry> ents) {
  std::uint64_t after = ents.front().index();
  if (after <= offset) {
    // Replaces everything unstable (and possibly part of what storage holds).
    offset = after;
    entries = std::move(ents);
    return;
  }
  if (after != offset + entries.size()) {
    entries.resize(static_cast<std::size_t>(after - offset));  // drop the conflicting suffix
  }
  entries.insert(entries.end(), std::make_move_iterator(ents.begin()), std::make_move_iterator(ents.end()));
}

std::vector<Entry> Unstable::slice(std::uint64_t lo, std::uint64_t hi) const {
  return {entries.begin() + static_cast<std::ptrdiff_t>(lo - offset),
          entries.begin() + static_cast<std::ptrdiff_t>(hi - offset)};
}

// ---- RaftLog

Result<RaftLog> RaftLog::create(const Storage& storage, std::uint64_t max_next_ents_size) {
  RaftLog log(storage);
  log.max_next_ents_size_ = max_next_ents_size;
  RDB_ASSIGN_OR_RETURN(std::uint64_t first, storage.first_index());
  RDB_ASSIGN_OR_RETURN(std::uint64_t last, storage.last_index());
  log.unstable_.offset = last + 1;
  log.committed_ = first - 1;
  log.applied_ = first - 1;
  return log;
}

std::uint64_t RaftLog::first_index() const {
  if (auto i = unstable_.maybe_first_index()) {
    return *i;
  }
  auto r = storage_->first_index();
  if (!r.is_ok()) {
    throw std::runtime_error("raft storage first_index failed: " + r.status().to_string());
  }
  return *r;
}

std::uint64_t RaftLog::last_index() const {
  if (auto i = unstable_.maybe_last_index()) {
    return *i;
  }
  auto r = storage_->last_index();
  if (!r.is_ok()) {
    throw std::runtime_error("raft storage last_index failed: " + r.status().to_string());
  }
  return *r;
}

Result<std::uint64_t> RaftLog::term(std::uint64_t i) const {
  std::uint64_t dummy = first_index() - 1;
  if (i < dummy || i > last_index()) {
    return std::uint64_t{0};
  }
  if (auto t = unstable_.maybe_term(i)) {
    return *t;
  }
  auto t = storage_->term(i);
  if (t.is_ok() || is_compacted(t.status()) || is_unavailable(t.status())) {
    return t;
  }
  throw std::runtime_error("raft storage term failed: " + t.status().to_string());
}

std::uint64_t RaftLog::term_or_zero(std::uint64_t i) const {
  auto t = term(i);
  return t.is_ok() ? *t : 0;
}

std::uint64_t RaftLog::last_term() const {
  auto t = term(last_index());
  if (!t.is_ok()) {
    throw std::runtime_error("raft: unexpected error getting the last term: " + t.status().to_string());
  }
  return *t;
}

bool RaftLog::match_term(std::uint64_t i, std::uint64_t t) const {
  auto got = term(i);
  return got.is_ok() && *got == t;
}

std::optional<std::uint64_t> RaftLog::maybe_append(std::uint64_t index, std::uint64_t log_term, std::uint64_t committed,
                                                   std::vector<Entry> ents) {
  if (!match_term(index, log_term)) {
    return std::nullopt;
  }
  std::uint64_t last_new = index + ents.size();
  std::uint64_t ci = find_conflict(ents);
  if (ci != 0) {
    if (ci <= committed_) {
      throw std::logic_error(
          fmt::format("raft: entry {} conflicts with committed entry (committed {})", ci, committed_));
    }
    ents.erase(ents.begin(), ents.begin() + static_cast<std::ptrdiff_t>(ci - (index + 1)));
    append(std::move(ents));
  }
  commit_to(std::min(committed, last_new));
  return last_new;
}

std::uint64_t RaftLog::append(std::vector<Entry> ents) {
  if (ents.empty()) {
    return last_index();
  }
  std::uint64_t after = ents.front().index() - 1;
  if (after < committed_) {
    throw std::logic_error(fmt::format("raft: append after {} is below committed {}", after, committed_));
  }
  unstable_.truncate_and_append(std::move(ents));
  return last_index();
}

std::uint64_t RaftLog::find_conflict(const std::vector<Entry>& ents) const {
  for (const auto& e : ents) {
    if (!match_term(e.index(), e.term())) {
      return e.index();
    }
  }
  return 0;
}

std::uint64_t RaftLog::find_conflict_by_term(std::uint64_t index, std::uint64_t term) const {
  if (index > last_index()) {
    return index;
  }
  for (;;) {
    auto t = this->term(index);
    if (!t.is_ok() || *t <= term) {
      return index;
    }
    if (index == 0) {
      return 0;
    }
    --index;
  }
}

Status RaftLog::must_check_out_of_bounds(std::uint64_t lo, std::uint64_t hi) const {
  if (lo > hi) {
    throw std::logic_error(fmt::format("raft: invalid slice {} > {}", lo, hi));
  }
  std::uint64_t fi = first_index();
  if (lo < fi) {
    return compacted_error();
  }
  if (hi > last_index() + 1) {
    throw std::logic_error(fmt::format("raft: slice [{}, {}) out of bound [{}, {}]", lo, hi, fi, last_index()));
  }
  return Status::ok();
}

Result<std::vector<Entry>> RaftLog::slice(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const {
  RDB_RETURN_IF_ERROR(must_check_out_of_bounds(lo, hi));
  std::vector<Entry> out;
  if (lo == hi) {
    return out;
  }
  if (lo < unstable_.offset) {
    auto stored = storage_->entries(lo, std::min(hi, unstable_.offset), max_bytes);
    if (!stored.is_ok()) {
      if (is_compacted(stored.status())) {
        return stored.status();
      }
      throw std::runtime_error("raft storage entries failed: " + stored.status().to_string());
    }
    out = std::move(stored).value();
    // Storage returned fewer than asked (size limit): stop there.
    if (out.size() < std::min(hi, unstable_.offset) - lo) {
      return out;
    }
  }
  if (hi > unstable_.offset) {
    auto tail = unstable_.slice(std::max(lo, unstable_.offset), hi);
    out.insert(out.end(), tail.begin(), tail.end());
  }
  limit_size(out, max_bytes);
  return out;
}

Result<std::vector<Entry>> RaftLog::entries(std::uint64_t i, std::uint64_t max_bytes) const {
  if (i > last_index()) {
    return std::vector<Entry>{};
  }
  return slice(i, last_index() + 1, max_bytes);
}

std::vector<Entry> RaftLog::all_entries() const {
  auto r = entries(first_index(), kNoLimit);
  if (!r.is_ok()) {
    return {};
  }
  return std::move(r).value();
}

std::vector<Entry> RaftLog::next_committed_entries() const {
  std::uint64_t off = std::max(applied_ + 1, first_index());
  if (committed_ + 1 > off) {
    auto r = slice(off, committed_ + 1, max_next_ents_size_);
    if (!r.is_ok()) {
      throw std::runtime_error("raft: unexpected error getting unapplied entries: " + r.status().to_string());
    }
    return std::move(r).value();
  }
  return {};
}

bool RaftLog::has_next_committed_entries() const {
  return committed_ + 1 > std::max(applied_ + 1, first_index());
}

Result<Snapshot> RaftLog::snapshot() const {
  if (unstable_.snapshot) {
    return *unstable_.snapshot;
  }
  return storage_->snapshot();
}

bool RaftLog::is_up_to_date(std::uint64_t lasti, std::uint64_t t) const {
  return t > last_term() || (t == last_term() && lasti >= last_index());
}

bool RaftLog::maybe_commit(std::uint64_t max_index, std::uint64_t t) {
  if (max_index > committed_ && term_or_zero(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
}

void RaftLog::commit_to(std::uint64_t to_commit) {
  if (committed_ < to_commit) {
    if (last_index() < to_commit) {
      throw std::logic_error(fmt::format("raft: commit {} is past the last index {} (log corrupted or truncated?)",
                                         to_commit, last_index()));
    }
    committed_ = to_commit;
  }
}

void RaftLog::applied_to(std::uint64_t i) {
  if (i == 0) {
    return;
  }
  if (committed_ < i || i < applied_) {
    throw std::logic_error(
        fmt::format("raft: applied {} is out of range [prev applied {}, committed {}]", i, applied_, committed_));
  }
  applied_ = i;
}

void RaftLog::restore(const Snapshot& snap) {
  committed_ = snap.metadata().index();
  unstable_.restore(snap);
}

std::string RaftLog::describe() const {
  return fmt::format("committed={} applied={} unstable.offset={} len(unstable)={} last={}", committed_, applied_,
                     unstable_.offset, unstable_.entries.size(), last_index());
}

}  // namespace rdb::raft
