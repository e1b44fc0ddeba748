// A deterministic simulation of a Raft group under faults.
//
// Everything — network, crashes, client requests, time — is driven from one
// seeded random generator, so a seed replays exactly. The network drops,
// duplicates, reorders and delays messages, and cuts links symmetrically or one
// way; nodes crash (losing all they had not persisted, sometimes in the middle
// of handling a Ready) and restart from their storage; clients propose and ask
// for linearizable reads; membership changes add learners, promote them and
// remove voters, one at a time or by joint consensus (a learner swapped in for
// a voter that is removed or demoted, left automatically or explicitly); logs are compacted so lagging nodes need
// snapshots.
//
// After every step the checker asserts: at most one leader per term; a committed
// entry never changes (every node persists and applies the same entry at each
// committed index, in order, with no gaps); a new leader holds every committed
// entry; a ReadIndex answer is at least the commit index known when the read
// was asked (linearizability). After the faults heal it checks liveness: a
// leader is elected and a proposal commits within a bounded number of ticks.
//
// With `lease_steps`, it also plays PD's lease rule (src/pd/pd_group.h) on the same
// core: a leader starts a ReadIndex round on every tick, a confirmed round sent at
// step s holds the lease until s + lease_steps, a new leader serves only lease_steps
// after its election, and a leader handing over serves no more. A deposed leader is
// taken to serve until its lease ends, as one that has not heard the news would (PD
// also stops at once when it does hear). It checks that no two nodes ever serve at the
// same step — the rule that keeps a deposed PD leader's timestamps from overlapping a
// new one's.
// Thread safety: none; one simulation per thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/raw_node.h"

namespace rdb::raft::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  int voters = 3;            // initial voters (3 or 5)
  int steps = 2000;          // faulty steps before healing
  int liveness_ticks = 300;  // bound for electing a leader and committing after healing
  double drop = 0.05;
  double duplicate = 0.02;
  int max_delay = 6;  // steps
  bool crashes = true;
  bool partitions = true;
  bool membership = true;
  bool compaction = true;
  bool reads = true;
  bool pre_vote = true;
  int lease_steps = 0;           // > 0: check PD's lease rule with leases this long (in steps)
  bool lease_skip_wait = false;  // a broken lease rule: a new leader serves at once
  TestBugs bugs;
};

struct SimResult {
  bool ok = true;
  std::string violation;  // first invariant broken, with context
  int step = -1;          // where it was found
  std::uint64_t committed = 0;
  std::uint64_t proposals = 0;
  std::uint64_t reads_checked = 0;
  std::uint64_t leaders_elected = 0;
  std::uint64_t crashes = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t conf_changes = 0;
  std::uint64_t joint_changes = 0;        // changes that entered a joint configuration
  std::uint64_t lease_serving_steps = 0;  // steps at which some node served under the lease rule
};

SimResult run_simulation(const SimOptions& options);

// The command line that replays `options` with the rdb-raft-sim tool.
std::string replay_command(const SimOptions& options);

}  // namespace rdb::raft::sim
