#include "raft/configuration.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace rdb::raft {

std::uint64_t majority_committed(const std::set<std::uint64_t>& voters,
                                 const std::function<std::uint64_t(std::uint64_t)>& match) {
  if (voters.empty()) {
    return std::numeric_limits<std::uint64_t>::max();
  }
  std::vector<std::uint64_t> matches;
  matches.reserve(voters.size());
  for (auto v : voters) {
    matches.push_back(match(v));
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  return matches[voters.size() / 2];  // the highest index a majority has reached
}

VoteOutcome majority_vote(const std::set<std::uint64_t>& voters, const std::map<std::uint64_t, bool>& votes) {
  if (voters.empty()) {
    return VoteOutcome::kWon;
  }
  std::size_t yes = 0;
  std::size_t no = 0;
  for (auto v : voters) {
    if (auto it = votes.find(v); it != votes.end()) {
      (it->second ? yes : no)++;
    }
  }
  const std::size_t quorum = voters.size() / 2 + 1;
  if (yes >= quorum) {
    return VoteOutcome::kWon;
  }
  if (no > voters.size() - quorum) {
    return VoteOutcome::kLost;
  }
  return VoteOutcome::kPending;
}

bool majority_has_quorum(const std::set<std::uint64_t>& voters, const std::set<std::uint64_t>& acks) {
  std::size_t n = 0;
  for (auto v : voters) {
    n += acks.count(v);
  }
  return voters.empty() || n >= voters.size() / 2 + 1;
}

std::set<std::uint64_t> Configuration::members() const {
  std::set<std::uint64_t> out = voters;
  out.insert(voters_outgoing.begin(), voters_outgoing.end());
  out.insert(learners.begin(), learners.end());
  out.insert(learners_next.begin(), learners_next.end());
  return out;
}

bool Configuration::only_voter_is(std::uint64_t id) const {
  auto single = [id](const std::set<std::uint64_t>& s) { return s.size() == 1 && *s.begin() == id; };
  return single(voters) && (voters_outgoing.empty() || single(voters_outgoing));
}

std::uint64_t Configuration::committed(const std::function<std::uint64_t(std::uint64_t)>& match) const {
  std::uint64_t in = majority_committed(voters, match);
  std::uint64_t out = majority_committed(voters_outgoing, match);
  std::uint64_t c = std::min(in, out);
  return c == std::numeric_limits<std::uint64_t>::max() ? 0 : c;
}

VoteOutcome Configuration::vote(const std::map<std::uint64_t, bool>& votes) const {
  VoteOutcome in = majority_vote(voters, votes);
  VoteOutcome out = majority_vote(voters_outgoing, votes);
  if (in == VoteOutcome::kLost || out == VoteOutcome::kLost) {
    return VoteOutcome::kLost;
  }
  if (in == VoteOutcome::kWon && out == VoteOutcome::kWon) {
    return VoteOutcome::kWon;
  }
  return VoteOutcome::kPending;
}

bool Configuration::has_quorum(const std::set<std::uint64_t>& acks) const {
  return !voters.empty() && majority_has_quorum(voters, acks) && majority_has_quorum(voters_outgoing, acks);
}

raftpb::ConfState Configuration::to_conf_state() const {
  raftpb::ConfState cs;
  for (auto v : voters) {
    cs.add_voters(v);
  }
  for (auto l : learners) {
    cs.add_learners(l);
  }
  for (auto v : voters_outgoing) {
    cs.add_voters_outgoing(v);
  }
  for (auto l : learners_next) {
    cs.add_learners_next(l);
  }
  cs.set_auto_leave(auto_leave);
  return cs;
}

namespace {

Status check_shape(const Configuration& c) {
  if (c.voters.empty()) {
    return Status::invalid_argument("configuration has no voters");
  }
  for (auto l : c.learners) {
    if (c.voters.count(l) != 0 || c.voters_outgoing.count(l) != 0) {
      return Status::invalid_argument(fmt::format("node {} is both a voter and a learner", l));
    }
  }
  for (auto l : c.learners_next) {
    if (c.voters_outgoing.count(l) == 0) {
      return Status::invalid_argument(fmt::format("node {} is to become a learner but is no outgoing voter", l));
    }
    if (c.voters.count(l) != 0 || c.learners.count(l) != 0) {
      return Status::invalid_argument(fmt::format("node {} is to become a learner but already is a member", l));
    }
  }
  if (!c.joint() && c.auto_leave) {
    return Status::invalid_argument("configuration is not joint but says to leave a joint configuration");
  }
  if (c.members().count(0) != 0) {
    return Status::invalid_argument("configuration names node 0");
  }
  return Status::ok();
}

// Applies one change to the incoming side of `c`.
void apply_single(Configuration& c, const raftpb::ConfChangeSingle& change) {
  const std::uint64_t id = change.node_id();
  switch (change.type()) {
    case raftpb::ADD_NODE:
      c.learners.erase(id);
      c.learners_next.erase(id);
      c.voters.insert(id);
      break;
    case raftpb::ADD_LEARNER_NODE:
      c.voters.erase(id);
      c.learners.erase(id);
      c.learners_next.erase(id);
      // An outgoing voter keeps voting there until the joint ends, so it may not be a
      // learner yet: it becomes one when the joint configuration is left.
      (c.voters_outgoing.count(id) != 0 ? c.learners_next : c.learners).insert(id);
      break;
    case raftpb::REMOVE_NODE:
      c.voters.erase(id);
      c.learners.erase(id);
      c.learners_next.erase(id);
      break;
    default:
      break;
  }
}

std::size_t voter_difference(const std::set<std::uint64_t>& a, const std::set<std::uint64_t>& b) {
  std::size_t n = 0;
  for (auto v : a) {
    n += b.count(v) == 0 ? 1 : 0;
  }
  for (auto v : b) {
    n += a.count(v) == 0 ? 1 : 0;
  }
  return n;
}

}  // namespace

Result<Configuration> Configuration::from_conf_state(const raftpb::ConfState& cs) {
  Configuration c;
  c.voters.insert(cs.voters().begin(), cs.voters().end());
  c.learners.insert(cs.learners().begin(), cs.learners().end());
  c.voters_outgoing.insert(cs.voters_outgoing().begin(), cs.voters_outgoing().end());
  c.learners_next.insert(cs.learners_next().begin(), cs.learners_next().end());
  c.auto_leave = cs.auto_leave();
  if (Status s = check_shape(c); !s.is_ok()) {
    return Status::invalid_argument(fmt::format("bad configuration {}: {}", c.describe(), s.message()));
  }
  return c;
}

std::string Configuration::describe() const {
  std::string out = fmt::format("voters [{}]", fmt::join(voters, ","));
  if (joint()) {
    out += fmt::format(" & [{}]", fmt::join(voters_outgoing, ","));
  }
  if (!learners.empty()) {
    out += fmt::format(" learners [{}]", fmt::join(learners, ","));
  }
  if (!learners_next.empty()) {
    out += fmt::format(" learners_next [{}]", fmt::join(learners_next, ","));
  }
  if (auto_leave) {
    out += " auto_leave";
  }
  return out;
}

raftpb::ConfChangeV2 to_v2(const raftpb::ConfChange& cc) {
  raftpb::ConfChangeV2 v2;
  auto* change = v2.add_changes();
  change->set_type(cc.type());
  change->set_node_id(cc.node_id());
  v2.set_context(cc.context());
  return v2;
}

bool leaves_joint(const raftpb::ConfChangeV2& cc) {
  return cc.changes_size() == 0;
}

bool enters_joint(const raftpb::ConfChangeV2& cc) {
  return cc.changes_size() > 0 && (cc.transition() != raftpb::TRANSITION_AUTO || cc.changes_size() > 1);
}

Result<Configuration> apply_change(const Configuration& cur, const raftpb::ConfChangeV2& cc) {
  for (const auto& change : cc.changes()) {
    if (change.node_id() == 0) {
      return Status::invalid_argument("conf change names node 0");
    }
    if (!raftpb::ConfChangeType_IsValid(change.type())) {
      return Status::invalid_argument(fmt::format("conf change has unknown type {} for node {}",
                                                  static_cast<int>(change.type()), change.node_id()));
    }
  }
  if (!raftpb::ConfChangeTransition_IsValid(cc.transition())) {
    return Status::invalid_argument(
        fmt::format("conf change has unknown transition {}", static_cast<int>(cc.transition())));
  }
  Configuration next = cur;
  if (leaves_joint(cc)) {
    if (!cur.joint()) {
      return Status::invalid_argument("conf change leaves a joint configuration, but the configuration is not joint");
    }
    next.learners.insert(next.learners_next.begin(), next.learners_next.end());
    next.learners_next.clear();
    next.voters_outgoing.clear();
    next.auto_leave = false;
  } else if (cur.joint()) {
    return Status::invalid_argument(
        fmt::format("conf change refused: the configuration is joint ({}); leave it first", cur.describe()));
  } else if (enters_joint(cc)) {
    next.voters_outgoing = cur.voters;
    for (const auto& change : cc.changes()) {
      apply_single(next, change);
    }
    next.auto_leave = cc.transition() != raftpb::TRANSITION_JOINT_EXPLICIT;
  } else {
    apply_single(next, cc.changes(0));
    if (voter_difference(cur.voters, next.voters) > 1) {
      return Status::invalid_argument("a simple conf change may change at most one voter; use a joint change");
    }
  }
  if (Status s = check_shape(next); !s.is_ok()) {
    return Status::invalid_argument(fmt::format("conf change refused: {}", s.message()));
  }
  return next;
}

}  // namespace rdb::raft
