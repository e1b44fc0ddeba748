// Balancer: spreads leaders and replicas evenly over the live stores — PD's
// balance-leader and balance-region schedulers. It is asked about a region only
// when the replica checker has nothing to do for it.
//
// A region moves as TiKV's operators move it, one safe step per heartbeat: add a
// learner on the store with the fewest regions → the replica checker promotes it
// once caught up → it removes the surplus voter on the store with the most regions
// (moving leadership off it first). Leaders move by transfer to the voter whose
// store leads the fewest regions. Replicas are balanced by size (the summed sizes of
// the regions a store holds, as their leaders measured them; a region not measured
// yet counts as the average one, and with nothing measured every region counts as
// one, i.e. by count). Both act only on a difference of at least two regions (two
// of this region's size), so they settle instead of swapping back and forth.
// Thread safety: pure functions over the snapshot they are given.
#pragma once

#include <cstdint>
#include <map>

#include "pd/replica_checker.h"

namespace rdb {

struct BalanceConfig {
  std::uint32_t leader_schedule_limit = 4;  // leader transfers PD asks for, per second
  std::uint32_t region_schedule_limit = 4;  // regions being moved at once
};

struct StoreLoad {
  std::uint64_t regions = 0;  // replicas (voters and learners) PD's region tree places here
  std::uint64_t leaders = 0;
  bool eligible = false;   // up, neither offline nor a tombstone: may receive load
  std::uint64_t size = 0;  // the sizes of those replicas' regions (see above)
};

// The cluster as PD's region tree has it, recomputed now and then (not per heartbeat).
struct ClusterLoad {
  std::map<std::uint64_t, StoreLoad> stores;
  std::uint32_t moving = 0;               // regions with a learner or more voters than max_replicas
  std::uint64_t average_region_size = 1;  // of the measured ones; 1 when none is (sizes are counts)
};

// ClusterLoad from the regions PD knows, their sizes as reported (by region id; absent or
// 0: not measured) and which stores may take load.
ClusterLoad cluster_load(const std::vector<pdpb::RegionInfo>& regions,
                         const std::map<std::uint64_t, StoreLiveness>& stores, std::uint32_t max_replicas,
                         const std::map<std::uint64_t, std::uint64_t>& sizes = {});
// The size a region counts for in `load` (its measured size, else the average).
std::uint64_t region_weight(const ClusterLoad& load, std::uint64_t measured_size);

// One step for the region its leader (on `leader_store`) reported. `may_move_leader`
// and `may_move_region`: whether the schedule limits leave room now.
RegionDecision balance_region(const metapb::Region& region, std::uint64_t leader_store, const ClusterLoad& load,
                              std::uint32_t max_replicas, const std::vector<metapb::Peer>& pending_peers,
                              bool may_move_leader, bool may_move_region, std::uint64_t region_size = 0);

}  // namespace rdb
