// A randomized hostile-message harness for the Raft core.
//
// A group of nodes runs normally (ticks, proposals, reads, a network that
// reorders) while an attacker injects messages through RawNode::step, the entry
// point for everything a peer sends: stale replays and duplicates of earlier
// traffic, copies with one to three fields mutated to interesting values
// (0, 1, just around the receiver's state, 2^62, 2^64-1, ...), misaddressed
// copies, and wholly random messages. The harness asserts that nothing throws
// out of the core and that every node's local invariants hold after every step
// (commit within the log, applied within commit, terms bounded, every Ready
// persistable). It does not assert agreement between nodes: a forged message
// that looks valid (a plausible commit index) is Byzantine input, which Raft
// cannot survive and authentication (TLS) must keep out.
// One seed replays a run exactly. Thread safety: none; one run per thread.
#pragma once

#include <cstdint>
#include <string>

namespace rdb::raft::sim {

struct FuzzOptions {
  std::uint64_t seed = 1;
  int steps = 3000;
  int nodes = 3;
  double hostile = 0.3;  // share of steps that inject a hostile message
  // TEST ONLY: hand injected messages to Raft::step, skipping validation, to show
  // that the harness catches what validation prevents.
  bool bypass_validation = false;
};

struct FuzzResult {
  bool ok = true;
  std::string violation;
  int step = -1;
  std::uint64_t injected = 0;
  std::uint64_t rejected = 0;   // refused by validation
  std::uint64_t committed = 0;  // highest commit index reached
  std::uint64_t leaders = 0;
};

FuzzResult run_message_fuzz(const FuzzOptions& options);

// The command line that replays `options` with rdb-raft-sim.
std::string fuzz_replay_command(const FuzzOptions& options);

}  // namespace rdb::raft::sim
