#include "pd/balancer.h"

#include <algorithm>

namespace rdb {

ClusterLoad cluster_load(const std::vector<pdpb::RegionInfo>& regions,
                         const std::map<std::uint64_t, StoreLiveness>& stores, std::uint32_t max_replicas,
                         const std::map<std::uint64_t, std::uint64_t>& sizes) {
  ClusterLoad load;
  for (const auto& [id, l] : stores) {
    load.stores[id].eligible = l.up && !l.offline && !l.tombstone;
  }
  auto measured = [&](std::uint64_t region_id) {
    auto it = sizes.find(region_id);
    return it == sizes.end() ? std::uint64_t{0} : it->second;
  };
  std::uint64_t total = 0;
  std::uint64_t known = 0;
  for (const auto& info : regions) {
    if (std::uint64_t s = measured(info.region().id()); s > 0) {
      total += s;
      ++known;
    }
  }
  load.average_region_size = known == 0 ? 1 : std::max<std::uint64_t>(total / known, 1);
  for (const auto& info : regions) {
    const std::uint64_t weight = known == 0 ? 1 : region_weight(load, measured(info.region().id()));
    std::uint32_t voters = 0;
    bool learner = false;
    for (const auto& p : info.region().peers()) {
      load.stores[p.store_id()].regions += 1;
      load.stores[p.store_id()].size += weight;
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

std::uint64_t region_weight(const ClusterLoad& load, std::uint64_t measured_size) {
  return measured_size > 0 && load.average_region_size > 1 ? measured_size : load.average_region_size;
}

RegionDecision balance_region(const metapb::Region& region, std::uint64_t leader_store, const ClusterLoad& load,
                              std::uint32_t max_replicas, const std::vector<metapb::Peer>& pending_peers,
                              bool may_move_leader, bool may_move_region, std::uint64_t region_size) {
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
  std::uint64_t most = 0;  // size held by the busiest store holding this region
  for (const auto& p : region.peers()) {
    most = std::max(most, store(p.store_id()).size);
  }
  std::optional<std::pair<std::uint64_t, std::uint64_t>> target;  // (size, store)
  for (const auto& [store_id, l] : load.stores) {
    const std::uint64_t id = store_id;  // clang before 16 cannot capture a structured binding
    bool holds = std::any_of(region.peers().begin(), region.peers().end(),
                             [&](const metapb::Peer& p) { return p.store_id() == id; });
    if (holds || !l.eligible) {
      continue;
    }
    if (!target || std::make_pair(l.size, id) < *target) {
      target = std::make_pair(l.size, id);
    }
  }
  // Moving it takes its size off one store and onto the other: worth it only if the
  // gap is at least twice that, or the two would swap places.
  if (target && most >= target->first + 2 * region_weight(load, region_size)) {
    d.change.emplace();
    d.change->set_type(pdpb::ADD_LEARNER);
    d.change->mutable_peer()->set_store_id(target->second);
    d.change->mutable_peer()->set_is_learner(true);
  }
  return d;
}

}  // namespace rdb
