// The hostile-message harness over many seeds, and proof that it catches what
// validation prevents (with validation bypassed, the core breaks).
#include "raft_fuzz.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace rdb::raft::sim {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(RaftMessageFuzz, NoHostileMessageBreaksANode) {
  const std::uint64_t seeds = env_or("RDB_FUZZ_SEEDS", 300);
  const std::uint64_t first = env_or("RDB_FUZZ_FIRST_SEED", 1);
  std::uint64_t injected = 0;
  std::uint64_t rejected = 0;
  std::uint64_t leaders = 0;
  for (std::uint64_t s = first; s < first + seeds; ++s) {
    FuzzOptions o;
    o.seed = s;
    FuzzResult r = run_message_fuzz(o);
    ASSERT_TRUE(r.ok) << "seed " << s << " step " << r.step << ": " << r.violation
                      << "\n  replay: " << fuzz_replay_command(o);
    injected += r.injected;
    rejected += r.rejected;
    leaders += r.leaders;
  }
  // The harness must reach the interesting paths: a real group that elects
  // leaders, and hostile input both refused and let through.
  EXPECT_GT(leaders, seeds);
  EXPECT_GT(rejected, injected / 4);
  EXPECT_LT(rejected, injected);
}

TEST(RaftMessageFuzz, CatchesTheCrashesValidationPrevents) {
  int broken = 0;
  for (std::uint64_t s = 1; s <= 50; ++s) {
    FuzzOptions o;
    o.seed = s;
    o.bypass_validation = true;
    if (!run_message_fuzz(o).ok) {
      ++broken;
    }
  }
  EXPECT_GT(broken, 25) << "without validation most seeds should break a node";
}

}  // namespace
}  // namespace rdb::raft::sim
