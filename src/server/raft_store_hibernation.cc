// RaftStore: hibernation and store liveness (the protocol is in server/hibernation.h).
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <future>

#include "server/raft_store.h"

namespace rdb {

bool RaftStore::sync() {
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  post([done] { done->set_value(); });
  return f.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
}

bool RaftStore::hibernation_enabled() const {
  // With lease reads too: a sleeping leader's lease runs out by the clock, not by ticks,
  // and sleeping followers, not ticking, refuse votes at least as long as awake ones.
  return config_.hibernate_regions;
}

void RaftStore::wake_peer(Peer& peer) {
  if (peer.hibernating) {
    peer.hibernating = false;
    hibernating_.fetch_sub(1);
    awake_.insert(peer.region.id());
  }
  peer.idle_ticks = 0;
  peer.hibernate_acks.clear();
}

void RaftStore::sleep_peer(Peer& peer) {
  if (!peer.hibernating) {
    peer.hibernating = true;
    hibernating_.fetch_add(1);
    awake_.erase(peer.region.id());
    touched_.insert(peer.region.id());  // what its last tick produced still goes out
  }
}

raftsvc::RaftMessage RaftStore::hibernate_signal(const Peer& peer, const metapb::Peer& to, bool ack) const {
  raftsvc::RaftMessage m;
  m.set_region_id(peer.region.id());
  *m.mutable_from_peer() = peer.self;
  *m.mutable_to_peer() = to;
  m.mutable_hibernate()->set_ack(ack);
  m.mutable_hibernate()->set_term(ack ? peer.node->raft().term() : peer.hibernate_term);
  m.mutable_hibernate()->set_index(ack ? peer.node->raft().log().last_index() : peer.hibernate_index);
  return m;
}

void RaftStore::maybe_hibernate(Peer& peer, std::vector<raftsvc::RaftMessage>& asks) {
  const std::uint64_t now = clock_->now_ms();
  auto live = [&](const metapb::Peer& p) { return liveness_.is_live(p.store_id(), now); };
  if (!leader_is_quiet(peer, live)) {
    peer.idle_ticks = 0;
    return;
  }
  // A leader that just went quiet may be mid-burst: wait an election timeout first.
  if (++peer.idle_ticks < config_.election_ticks) {
    return;
  }
  const raft::Raft& r = peer.node->raft();
  if (peer.hibernate_term != r.term() || peer.hibernate_index != r.log().last_index()) {
    peer.hibernate_term = r.term();
    peer.hibernate_index = r.log().last_index();
    peer.hibernate_acks.clear();
  }
  const bool ask_now = (peer.idle_ticks - config_.election_ticks) % config_.heartbeat_ticks == 0;
  bool everyone_agreed = true;
  for (const auto& p : peer.region.peers()) {
    if (p.id() == peer.self.id() || peer.hibernate_acks.count(p.id()) != 0 || !live(p)) {
      continue;
    }
    everyone_agreed = false;
    if (ask_now) {
      asks.push_back(hibernate_signal(peer, p, false));
    }
  }
  if (everyone_agreed) {
    sleep_peer(peer);
  }
}

void RaftStore::on_hibernate(const raftsvc::RaftMessage& msg) {
  Peer* peer = find_peer(msg.region_id());
  if (peer == nullptr || msg.to_peer().id() != peer->self.id() || !find_member(peer->region, msg.from_peer().id())) {
    dropped_.drop(msg.region_id(), {"bad_signal", "hibernation signal for a peer or from a sender not in the region"});
    return;
  }
  const auto& h = msg.hibernate();
  if (h.ack()) {
    // A follower agrees to what this leader asked (stale answers are ignored).
    if (peer->is_leader() && h.term() == peer->hibernate_term && h.index() == peer->hibernate_index) {
      peer->hibernate_acks.insert(msg.from_peer().id());
    }
    return;
  }
  if (!hibernation_enabled() || !follower_may_sleep(*peer, msg.from_peer().id(), h.term(), h.index())) {
    return;  // not in step with that leader: keep ticking (its heartbeats or our election sort it out)
  }
  sleep_peer(*peer);
  std::vector<raftsvc::RaftMessage> ack;
  ack.push_back(hibernate_signal(*peer, msg.from_peer(), true));
  transport_.send(std::move(ack));
}

void RaftStore::liveness_round() {
  const std::uint64_t now = clock_->now_ms();
  // The stores to tell we are up: every store holding a peer of one of our regions
  // (recomputed every few rounds; stores come and go slowly).
  if (liveness_rounds_++ % 8 == 0) {
    std::set<std::uint64_t> stores;
    for (const auto& [id, peer] : peers_) {
      if (peer->removed) {
        continue;
      }
      for (const auto& p : peer->region.peers()) {
        if (p.store_id() != config_.store_id) {
          stores.insert(p.store_id());
        }
      }
    }
    peer_stores_.assign(stores.begin(), stores.end());
  }
  if (!peer_stores_.empty()) {
    std::vector<raftsvc::RaftMessage> beats;
    for (std::uint64_t store : peer_stores_) {
      raftsvc::RaftMessage m;
      m.mutable_from_peer()->set_store_id(config_.store_id);
      m.mutable_to_peer()->set_store_id(store);
      m.set_store_heartbeat(true);
      beats.push_back(std::move(m));
      (void)liveness_.is_live(store, now);  // start its grace period if new
    }
    transport_.send(std::move(beats));
  }
  auto silent = liveness_.newly_silent(now);
  if (silent.empty() || hibernating_.load() == 0) {
    return;
  }
  std::set<std::uint64_t> gone(silent.begin(), silent.end());
  std::size_t woken = 0;
  for (auto& [id, peer] : peers_) {
    if (!peer->hibernating) {
      continue;
    }
    for (const auto& p : peer->region.peers()) {
      if (gone.count(p.store_id()) != 0) {
        wake_peer(*peer);
        ++woken;
        break;
      }
    }
  }
  spdlog::info("store(s) {} fell silent: woke {} sleeping region peer(s) with a member there", fmt::join(silent, ","),
               woken);
}

}  // namespace rdb
