#include "pd/balancer.h"

#include <algorithm>

namespace rdb {

ClusterLoad cluster_load(const std::vector<pdpb::RegionInfo>& regions,
                         const std::map<std::uint64_t, StoreLiveness>& stores, std::uint32_t max_replicas) {
  ClusterLoad load;
  for (const auto& [id, l] : stores) {
    load.stores[id].eligible = l.up && !l.offline && !l.tombstone;
  }
  for (const auto& info : regions) {
    std::uint32_t voters = 0;
    bool learner = false;
    for (const auto& p : info.region().peers()) {
      load.stores[p.store_id()].regions += 1;
      voters += p.is_learner() ? 0 : 1;
      learner = learner || p.is_learner();
    }
    if (info.leader().store_id() != 0) {
      load.stores[info.leader().store_id()].leaders += 1;
    }
    if (learner || voters > max_replicas) {
      ++load.moving;
    }
  }
  return load;
}

RegionDecision balance_region(const metapb::Region& region, std::uint64_t leader_store, const ClusterLoad& load,
                              std::uint32_t max_replicas, const std::vector<metapb::Peer>& pending_peers,
                              bool may_move_leader, bool may_move_region) {
  auto store = [&](std::uint64_t id) {
    auto it = load.stores.find(id);
    return it == load.stores.end() ? StoreLoad{} : it->second;
  };
  auto pending = [&](const metapb::Peer& p) {
    return std::any_of(pending_peers.begin(), pending_peers.end(),
                       [&](const metapb::Peer& q) { return q.id() == p.id(); });
  };
  RegionDecision d;
  // Leaders: to the caught-up voter whose store leads the fewest regions.
  if (may_move_leader) {
    const metapb::Peer* best = nullptr;
    for (const auto& p : region.peers()) {
      if (p.is_learner() || p.store_id() == leader_store || pending(p) || !store(p.store_id()).eligible) {
        continue;
      }
      if (best == nullptr || store(p.store_id()).leaders < store(best->store_id()).leaders) {
        best = &p;
      }
    }
    if (best != nullptr && store(leader_store).leaders >= store(best->store_id()).leaders + 2) {
      d.transfer_leader_to = *best;
      return d;
    }
  }
  // Replicas: only a region at rest (its voters complete, nothing being added).
  std::uint32_t voters = 0;
  for (const auto& p : region.peers()) {
    if (p.is_learner()) {
      return d;
    }
    ++voters;
  }
  if (!may_move_region || voters != max_replicas || !pending_peers.empty()) {
    return d;
  }
  std::uint64_t most = 0;  // regions on the busiest store holding this region
  for (const auto& p : region.peers()) {
    most = std::max(most, store(p.store_id()).regions);
  }
  std::optional<std::pair<std::uint64_t, std::uint64_t>> target;  // (regions, store)
  for (const auto& [id, l] : load.stores) {
    bool holds = std::any_of(region.peers().begin(), region.peers().end(),
                             [&](const metapb::Peer& p) { return p.store_id() == id; });
    if (holds || !l.eligible) {
      continue;
    }
    if (!target || std::make_pair(l.regions, id) < *target) {
      target = std::make_pair(l.regions, id);
    }
  }
  if (target && most >= target->first + 2) {
    d.change.emplace();
    d.change->set_type(pdpb::ADD_LEARNER);
    d.change->mutable_peer()->set_store_id(target->second);
    d.change->mutable_peer()->set_is_learner(true);
  }
  return d;
}

}  // namespace rdb
