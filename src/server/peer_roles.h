// Peer roles: a region's membership as its metadata records it, and how a Raft
// membership change (simple or joint) moves it.
//
// A region's peers carry roles (metapb.PeerRole) so that its metadata describes a
// joint configuration too: the outgoing voters stay listed (and reachable) until the
// joint configuration ends. configuration_of() is the Raft configuration those roles
// describe; region_after_change() computes the region a committed change leaves,
// with the same pure rules the Raft core applies (raft::apply_change), so the
// metadata and the Raft node never disagree. Joint configurations are always left
// automatically by the region's leader.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "metapb.pb.h"
#include "raft/configuration.h"
#include "raftpb.pb.h"

namespace rdb {

// The peer's role; older metadata marks learners with is_learner only.
metapb::PeerRole role_of(const metapb::Peer& p);
// Whether the peer votes in the configuration the region is moving to (or is in).
bool is_incoming_voter(const metapb::Peer& p);
// Whether the region is in a joint configuration.
bool in_joint(const metapb::Region& region);

raft::Configuration configuration_of(const metapb::Region& region);
raftpb::ConfState conf_state_of(const metapb::Region& region);

// The ConfChangeV2 a store proposes for `changes` (type and peer each): one change
// is simple, several enter a joint configuration left automatically. Its context
// names the added peers.
raftpb::ConfChangeV2 make_change(const std::vector<std::pair<raftpb::ConfChangeType, metapb::Peer>>& changes);
// A committed entry's change as a ConfChangeV2, and the peers its context adds.
struct DecodedChange {
  raftpb::ConfChangeV2 cc;
  std::vector<metapb::Peer> added;
};
Result<DecodedChange> decode_change(const raftpb::Entry& e);

// The region after `change` (conf_ver + 1), or why it cannot apply. Refuses a joint
// change that moves no voter (the metadata could not show it).
Result<metapb::Region> region_after_change(const metapb::Region& region, const DecodedChange& change);

}  // namespace rdb
