// Configuration: a Raft group's membership, with joint consensus (Raft thesis §4.3).
//
// A configuration is either simple (one voter set) or joint (an incoming and an
// outgoing voter set; every decision needs a majority of each). Membership
// changes are values: apply_change() takes a configuration and a ConfChangeV2
// and returns the next configuration, or an error naming what is wrong with the
// change. It is a pure function, so the Raft core and the application (for
// example a store's region metadata) reach the same answer from the same log.
//
// Rules:
//  - a simple change (TRANSITION_AUTO with one change) may add or remove at most
//    one voter, and only outside a joint configuration;
//  - entering a joint configuration (more changes, or a joint transition) is
//    refused while joint; the outgoing set is the voter set before the change;
//  - an empty change leaves the joint configuration: demoted voters become
//    learners, removed voters go;
//  - a node is never a voter and a learner of the same side at once, and the
//    incoming voter set is never empty.
// Quorum questions (committed index, vote outcome, has a quorum) are answered
// for both sides at once.
// Thread safety: a value type; no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/result.h"
#include "raftpb.pb.h"

namespace rdb::raft {

enum class VoteOutcome { kPending, kWon, kLost };

// A single majority: the committed index, vote outcome and quorum over one voter set.
// An empty set never constrains anything (it "agrees" with everything).
std::uint64_t majority_committed(const std::set<std::uint64_t>& voters,
                                 const std::function<std::uint64_t(std::uint64_t)>& match);
VoteOutcome majority_vote(const std::set<std::uint64_t>& voters, const std::map<std::uint64_t, bool>& votes);
bool majority_has_quorum(const std::set<std::uint64_t>& voters, const std::set<std::uint64_t>& acks);

struct Configuration {
  std::set<std::uint64_t> voters;           // the incoming (or only) configuration
  std::set<std::uint64_t> voters_outgoing;  // non-empty exactly when joint
  std::set<std::uint64_t> learners;
  std::set<std::uint64_t> learners_next;  // outgoing voters that become learners when the joint ends
  bool auto_leave = false;

  bool joint() const { return !voters_outgoing.empty(); }
  bool is_voter(std::uint64_t id) const { return voters.count(id) != 0 || voters_outgoing.count(id) != 0; }
  bool contains(std::uint64_t id) const {
    return is_voter(id) || learners.count(id) != 0 || learners_next.count(id) != 0;
  }
  // Every node that takes part: voters of either side and learners.
  std::set<std::uint64_t> members() const;
  // Whether `id` alone decides everything (a single-voter group led by itself).
  bool only_voter_is(std::uint64_t id) const;

  std::uint64_t committed(const std::function<std::uint64_t(std::uint64_t)>& match) const;
  VoteOutcome vote(const std::map<std::uint64_t, bool>& votes) const;
  bool has_quorum(const std::set<std::uint64_t>& acks) const;

  raftpb::ConfState to_conf_state() const;
  // Checks the shape (no node on two lists of one side, a voter, learners_next
  // only while joint) before trusting a ConfState from storage or a snapshot.
  static Result<Configuration> from_conf_state(const raftpb::ConfState& cs);

  std::string describe() const;
  bool operator==(const Configuration&) const = default;
};

// The ConfChangeV2 equivalent of a single-change ConfChange.
raftpb::ConfChangeV2 to_v2(const raftpb::ConfChange& cc);
// Whether the change leaves a joint configuration (it carries no changes).
bool leaves_joint(const raftpb::ConfChangeV2& cc);
// Whether the change enters a joint configuration.
bool enters_joint(const raftpb::ConfChangeV2& cc);

// The configuration after `cc`, or an error naming why `cc` cannot apply to `cur`.
Result<Configuration> apply_change(const Configuration& cur, const raftpb::ConfChangeV2& cc);

}  // namespace rdb::raft
