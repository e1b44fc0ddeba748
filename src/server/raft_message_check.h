// What a store refuses from its peers, and how it accounts for it.
//
// check_envelope() validates the addressing of a RaftMessage before the store
// looks at its Raft content (raft::RawNode::check does that part): the region
// id is set, the message is for a peer on this store, the envelope's peers match
// the Raft message's from/to, and a carried region is the one named.
// check_new_peer() decides whether a message for a region this store does not
// have may create a peer: only a leader's message, carrying the region's
// metadata, whose region contains both peers.
//
// DroppedMessages counts every refusal in `rdb_raft_messages_dropped{reason=...}`
// and logs it at a limited rate (a flood of garbage must not flood the log).
// Thread safety: the checks are pure; DroppedMessages may be used from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/metrics.h"
#include "raft/message_check.h"
#include "raftsvc.pb.h"

namespace rdb {

std::optional<raft::Rejection> check_envelope(const raftsvc::RaftMessage& msg, std::uint64_t store_id);
std::optional<raft::Rejection> check_new_peer(const raftsvc::RaftMessage& msg);
// Messages without Raft content: a tombstone or hibernation signal must name its
// region (and carry it, for a tombstone) and peers on two stores, the receiver
// being this one; a store heartbeat names only the two stores.
std::optional<raft::Rejection> check_signal(const raftsvc::RaftMessage& msg, std::uint64_t store_id);

class DroppedMessages {
 public:
  // At most `log_per_second` warnings a second; the rest are counted and summarized.
  explicit DroppedMessages(MetricsRegistry& metrics, int log_per_second = 10);
  void drop(std::uint64_t region_id, const raft::Rejection& why);
  // Total dropped so far, all reasons.
  std::uint64_t total() const;
  // Dropped for `reason` so far.
  std::uint64_t count(std::string_view reason) const;

 private:
  Counter& counter(std::string_view reason) const;

  MetricsRegistry& metrics_;
  int log_per_second_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  int logged_in_window_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace rdb
