#include "pd/replica_checker.h"

#include <algorithm>

namespace rdb {

std::optional<pdpb::ChangePeer> check_region(const metapb::Region& region, std::uint64_t leader_store,
                                             const std::map<std::uint64_t, StoreLiveness>& stores,
                                             const ReplicaCheckerConfig& config) {
  auto live = [&](std::uint64_t store) {
    auto it = stores.find(store);
    return it != stores.end() && it->second.up && !it->second.tombstone;
  };
  auto gone = [&](std::uint64_t store) {
    auto it = stores.find(store);
    return it == stores.end() || it->second.down_long || it->second.tombstone;
  };
  std::size_t voters = 0;
  for (const auto& p : region.peers()) {
    voters += p.is_learner() ? 0 : 1;
  }
  // 1. Replace replicas on stores that have been down too long.
  for (const auto& p : region.peers()) {
    if (p.store_id() != leader_store && gone(p.store_id()) && (p.is_learner() || voters > 1)) {
      pdpb::ChangePeer c;
      c.set_type(pdpb::REMOVE);
      *c.mutable_peer() = p;
      return c;
    }
  }
  // 2. Promote a learner that lives on a live store.
  for (const auto& p : region.peers()) {
    if (p.is_learner() && live(p.store_id())) {
      pdpb::ChangePeer c;
      c.set_type(pdpb::ADD_VOTER);
      *c.mutable_peer() = p;
      return c;
    }
  }
  // 3. Add a replica on the least loaded live store without one.
  if (voters < config.max_replicas) {
    std::optional<std::pair<std::uint64_t, std::uint64_t>> best;  // (region_count, store)
    for (const auto& [store, l] : stores) {
      bool holds = std::any_of(region.peers().begin(), region.peers().end(),
                               [&](const metapb::Peer& p) { return p.store_id() == store; });
      if (holds || !live(store)) {
        continue;
      }
      std::pair<std::uint64_t, std::uint64_t> candidate{l.region_count, store};
      if (!best || candidate < *best) {
        best = candidate;
      }
    }
    if (best) {
      pdpb::ChangePeer c;
      c.set_type(pdpb::ADD_LEARNER);
      c.mutable_peer()->set_store_id(best->second);
      c.mutable_peer()->set_is_learner(true);
      return c;
    }
    return std::nullopt;
  }
  // 4. Too many voters (e.g. after a replacement): remove one that is not the leader.
  if (voters > config.max_replicas) {
    for (auto it = region.peers().rbegin(); it != region.peers().rend(); ++it) {
      if (!it->is_learner() && it->store_id() != leader_store) {
        pdpb::ChangePeer c;
        c.set_type(pdpb::REMOVE);
        *c.mutable_peer() = *it;
        return c;
      }
    }
  }
  return std::nullopt;
}

void ClusterLiveness::heartbeat(std::uint64_t store_id, std::uint64_t region_count, std::uint64_t leader_count) {
  std::lock_guard lock(mu_);
  beats_[store_id] = {clock_.now_ms(), region_count, leader_count};
}

std::uint64_t ClusterLiveness::age_ms(std::uint64_t store_id) const {
  std::lock_guard lock(mu_);
  auto it = beats_.find(store_id);
  std::uint64_t since = it == beats_.end() ? started_ : it->second.at_ms;
  std::uint64_t now = clock_.now_ms();
  return now > since ? now - since : 0;
}

std::uint64_t ClusterLiveness::leader_count(std::uint64_t store_id) const {
  std::lock_guard lock(mu_);
  auto it = beats_.find(store_id);
  return it == beats_.end() ? 0 : it->second.leaders;
}

StoreLiveness ClusterLiveness::liveness(std::uint64_t store_id) const {
  StoreLiveness l;
  std::uint64_t age = age_ms(store_id);
  std::lock_guard lock(mu_);
  auto it = beats_.find(store_id);
  l.up = it != beats_.end() && age <= config_.store_up_window_ms;
  l.down_long = age > config_.store_down_after_ms;
  l.region_count = it == beats_.end() ? 0 : it->second.regions;
  return l;
}

}  // namespace rdb
