#include "pd/move_peer.h"

#include <fmt/format.h>

#include <algorithm>

namespace rdb {
namespace {

const metapb::Peer* peer_on(const metapb::Region& region, std::uint64_t store) {
  for (const auto& p : region.peers()) {
    if (p.store_id() == store) {
      return &p;
    }
  }
  return nullptr;
}

}  // namespace

Status check_move_peer(const metapb::Region& region, const MovePeer& move, const StoreLiveness* to_store) {
  if (move.from_store == move.to_store) {
    return Status::invalid_argument(
        fmt::format("region {}: from and to are the same store {}", region.id(), move.from_store));
  }
  const metapb::Peer* from = peer_on(region, move.from_store);
  if (from == nullptr || from->is_learner()) {
    return Status::invalid_argument(fmt::format("region {} has no voter on store {}", region.id(), move.from_store));
  }
  if (peer_on(region, move.to_store) != nullptr) {
    return Status::invalid_argument(
        fmt::format("region {} already has a peer on store {}", region.id(), move.to_store));
  }
  if (to_store == nullptr || !to_store->up || to_store->offline || to_store->tombstone) {
    return Status::invalid_argument(fmt::format("store {} is not a live store that may take replicas", move.to_store));
  }
  return Status::ok();
}

std::optional<RegionDecision> move_peer_step(const metapb::Region& region, std::uint64_t leader_store,
                                             const MovePeer& move, const std::vector<metapb::Peer>& pending_peers) {
  const metapb::Peer* from = peer_on(region, move.from_store);
  const metapb::Peer* to = peer_on(region, move.to_store);
  if (from == nullptr) {
    return std::nullopt;  // done (or someone else removed it)
  }
  if (to == nullptr) {
    RegionDecision d;
    d.change.emplace();
    d.change->set_type(pdpb::ADD_LEARNER);
    d.change->mutable_peer()->set_store_id(move.to_store);
    d.change->mutable_peer()->set_is_learner(true);
    return d;
  }
  if (!to->is_learner() || from->is_learner()) {
    return std::nullopt;  // not the shape this operator makes: leave it to the checkers
  }
  const bool pending = std::any_of(pending_peers.begin(), pending_peers.end(),
                                   [&](const metapb::Peer& p) { return p.id() == to->id(); });
  if (pending) {
    return RegionDecision{};  // the learner is still catching up
  }
  if (move.from_store == leader_store) {
    for (const auto& p : region.peers()) {
      if (!p.is_learner() && p.store_id() != move.from_store) {
        RegionDecision d;
        d.transfer_leader_to = p;
        return d;
      }
    }
    return std::nullopt;
  }
  return joint_swap(*to, *from);
}

}  // namespace rdb
