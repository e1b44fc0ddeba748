// ReplicaChecker: decides how a region's membership should change so that it
// has `max_replicas` voters on live stores — PD's replica checker.
//
// One change per decision, in this order: remove a peer whose store has been
// down longer than `store_down_after`; promote a learner that has caught up;
// add a learner on the live store with the fewest regions that holds no peer
// yet; move replicas off stores being removed; remove a surplus voter — the one on
// the store with the most regions, after moving leadership off it if it leads.
// The leader carries the change out through Raft (one at a time).
//
// Pending peers (the leader reports them: they need or are installing a
// snapshot) are neither promoted nor counted as healthy: a voter on a store
// being removed, or a surplus voter, is removed only while at least
// `max_replicas` caught-up voters remain, so a move never leaves the region one
// failure away from losing its majority.
// Thread safety: pure functions; ClusterLiveness is internally synchronised.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "pdpb.pb.h"

namespace rdb {

struct ReplicaCheckerConfig {
  std::uint32_t max_replicas = 3;
  std::uint64_t store_up_window_ms = 10'000;                          // a store is "up" if heard from within this
  std::uint64_t store_down_after_ms = std::uint64_t{30} * 60 * 1000;  // then its replicas are replaced
};

struct StoreLiveness {
  bool up = false;
  bool down_long = false;
  std::uint64_t region_count = 0;
  bool tombstone = false;
  bool offline = false;  // being removed: its replicas move elsewhere first
};

struct RegionDecision {
  std::optional<pdpb::ChangePeer> change;
  std::optional<pdpb::ChangePeerV2> joint_change;  // several changes in one joint step
  std::optional<metapb::Peer> transfer_leader_to;
  std::optional<metapb::Region> merge_into;  // the merge checker's: merge into this neighbour
};

// The joint step that swaps a caught-up `learner` in for `voter`: ADD_VOTER of the
// one and REMOVE of the other in one ChangePeerV2.
RegionDecision joint_swap(const metapb::Peer& learner, const metapb::Peer& voter);

// `leader_store` is never removed: a leader on an offline store is asked to
// transfer leadership first. The returned peer of an ADD_LEARNER has id 0: the
// caller allocates it.
RegionDecision check_region(const metapb::Region& region, std::uint64_t leader_store,
                            const std::map<std::uint64_t, StoreLiveness>& stores, const ReplicaCheckerConfig& config,
                            const std::vector<metapb::Peer>& pending_peers = {});

// Store heartbeats, remembered in memory: after a PD restart every store is
// given the full down window again before its replicas are replaced.
class ClusterLiveness {
 public:
  ClusterLiveness(Clock& clock, ReplicaCheckerConfig config)
      : clock_(clock), config_(config), started_(clock.now_ms()) {}
  void heartbeat(std::uint64_t store_id, std::uint64_t region_count, std::uint64_t leader_count,
                 std::uint64_t capacity_bytes = 0, std::uint64_t available_bytes = 0);
  std::pair<std::uint64_t, std::uint64_t> capacity(std::uint64_t store_id) const;  // (capacity, available)
  StoreLiveness liveness(std::uint64_t store_id) const;
  std::uint64_t age_ms(std::uint64_t store_id) const;  // since the last heartbeat (or PD start)
  std::uint64_t leader_count(std::uint64_t store_id) const;
  const ReplicaCheckerConfig& config() const { return config_; }
  std::uint64_t now_ms() const { return clock_.now_ms(); }

 private:
  struct Beat {
    std::uint64_t at_ms = 0;
    std::uint64_t regions = 0;
    std::uint64_t leaders = 0;
    std::uint64_t capacity = 0;
    std::uint64_t available = 0;
  };
  Clock& clock_;
  ReplicaCheckerConfig config_;
  std::uint64_t started_;
  mutable std::mutex mu_;
  std::map<std::uint64_t, Beat> beats_;
};

}  // namespace rdb
