// rdb-raft-sim: runs the deterministic Raft simulation over a range of seeds.
//   rdb-raft-sim --seed 1 --seeds 100000            soak
//   rdb-raft-sim --seed 4242 --seeds 1 --verbose    replay one seed
//   rdb-raft-sim --bug vote-without-log-check       show the checker catching a bug
//   rdb-raft-sim --fuzz --seeds 100000              hostile-message harness (see raft_fuzz.h)
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "raft_fuzz.h"
#include "raft_sim.h"

namespace {

int run_fuzz(std::uint64_t first, std::uint64_t seeds, int steps, bool stop_at_first) {
  rdb::raft::sim::FuzzOptions f;
  f.steps = steps;
  std::uint64_t failures = 0;
  std::uint64_t injected = 0;
  std::uint64_t rejected = 0;
  std::uint64_t ran = 0;
  for (std::uint64_t s = first; s < first + seeds; ++s) {
    f.seed = s;
    auto r = rdb::raft::sim::run_message_fuzz(f);
    ++ran;
    injected += r.injected;
    rejected += r.rejected;
    if (!r.ok) {
      ++failures;
      fmt::print("VIOLATION seed {} at step {}: {}\n  replay: {}\n", s, r.step, r.violation,
                 rdb::raft::sim::fuzz_replay_command(f));
      if (stop_at_first) {
        break;
      }
    }
  }
  fmt::print("raft-fuzz: {} seeds, {} hostile messages injected, {} refused by validation; {} passed, {} failed\n", ran,
             injected, rejected, ran - failures, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  rdb::raft::sim::SimOptions o;
  std::uint64_t seeds = 100;
  int voters = 0;
  std::vector<std::string> bugs;
  bool no_pre_vote = false;
  bool verbose = false;
  bool stop_at_first = true;
  CLI::App app{"rdb-raft-sim: deterministic simulation of the rdb Raft core under faults"};
  app.add_option("--seed", o.seed, "first seed")->capture_default_str();
  app.add_option("--seeds", seeds, "how many consecutive seeds")->capture_default_str();
  app.add_option("--voters", voters, "initial voters: 3 or 5 (default: alternate by seed)")
      ->check(CLI::IsMember({0, 3, 5}));
  app.add_option("--steps", o.steps, "faulty steps per seed")->capture_default_str();
  app.add_option("--bug", bugs, "inject a bug: vote-without-log-check, commit-previous-term, lease-skip-wait")
      ->check(CLI::IsMember({"vote-without-log-check", "commit-previous-term", "lease-skip-wait"}));
  app.add_option("--lease-steps", o.lease_steps, "check PD's lease rule with leases this many steps long (0: off)")
      ->capture_default_str();
  app.add_flag("--no-pre-vote", no_pre_vote, "disable pre-vote");
  bool no_crashes = false;
  app.add_flag("--no-crashes", no_crashes, "no node crashes (partitions, transfers and the rest still happen)");
  bool no_membership = false;
  app.add_flag("--no-membership", no_membership, "no membership changes");
  app.add_flag("--verbose", verbose, "print a line per seed");
  app.add_flag("!--keep-going", stop_at_first, "do not stop at the first violation");
  bool fuzz = false;
  app.add_flag("--fuzz", fuzz, "run the hostile-message harness instead of the fault simulation");
  CLI11_PARSE(app, argc, argv);
  if (fuzz) {
    return run_fuzz(o.seed, seeds, app.get_option("--steps")->count() > 0 ? o.steps : 3000, stop_at_first);
  }
  for (const auto& b : bugs) {
    if (b == "vote-without-log-check") {
      o.bugs.grant_vote_without_log_check = true;
    } else if (b == "lease-skip-wait") {
      o.lease_skip_wait = true;
    } else {
      o.bugs.commit_previous_term_by_counting = true;
    }
  }
  o.pre_vote = !no_pre_vote;
  o.crashes = !no_crashes;
  o.membership = !no_membership;

  std::uint64_t failures = 0;
  std::uint64_t first = o.seed;
  rdb::raft::sim::SimResult total;
  for (std::uint64_t s = first; s < first + seeds; ++s) {
    o.seed = s;
    o.voters = voters != 0 ? voters : (s % 2 == 0 ? 3 : 5);
    auto r = rdb::raft::sim::run_simulation(o);
    total.committed += r.committed;
    total.proposals += r.proposals;
    total.reads_checked += r.reads_checked;
    total.crashes += r.crashes;
    total.snapshots_installed += r.snapshots_installed;
    total.conf_changes += r.conf_changes;
    total.joint_changes += r.joint_changes;
    total.leaders_elected += r.leaders_elected;
    if (verbose) {
      fmt::print("seed {}: {} committed {} leaders {} reads {} crashes {} snapshots {} conf changes ({} joint){}\n", s,
                 r.committed, r.leaders_elected, r.reads_checked, r.crashes, r.snapshots_installed, r.conf_changes,
                 r.joint_changes, r.ok ? "" : " VIOLATION");
    }
    if (!r.ok) {
      ++failures;
      fmt::print("VIOLATION seed {} at step {}: {}\n  replay: {}\n", s, r.step, r.violation,
                 rdb::raft::sim::replay_command(o));
      if (stop_at_first) {
        break;
      }
    }
  }
  fmt::print(
      "seeds {}..{}: committed {} entries, {} leaders, {} reads checked, {} crashes, {} snapshots installed, "
      "{} conf changes ({} joint)\n",
      first, o.seed, total.committed, total.leaders_elected, total.reads_checked, total.crashes,
      total.snapshots_installed, total.conf_changes, total.joint_changes);
  fmt::print("raft-sim: {} passed, {} failed\n", o.seed - first + 1 - failures, failures);
  return failures == 0 ? 0 : 1;
}
