// Runs the Raft simulation over many seeds, and shows that the checker catches
// deliberately injected bugs (testing the test).
#include "raft_sim.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/test_switches.h"

namespace rdb::raft::sim {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// Seeds are split into shards so CTest can run them in parallel.
class RaftSimSeeds : public ::testing::TestWithParam<int> {};

TEST_P(RaftSimSeeds, InvariantsHoldUnderFaults) {
  const std::uint64_t total = env_or("RDB_SIM_SEEDS", 4000);
  const std::uint64_t shards = 4;
  const std::uint64_t base = env_or("RDB_SIM_FIRST_SEED", 1);
  const auto shard = static_cast<std::uint64_t>(GetParam());
  std::uint64_t ran = 0;
  for (std::uint64_t s = base + shard; s < base + total; s += shards) {
    SimOptions o;
    o.seed = s;
    o.voters = s % 2 == 0 ? 3 : 5;
    o.pre_vote = s % 4 != 3;  // a quarter of the seeds run without pre-vote
    // An eighth without crashes: restarts reset a leader's view of its followers and hid a
    // follower stranded behind a window of lost appends.
    o.crashes = s % 8 != 5;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << s << " step " << r.step << ": " << r.violation
                      << "\n  replay: " << replay_command(o);
    EXPECT_GT(r.leaders_elected, 0u) << "seed " << s;
    ++ran;
  }
  EXPECT_GT(ran, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shards, RaftSimSeeds, ::testing::Values(0, 1, 2, 3));

// Found by long runs: a leader sent a new voter its storage's snapshot, taken before the
// change that added the voter; the voter ignored it (not in its configuration), the leader
// took it as delivered and probed past it, and the voter was never caught up.
TEST(RaftSimTest, ANewVoterIsNeverSentASnapshotThatDoesNotNameIt) {
  for (std::uint64_t seed : {11738, 17794}) {
    SimOptions o;
    o.seed = seed;
    o.voters = 3;
    o.steps = 3000;
    SimResult r = run_simulation(o);
    EXPECT_TRUE(r.ok) << "seed " << seed << " step " << r.step << ": " << r.violation
                      << "\n  replay: " << replay_command(o);
  }
}

TEST(RaftSimTest, SimulationMakesProgressAndExercisesEveryFault) {
  SimResult total;
  for (std::uint64_t s = 1; s <= 40; ++s) {
    SimOptions o;
    o.seed = s;
    o.voters = s % 2 == 0 ? 3 : 5;
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << r.violation << "\n  replay: " << replay_command(o);
    total.committed += r.committed;
    total.reads_checked += r.reads_checked;
    total.crashes += r.crashes;
    total.snapshots_installed += r.snapshots_installed;
    total.conf_changes += r.conf_changes;
    total.joint_changes += r.joint_changes;
  }
  // A simulation that never commits, reads, crashes, snapshots or reconfigures proves nothing.
  EXPECT_GT(total.committed, 400u);
  EXPECT_GT(total.reads_checked, 20u);
  EXPECT_GT(total.crashes, 20u);
  EXPECT_GT(total.snapshots_installed, 0u);
  EXPECT_GT(total.conf_changes, 0u);
  EXPECT_GT(total.joint_changes, 0u);
}

// A run of PD's lease rule: leases of 150 steps outlast an election (10-20 ticks at ~0.3
// ticks a step), so only the new leader's wait keeps leaders apart. Without crashes or
// membership changes, leaders live long enough to hold leases; partitions and transfers
// move them.
SimOptions lease_options(std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.voters = seed % 2 == 0 ? 3 : 5;
  o.lease_steps = 150;
  o.crashes = false;
  o.membership = false;
  return o;
}

// PD's lease rule (src/pd/pd_group.h) on the real core under every other fault: no two
// nodes serve at once.
TEST(RaftSimTest, PdLeaseRuleNeverLetsTwoLeadersServe) {
  std::uint64_t serving = 0;
  for (std::uint64_t s = 1; s <= env_or("RDB_SIM_LEASE_SEEDS", 200); ++s) {
    SimOptions o = lease_options(s);
    SimResult r = run_simulation(o);
    ASSERT_TRUE(r.ok) << "seed " << s << " step " << r.step << ": " << r.violation
                      << "\n  replay: " << replay_command(o);
    serving += r.lease_serving_steps;
  }
  EXPECT_GT(serving, 5000u) << "leaders should serve a good part of the time";
}

TEST(RaftSimBugInjectionTest, ALeaseRuleWithoutTheWaitIsCaught) {
  std::string what;
  std::uint64_t caught = 0;
  std::uint64_t served = 0;
  for (std::uint64_t s = 1; s <= 400 && caught == 0; ++s) {
    SimOptions o = lease_options(s);
    o.lease_skip_wait = true;
    SimResult r = run_simulation(o);
    served += r.lease_serving_steps;
    if (!r.ok && r.violation.rfind("lease:", 0) == 0) {
      caught = s;
      what = r.violation + "\n  replay: " + replay_command(o);
    }
  }
  EXPECT_NE(caught, 0u) << "a new leader serving at once went unnoticed in 400 seeds (" << served << " steps served)";
  std::cout << "caught at seed " << caught << ": " << what << "\n";
}

TEST(RaftSimTest, SameSeedReplaysIdentically) {
  SimOptions o;
  o.seed = 77;
  SimResult a = run_simulation(o);
  SimResult b = run_simulation(o);
  EXPECT_EQ(a.committed, b.committed);
  EXPECT_EQ(a.leaders_elected, b.leaders_elected);
  EXPECT_EQ(a.crashes, b.crashes);
  EXPECT_EQ(a.reads_checked, b.reads_checked);
}

// Returns the first seed in [1, max_seeds] whose simulation reports a violation, or 0.
std::uint64_t first_violation(const TestBugs& bugs, std::uint64_t max_seeds, std::string* what) {
  for (std::uint64_t s = 1; s <= max_seeds; ++s) {
    SimOptions o;
    o.seed = s;
    o.voters = s % 2 == 0 ? 3 : 5;
    o.bugs = bugs;
    SimResult r = run_simulation(o);
    if (!r.ok) {
      *what = r.violation + "\n  replay: " + replay_command(o);
      return s;
    }
  }
  return 0;
}

TEST(RaftSimBugInjectionTest, VotingWithoutLogCheckIsCaught) {
  if (!kTestSwitches) {
    GTEST_SKIP() << "test switches are compiled out (RDB_TEST_SWITCHES=OFF)";
  }
  TestBugs bugs;
  bugs.grant_vote_without_log_check = true;
  std::string what;
  std::uint64_t seed = first_violation(bugs, 400, &what);
  EXPECT_NE(seed, 0u) << "the checker missed a broken election restriction in 400 seeds";
  std::cout << "caught at seed " << seed << ": " << what << "\n";
}

TEST(RaftSimBugInjectionTest, CommittingPreviousTermByCountingIsCaught) {
  if (!kTestSwitches) {
    GTEST_SKIP() << "test switches are compiled out (RDB_TEST_SWITCHES=OFF)";
  }
  TestBugs bugs;
  bugs.commit_previous_term_by_counting = true;
  std::string what;
  std::uint64_t seed = first_violation(bugs, 1500, &what);
  EXPECT_NE(seed, 0u) << "the checker missed a broken commitment rule in 1500 seeds";
  std::cout << "caught at seed " << seed << ": " << what << "\n";
}

}  // namespace
}  // namespace rdb::raft::sim
