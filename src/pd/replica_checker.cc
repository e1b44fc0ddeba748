#include "pd/replica_checker.h"

#include <algorithm>

namespace rdb {

RegionDecision joint_swap(const metapb::Peer& learner, const metapb::Peer& voter) {
  RegionDecision d;
  d.joint_change.emplace();
  auto* promote = d.joint_change->add_changes();
  promote->set_type(pdpb::ADD_VOTER);
  *promote->mutable_peer() = learner;
  auto* remove = d.joint_change->add_changes();
  remove->set_type(pdpb::REMOVE);
  *remove->mutable_peer() = voter;
  return d;
}

RegionDecision check_region(const metapb::Region& region, std::uint64_t leader_store,
                            const std::map<std::uint64_t, StoreLiveness>& stores, const ReplicaCheckerConfig& config,
                            const std::vector<metapb::Peer>& pending_peers) {
  auto pending = [&](const metapb::Peer& p) {
    return std::any_of(pending_peers.begin(), pending_peers.end(),
                       [&](const metapb::Peer& q) { return q.id() == p.id(); });
  };
  auto find = [&](std::uint64_t store) -> const StoreLiveness* {
    auto it = stores.find(store);
    return it == stores.end() ? nullptr : &it->second;
  };
  auto live = [&](std::uint64_t store) {
    const StoreLiveness* l = find(store);
    return l != nullptr && l->up && !l->tombstone && !l->offline;
  };
  auto gone = [&](std::uint64_t store) {
    const StoreLiveness* l = find(store);
    return l == nullptr || l->down_long || l->tombstone;
  };
  auto offline = [&](std::uint64_t store) {
    const StoreLiveness* l = find(store);
    return l != nullptr && l->offline;
  };
  auto make = [](pdpb::ChangePeerType type, const metapb::Peer& p) {
    RegionDecision d;
    d.change.emplace();
    d.change->set_type(type);
    *d.change->mutable_peer() = p;
    return d;
  };
  // A region in a joint configuration is left alone: its leader leaves it by itself.
  for (const auto& p : region.peers()) {
    if (!p.is_learner() && p.role() != metapb::VOTER) {
      return {};
    }
  }
  auto regions_on = [&](std::uint64_t store) {
    const StoreLiveness* l = find(store);
    return l == nullptr ? 0 : l->region_count;
  };
  std::size_t voters = 0;
  std::size_t healthy_voters = 0;    // voters not on stores being removed
  std::size_t caught_up_voters = 0;  // ... and not behind the leader's log
  for (const auto& p : region.peers()) {
    if (!p.is_learner()) {
      ++voters;
      healthy_voters += offline(p.store_id()) ? 0 : 1;
      caught_up_voters += offline(p.store_id()) || pending(p) ? 0 : 1;
    }
  }
  // 1. Replace replicas on stores that have been down too long.
  for (const auto& p : region.peers()) {
    if (p.store_id() != leader_store && gone(p.store_id()) && (p.is_learner() || voters > 1)) {
      return make(pdpb::REMOVE, p);
    }
  }
  // 2. Promote a learner that lives on a live store and has caught up. When the
  //    region has its voters already, the learner replaces one in a single joint
  //    step (the one on a store being removed or down, else on the store with the
  //    most regions), so the region never has more voters than it should; a leader
  //    being replaced hands its leadership over first.
  for (const auto& p : region.peers()) {
    if (!p.is_learner() || !live(p.store_id()) || pending(p)) {
      continue;
    }
    if (voters < config.max_replicas) {
      return make(pdpb::ADD_VOTER, p);
    }
    const metapb::Peer* victim = nullptr;
    auto rank = [&](const metapb::Peer& q) {
      return std::make_pair(offline(q.store_id()) || !live(q.store_id()) ? 1 : 0, regions_on(q.store_id()));
    };
    for (const auto& q : region.peers()) {
      if (!q.is_learner() && (victim == nullptr || rank(q) > rank(*victim))) {
        victim = &q;
      }
    }
    if (victim == nullptr) {
      break;
    }
    if (victim->store_id() == leader_store) {
      const metapb::Peer* heir = nullptr;
      for (const auto& q : region.peers()) {
        if (!q.is_learner() && q.store_id() != leader_store && live(q.store_id()) && !pending(q) &&
            (heir == nullptr || regions_on(q.store_id()) < regions_on(heir->store_id()))) {
          heir = &q;
        }
      }
      RegionDecision d;
      if (heir != nullptr) {
        d.transfer_leader_to = *heir;
      }
      return d;
    }
    return joint_swap(p, *victim);
  }
  // 3. Add a replica on the least loaded live store without one.
  if (healthy_voters < config.max_replicas) {
    std::optional<std::pair<std::uint64_t, std::uint64_t>> best;  // (region_count, store)
    for (const auto& [id, l] : stores) {
      const std::uint64_t store = id;  // clang before 16 cannot capture a structured binding
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
      metapb::Peer p;
      p.set_store_id(best->second);
      p.set_is_learner(true);
      return make(pdpb::ADD_LEARNER, p);
    }
  }
  // 4. Move replicas off stores being removed, once the others can carry the region.
  if (healthy_voters >= 1) {
    for (const auto& p : region.peers()) {
      if (!offline(p.store_id())) {
        continue;
      }
      if (caught_up_voters < config.max_replicas && !p.is_learner()) {
        break;  // no replacement has caught up yet: keep the replica
      }
      if (p.store_id() == leader_store) {
        for (const auto& q : region.peers()) {
          if (!q.is_learner() && live(q.store_id())) {
            RegionDecision d;
            d.transfer_leader_to = q;
            return d;
          }
        }
        break;
      }
      return make(pdpb::REMOVE, p);
    }
  }
  // 5. Too many voters (after a replacement, or a balance move): the one on the store
  //    with the most regions goes; if that one leads, leadership moves off it first.
  if (voters > config.max_replicas) {
    const metapb::Peer* victim = nullptr;
    for (auto it = region.peers().rbegin(); it != region.peers().rend(); ++it) {
      bool counted = !offline(it->store_id()) && !pending(*it);
      bool keeps_enough = caught_up_voters - (counted ? 1 : 0) >= config.max_replicas;
      if (!it->is_learner() && keeps_enough &&
          (victim == nullptr || regions_on(it->store_id()) > regions_on(victim->store_id()))) {
        victim = &*it;
      }
    }
    if (victim != nullptr && victim->store_id() == leader_store) {
      const metapb::Peer* heir = nullptr;
      for (const auto& q : region.peers()) {
        if (!q.is_learner() && q.store_id() != leader_store && live(q.store_id()) && !pending(q) &&
            (heir == nullptr || regions_on(q.store_id()) < regions_on(heir->store_id()))) {
          heir = &q;
        }
      }
      if (heir != nullptr) {
        RegionDecision d;
        d.transfer_leader_to = *heir;
        return d;
      }
      return {};
    }
    if (victim != nullptr) {
      return make(pdpb::REMOVE, *victim);
    }
  }
  return {};
}

void ClusterLiveness::heartbeat(std::uint64_t store_id, std::uint64_t region_count, std::uint64_t leader_count,
                                std::uint64_t capacity_bytes, std::uint64_t available_bytes) {
  std::lock_guard lock(mu_);
  beats_[store_id] = {clock_.now_ms(), region_count, leader_count, capacity_bytes, available_bytes};
}

std::pair<std::uint64_t, std::uint64_t> ClusterLiveness::capacity(std::uint64_t store_id) const {
  std::lock_guard lock(mu_);
  auto it = beats_.find(store_id);
  return it == beats_.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0}
                            : std::pair<std::uint64_t, std::uint64_t>{it->second.capacity, it->second.available};
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
