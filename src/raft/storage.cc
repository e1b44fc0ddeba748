#include "raft/storage.h"

#include <fmt/format.h>

namespace rdb::raft {

Status compacted_error() {
  return ServerStatus::not_found("requested index is unavailable due to compaction");
}
Status unavailable_error() {
  return Status::unavailable("requested entry at index is unavailable");
}
Status snapshot_temporarily_unavailable() {
  return ServerStatus::busy("snapshot is temporarily unavailable");
}
bool is_compacted(const Status& s) {
  return s.code() == ServerCode::kNotFound;
}
bool is_unavailable(const Status& s) {
  return s.code() == StatusCode::kUnavailable;
}
bool is_snapshot_temporarily_unavailable(const Status& s) {
  return s.code() == ServerCode::kBusy;
}

void limit_size(std::vector<Entry>& entries, std::uint64_t max_bytes) {
  if (entries.empty() || max_bytes == kNoLimit) {
    return;
  }
  std::uint64_t size = entries[0].ByteSizeLong();
  std::size_t n = 1;
  for (; n < entries.size(); ++n) {
    size += entries[n].ByteSizeLong();
    if (size > max_bytes) {
      break;
    }
  }
  entries.resize(n);
}

MemoryStorage::MemoryStorage() {
  ents_.emplace_back();
}

Result<InitialState> MemoryStorage::initial_state() const {
  return InitialState{hard_state_, conf_state_};
}

Result<std::vector<Entry>> MemoryStorage::entries(std::uint64_t lo, std::uint64_t hi, std::uint64_t max_bytes) const {
  std::uint64_t offset = ents_.front().index();
  if (lo <= offset) {
    return compacted_error();
  }
  if (hi > last() + 1) {
    return Status::internal(fmt::format("entries hi {} is out of bound, last index {}", hi, last()));
  }
  if (ents_.size() == 1) {
    return unavailable_error();  // only the dummy entry
  }
  std::vector<Entry> out(ents_.begin() + static_cast<std::ptrdiff_t>(lo - offset),
                         ents_.begin() + static_cast<std::ptrdiff_t>(hi - offset));
  limit_size(out, max_bytes);
  return out;
}

Result<std::uint64_t> MemoryStorage::term(std::uint64_t i) const {
  std::uint64_t offset = ents_.front().index();
  if (i < offset) {
    return compacted_error();
  }
  if (i - offset >= ents_.size()) {
    return unavailable_error();
  }
  return ents_[i - offset].term();
}

Result<std::uint64_t> MemoryStorage::first_index() const {
  return first();
}
Result<std::uint64_t> MemoryStorage::last_index() const {
  return last();
}
Result<Snapshot> MemoryStorage::snapshot() const {
  return snapshot_;
}

Status MemoryStorage::apply_snapshot(const Snapshot& snap) {
  if (snapshot_.metadata().index() >= snap.metadata().index()) {
    return ServerStatus::already_exists("snapshot is out of date");
  }
  snapshot_ = snap;
  conf_state_ = snap.metadata().conf_state();
  ents_.clear();
  Entry dummy;
  dummy.set_index(snap.metadata().index());
  dummy.set_term(snap.metadata().term());
  ents_.push_back(dummy);
  return Status::ok();
}

Result<Snapshot> MemoryStorage::create_snapshot(std::uint64_t i, const ConfState* cs, const std::string& data) {
  if (i <= snapshot_.metadata().index()) {
    return ServerStatus::already_exists("snapshot is out of date");
  }
  if (i > last()) {
    return Status::internal(fmt::format("snapshot index {} is past the last index {}", i, last()));
  }
  std::uint64_t offset = ents_.front().index();
  snapshot_.mutable_metadata()->set_index(i);
  snapshot_.mutable_metadata()->set_term(ents_[i - offset].term());
  if (cs != nullptr) {
    snapshot_.mutable_metadata()->mutable_conf_state()->CopyFrom(*cs);
  }
  snapshot_.set_data(data);
  return snapshot_;
}

Status MemoryStorage::compact(std::uint64_t i) {
  std::uint64_t offset = ents_.front().index();
  if (i <= offset) {
    return compacted_error();
  }
  if (i > last()) {
    return Status::internal(fmt::format("compact {} is out of bound, last index {}", i, last()));
  }
  std::vector<Entry> kept;
  Entry dummy;
  dummy.set_index(ents_[i - offset].index());
  dummy.set_term(ents_[i - offset].term());
  kept.push_back(dummy);
  kept.insert(kept.end(), ents_.begin() + static_cast<std::ptrdiff_t>(i - offset + 1), ents_.end());
  ents_ = std::move(kept);
  return Status::ok();
}

Status MemoryStorage::append(std::vector<Entry> entries) {
  if (entries.empty()) {
    return Status::ok();
  }
  std::uint64_t first_new = entries.front().index();
  if (first_new + entries.size() - 1 < first()) {
    return Status::ok();  // everything already compacted
  }
  std::size_t skip = first_new < first() ? static_cast<std::size_t>(first() - first_new) : 0;
  first_new += skip;
  std::uint64_t offset = first_new - ents_.front().index();
  if (offset > ents_.size()) {
    return Status::internal(fmt::format("missing log entry [last: {}, append at: {}]", last(), first_new));
  }
  ents_.resize(static_cast<std::size_t>(offset));  // truncate any conflicting suffix
  ents_.insert(ents_.end(), std::make_move_iterator(entries.begin() + static_cast<std::ptrdiff_t>(skip)),
               std::make_move_iterator(entries.end()));
  return Status::ok();
}

}  // namespace rdb::raft
