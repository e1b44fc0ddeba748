// Progress: the leader's view of one follower's log, and the flow control
// that decides what may be sent to it.
//
// States:
//  - Probe: the leader does not know where the follower's log matches; it sends
//    at most one append per heartbeat interval and moves `next` back on rejection.
//  - Replicate: the follower is known to match up to `match`; appends are
//    pipelined optimistically, limited by the Inflights window.
//  - Snapshot: the follower needs a snapshot; nothing else is sent until it
//    reports the snapshot applied (or failed).
// Thread safety: none; owned by the leader's Raft.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rdb::raft {

// A bounded window of in-flight append messages, each remembered by its last index.
class Inflights {
 public:
  explicit Inflights(std::size_t capacity = 256) : capacity_(capacity) {}
  bool full() const { return buffer_.size() >= capacity_; }
  std::size_t count() const { return buffer_.size(); }
  void add(std::uint64_t last_index) { buffer_.push_back(last_index); }
  // Frees every message whose last index is <= to.
  void free_le(std::uint64_t to);
  // Frees the oldest message (none outstanding: no-op).
  void free_first_one() {
    if (!buffer_.empty()) {
      buffer_.erase(buffer_.begin());
    }
  }
  void reset() { buffer_.clear(); }

 private:
  std::size_t capacity_;
  std::vector<std::uint64_t> buffer_;  // increasing
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* progress_state_name(ProgressState s);

struct Progress {
  std::uint64_t match = 0;
  std::uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  bool probe_sent = false;             // Probe: one append is outstanding
  std::uint64_t pending_snapshot = 0;  // Snapshot: index of the snapshot being sent
  bool recent_active = false;          // heard from since the last quorum check
  bool is_learner = false;
  Inflights inflights;

  explicit Progress(std::size_t max_inflight = 256) : inflights(max_inflight) {}

  void become_probe();
  void become_replicate();
  void become_snapshot(std::uint64_t snapshot_index);
  // A successful append response up to n; returns whether anything advanced.
  bool maybe_update(std::uint64_t n);
  void optimistic_update(std::uint64_t n) { next = n + 1; }
  // A rejection of an append at `rejected`, with the follower's hint; returns false if stale.
  bool maybe_decr_to(std::uint64_t rejected, std::uint64_t match_hint);
  bool is_paused() const;
  void sent_entries(std::size_t count, std::uint64_t last_index);
  std::string describe() const;
};

using ProgressMap = std::map<std::uint64_t, Progress>;

}  // namespace rdb::raft
