#include "server/peer_roles.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "raft_serverpb.pb.h"

namespace rdb {

metapb::PeerRole role_of(const metapb::Peer& p) {
  return p.is_learner() ? metapb::LEARNER : p.role();
}

bool is_incoming_voter(const metapb::Peer& p) {
  metapb::PeerRole r = role_of(p);
  return r == metapb::VOTER || r == metapb::INCOMING_VOTER;
}

bool in_joint(const metapb::Region& region) {
  return std::any_of(region.peers().begin(), region.peers().end(), [](const metapb::Peer& p) {
    metapb::PeerRole r = role_of(p);
    return r == metapb::INCOMING_VOTER || r == metapb::DEMOTING_VOTER || r == metapb::LEAVING_VOTER;
  });
}

raft::Configuration configuration_of(const metapb::Region& region) {
  raft::Configuration c;
  const bool joint = in_joint(region);
  for (const auto& p : region.peers()) {
    switch (role_of(p)) {
      case metapb::VOTER:
        c.voters.insert(p.id());
        if (joint) {
          c.voters_outgoing.insert(p.id());
        }
        break;
      case metapb::LEARNER:
        c.learners.insert(p.id());
        break;
      case metapb::INCOMING_VOTER:
        c.voters.insert(p.id());
        break;
      case metapb::DEMOTING_VOTER:
        c.voters_outgoing.insert(p.id());
        c.learners_next.insert(p.id());
        break;
      case metapb::LEAVING_VOTER:
        c.voters_outgoing.insert(p.id());
        break;
      default:
        break;
    }
  }
  c.auto_leave = joint;
  return c;
}

raftpb::ConfState conf_state_of(const metapb::Region& region) {
  return configuration_of(region).to_conf_state();
}

raftpb::ConfChangeV2 make_change(const std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>>& changes) {
  raftpb::ConfChangeV2 cc;
  cc.set_transition(raftpb::TRANSITION_AUTO);
  raft_serverpb::ChangePeersContext ctx;
  for (const auto& [type, peer] : changes) {
    auto* c = cc.add_changes();
    c->set_type(type);
    c->set_node_id(peer.id());
    if (type != raftpb::REMOVE_NODE) {
      metapb::Peer added;
      added.set_id(peer.id());
      added.set_store_id(peer.store_id());
      *ctx.add_peers() = added;
    }
  }
  cc.set_context(ctx.SerializeAsString());
  return cc;
}

Result<DecodedChange> decode_change(const raftpb::Entry& e) {
  DecodedChange out;
  if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
    raftpb::ConfChange v1;
    if (!v1.ParseFromString(e.data())) {
      return Status::invalid_argument("conf change does not parse");
    }
    metapb::Peer target;
    if (v1.type() != raftpb::REMOVE_NODE && target.ParseFromString(v1.context()) && target.id() == v1.node_id()) {
      out.added.push_back(target);
    }
    out.cc = raft::to_v2(v1);
    return out;
  }
  if (!out.cc.ParseFromString(e.data())) {
    return Status::invalid_argument("conf change does not parse");
  }
  raft_serverpb::ChangePeersContext ctx;
  if (!out.cc.context().empty() && !ctx.ParseFromString(out.cc.context())) {
    return Status::invalid_argument("conf change context does not parse");
  }
  out.added.assign(ctx.peers().begin(), ctx.peers().end());
  return out;
}

Result<metapb::Region> region_after_change(const metapb::Region& region, const DecodedChange& change) {
  const raft::Configuration cur = configuration_of(region);
  RDB_ASSIGN_OR_RETURN(raft::Configuration next, raft::apply_change(cur, change.cc));
  if (next.joint() && next.voters == next.voters_outgoing) {
    return Status::invalid_argument("a joint change must move a voter");
  }
  std::map<std::uint64_t, std::uint64_t> store_of;
  std::vector<std::uint64_t> order;
  for (const auto& p : region.peers()) {
    store_of[p.id()] = p.store_id();
    order.push_back(p.id());
  }
  for (const auto& p : change.added) {
    if (store_of.emplace(p.id(), p.store_id()).second) {
      order.push_back(p.id());
    }
  }
  metapb::Region out = region;
  out.clear_peers();
  const auto members = next.members();
  for (auto id : order) {
    if (members.count(id) == 0) {
      continue;
    }
    if (store_of[id] == 0) {
      return Status::invalid_argument(fmt::format("conf change adds peer {} without naming its store", id));
    }
    metapb::Peer p;
    p.set_id(id);
    p.set_store_id(store_of[id]);
    const bool in = next.voters.count(id) != 0;
    const bool out_voter = next.voters_outgoing.count(id) != 0;
    if (in) {
      p.set_role(next.joint() && !out_voter ? metapb::INCOMING_VOTER : metapb::VOTER);
    } else if (out_voter) {
      p.set_role(next.learners_next.count(id) != 0 ? metapb::DEMOTING_VOTER : metapb::LEAVING_VOTER);
    } else {
      p.set_role(metapb::LEARNER);
      p.set_is_learner(true);
    }
    *out.add_peers() = p;
  }
  for (auto id : members) {
    if (store_of.count(id) == 0) {
      return Status::invalid_argument(fmt::format("conf change adds peer {} without naming its store", id));
    }
  }
  // Two peers of one region on one store would fight over its data.
  std::map<std::uint64_t, std::uint64_t> on_store;
  for (const auto& p : out.peers()) {
    if (auto [it, fresh] = on_store.emplace(p.store_id(), p.id()); !fresh) {
      return Status::invalid_argument(fmt::format("store {} already holds its peer {}: conf change adds peer {} there",
                                                  p.store_id(), it->second, p.id()));
    }
  }
  out.mutable_region_epoch()->set_conf_ver(region.region_epoch().conf_ver() + 1);
  return out;
}

}  // namespace rdb
