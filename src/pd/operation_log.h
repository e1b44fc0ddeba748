// OperationLog: the scheduling steps PD asked of regions lately (add a learner, promote,
// remove, transfer a leader, merge), newest last, for the dashboard and operators.
//
// Bounded: keeps the last `capacity` entries (memory does not grow with uptime). In memory
// only, on the member that scheduled them (a new PD leader starts with an empty log).
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace rdb {

class OperationLog {
 public:
  struct Entry {
    std::uint64_t unix_ms = 0;
    std::uint64_t region_id = 0;
    std::string kind;    // "add_learner", "add_voter", "remove_peer", "joint_change", "transfer_leader", "merge"
    std::string detail;  // what, in words
  };

  explicit OperationLog(std::size_t capacity = 100) : capacity_(capacity) {}

  void record(Entry entry) {
    std::lock_guard lock(mu_);
    entries_.push_back(std::move(entry));
    while (entries_.size() > capacity_) {
      entries_.pop_front();
    }
    ++total_;
  }
  std::vector<Entry> recent() const {
    std::lock_guard lock(mu_);
    return {entries_.begin(), entries_.end()};
  }
  // Every entry ever recorded, the ones dropped included.
  std::uint64_t total() const {
    std::lock_guard lock(mu_);
    return total_;
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // guarded by mu_
  std::uint64_t total_ = 0;    // guarded by mu_
};

}  // namespace rdb
