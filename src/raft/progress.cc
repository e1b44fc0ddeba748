#include "raft/progress.h"

#include <fmt/format.h>

#include <algorithm>

namespace rdb::raft {

void Inflights::free_le(std::uint64_t to) {
  auto it = std::upper_bound(buffer_.begin(), buffer_.end(), to);
  buffer_.erase(buffer_.begin(), it);
}

const char* progress_state_name(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "Probe";
    case ProgressState::kReplicate:
      return "Replicate";
    case ProgressState::kSnapshot:
      return "Snapshot";
  }
  return "?";
}

void Progress::become_probe() {
  // After a snapshot, resume right after it (or after match if that is further).
  if (state == ProgressState::kSnapshot) {
    std::uint64_t pending = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, pending + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.reset();
}

void Progress::become_snapshot(std::uint64_t snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(std::uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::maybe_decr_to(std::uint64_t rejected, std::uint64_t match_hint) {
  if (state == ProgressState::kReplicate) {
    // A rejection of something at or below match is stale (reordered).
    if (rejected <= match) {
      return false;
    }
    next = match + 1;
    return true;
  }
  // Probe: only the rejection of the probe we sent (at next-1) counts.
  if (next - 1 != rejected) {
    return false;
  }
  next = std::max<std::uint64_t>(std::min(rejected, match_hint + 1), 1);
  probe_sent = false;
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

void Progress::sent_entries(std::size_t count, std::uint64_t last_index) {
  if (state == ProgressState::kReplicate) {
    if (count > 0) {
      optimistic_update(last_index);
      inflights.add(last_index);
    }
  } else if (state == ProgressState::kProbe) {
    probe_sent = true;
  }
}

std::string Progress::describe() const {
  return fmt::format("{} match={} next={}{}{}", progress_state_name(state), match, next, is_learner ? " learner" : "",
                     is_paused() ? " paused" : "");
}

}  // namespace rdb::raft
