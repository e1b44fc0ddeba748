// The move-peer operator: one replica of a region moves from one store to another
// (rdb-cli move-peer, pd-ctl's transfer-peer; the chaos suite's replica-move fault).
//
// Steps, one per region heartbeat: a learner on `to_store`; once it caught up, a
// joint step that makes it a voter and removes the peer on `from_store` (leadership
// moves off `from_store` first); done when `to_store` holds a voter and `from_store`
// nothing. PD keeps the operator in memory until it is done or expires.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "metapb.pb.h"
#include "pd/replica_checker.h"

namespace rdb {

struct MovePeer {
  std::uint64_t from_store = 0;
  std::uint64_t to_store = 0;
  std::uint64_t until_ms = 0;  // given up after this
};

// Whether the move may start: the region has a voter on `from_store` and nothing on
// `to_store`, and `to_store` is live. The error names what is wrong.
Status check_move_peer(const metapb::Region& region, const MovePeer& move, const StoreLiveness* to_store);

// The next step, or nullopt when the move is over (done, or no longer possible).
// An empty decision means: wait (the learner is catching up).
std::optional<RegionDecision> move_peer_step(const metapb::Region& region, std::uint64_t leader_store,
                                             const MovePeer& move, const std::vector<metapb::Peer>& pending_peers);

}  // namespace rdb
