#include "server/hibernation.h"

namespace rdb {

void StoreLiveness::heard(std::uint64_t store_id, std::uint64_t now_ms) {
  last_heard_[store_id] = now_ms;
  silent_.erase(store_id);
}

bool StoreLiveness::is_live(std::uint64_t store_id, std::uint64_t now_ms) {
  auto [it, first_time] = last_heard_.try_emplace(store_id, now_ms);
  return now_ms < it->second + timeout_ms_;
}

std::vector<std::uint64_t> StoreLiveness::newly_silent(std::uint64_t now_ms) {
  std::vector<std::uint64_t> out;
  for (const auto& [store, at] : last_heard_) {
    if (now_ms >= at + timeout_ms_ && silent_.insert(store).second) {
      out.push_back(store);
    }
  }
  return out;
}

bool leader_is_quiet(const RegionPeer& peer, const std::function<bool(const metapb::Peer&)>& counts) {
  const raft::Raft& r = peer.node->raft();
  if (r.role() != raft::StateRole::kLeader || r.lead_transferee() != raft::kNone || r.commit_unannounced() ||
      peer.has_pending_requests() || peer.merging || !peer.blocked_entries.empty()) {
    return false;
  }
  const std::uint64_t last = r.log().last_index();
  if (r.log().committed() != last || peer.storage->applied_index() != last) {
    return false;
  }
  for (const auto& p : peer.region.peers()) {
    if (p.id() == peer.self.id()) {
      continue;
    }
    auto pr = r.progress().find(p.id());
    if (pr == r.progress().end()) {
      return false;  // a member Raft does not track yet: a change is under way
    }
    if (pr->second.match != last && counts(p)) {
      return false;
    }
  }
  return true;
}

bool follower_may_sleep(const RegionPeer& peer, std::uint64_t leader_peer_id, std::uint64_t term, std::uint64_t index) {
  const raft::Raft& r = peer.node->raft();
  return r.role() == raft::StateRole::kFollower && r.term() == term && r.leader() == leader_peer_id &&
         r.log().last_index() == index && r.log().committed() == index && !peer.has_pending_requests();
}

bool message_wakes(const raftpb::Message& m, std::uint64_t current_term) {
  bool heartbeat = m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_HEARTBEAT_RESP;
  return !heartbeat || m.term() != current_term;
}

}  // namespace rdb
