// Hibernation: a region with nothing to do stops ticking, so that a store with
// thousands of idle regions costs next to nothing (TiKV's hibernate regions and
// CockroachDB's quiescence are the models).
//
// The protocol, driven by RaftStore:
//  - A leader whose log is committed and applied, matched by every peer on a live
//    store, with no request, read, membership change or leader transfer pending,
//    counts idle ticks. After an election timeout of them it asks every peer on a
//    live store to sleep at (term, last index), once per heartbeat interval, and
//    stops ticking itself once all of them agreed.
//  - A follower agrees when it follows that leader in that term and its log ends,
//    committed, at that index: it stops ticking and answers with an ack.
//  - Anything that could change the region wakes a peer: a local request (proposal,
//    read, membership or leadership change, snapshot report) or a Raft message
//    other than a heartbeat (or its answer) of the current term.
//  - Stores send each other a store heartbeat every Raft heartbeat interval. When a
//    store falls silent for two election timeouts, every sleeping peer of a region
//    with a member there wakes: followers of a dead leader elect another, a leader
//    that lost its quorum steps down (check quorum), and the rest sleep again
//    without the silent store.
// Safety never rests on this: a peer that does not tick only delays elections.
// Lease reads would (a sleeping leader does not notice it was deposed), so a store
// that serves lease reads does not hibernate.
//
// Thread safety: none; used by the store's loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "raftpb.pb.h"
#include "server/region_peer.h"

namespace rdb {

// Which stores were heard from lately (by store heartbeats).
class StoreLiveness {
 public:
  explicit StoreLiveness(std::uint64_t timeout_ms) : timeout_ms_(timeout_ms) {}

  void heard(std::uint64_t store_id, std::uint64_t now_ms);
  // Heard from within the timeout. A store never heard from counts as live for one
  // timeout from the first time it is asked about (it may just have started).
  bool is_live(std::uint64_t store_id, std::uint64_t now_ms);
  // Stores that fell silent since the last call (each reported once per silence).
  std::vector<std::uint64_t> newly_silent(std::uint64_t now_ms);

 private:
  std::uint64_t timeout_ms_;
  std::map<std::uint64_t, std::uint64_t> last_heard_;
  std::set<std::uint64_t> silent_;
};

// A leader with nothing in flight: its log committed and applied, every peer
// `counts` (a peer on a live store) caught up, no request or transfer pending.
bool leader_is_quiet(const RegionPeer& peer, const std::function<bool(const metapb::Peer&)>& counts);
// A follower may sleep at the leader's (term, index): it follows `leader_peer_id`
// in that term and its log ends, committed, at `index`.
bool follower_may_sleep(const RegionPeer& peer, std::uint64_t leader_peer_id, std::uint64_t term, std::uint64_t index);
// Whether a Raft message must wake the peer receiving it: anything but a heartbeat
// (or its answer) of the peer's current term.
bool message_wakes(const raftpb::Message& m, std::uint64_t current_term);

}  // namespace rdb
